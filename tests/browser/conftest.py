"""Browser-test fixtures: a real ``streamlit run app.py`` on a free loopback port, and a Chromium page.

``streamlit_app(env=..., secrets=...)`` starts the app (with this test's ZOO_HOME unless ``env`` says
otherwise, and its own secrets.toml when ``secrets`` is given) and returns its base URL; the server stops
at the end of the test. ``browser_page`` is a fresh page in Debian's Chromium, driven by Playwright;
``new_page()`` opens more, each its own browser context (another visitor). ``oidc_provider`` is a
loopback OpenID Connect provider (tests/oidc_server.py) to sign in with ``st.login``, and ``hosted`` the
environment of a hosted studio whose admin is teacher. ``proxied_studio()`` starts two such servers sharing
one PostgreSQL run store, one S3 model store and one cookie secret behind HAProxy, configured by the
repository's ``deploy/haproxy.cfg``. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from oidc_server import OidcProvider

REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = REPOSITORY / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_SECONDS = 60
HAPROXY = "/usr/sbin/haproxy"
HAPROXY_CONFIG = REPOSITORY / "deploy" / "haproxy.cfg"
APP_SERVERS = ("app1", "app2")  # the server names deploy/haproxy.cfg gives, in its order
STICKINESS_COOKIE = "STUDIO_SERVER"  # deploy/haproxy.cfg's: which server a browser stays on


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(base_url: str, process: subprocess.Popen) -> bool:
    """Whether ``base_url`` answers Streamlit's health check within ``START_TIMEOUT_SECONDS`` while
    ``process`` (the server, or the proxy in front of it) runs."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    return False


@pytest.fixture
def streamlit_app(tmp_path) -> Iterator[Callable[..., str]]:
    """Start ``streamlit run app.py`` headless on a free loopback port; returns its base URL.

    Call it as ``streamlit_app(env={"NAME": "value"}, secrets="[auth]...")``; the environment is this
    process's (with the test's ZOO_HOME) plus ``env``; ``secrets`` (TOML) becomes the server's only
    secrets file, in ``tmp_path``, instead of ``.streamlit/secrets.toml``. The server's output is in
    ``tmp_path/streamlit-PORT.log`` and is printed when it does not come up. ``streamlit_app.servers``
    holds the started servers' processes.
    """
    servers: list[subprocess.Popen] = []

    def start(env: dict[str, str] | None = None, script: str = "app.py", secrets: str | None = None) -> str:
        port = free_port()
        log_path = tmp_path / f"streamlit-{port}.log"
        command = [
            sys.executable, "-m", "streamlit", "run", script,
            "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        if secrets is not None:
            secrets_path = tmp_path / f"secrets-{port}.toml"
            secrets_path.write_text(secrets)
            command += ["--secrets.files", str(secrets_path)]
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                command,
                cwd=REPOSITORY,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        servers.append(server)
        base_url = f"http://127.0.0.1:{port}"
        if healthy(base_url, server):
            return base_url
        pytest.fail(f"streamlit did not start on {base_url}; its log:\n{log_path.read_text()[-3000:]}")

    start.servers = servers  # the started servers' processes, for tests that stop one themselves
    yield start
    for server in servers:
        end(server)


def end(process: subprocess.Popen) -> None:
    """Ask a server the fixtures started to end (SIGTERM), and kill it if it is still there after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, launched once per session through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium) -> Iterator[Callable[[], object]]:
    """``new_page()``: a fresh page in a context of its own (its own cookies: another visitor), 1400 px
    wide; every context closes at the end of the test."""
    contexts = []

    def open_page():
        contexts.append(chromium.new_context(viewport={"width": 1400, "height": 1600}))
        return contexts[-1].new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def browser_page(new_page):
    """A fresh page (its own context: no cookies or storage from other tests), 1400 px wide."""
    return new_page()


@pytest.fixture
def oidc_provider() -> Iterator[OidcProvider]:
    """A loopback OpenID Connect provider with the users alice, bob and teacher (tests/oidc_server.py)."""
    provider = OidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def hosted(monkeypatch) -> dict[str, str]:
    """Hosted mode, with teacher as the admin, for the server (pass it as ``env``) and for this test's own
    zoo calls."""
    env = {"ZOO_MODE": "hosted", "ZOO_ADMINS": "teacher"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """``screenshot(page, name)`` saves a full-page screenshot as ``test-artifacts/NAME.png``."""

    def save(page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@dataclass(frozen=True)
class ProxiedStudio:
    """Two app servers behind HAProxy: the address people open, and each server's own."""

    url: str  # the proxy's
    servers: dict[str, str]  # HAProxy's name of each server (its stickiness cookie's value) -> its address

    def server_of(self, page) -> str:
        """The app server the proxy pins ``page``'s visitor to: its stickiness cookie."""
        (cookie,) = [cookie for cookie in page.context.cookies() if cookie["name"] == STICKINESS_COOKIE]
        return cookie["value"]

    def pin(self, page, server: str) -> None:
        """Send ``page``'s visitor to ``server`` from now on, as if it had answered their first request."""
        page.context.add_cookies([{"name": STICKINESS_COOKIE, "value": server, "url": self.url}])


def start_proxy(servers: list[str], port: int, log_path: Path) -> subprocess.Popen:
    """HAProxy on 127.0.0.1:``port`` in front of ``servers`` (their base URLs, in ``APP_SERVERS``' order),
    started with ``deploy/haproxy.cfg`` as it is, its output in ``log_path``; returns once the proxy
    answers ``/_stcore/health`` with "ok".

    Raises:
        RuntimeError: the proxy did not answer within START_TIMEOUT_SECONDS (the message has its log).
    """
    addresses = {
        f"APP_SERVER_{index}": url.removeprefix("http://") for index, url in enumerate(servers, start=1)
    }
    with log_path.open("wb") as log:
        proxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(HAPROXY_CONFIG)],
            env={**os.environ, "PROXY_BIND": f"127.0.0.1:{port}", **addresses},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if healthy(f"http://127.0.0.1:{port}", proxy):
        return proxy
    end(proxy)
    raise RuntimeError(
        f"haproxy did not answer on 127.0.0.1:{port}; its log:\n{log_path.read_text()[-3000:]}"
    )


@pytest.fixture
def proxied_studio(
    streamlit_app, oidc_provider, hosted, postgres_url, s3_store_url, tmp_path, monkeypatch
) -> Iterator[Callable[..., ProxiedStudio]]:
    """``proxied_studio(env=...)``: two hosted ``streamlit run app.py`` servers (each its own ZOO_HOME, as on
    two hosts) sharing one PostgreSQL run store, one S3 model store and one ``[auth]`` cookie secret, signing
    in with ``oidc_provider`` through the proxy's address, behind HAProxy on a free loopback port, started
    with ``deploy/haproxy.cfg`` as it is. This test's own zoo calls use the same stores. The proxy's log is
    ``tmp_path/haproxy.log``; the proxy stops at the end of the test, then the servers."""
    monkeypatch.setenv("ZOO_RUN_STORE", postgres_url)
    monkeypatch.setenv("ZOO_MODEL_STORE", s3_store_url)
    proxies: list[subprocess.Popen] = []

    def start(env: dict[str, str] | None = None) -> ProxiedStudio:
        proxy_port = free_port()
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        auth = oidc_provider.auth_secrets(f"{proxy_url}/oauth2callback", cookie_secret=secrets.token_hex(32))
        shared = {**hosted, "ZOO_RUN_STORE": postgres_url, "ZOO_MODEL_STORE": s3_store_url, **(env or {})}
        servers = {
            name: streamlit_app(env={**shared, "ZOO_HOME": str(tmp_path / f"home-{name}")}, secrets=auth)
            for name in APP_SERVERS
        }
        try:
            proxies.append(start_proxy(list(servers.values()), proxy_port, tmp_path / "haproxy.log"))
        except RuntimeError as error:
            pytest.fail(str(error))
        return ProxiedStudio(proxy_url, servers)

    yield start
    for proxy in proxies:
        end(proxy)
