"""Health checks with meaning: the run store, the zoo directory, free disk, the backend and device,
and the data source, each ok or what to do. ``python -m zoo doctor`` prints them (exit 1 when one
fails, so it serves as a container health check) and the Home page shows them.

Fast enough to run every 30 s: nothing imports TensorFlow or loads data.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass

from zoo.data import check_mnist_source, describe_mnist_source
from zoo.errors import ZooError
from zoo.jobs import describe_device
from zoo.paths import models_directory, zoo_home
from zoo.runs import SCHEMA_VERSION, RunStore

MIN_FREE_BYTES = 1_000_000_000  # a few runs' models and metrics, and room for SQLite to grow
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@dataclass(frozen=True)
class HealthCheck:
    """One check: what was checked, whether it is ok, and the finding or what to do."""

    name: str
    ok: bool
    detail: str


def check_health() -> list[HealthCheck]:
    """Run every check, in the order a person fixes them (the directory before the store in it)."""
    return [check() for check in CHECKS]


def _check_directory() -> HealthCheck:
    name = "zoo directory"
    try:
        home = zoo_home()
        models = models_directory()
        with tempfile.NamedTemporaryFile(dir=models, prefix=".doctor-"):
            pass  # a model can be written here
    except (ZooError, OSError) as error:
        return HealthCheck(name, False, _unwritable(error))
    count = sum(1 for path in models.iterdir() if path.is_dir() and not path.name.startswith("."))
    return HealthCheck(name, True, f"{home} is writable; {count} model(s) in the local zoo")


def _unwritable(error: BaseException) -> str:
    if isinstance(error, ZooError):
        return str(error)
    return (
        f"{error.filename} cannot be written ({error.strerror}): make it writable for this user, "
        "or set ZOO_HOME to a writable directory."
    )


def _check_store() -> HealthCheck:
    name = "run store"
    try:
        store = RunStore()
        runs = store.list_runs(limit=100_000)
    except ZooError as error:
        return HealthCheck(name, False, str(error))
    active = sum(run.is_active for run in runs)
    found = f"{store.path}: {len(runs)} run(s), {active} active, schema version {SCHEMA_VERSION}"
    return HealthCheck(name, True, f"{found}; note: {store.notice}" if store.notice else found)


def _check_disk() -> HealthCheck:
    name = "free disk"
    try:
        home = zoo_home()
        free = shutil.disk_usage(home).free
    except (ZooError, OSError) as error:
        return HealthCheck(name, False, _unwritable(error))
    if free < MIN_FREE_BYTES:
        return HealthCheck(
            name,
            False,
            f"only {free / 1e6:,.0f} MB free under {home} (runs need {MIN_FREE_BYTES / 1e9:g} GB): "
            "free space there, or set ZOO_HOME to a directory on a larger disk.",
        )
    return HealthCheck(name, True, f"{free / 1e9:,.1f} GB free under {home}")


def _check_backend() -> HealthCheck:
    name = "backend and device"
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"
    module = BACKEND_MODULES.get(backend)
    if module is None:
        return HealthCheck(
            name,
            False,
            f"KERAS_BACKEND={backend!r} is not a Keras backend: use {', '.join(BACKEND_MODULES)}.",
        )
    if importlib.util.find_spec(module) is None or importlib.util.find_spec("keras") is None:
        return HealthCheck(
            name, False, f"Keras' {backend} backend is not installed: pip install -r requirements.txt."
        )
    versions = f"keras {importlib.metadata.version('keras')}, {backend} {importlib.metadata.version(module)}"
    return HealthCheck(name, True, f"{versions}; trains on {describe_device()}")


def _check_data() -> HealthCheck:
    name = "data source"
    try:
        check_mnist_source()
        source = describe_mnist_source()
    except ZooError as error:
        return HealthCheck(name, False, str(error))
    return HealthCheck(name, True, source.description)


CHECKS = (_check_directory, _check_store, _check_disk, _check_backend, _check_data)
