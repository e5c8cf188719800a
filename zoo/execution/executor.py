"""Where runs execute: the ``Executor`` contract, the choice of one (``ZOO_EXECUTOR``), and waiting for
a run to end.

A Start goes page -> ``admission.start`` (``admit``, every check) -> ``Executor.submit`` (arrange a
worker, record the run queued in the run store) -> the run store; a worker claims it there and reports
to it. Executors: ``local`` (``zoo.execution.local``: warm worker processes on this host, the default)
and ``ray`` (``zoo.execution.cluster``: warm actors on a Ray cluster, an optional install).
Supervision, failing runs whose worker died or hung, is each executor's ``supervise``, run on its own
clock (``zoo.execution.supervisor``), never by reading a run.
"""

from __future__ import annotations

import time
from typing import Protocol

from zoo.core.errors import RunError, SettingsError
from zoo.core.hosting import User
from zoo.core.settings import load_settings
from zoo.execution.local import LocalExecutor
from zoo.execution.records import AdmittedRun, Capacity, ExecutorDescription, Liveness
from zoo.runs.records import Run
from zoo.runs.store import RunStore, open_run_store

SUPERVISE_SECONDS = 2.0  # how often a process following runs sweeps them (the CLI, wait, the app server)


class Executor(Protocol):
    """Runs admitted runs somewhere, and looks after them there."""

    name: str  # as ZOO_EXECUTOR names it, e.g. "local"
    store: RunStore  # where its runs are recorded and its workers report

    def submit(self, admitted: AdmittedRun) -> str:
        """Arrange a worker for the run and record it queued; return its id at once.

        Raises:
            RunError: no worker can be arranged (nothing is recorded).
            PermissionDenied: the owner or the host has as many live runs as the limits allow.
        """
        ...

    def stop(self, run_id: str, *, by: User) -> Run:
        """Ask a run to stop: a queued run stops at once, a running one after its current batch.

        Raises:
            RunError: there is no run with that id.
            PermissionDenied: ``by`` is neither the run's owner nor an admin.
        """
        ...

    def liveness(self, run: Run) -> Liveness:
        """Judge an active run (alive, dead, hung, or not this executor's to judge) without acting."""
        ...

    def capacity(self) -> Capacity:
        """The device, slots per lane, runs training and workers waiting, on this host."""
        ...

    def keep_warm(self) -> None:
        """Make the next run start fast (the local executor: top up its warm workers). Pages call it
        when they are shown."""
        ...

    def describe(self) -> ExecutorDescription:
        """The executor, its host and devices, in words (sidebar, doctor)."""
        ...

    def worker_log(self, run: Run) -> str | None:
        """Where a run's worker wrote its output, for the person who runs the host (None: nowhere)."""
        ...

    def supervise(self) -> list[str]:
        """One sweep: fail the active runs whose worker died, hung (ending it, on its own host only) or
        never came; return the ids failed."""
        ...

    def shutdown(self) -> None:
        """End the workers that wait for runs (running runs are left alone)."""
        ...


def open_executor(store: RunStore | None = None) -> Executor:
    """The executor ``ZOO_EXECUTOR`` names, over ``store`` (default: ``open_run_store()``).

    Raises:
        SettingsError: ``ZOO_EXECUTOR`` names no executor (``settings.EXECUTORS`` lists them).
        StorageError: the run store, or the executor's own files, cannot be opened.
    """
    name, store = load_settings().executor, store or open_run_store()
    if name == "ray":
        return _ray_executor(store)
    return LocalExecutor(store)


def _ray_executor(store: RunStore) -> Executor:
    """The Ray executor, imported only when chosen: Ray is an optional install.

    Raises:
        SettingsError: Ray is not installed here.
    """
    try:
        from zoo.execution.cluster import RayExecutor
    except ImportError as error:
        raise SettingsError(
            f"ZOO_EXECUTOR=ray, but Ray cannot be imported here ({error}): install it with "
            "pip install -r requirements-ray.txt, or set ZOO_EXECUTOR=local."
        ) from error
    return RayExecutor(store)


def wait(run_id: str, timeout: float = 600.0, executor: Executor | None = None, poll: float = 0.2) -> Run:
    """Block until the run has ended (or ``timeout`` seconds pass) and return it, supervising the
    executor's runs every ``SUPERVISE_SECONDS`` meanwhile (a run whose worker died ends).

    Raises:
        RunError: the run is still active after ``timeout`` seconds.
    """
    executor = executor or open_executor()
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic()
    while True:
        if time.monotonic() >= next_sweep:
            executor.supervise()
            next_sweep = time.monotonic() + SUPERVISE_SECONDS
        run = executor.store.get(run_id)
        if not run.is_active:
            return run
        if time.monotonic() > deadline:
            raise RunError(f"run {run_id} is still {run.status} after {timeout:.0f} s.")
        time.sleep(poll)
