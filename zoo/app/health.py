"""Health checks with meaning: the configuration, the zoo directory, the run store, the sign-in cookie
secret of several app servers, the local zoo's models, free disk, the backend and device, and the data
source, each ok or what to do. ``python -m zoo doctor`` prints them (exit 1 when one fails, so it serves
as a container health check) and the Home page shows them.

Fast enough to run every 30 s: nothing imports TensorFlow or loads data. The checks run side by side
and each has ``CHECK_SECONDS`` to answer, so a hung disk or a store another process keeps locked is
a failed check in a few seconds, well within Docker's 20 s health-check timeout, not a hang.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo.core.errors import StorageError, ZooError
from zoo.core.hosting import load_config
from zoo.core.paths import unwritable, zoo_home
from zoo.core.settings import load_settings
from zoo.core.vocabulary import BACKENDS
from zoo.execution.devices import describe_device
from zoo.execution.executor import open_executor
from zoo.ml.backend import check_installed
from zoo.ml.data import check_mnist_source, describe_mnist_source
from zoo.runs.records import DAMAGED_STATUS
from zoo.runs.store import POSTGRES_URL_PREFIX, open_run_store
from zoo.storage.files import Storage
from zoo.storage.models import ModelStore

MIN_FREE_BYTES = 1_000_000_000  # a few runs' models and metrics, and room for SQLite to grow
CHECK_SECONDS = 5.0  # each check's deadline (they run at once: doctor takes about this at most)
NO_COOKIE_SECRET = (
    "the app servers share a postgresql:// run store but no sign-in cookie secret is set, so a sign-in "
    "on one server is not honoured on another: give every server the same random one "
    "(python -c 'import secrets; print(secrets.token_hex(32))') as [auth] cookie_secret in "
    ".streamlit/secrets.toml, or as ZOO_AUTH_COOKIE_SECRET in the container."
)
STORE_LOCK_SECONDS = 2.0  # a write lock held longer than this is reported (a write takes milliseconds)


@dataclass(frozen=True)
class HealthCheck:
    """One check: what was checked, whether it is ok, and the finding or what to do."""

    name: str
    ok: bool
    detail: str


def check_health(
    deadline_seconds: float = CHECK_SECONDS, server_cookie_secret: bool | None = None
) -> list[HealthCheck]:
    """Run every check at once, each given ``deadline_seconds`` to answer; the results come in the
    order a person fixes them (the configuration first, the directory before the store in it).

    Args:
        server_cookie_secret: in an app server (the Home page), whether its own secrets give
            ``[auth] cookie_secret`` (from any secrets file, ``--secrets.files`` too); None (doctor,
            another process): look for it in Streamlit's usual secrets files and the environment.

    Returns:
        One ``HealthCheck`` per check; a check that did not answer in time is failed, saying so.
    """
    found: dict[str, HealthCheck] = {}

    def run(name: str, check: Callable[[], tuple[bool, str]]) -> None:
        try:
            found[name] = HealthCheck(name, *check())
        except Exception as error:  # an unforeseen failure is that check's finding, not the end of doctor
            found[name] = HealthCheck(name, False, f"the check failed: {type(error).__name__}: {error}")

    # Daemon threads: one that hangs (a dead network disk) neither holds the others up nor the exit.
    checks = {**CHECKS, "cookie secret": functools.partial(_check_cookie_secret, server_cookie_secret)}
    threads = [threading.Thread(target=run, args=pair, daemon=True) for pair in checks.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + deadline_seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = (
        f"no answer within {deadline_seconds:g} s (a disk or network file system that hangs?); "
        "check the directories ZOO_HOME, ZOO_MNIST and KERAS_HOME name."
    )
    return [found.get(name) or HealthCheck(name, False, late) for name in CHECKS]


def _check_configuration() -> tuple[bool, str]:
    try:
        config = load_config()
    except ZooError as error:
        return False, str(error)  # the words `train` and the pages refuse it with
    return True, f"{config.mode} mode, from {config.source}"


def _check_directory() -> tuple[bool, str]:
    try:
        home = zoo_home()
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-"):
            pass  # runs, logs and (by default) models can be written here
    except (ZooError, OSError) as error:
        return False, _unwritable(error)
    return True, f"{home} is writable"


def _unwritable(error: BaseException) -> str:
    if isinstance(error, OSError):
        return str(unwritable(error.filename, error))
    return str(error)


def _check_store() -> tuple[bool, str]:
    try:
        store = open_run_store()
        runs = store.list_runs(limit=100_000)
        blocker = store.write_blocker(STORE_LOCK_SECONDS)
        described = store.describe()
    except ZooError as error:
        return False, str(error)
    if blocker:
        return False, f"{described.location} cannot take writes: {blocker} (runs wait until it can)."
    damaged = [run for run in runs if run.status == DAMAGED_STATUS]
    if damaged:
        return False, " ".join(run.message or "" for run in damaged)
    active = sum(run.is_active for run in runs)
    found = f"{described.location}: {len(runs)} run(s), {active} active"
    found += f", schema version {described.schema_version}"
    return True, f"{found}; note: {described.notice}" if described.notice else found


def _check_cookie_secret(server_cookie_secret: bool | None = None) -> tuple[bool, str]:
    """Several app servers (hosted, sharing a PostgreSQL run store) must sign sign-in cookies with one
    secret: a person's sign-in is a cookie, and the proxy may send them to another server."""
    try:
        settings = load_settings()
    except ZooError as error:
        return False, str(error)  # the configuration check says it too
    if settings.mode != "hosted" or not settings.run_store.startswith(POSTGRES_URL_PREFIX):
        return True, "not needed: no app servers share sign-ins (hosted mode with a postgresql:// run store)"
    same = "it must be the same on every app server"
    if server_cookie_secret is not None:
        return (
            (True, f"[auth] cookie_secret in this server's secrets; {same}")
            if server_cookie_secret
            else (False, NO_COOKIE_SECRET)
        )
    # Streamlit's secrets files, the later winning key by key: ~/.streamlit's, then the app directory's.
    user_file, app_file = (
        directory / ".streamlit" / "secrets.toml" for directory in (Path.home(), Path.cwd())
    )
    try:
        if _secrets_cookie_secret(app_file):
            return True, f"[auth] cookie_secret in {app_file}; {same}"
        if settings.auth.cookie_secret:
            return True, f"ZOO_AUTH_COOKIE_SECRET is set; {same}"
        # The container (ZOO_AUTH_CLIENT_ID) writes ~/.streamlit's file with a secret made at each start.
        if not settings.auth.client_id and _secrets_cookie_secret(user_file):
            return True, f"[auth] cookie_secret in {user_file}; {same}"
    except ZooError as error:
        return False, str(error)
    return False, NO_COOKIE_SECRET


def _secrets_cookie_secret(path: Path) -> bool:
    """Whether the secrets.toml ``path`` (absent: no) gives ``[auth] cookie_secret``."""
    try:
        with path.open("rb") as file:
            secrets = tomllib.load(file)
    except FileNotFoundError:
        return False
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise StorageError(f"{path} cannot be read: {error}; fix it or remove it.") from error
    auth = secrets.get("auth")
    return isinstance(auth, dict) and bool(auth.get("cookie_secret"))


def _check_models() -> tuple[bool, str]:
    try:
        store = ModelStore()
        entries, damaged = store.entries(), store.damaged()
        _probe(store.storage)
    except (ZooError, OSError) as error:
        return False, _unwritable(error)
    if damaged:
        return False, " ".join(f"{model.name}: {model.problem}" for model in damaged)
    return True, f"{len(entries)} model(s) in {store.location}, written and read back"


def _probe(storage: Storage) -> None:
    """Publish, read back and delete a hidden folder (never listed: its name starts with '.'), as a
    save would: the store (a directory, or an object store another server shares) takes models."""
    probe, content = f".doctor-{uuid.uuid4().hex}", b"zoo doctor"
    with storage.staging() as staged:
        (staged / "probe").write_bytes(content)
        storage.publish(staged, probe)
    try:
        if storage.read_bytes(probe, "probe") != content:
            raise StorageError(f"{storage.location(probe, 'probe')} did not read back as written.")
    finally:
        storage.delete_folder(probe)


def _check_disk() -> tuple[bool, str]:
    try:
        home = zoo_home()
        free = shutil.disk_usage(home).free
    except (ZooError, OSError) as error:
        return False, _unwritable(error)
    if free < MIN_FREE_BYTES:
        return (
            False,
            f"only {free / 1e6:,.0f} MB free under {home} (runs need {MIN_FREE_BYTES / 1e9:g} GB): "
            "free space there, or set ZOO_HOME to a directory on a larger disk.",
        )
    return True, f"{free / 1e9:,.1f} GB free under {home}"


def _check_backend() -> tuple[bool, str]:
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in BACKENDS:
        return False, f"KERAS_BACKEND={backend!r} is not a Keras backend: use {', '.join(BACKENDS)}."
    try:
        check_installed(backend)
    except ZooError as error:
        return False, str(error)
    versions = f"keras {importlib.metadata.version('keras')}, {backend} {importlib.metadata.version(backend)}"
    return True, f"{versions}; trains on {describe_device()}"


def _check_data() -> tuple[bool, str]:
    try:
        check_mnist_source()
        source = describe_mnist_source()
    except ZooError as error:
        return False, str(error)
    return True, source.description


def _check_executor() -> tuple[bool, str]:
    try:
        described = open_executor().describe()
    except ZooError as error:
        return False, str(error)
    return True, f"{described.name} ({described.host}): trains on {described.devices}"


CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "configuration": _check_configuration,
    "zoo directory": _check_directory,
    "run store": _check_store,
    "cookie secret": _check_cookie_secret,
    "local zoo": _check_models,
    "free disk": _check_disk,
    "backend and device": _check_backend,
    "executor": _check_executor,
    "data source": _check_data,
}
