"""The container's start and health check (the Dockerfile's CMD and HEALTHCHECK), for hosted mode.

    python -m zoo.app.container serve    # [auth] secrets from the environment, then `streamlit run app.py`
    python -m zoo.app.container health   # exit 0 when the server answers /_stcore/health and `doctor` passes

The port is ``STREAMLIT_SERVER_PORT`` when set, else 7860 on a Hugging Face Space (which sets
``SPACE_ID``), else Streamlit's 8501. Sign-in (``st.login``) reads ``[auth]`` from a secrets.toml; a
Space or any host can give it as environment variables instead, which ``serve`` writes to
``~/.streamlit/secrets.toml`` (mode 600) before Streamlit starts: ``ZOO_AUTH_CLIENT_ID``,
``ZOO_AUTH_CLIENT_SECRET``, ``ZOO_AUTH_COOKIE_SECRET``, ``ZOO_AUTH_REDIRECT_URI`` and
``ZOO_AUTH_SERVER_METADATA_URL``, each falling back to what a Space with ``hf_oauth: true`` provides
(``OAUTH_CLIENT_ID``, ``OAUTH_CLIENT_SECRET``, ``OPENID_PROVIDER_URL``, ``SPACE_HOST``). A
secrets.toml mounted at /app/.streamlit/secrets.toml works as well (and wins key by key).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from zoo.app.cli import main as cli_main
from zoo.core.errors import ZooError
from zoo.core.settings import auth_settings

DEFAULT_PORT, SPACE_PORT = 8501, 7860
HUB_OPENID_PROVIDER = "https://huggingface.co"
CALLBACK_PATH = "/oauth2callback"  # where st.login's provider sends the person back
WELL_KNOWN = "/.well-known/openid-configuration"


def serving_port(environ: Mapping[str, str]) -> int:
    """The port Streamlit listens on in the container."""
    explicit = environ.get("STREAMLIT_SERVER_PORT", "").strip()
    if not explicit:
        return SPACE_PORT if environ.get("SPACE_ID") else DEFAULT_PORT
    if not explicit.isdigit() or not 0 < int(explicit) < 65536:
        raise ZooError(f"STREAMLIT_SERVER_PORT={explicit!r} is not a port: give a number from 1 to 65535.")
    return int(explicit)


def auth_secrets(environ: Mapping[str, str]) -> str | None:
    """The ``[auth]`` section of secrets.toml that the environment describes, or None when it names no
    OpenID Connect client (then nobody can sign in: visitors get Home, Learn and Draw)."""
    auth = auth_settings(environ)
    client_id = auth.client_id or environ.get("OAUTH_CLIENT_ID")
    if not client_id:
        return None
    client_secret = auth.client_secret or environ.get("OAUTH_CLIENT_SECRET")
    if not client_secret:
        raise ZooError("ZOO_AUTH_CLIENT_ID is set without ZOO_AUTH_CLIENT_SECRET: set both, or neither.")
    redirect_uri = auth.redirect_uri
    if not redirect_uri and environ.get("SPACE_HOST"):
        redirect_uri = f"https://{environ['SPACE_HOST']}{CALLBACK_PATH}"
    if not redirect_uri:
        raise ZooError(
            f"ZOO_AUTH_REDIRECT_URI is not set: set it to https://YOUR-HOST{CALLBACK_PATH}, "
            "the redirect URL registered with the OpenID Connect provider."
        )
    provider = (environ.get("OPENID_PROVIDER_URL") or HUB_OPENID_PROVIDER).rstrip("/")
    section = {
        "redirect_uri": redirect_uri,
        # made at each start when not given: sign-ins then end when the container restarts
        "cookie_secret": auth.cookie_secret or secrets.token_hex(32),
        "client_id": client_id,
        "client_secret": client_secret,
        "server_metadata_url": auth.server_metadata_url or provider + WELL_KNOWN,
    }
    # a JSON string is a TOML basic string: quotes, backslashes and control characters escaped
    lines = [f"{key} = {json.dumps(value)}" for key, value in section.items()]
    if environ.get("OAUTH_SCOPES"):  # what a Space's OAuth app grants (Streamlit would also ask for email)
        lines.append(f"client_kwargs = {{ scope = {json.dumps(environ['OAUTH_SCOPES'])} }}")
    return "[auth]\n" + "".join(f"{line}\n" for line in lines)


def write_auth_secrets(environ: Mapping[str, str], home: Path) -> str:
    """Write the environment's ``[auth]`` section to ``home/.streamlit/secrets.toml``; return one log
    line that says where sign-in comes from (never a secret)."""
    section = auth_secrets(environ)
    if section is None:
        return "sign-in: no [auth] from the environment (a mounted .streamlit/secrets.toml still counts)"
    directory = home / ".streamlit"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "secrets.toml"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(section)
    fresh = (
        "" if auth_settings(environ).cookie_secret else "; no ZOO_AUTH_COOKIE_SECRET: sign-ins end at restart"
    )
    return f"sign-in: [auth] from the environment written to {path}{fresh}"


def streamlit_command(environ: Mapping[str, str]) -> list[str]:
    """The server the container runs: the app on every interface, headless, without usage statistics."""
    return [
        "streamlit",
        "run",
        "app.py",
        f"--server.port={serving_port(environ)}",
        "--server.address=0.0.0.0",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
    ]


def serve(environ: Mapping[str, str]) -> NoReturn:
    """Write the sign-in secrets, then become the Streamlit server (exec: it gets the signals)."""
    command = streamlit_command(environ)
    print(write_auth_secrets(environ, Path.home()), flush=True)
    os.execvp(command[0], command)


def health(environ: Mapping[str, str]) -> int:
    """0 when Streamlit answers its health endpoint and every ``doctor`` check passes, else 1."""
    url = f"http://127.0.0.1:{serving_port(environ)}/_stcore/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = response.read().decode(errors="replace").strip()
    except OSError as error:
        print(f"FAIL  server: {url} did not answer ({getattr(error, 'reason', error)})")
        return 1
    print(f"ok    server: {url} answered {answer!r}")
    return cli_main(["doctor"])


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    commands = {"serve": serve, "health": health}
    if len(arguments) != 1 or arguments[0] not in commands:
        print("usage: python -m zoo.app.container {serve,health}", file=sys.stderr)
        return 2
    try:
        return commands[arguments[0]](os.environ)
    except ZooError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
