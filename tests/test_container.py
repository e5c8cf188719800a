"""The container (Dockerfile, zoo/app/container.py): the Dockerfile's own CMD and HEALTHCHECK run here
against a real Streamlit server, its ports and environment agree with the app's, and sign-in secrets
given as environment variables become the secrets.toml that Streamlit reads."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from zoo.app.container import DEFAULT_PORT, SPACE_PORT, auth_secrets, serving_port, write_auth_secrets
from zoo.core.errors import ZooError
from zoo.core.hosting import load_config

REPOSITORY = Path(__file__).resolve().parents[1]
SPACE = {  # what a Hugging Face Space with `hf_oauth: true` puts in the environment
    "SPACE_ID": "teacher/zoo-studio",
    "SPACE_HOST": "teacher-zoo-studio.hf.space",
    "OAUTH_CLIENT_ID": "space-client",
    "OAUTH_CLIENT_SECRET": "space-secret",
    "OPENID_PROVIDER_URL": "https://huggingface.co",
    "OAUTH_SCOPES": "openid profile",
}


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions, pending = [], ""
    for line in (REPOSITORY / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not (pending or line.strip()):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
            pending = ""
    return instructions


def instruction(keyword: str) -> str:
    (arguments,) = [arguments for key, arguments in dockerfile() if key == keyword]
    return arguments


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def image_environment() -> dict[str, str]:
    """The ENV the image sets (its ${ARG} defaults substituted)."""
    arguments = dict(
        argument.split("=", 1) for key, argument in dockerfile() if key == "ARG" and "=" in argument
    )
    environment = {}
    for key, line in dockerfile():
        if key == "ENV":
            for pair in shlex.split(line):
                name, _, value = pair.partition("=")
                for argument, default in arguments.items():
                    value = value.replace("${" + argument + "}", default.strip('"'))
                environment[name] = value
    return environment


def test_the_image_serves_hosted_mode_on_the_ports_the_app_picks(monkeypatch, zoo_home):
    environment = image_environment()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ZOO_HOME", str(zoo_home))  # not the image's /data
    assert load_config().hosted
    assert Path(environment["ZOO_HOME"]).is_relative_to(instruction("VOLUME"))
    assert {int(port) for port in instruction("EXPOSE").split()} == {DEFAULT_PORT, SPACE_PORT}
    assert serving_port({}) == DEFAULT_PORT
    assert serving_port({"SPACE_ID": "teacher/zoo-studio"}) == SPACE_PORT
    assert serving_port({"SPACE_ID": "teacher/zoo-studio", "STREAMLIT_SERVER_PORT": "9000"}) == 9000
    with pytest.raises(ZooError, match="STREAMLIT_SERVER_PORT='http' is not a port"):
        serving_port({"STREAMLIT_SERVER_PORT": "http"})


def as_the_image_runs(tmp_path: Path, zoo_home: Path, port: int, **env: str) -> dict[str, str]:
    """The image's environment here: its ENV, this venv as its /opt/venv, the test's homes, ``port``."""
    return {
        **os.environ,
        **image_environment(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "ZOO_HOME": str(zoo_home),
        "STREAMLIT_SERVER_PORT": str(port),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **env,
    }


def healthcheck(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """The Dockerfile's HEALTHCHECK command, as written there."""
    check = json.loads(instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    return subprocess.run(check, cwd=REPOSITORY, env=environment, capture_output=True, text=True)


@contextlib.contextmanager
def image_server(environment: dict[str, str], log_path: Path) -> Iterator[subprocess.CompletedProcess]:
    """The Dockerfile's CMD, as written there; yields the first passing HEALTHCHECK, then stops it."""
    with log_path.open("wb") as log:
        command = json.loads(instruction("CMD"))
        server = subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while (health := healthcheck(environment)).returncode and time.monotonic() < deadline:
            assert server.poll() is None, log_path.read_text()
            time.sleep(0.5)
        assert health.returncode == 0, health.stdout + health.stderr + log_path.read_text()
        yield health
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_dockerfiles_cmd_serves_the_app_and_its_healthcheck_passes(tmp_path, zoo_home):
    port = free_port()
    environment = as_the_image_runs(tmp_path, zoo_home, port)
    unhealthy = healthcheck(environment)
    assert unhealthy.returncode == 1
    assert f"FAIL  server: http://127.0.0.1:{port}/_stcore/health did not answer" in unhealthy.stdout
    with image_server(environment, tmp_path / "server.log") as healthy:
        assert f"ok    server: http://127.0.0.1:{port}/_stcore/health answered 'ok'" in healthy.stdout
        assert "ok    run store:" in healthy.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert "<title>Streamlit</title>" in page.read().decode()
    assert "sign-in: no [auth] from the environment" in (tmp_path / "server.log").read_text()


def test_a_spaces_oauth_variables_become_the_auth_section(tmp_path):
    line = write_auth_secrets({**SPACE, "ZOO_AUTH_COOKIE_SECRET": 'a "quoted" \\ secret'}, tmp_path)
    path = tmp_path / ".streamlit" / "secrets.toml"
    assert line == f"sign-in: [auth] from the environment written to {path}"
    assert "space-secret" not in line
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tomllib.loads(path.read_text())["auth"] == {
        "redirect_uri": "https://teacher-zoo-studio.hf.space/oauth2callback",
        "cookie_secret": 'a "quoted" \\ secret',
        "client_id": "space-client",
        "client_secret": "space-secret",
        "server_metadata_url": "https://huggingface.co/.well-known/openid-configuration",
        "client_kwargs": {"scope": "openid profile"},
    }


def test_zoo_auth_variables_win_and_a_missing_cookie_secret_is_made_and_said(tmp_path):
    own = {
        "ZOO_AUTH_CLIENT_ID": "own-client",
        "ZOO_AUTH_CLIENT_SECRET": "own-secret",
        "ZOO_AUTH_REDIRECT_URI": "https://zoo.example.org/oauth2callback",
        "ZOO_AUTH_SERVER_METADATA_URL": "https://login.example.org/.well-known/openid-configuration",
    }
    line = write_auth_secrets({**SPACE, **own}, tmp_path)
    assert line.endswith("; no ZOO_AUTH_COOKIE_SECRET: sign-ins end at restart")
    auth = tomllib.loads((tmp_path / ".streamlit" / "secrets.toml").read_text())["auth"]
    assert auth["client_id"] == "own-client" and auth["client_secret"] == "own-secret"
    assert auth["redirect_uri"] == own["ZOO_AUTH_REDIRECT_URI"]
    assert auth["server_metadata_url"] == own["ZOO_AUTH_SERVER_METADATA_URL"]
    assert len(auth["cookie_secret"]) == 64


def test_incomplete_auth_variables_are_one_line_and_none_write_nothing(tmp_path):
    with pytest.raises(ZooError, match="ZOO_AUTH_CLIENT_ID is set without ZOO_AUTH_CLIENT_SECRET"):
        auth_secrets({"ZOO_AUTH_CLIENT_ID": "own-client"})
    with pytest.raises(
        ZooError, match="ZOO_AUTH_REDIRECT_URI is not set: set it to https://YOUR-HOST/oauth2"
    ):
        auth_secrets({"ZOO_AUTH_CLIENT_ID": "own-client", "ZOO_AUTH_CLIENT_SECRET": "own-secret"})
    assert write_auth_secrets({}, tmp_path).startswith("sign-in: no [auth] from the environment")
    assert not (tmp_path / ".streamlit").exists()


def test_the_kuberay_manifest_parses_and_runs_what_the_image_has():
    documents = list(yaml.safe_load_all((REPOSITORY / "deploy" / "kuberay.yaml").read_text()))
    by_kind = {document["kind"]: document for document in documents}
    assert set(by_kind) == {"ConfigMap", "RayCluster", "Deployment", "Service", "Ingress", "StatefulSet"}
    assert by_kind["ConfigMap"]["data"]["ZOO_EXECUTOR"] == "ray"
    cluster = by_kind["RayCluster"]["spec"]
    assert cluster["rayVersion"] == importlib.metadata.version("ray"), "the version requirements-ray.txt pins"
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    (app,) = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    head_service = f"{by_kind['RayCluster']['metadata']['name']}-head-svc:6379"  # KubeRay's name for it
    environment = {variable["name"]: variable.get("value") for variable in app["env"]}
    assert environment["RAY_ADDRESS"] == head_service and head_service in app["args"][0]
    assert f"exec {shlex.join(json.loads(instruction('CMD')))}" in app["args"][0], "the image's own CMD"
