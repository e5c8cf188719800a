"""The run store: the single source of truth for every run's status and progress, and the only channel
between a run's worker and its readers (pages, other tabs, the CLI).

``RunStore`` is the contract every backend keeps (tests/test_run_store_contract.py holds them to it);
``open_run_store`` picks the backend from a URL (``ZOO_RUN_STORE``, default the SQLite file
``$ZOO_HOME/runs.sqlite3``). What passes through is typed: a run's ``TrainSpec`` and ``Progress``, its
metric rows, events and latest ``DecisionSurface`` (``zoo.runs.records``, ``zoo.ml.training``).

Reads never change a run: finding runs whose worker died or hung, and failing them, is the
executor's supervision (``zoo.execution``), on its own clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from zoo.core.database import BUSY_WAIT_SECONDS
from zoo.core.errors import StorageError
from zoo.core.hosting import User
from zoo.core.scores import Scores
from zoo.core.settings import Limits, hide_passwords, load_settings
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, Environment
from zoo.runs.records import (
    MetricBatch,
    MetricRow,
    MetricsReport,
    Person,
    Placement,
    Run,
    RunEvent,
    StoreDescription,
)
from zoo.runs.sqlite import URL_PREFIX, SqliteRunStore

RUN_STORE_VARIABLE = "ZOO_RUN_STORE"
POSTGRES_URL_PREFIX = "postgresql://"  # then USER@HOST:PORT/DATABASE: zoo.runs.postgres


class RunStore(Protocol):
    """Runs with their metric streams, events and surfaces; shared by every thread and process.

    A worker writes (``claim_next``, ``log_metrics``, ``save_surface``, ``finish``); pages, other tabs
    and the CLI read (``get``, ``list_runs``, ``metrics_since``, ``surface``). Every method may raise
    ``StorageError`` (one line: what, where, the fix) when the store cannot be used.
    """

    url: str  # where it is, as ZOO_RUN_STORE names it (no secrets)

    def describe(self) -> StoreDescription:
        """Its URL, where people find it, its schema version, and a notice when opening it moved a
        damaged store aside."""
        ...

    # --- lifecycle: the executor that submits, and the worker ------------------------------------

    def create_run(
        self,
        spec: TrainSpec,
        device: str,
        *,
        owner: User | None = None,
        limits: Limits | None = None,
        placement: Placement | None = None,
    ) -> str:
        """Record a new queued run of ``owner`` (default: the local owner).

        With ``limits``, a person who is not an admin gets the run only while they have fewer than
        ``active_runs_per_owner`` queued or running runs and the host fewer than ``active_runs``,
        checked and reserved in the same transaction as the insert (two quick clicks, or two app
        servers, cannot both pass).

        Args:
            spec: what to train.
            device: the queue it waits in: ``cpu`` or ``gpu``.
            owner: who starts it.
            limits: the host's caps on live runs (hosted mode).
            placement: where the submitting executor means to run it (executor and host, no worker).

        Returns:
            The new run's id (12 hex digits).

        Raises:
            PermissionDenied: a cap is reached (nothing is recorded).
        """
        ...

    def claim_next(self, device: str, backend: str, slots: int, placement: Placement) -> Run | None:
        """Hand a worker the first run it can start and mark it running at ``placement``; never the
        same run to two workers, whatever process or host asks.

        The queue of a device is shared (oldest first, each lane in its own order); slots are counted
        per host: a lane of ``placement.host`` may run ``slots`` runs at once.

        Args:
            device: the worker's device, ``cpu`` or ``gpu``.
            backend: the worker's Keras backend; only runs of that backend are handed out.
            slots: how many runs of one lane may run at once on the host's device.
            placement: the claiming worker (executor, host, worker id, device).

        Returns:
            The claimed run, already ``running``; None when no queued run may start now.
        """
        ...

    def claim(self, run_id: str, placement: Placement) -> Run | None:
        """Hand one queued run to the worker an executor chose for it (the Ray executor: the actor it
        placed for that run) and mark it running at ``placement``; never to two workers.

        Returns:
            The claimed run, already ``running``; None when it is no longer queued (stopped, or
            claimed meanwhile) or there is no run with that id.
        """
        ...

    def set_started(self, run_id: str, data_source: str, environment: Environment) -> None:
        """Record the data source and the devices/versions the run trains with (an unknown id
        changes nothing)."""
        ...

    def heartbeat(self, run_id: str) -> bool:
        """Mark the run's worker alive now; return whether a stop was requested (False for an
        unknown id)."""
        ...

    def log_metrics(
        self, run_id: str, reports: Sequence[MetricsReport], *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        """Append the metric values of a batch of reports, each at its own step, epoch and time, and
        set the run's progress to the last one's, all of them or none; readers get them in this order.

        Args:
            run_id: the running run.
            reports: oldest first (a worker sends what it gathered since its last write).
            wait_seconds: how long to wait while another writer holds the store.

        Raises:
            StoreLocked: the store stayed busy for ``wait_seconds``; nothing is written.
            RunError: there is no run with that id (nothing is written).
        """
        ...

    def save_surface(
        self, run_id: str, surface: DecisionSurface, *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        """Keep the latest decision surface of a binary run (older ones are replaced).

        Raises:
            StoreLocked: the store stayed busy for ``wait_seconds``; nothing is written.
            RunError: there is no run with that id (nothing is written).
        """
        ...

    def add_event(self, run_id: str, kind: str, message: str) -> None:
        """Append a line to the run's event log (data source, warnings, failures).

        Raises:
            RunError: there is no run with that id (nothing is written).
        """
        ...

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        message: str | None = None,
        final_metrics: Scores | None = None,
        model_name: str | None = None,
    ) -> bool:
        """Close a run with a final status and say so in its event log, in one transaction; a run that
        already ended is left as it is.

        Args:
            run_id: the run to close.
            status: one of ``FINAL_STATUSES``.
            message: why it ended, for people (shown with failures).
            final_metrics: the test-set scores (``Evaluation.scores()``).
            model_name: the name its model was saved under in the local zoo.

        Returns:
            Whether this call closed it (False: it had ended already, or there is no such run).

        Raises:
            RunError: ``status`` is not a final status.
        """
        ...

    def request_stop(self, run_id: str, *, by: User) -> Run:
        """Ask a run to stop: a queued run stops at once, a running one when its worker's stop check
        next asks (after its current batch).

        Returns:
            The run as it stands after the request.

        Raises:
            RunError: there is no run with that id.
            PermissionDenied: ``by`` is neither the run's owner nor an admin.
        """
        ...

    def delete(self, run_id: str, *, by: User) -> None:
        """Delete a finished run with its metrics, events and surface.

        Raises:
            RunError: there is no run with that id, or it is still queued or running.
            PermissionDenied: ``by`` is neither the run's owner nor an admin.
        """
        ...

    def record_seen(self, user: User, at: float | None = None) -> None:
        """Record that ``user`` was on a page at ``at`` (default: now); nothing for a visitor who is
        not signed in."""
        ...

    def import_run(
        self,
        run: Run,
        metrics: Sequence[MetricRow],
        events: Sequence[RunEvent],
        surface: DecisionSurface | None,
    ) -> bool:
        """Write a run read from another store as it stands there (its id, status, times, placement and
        owner), with its metric rows, event log and latest surface, all of them or none
        (``zoo.runs.transfer.copy_runs``).

        Returns:
            Whether it was written (False: this store holds a run with that id already; nothing changed).
        """
        ...

    # --- reads: they never change a run, and never signal a process -----------------------------

    def get(self, run_id: str) -> Run:
        """One run as recorded.

        Raises:
            RunError: there is no run with that id.
        """
        ...

    def list_runs(self, limit: int = 500, *, wait_seconds: float = BUSY_WAIT_SECONDS) -> list[Run]:
        """Up to ``limit`` runs, newest first (``wait_seconds``: as for ``active_runs``)."""
        ...

    def active_runs(self, owner: str | None = None, *, wait_seconds: float = BUSY_WAIT_SECONDS) -> list[Run]:
        """Every queued and running run (only ``owner``'s, a ``User.name``, when given), oldest first.

        Args:
            wait_seconds: how long to wait for the store (a lock another process holds; a connection to
                a database server): app.py's read on every page waits little, so that a server that is
                down slows no page.
        """
        ...

    def queue_position(self, run_id: str) -> int | None:
        """How many runs are ahead of a queued run in its lane on its device, the running ones
        included; None when it is not queued.

        Raises:
            RunError: there is no run with that id.
        """
        ...

    def stop_checker(self, run_id: str) -> AbstractContextManager[Callable[[], bool]]:
        """A check for a stop request cheap enough to call after every batch: it answers True once a
        stop was requested, or the run is no longer ``running`` (its supervisor failed it), or gone."""
        ...

    def metrics_since(self, run_id: str, cursor: int = 0) -> MetricBatch:
        """The metric rows reported after ``cursor`` (0: from the first), in the order reported, and
        the cursor to read on from (unchanged when there are none; an unknown id has none)."""
        ...

    def events(self, run_id: str) -> list[RunEvent]:
        """The run's event log, oldest first."""
        ...

    def surface(self, run_id: str) -> DecisionSurface | None:
        """The latest decision surface of a binary run; None before the first (and for other runs)."""
        ...

    def people(self) -> list[Person]:
        """Everyone ``record_seen`` recorded, by name."""
        ...

    def write_blocker(self, wait_seconds: float = 1.0) -> str | None:
        """Why the store cannot take a write now (its disk is full, another writer has held it for
        ``wait_seconds``, it cannot be written), found without writing a row; None when it can."""
        ...


def run_store_url() -> str:
    """The run store this process uses: ``ZOO_RUN_STORE``, else the SQLite file in ``ZOO_HOME``.

    Raises:
        SettingsError: a setting is not what it takes.
    """
    return load_settings().run_store


def open_run_store(url: str | None = None) -> RunStore:
    """Open the run store ``url`` names (default: ``run_store_url()``), checked and up to date.

    Raises:
        StorageError: the URL's scheme is unknown, or the store cannot be opened or written.

    Example:
        >>> store = open_run_store("sqlite:////tmp/zoo/runs.sqlite3")  # doctest: +SKIP
        >>> store = open_run_store("postgresql://zoo@db.example.org:5432/zoo")  # doctest: +SKIP
    """
    url = url or run_store_url()
    if url.startswith(URL_PREFIX):
        return SqliteRunStore.from_url(url)
    if url.startswith(POSTGRES_URL_PREFIX):
        from zoo.runs.postgres import PostgresRunStore  # psycopg takes 0.1 s to import: only when used

        return PostgresRunStore(url)
    raise StorageError(
        f"{RUN_STORE_VARIABLE}={hide_passwords(url)!r} is not a run store this Zoo Studio knows: use "
        f"{URL_PREFIX}/ABSOLUTE/PATH/runs.sqlite3 (a SQLite file; the default is the one in ZOO_HOME) "
        f"or {POSTGRES_URL_PREFIX}USER@HOST:PORT/DATABASE (a PostgreSQL server)."
    )
