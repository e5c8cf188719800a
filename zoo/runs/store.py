"""The run store: SQLite (WAL), the single source of truth for every run's status and progress.

A worker process writes; pages, other browser tabs and the CLI read. What passes through it is
typed: a run's ``TrainSpec`` and ``Progress``, a binary run's latest ``DecisionSurface`` (records
of ``zoo.ml.training``). Each operation opens its own short connection, so one store object can be
shared across Streamlit's threads.

Opening a store checks it (``PRAGMA quick_check``, then the schema version in ``PRAGMA
user_version``), one process at a time. A damaged file (not a database, malformed, or emptied
to 0 bytes while run logs show it had runs) is moved aside to ``runs.sqlite3.damaged-<time>``
with its ``-wal``/``-shm`` files, never deleted, and a fresh store starts; ``RunStore.notice``
then says where the old file is. A store that cannot be opened, read or written raises
``StorageError`` with the path and the fix, on opening or on any later operation.

Changing the schema: append one step to ``MIGRATIONS`` (a tuple of SQL statements that takes
the store from version N to N+1, N being the step's index) and never edit a step that has
shipped. ``SCHEMA_VERSION`` follows by itself. Before changing anything, save the current
schema with a few rows as ``tests/fixtures/runs-schema-vN.sql`` (``sqlite3 runs.sqlite3 .dump``
of a store at version N): tests/test_runs.py migrates every fixture to the newest version and
compares it with a fresh store. A fresh store is built by the same path (``SCHEMA_V0`` plus
every step), so fresh and migrated stores cannot drift apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.core.errors import RunError, StorageError, StoreLocked
from zoo.core.hosting import LOCAL_OWNER, Limits, PermissionDenied, User, check_may_manage
from zoo.core.paths import ensure_directory, runs_database_path
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, Environment, Progress

if TYPE_CHECKING:
    import pandas as pd

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "stopped", "diverged", "failed")
DAMAGED_STATUS = "damaged"  # how a run whose record cannot be read is listed (the others stay readable)
BUSY_WAIT_SECONDS = 30.0  # how long a write waits for another process's write lock before StoreLocked
FULL_DISK_BYTES = 1_000_000  # less free space than this under the store: its disk is full
HEARTBEAT_TIMEOUT_SECONDS = 120.0
WORKER_START_TIMEOUT_SECONDS = 60.0
LAST_WORDS_PREFIX = "zoo worker: the run failed: "
# Each device runs its lanes side by side, each with its own slots and its own queue: a Playground
# run (a tiny 2-D classifier) never waits behind a long CNN run.
LANES = ("main", "playground")


def lane_of(kind: str) -> str:
    """The lane a run of ``kind`` queues in on its device."""
    return "playground" if kind == "binary" else "main"


# Version 0: the schema as it was before stores carried a version. Never edit it; add a migration.
SCHEMA_V0 = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    device TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    worker_pid INTEGER,
    heartbeat_at REAL,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    data_source TEXT,
    environment TEXT,
    progress TEXT,
    final_metrics TEXT,
    model_name TEXT,
    message TEXT
);
CREATE INDEX IF NOT EXISTS runs_queue ON runs(device, status, created_at);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    wall_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run_id, id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS surfaces (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    payload TEXT NOT NULL
);
"""

SCHEMA_V0_STATEMENTS = tuple(statement for statement in SCHEMA_V0.split(";") if statement.strip())

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: the event log is read per run, oldest first.
    ("CREATE INDEX IF NOT EXISTS events_by_run ON events(run_id, id)",),
    # 1 -> 2: the warm worker pool: processes with their backend loaded, waiting for a queued run.
    (
        "CREATE TABLE IF NOT EXISTS workers (pid INTEGER PRIMARY KEY, device TEXT NOT NULL, "
        "backend TEXT NOT NULL, status TEXT NOT NULL, joined_at REAL NOT NULL)",
    ),
    # 2 -> 3: every run has an owner (hosted mode); runs recorded before are the local owner's.
    (f"ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '{LOCAL_OWNER}'",),
    # 3 -> 4: when each signed-in person was last seen on a page (hosted mode; the admin page's "active").
    (
        "CREATE TABLE IF NOT EXISTS people (name TEXT PRIMARY KEY, email TEXT, "
        "is_admin INTEGER NOT NULL, last_seen REAL NOT NULL)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF) that choose the fix to suggest;
# the others (read-only, cannot open, permission) are told to make the directory writable.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_CORRUPT = 5, 6, 10, 11
_SQLITE_FULL, _SQLITE_NOTADB = 13, 26
DAMAGE_CODES = (_SQLITE_CORRUPT, _SQLITE_NOTADB)


@dataclass(frozen=True)
class Run:
    """One run as the store knows it."""

    id: str
    kind: str
    status: str
    spec: TrainSpec
    device: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    worker_pid: int | None
    data_source: str | None
    environment: Environment | None  # None until its worker started it
    progress: Progress | None  # None until the first batch is reported
    final_metrics: Scores | None  # its test-set scores; None until it ends, or when it ends without (failed)
    model_name: str | None
    message: str | None
    owner: str = LOCAL_OWNER
    stop_requested: bool = False  # a stop was asked for (a running run ends after its current batch)
    heartbeat_at: float | None = None  # when its worker last said it was alive

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table or a ``--json`` listing (made at that edge, read by nothing else)."""
        return {
            "id": self.id,
            "status": self.status,
            "owner": self.owner,
            "kind": self.kind,
            "dataset": self.spec.dataset,
            "data_source": self.data_source,
            "device": self.device,
            "created_at": self.created_at,
            "duration_seconds": self.duration_seconds,
            "epochs": self.spec.num_epochs,
            "test_accuracy": self.final_metrics.accuracy if self.final_metrics is not None else None,
            "model_name": self.model_name,
            "message": self.message,
        }


@dataclass(frozen=True)
class RunEvent:
    """One line of a run's event log (``RunStore.add_event``)."""

    time: float  # time.time() when it happened
    kind: str  # e.g. "data", "started", "warning", "completed"
    message: str


@dataclass(frozen=True)
class Person:
    """A signed-in person as the store last saw them (``RunStore.record_seen``)."""

    name: str
    email: str | None
    is_admin: bool
    last_seen: float  # time.time() of the last page of theirs that ran


@dataclass(frozen=True)
class MetricsReport:
    """Metric values a run reported at one point of its fit, and when (``RunStore.log_reports``)."""

    metrics: dict[str, float]  # values by name, e.g. {"batch/loss": 0.31}
    progress: Progress  # where the fit stood
    wall_time: float  # time.time() when reported


class RunStore:
    """Runs, their metrics streams and events, in one SQLite file (default ``$ZOO_HOME/runs.sqlite3``).

    The worker writes (``try_claim``, ``log_metrics``, ``save_surface``, ``finish``); pages, other
    tabs and the CLI read (``get``, ``list_runs``, ``metrics_frame``, ``surface``). Every method opens
    its own short connection, so one store serves many threads.

    Example:
        >>> store = RunStore()
        >>> run_id = store.create_run(TrainSpec.binary(num_epochs=3), "cpu")
        >>> store.get(run_id).status
        'queued'
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        """Open (or create) the store, check it and bring its schema up to date.

        Raises:
            StorageError: the store cannot be opened or written, or a newer Zoo Studio wrote it.
        """
        self.path = Path(path) if path is not None else runs_database_path()
        self.notice: str | None = None  # set when opening moved a damaged store aside
        ensure_directory(self.path.parent)
        self._open()

    def log_path(self, run_id: str) -> Path:
        """The file a run's worker writes its stdout and stderr to (it may not exist yet).

        Args:
            run_id: the run.

        Returns:
            ``logs/<run_id>.log`` in the store's directory.

        Example:
            >>> store.log_path("3f9c0a1b2d4e").name
            '3f9c0a1b2d4e.log'
        """
        return self.path.parent / "logs" / f"{run_id}.log"

    def last_words(self, run_id: str) -> str | None:
        """The reason a run's worker gave for failing when the store could not record it.

        Args:
            run_id: the run.

        Returns:
            The last ``say_last_words`` line in the last 8 KiB of its log, or None (no such line,
            or no readable log).

        Example:
            >>> store.last_words(run_id)  # doctest: +SKIP
            'the run store ... cannot be used (disk I/O error): ...'
        """
        return last_words(self.log_path(run_id))

    def _open(self) -> None:
        with self._opening_lock():
            damage = self._damage()
            if damage:
                moved_to = self._move_aside()
                self.notice = (
                    f"the run store {self.path} was damaged ({damage}); it was moved to {moved_to} "
                    "and a fresh store started (the old runs are in that file)."
                )
            with self._connect(recover=False) as connection:
                if not _is_current(connection):  # opening a current store only reads: no write lock
                    connection.execute("PRAGMA journal_mode=WAL")
                    self._migrate(connection)

    @contextlib.contextmanager
    def _opening_lock(self) -> Iterator[None]:
        """One process at a time checks, moves aside and migrates (two must not both move a store)."""
        try:
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115 - held below
        except OSError as error:
            raise _storage_error(self.path, error) from error
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _damage(self) -> str | None:
        """Why the store file is damaged, or None when it is sound (or new)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _storage_error(self.path, error) from error
        if size == 0:
            logs = self.path.parent / "logs"
            had_runs = logs.is_dir() and any(logs.glob("*.log"))
            return (
                "it was emptied to 0 bytes although runs were recorded (see their logs)" if had_runs else None
            )
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                problems = [row[0] for row in connection.execute("PRAGMA quick_check(3)").fetchall()]
            finally:
                connection.close()
        except sqlite3.DatabaseError as error:
            if _result_code(error) in DAMAGE_CODES:
                return str(error)
            raise _storage_error(self.path, error) from error
        if problems == ["ok"]:
            return None
        # SQLite's report spans lines ("*** in database main ***\nOn tree page 11 ..."): one line here
        return " ".join(" ".join(problems).replace("*** in database main ***", "").split())[:300]

    def _move_aside(self) -> Path:
        """Rename the store and its -wal/-shm files to ``<name>.damaged-<time>`` (never delete them)."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        counter = 1
        while target.exists():
            counter += 1
            target = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{counter}")
        try:
            for suffix in (
                "-wal",
                "-shm",
                "",
            ):  # the main file last: while it stays, the store reads as damaged
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    os.replace(source, f"{target}{suffix}")
        except OSError as error:
            raise _storage_error(self.path, error) from error
        return target

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Bring the schema to SCHEMA_VERSION in one transaction (a fresh store starts at version 0)."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"the run store {self.path} has schema version {version}, newer than this Zoo Studio "
                    f"knows ({SCHEMA_VERSION}): update Zoo Studio, or set ZOO_HOME to another directory."
                )
            steps = MIGRATIONS[version:] if version else ((SCHEMA_V0_STATEMENTS, *MIGRATIONS))
            for step in steps:
                for statement in step:
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextlib.contextmanager
    def _connect(
        self, recover: bool = True, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> Iterator[sqlite3.Connection]:
        """A short connection; SQLite failures (read-only, disk full, I/O, damage) become StorageError,
        and a write lock another process holds for over ``wait_seconds`` StoreLocked.

        A store found damaged here (it was sound when opened) is moved aside and started afresh at
        once (``recover``), and the operation fails with the notice that says where the old file is."""
        try:
            connection = sqlite3.connect(self.path, timeout=wait_seconds, isolation_level=None)
        except sqlite3.Error as error:
            raise _storage_error(self.path, error) from error
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=NORMAL")
            yield connection
        except (sqlite3.OperationalError, sqlite3.InternalError) as error:
            raise _storage_error(self.path, error) from error
        except sqlite3.DatabaseError as error:
            if _result_code(error) not in DAMAGE_CODES:
                raise
            if not recover:
                raise _storage_error(self.path, error) from error
            connection.close()
            self._open()
            raise StorageError(self.notice or str(_storage_error(self.path, error))) from error
        finally:
            connection.close()

    @contextlib.contextmanager
    def _transaction(self, wait_seconds: float = BUSY_WAIT_SECONDS) -> Iterator[sqlite3.Connection]:
        with self._connect(wait_seconds=wait_seconds) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # --- writing: the caller that submits, and the worker -------------------------------------

    def create_run(
        self, spec: TrainSpec, device: str, *, owner: User | None = None, limits: Limits | None = None
    ) -> str:
        """Record a new queued run of ``owner`` (default: the local owner); ``jobs.submit`` then has a
        worker take it up.

        With ``limits``, a person who is not an admin gets the run only while they have fewer than
        ``active_runs_per_owner`` queued or running runs and the host fewer than ``active_runs``
        (counted in the same transaction as the insert, so two quick clicks cannot both pass).

        Args:
            spec: what to train.
            device: the queue it waits in: ``cpu`` or ``gpu``.
            owner: who starts it.
            limits: the host's caps on live runs (hosted mode).

        Returns:
            The new run's id (12 hex digits).

        Raises:
            PermissionDenied: a cap is reached.
            StorageError: the store cannot be written.

        Example:
            >>> store.create_run(TrainSpec.cnn(num_epochs=1), "cpu")  # doctest: +SKIP
            '3f9c0a1b2d4e'
        """
        owner = owner or User(LOCAL_OWNER, is_admin=True)
        run_id = uuid.uuid4().hex[:12]
        self.reconcile()
        with self._transaction() as connection:
            if limits is not None and not owner.is_admin:
                _check_active_caps(connection, owner.name, limits)
            connection.execute(
                "INSERT INTO runs (id, kind, status, spec, device, created_at, model_name, owner) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    spec.kind,
                    "queued",
                    json.dumps(spec.to_dict()),
                    device,
                    time.time(),
                    spec.model_name,
                    owner.name,
                ),
            )
        return run_id

    def record_seen(self, user: User, at: float | None = None) -> None:
        """Record that ``user`` was on a page at ``at`` (default: now); nothing for a visitor who is
        not signed in.

        Raises:
            StorageError: the store cannot be written.
        """
        if not user.signed_in:
            return
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO people (name, email, is_admin, last_seen) VALUES (?,?,?,?) ON CONFLICT(name) "
                "DO UPDATE SET email = excluded.email, is_admin = excluded.is_admin, "
                "last_seen = MAX(last_seen, excluded.last_seen)",
                (user.name, user.email, int(user.is_admin), time.time() if at is None else at),
            )

    def people(self) -> list[Person]:
        """Everyone ``record_seen`` recorded, by name.

        Raises:
            StorageError: the store cannot be read.
        """
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM people ORDER BY name").fetchall()
        return [Person(row["name"], row["email"], bool(row["is_admin"]), row["last_seen"]) for row in rows]

    def set_worker(self, run_id: str, pid: int) -> None:
        """Record the process that executes the run (used to detect a worker that died)."""
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET worker_pid = ?, heartbeat_at = ? WHERE id = ?", (pid, time.time(), run_id)
            )

    def try_claim(self, run_id: str, slots: int = 1) -> bool:
        """Start ``run_id`` if it is first in its lane's queue on its device and the lane has one of
        its ``slots`` free; unlike ``claim_next`` it records no worker process.

        Args:
            run_id: a queued run.
            slots: how many runs of one lane may run at once on the device.

        Returns:
            True when the run is now ``running``; False when it must wait, is not queued or does
            not exist.

        Raises:
            StorageError: the store cannot be read or written.

        Example:
            >>> store.try_claim(run_id)  # doctest: +SKIP
            True
        """
        self.reconcile()
        with self._transaction() as connection:
            row = connection.execute("SELECT device FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or run_id not in _startable(connection, row["device"], slots):
                return False
            _mark_running(connection, run_id, None)
            return True

    def claim_next(self, pid: int, device: str, backend: str, slots: int) -> Run | None:
        """Hand worker ``pid`` (of the pool of ``device`` and ``backend``) the first run it can start,
        mark it running and take the worker out of the pool.

        Args:
            pid: the asking worker's process id (recorded as the run's worker).
            device: the worker's device, ``cpu`` or ``gpu``.
            backend: the worker's Keras backend; only runs of that backend are handed out.
            slots: how many runs of one lane may run at once on the device.

        Returns:
            The claimed run, already ``running``; None when no queued run may start now.

        Raises:
            StorageError: the store cannot be read or written.

        Example:
            >>> run = store.claim_next(os.getpid(), "cpu", "tensorflow", slots=1)  # doctest: +SKIP
        """
        with self._connect() as connection:  # the common answer, "nothing queued", without a write lock
            if not connection.execute(
                "SELECT 1 FROM runs WHERE device = ? AND status = 'queued' LIMIT 1", (device,)
            ).fetchone():
                return None
        self.reconcile()
        with self._transaction() as connection:
            startable = _startable(connection, device, slots)
            claimed = next((run_id for run_id, name in startable.items() if name == backend), None)
            if claimed is None:
                return None
            _mark_running(connection, claimed, pid)
            connection.execute("DELETE FROM workers WHERE pid = ?", (pid,))
        return self.get(claimed)

    # --- the warm worker pool -----------------------------------------------------------------

    def join_pool(self, pid: int, device: str, backend: str, size: int) -> bool:
        """Add a just-started worker to the pool of ``device`` and ``backend`` unless that pool
        already has ``size`` live workers (then the caller ends it). Rows of dead workers are dropped.

        Args:
            pid: the worker's process id.
            device: ``cpu`` or ``gpu``.
            backend: the Keras backend the worker loads.
            size: the most live workers the pool may have.

        Returns:
            True when it joined (as ``starting``); False when the pool was full.

        Raises:
            StorageError: the store cannot be written.

        Example:
            >>> store.join_pool(process.pid, "cpu", "tensorflow", size=1)  # doctest: +SKIP
            True
        """
        with self._transaction() as connection:
            if len(_live_pool(connection, device, backend)) >= size:
                return False
            connection.execute(
                "INSERT OR REPLACE INTO workers (pid, device, backend, status, joined_at) VALUES (?,?,?,?,?)",
                (pid, device, backend, "starting", time.time()),
            )
            return True

    def mark_worker_ready(self, pid: int) -> bool:
        """Record that a pool worker has loaded its backend and data.

        Args:
            pid: the worker's process id.

        Returns:
            True when it was marked ``ready``; False when it is not in the pool (it should end).

        Raises:
            StorageError: the store cannot be written.

        Example:
            >>> store.mark_worker_ready(os.getpid())  # doctest: +SKIP
            True
        """
        with self._connect() as connection:
            return bool(
                connection.execute("UPDATE workers SET status = 'ready' WHERE pid = ?", (pid,)).rowcount
            )

    def pool_size(self, device: str, backend: str) -> int:
        """How many live workers (starting or ready) the pool of ``device`` and ``backend`` has;
        rows of dead workers are dropped on the way.

        Args:
            device: ``cpu`` or ``gpu``.
            backend: a Keras backend name.

        Returns:
            The number of live workers.

        Raises:
            StorageError: the store cannot be read or written.

        Example:
            >>> store.pool_size("cpu", "tensorflow")  # doctest: +SKIP
            1
        """
        with self._transaction() as connection:
            return len(_live_pool(connection, device, backend))

    def queued_count(self, device: str, backend: str) -> int:
        """How many runs wait on ``device`` for a worker of ``backend``.

        Args:
            device: ``cpu`` or ``gpu``.
            backend: a Keras backend name, as the runs' specs record it.

        Returns:
            The number of queued runs.

        Raises:
            StorageError: the store cannot be read.

        Example:
            >>> store.queued_count("cpu", "tensorflow")  # doctest: +SKIP
            2
        """
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT spec FROM runs WHERE device = ? AND status = 'queued'", (device,)
            ).fetchall()
        return sum(_backend_of(row["spec"]) == backend for row in rows)

    def running_count(self, device: str) -> int:
        """How many runs train on ``device`` now.

        Args:
            device: ``cpu`` or ``gpu``.

        Returns:
            The number of running runs.

        Raises:
            StorageError: the store cannot be read.

        Example:
            >>> store.running_count("cpu")  # doctest: +SKIP
            1
        """
        with self._connect() as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM runs WHERE device = ? AND status = 'running'", (device,)
            ).fetchone()
        return count

    def leave_pool_if_surplus(self, pid: int, target: int) -> bool:
        """Take worker ``pid`` out of its pool if the pool has more than ``target`` live workers and
        it joined last (so that of several surplus workers one leaves at a time).

        Args:
            pid: the asking worker's process id.
            target: how many live workers the pool should keep.

        Returns:
            Whether the worker must end: True when it left the pool, or was no longer in it.

        Raises:
            StorageError: the store cannot be written.

        Example:
            >>> store.leave_pool_if_surplus(os.getpid(), target=1)  # doctest: +SKIP
            False
        """
        with self._transaction() as connection:
            row = connection.execute("SELECT device, backend FROM workers WHERE pid = ?", (pid,)).fetchone()
            if row is None:
                return True
            pool = _live_pool(connection, row["device"], row["backend"])
            if len(pool) <= target or pool[-1] != pid:
                return False
            connection.execute("DELETE FROM workers WHERE pid = ?", (pid,))
            return True

    def leave_pool(self, pid: int) -> None:
        """Take worker ``pid`` out of its pool (nothing happens when it is not in one).

        Raises:
            StorageError: the store cannot be written.

        Example:
            >>> store.leave_pool(os.getpid())  # doctest: +SKIP
        """
        with self._connect() as connection:
            connection.execute("DELETE FROM workers WHERE pid = ?", (pid,))

    def pool_workers(self) -> list[int]:
        """The process ids of every live pool worker, for shutting the pool down.

        Returns:
            The pids of all pools' workers that are still alive.

        Raises:
            StorageError: the store cannot be read.

        Example:
            >>> for pid in store.pool_workers():  # doctest: +SKIP
            ...     os.kill(pid, signal.SIGTERM)
        """
        with self._connect() as connection:
            pids = [row["pid"] for row in connection.execute("SELECT pid FROM workers").fetchall()]
        return [pid for pid in pids if process_alive(pid)]

    def set_started(self, run_id: str, data_source: str, environment: Environment) -> None:
        """Record the data source and the devices/versions the run trains with.

        Args:
            run_id: the running run (an unknown id changes nothing).
            data_source: one sentence naming the training data, e.g. ``TrainingData.source``.
            environment: e.g. ``training.describe_environment()``.

        Raises:
            StorageError: the store cannot be written.

        Example:
            >>> store.set_started(run_id, data.source, describe_environment())  # doctest: +SKIP
        """
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET data_source = ?, environment = ? WHERE id = ?",
                (data_source, json.dumps(environment.to_dict()), run_id),
            )

    def heartbeat(self, run_id: str) -> bool:
        """Mark the run's worker alive (readers fail a running run whose heartbeat is over
        ``HEARTBEAT_TIMEOUT_SECONDS`` old).

        Args:
            run_id: the running run.

        Returns:
            Whether a stop was requested (False for an unknown id).

        Raises:
            StorageError: the store cannot be written.

        Example:
            >>> store.heartbeat(run_id)  # doctest: +SKIP
            False
        """
        with self._connect() as connection:
            connection.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))
            row = connection.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def log_metrics(self, run_id: str, metrics: dict[str, float], progress: Progress) -> None:
        """Append metric values and replace the run's progress, in one transaction.

        Args:
            run_id: the running run.
            metrics: values by name, e.g. ``{"batch/loss": 0.31}``; one row each, at the progress's
                step and epoch.
            progress: where the fit stands now (``Run.progress`` from then on).

        Raises:
            StorageError: the store cannot be written (StoreLocked: another process held its write
                lock for ``BUSY_WAIT_SECONDS``).
            RunError: there is no run with that id (nothing is written).

        Example:
            >>> store.log_metrics(run_id, {"batch/loss": 0.31}, Progress(7, 28, 1, 1, 640.0, 3.0, 1.1))
        """
        self.log_reports(run_id, [MetricsReport(metrics, progress, time.time())])

    def log_reports(
        self, run_id: str, reports: Sequence[MetricsReport], *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        """Append the metric values of several reports, each at its own step, epoch and time, and set
        the run's progress to the last one's, in one transaction (all of them or none).

        Args:
            run_id: the running run.
            reports: oldest first, e.g. the reports a worker kept while another process held the
                store's write lock.
            wait_seconds: how long to wait for another process's write lock.

        Raises:
            StoreLocked: another process held the write lock for ``wait_seconds``; nothing is written.
            StorageError: the store cannot be written.
            RunError: there is no run with that id (nothing is written).

        Example:
            >>> store.log_reports(run_id, kept, wait_seconds=0.1)  # doctest: +SKIP
        """
        if not reports:
            return
        rows = [
            (run_id, report.progress.step, report.progress.epoch, name, value, report.wall_time)
            for report in reports
            for name, value in report.metrics.items()
        ]
        with _of_a_known_run(run_id), self._transaction(wait_seconds) as connection:
            connection.executemany(
                "INSERT INTO metrics (run_id, step, epoch, name, value, wall_time) VALUES (?,?,?,?,?,?)", rows
            )
            connection.execute(
                "UPDATE runs SET progress = ?, heartbeat_at = ? WHERE id = ?",
                (json.dumps(reports[-1].progress.to_dict()), time.time(), run_id),
            )

    def save_surface(
        self, run_id: str, surface: DecisionSurface, *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        """Keep the latest decision surface of a binary run (older ones are replaced).

        Args:
            run_id: the binary run.
            surface: the surface at some step (``ProgressReporter.surface`` hands it over).
            wait_seconds: how long to wait for another process's write lock.

        Raises:
            StoreLocked: another process held the write lock for ``wait_seconds``; nothing is written.
            StorageError: the store cannot be written.
            RunError: there is no run with that id (nothing is written).

        Example:
            >>> store.save_surface(run_id, surface)  # doctest: +SKIP
        """
        payload = surface.to_dict()
        step, epoch = payload.pop("step"), payload.pop("epoch")  # they have columns of their own
        with _of_a_known_run(run_id), self._connect(wait_seconds=wait_seconds) as connection:
            connection.execute(
                "INSERT OR REPLACE INTO surfaces (run_id, step, epoch, payload) VALUES (?,?,?,?)",
                (run_id, step, epoch, json.dumps(payload)),
            )

    def add_event(self, run_id: str, kind: str, message: str) -> None:
        """Append a line to the run's event log (data source, warnings, failures).

        Args:
            run_id: the run.
            kind: a short tag shown with the line, e.g. ``data``, ``warning``, ``traceback``.
            message: the line (or a traceback).

        Raises:
            StorageError: the store cannot be written.
            RunError: there is no run with that id (nothing is written).

        Example:
            >>> store.add_event(run_id, "warning", "no GPU found; training on the CPU")  # doctest: +SKIP
        """
        with _of_a_known_run(run_id), self._connect() as connection:
            _insert_event(connection, run_id, kind, message)

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        message: str | None = None,
        final_metrics: Scores | None = None,
        model_name: str | None = None,
    ) -> None:
        """Close a run with its final status, and say so in its event log, in one transaction; a run
        that already ended is left as it is.

        Args:
            run_id: the run to close.
            status: one of ``FINAL_STATUSES``.
            message: why it ended, for people (shown with failures).
            final_metrics: the test-set scores (``Evaluation.scores()``).
            model_name: the name its model was saved under in the local zoo.

        Raises:
            RunError: ``status`` is not a final status.
            StorageError: the store cannot be written.

        Example:
            >>> store.finish(run_id, "failed", message="out of memory; use a smaller batch size")
        """
        if status not in FINAL_STATUSES:
            raise RunError(f"status {status!r} is not final: use one of {', '.join(FINAL_STATUSES)}.")
        now = time.time()
        # No scores are kept as {}: what older versions read as none (null would be damage to them).
        scores = json.dumps(final_metrics.to_dict() if final_metrics is not None else {})
        # One transaction: a reader that sees the run ended also sees why in its event log.
        with self._transaction() as connection:
            closed = connection.execute(
                "UPDATE runs SET status = ?, ended_at = ?, message = ?, final_metrics = ?, "
                "model_name = COALESCE(?, model_name) WHERE id = ? AND status IN ('queued', 'running')",
                (status, now, message, scores, model_name, run_id),
            ).rowcount
            if closed:  # two readers may both find the same dead worker: one event, not two
                _insert_event(connection, run_id, status, message or status)

    def request_stop(self, run_id: str, *, by: User) -> Run:
        """Ask a run to stop: a queued run stops at once, a running one after its current batch.

        Args:
            run_id: the run to stop (a run that already ended stays as it is).
            by: who asks.

        Returns:
            The run as it stands after the request.

        Raises:
            RunError: there is no run with that id.
            PermissionDenied: ``by`` is not signed in, or is neither the run's owner nor an admin.
            StorageError: the store cannot be written.

        Example:
            >>> store.request_stop(queued_run_id, by=LOCAL_USER).status  # doctest: +SKIP
            'stopped'
        """
        run = self.get(run_id)
        check_may_manage(by, run.owner, f"run {run_id}")
        with self._connect() as connection:
            connection.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (run_id,))
            connection.execute(
                "UPDATE runs SET status = 'stopped', ended_at = ?, message = ? "
                "WHERE id = ? AND status = 'queued'",
                (time.time(), "stopped before it started", run_id),
            )
        return self.get(run_id)

    def delete(self, run_id: str, *, by: User) -> None:
        """Delete a finished run with its metrics, events and surface (its model and log stay).

        Args:
            run_id: the run to delete.
            by: who asks.

        Raises:
            RunError: there is no run with that id, or it is still queued or running (stop it first).
            PermissionDenied: ``by`` is not signed in, or is neither the run's owner nor an admin.
            StorageError: the store cannot be written.

        Example:
            >>> store.delete(run_id, by=LOCAL_USER)  # doctest: +SKIP
        """
        run = self.get(run_id)
        check_may_manage(by, run.owner, f"run {run_id}")
        if run.is_active:
            raise RunError(f"run {run_id} is {run.status}; stop it before deleting it.")
        with self._connect() as connection:
            connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # --- reading ------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """Return one run, after marking active runs whose worker died failed (``reconcile``).

        Args:
            run_id: the run's id.

        Returns:
            The run as the store knows it now.

        Raises:
            RunError: there is no run with that id.
            StorageError: the store cannot be read or written.

        Example:
            >>> store.get(run_id).progress.step  # doctest: +SKIP
            7
        """
        self.reconcile()
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = ?", (str(run_id),)).fetchone()
        if row is None:
            raise _no_such_run(run_id)
        return _run_from_row(row)

    def list_runs(self, limit: int = 500) -> list[Run]:
        """The newest runs, newest first (after marking active runs whose worker died failed).

        Args:
            limit: the most runs returned.

        Returns:
            Up to ``limit`` runs, by creation time, newest first.

        Raises:
            StorageError: the store cannot be read or written.

        Example:
            >>> [run.status for run in store.list_runs(limit=2)]  # doctest: +SKIP
            ['running', 'completed']
        """
        self.reconcile()
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_run_from_row(row) for row in rows]

    def write_blocker(self, wait_seconds: float = 1.0) -> str | None:
        """Why the store cannot take a write now, found without writing a row: its disk is full,
        another process has held its write lock for ``wait_seconds``, or it cannot be written.

        Args:
            wait_seconds: how long to wait for another process's write lock.

        Returns:
            The reason in a few words, or None when a write would go through now.

        Example:
            >>> store.write_blocker()  # doctest: +SKIP
            'another process holds its write lock'
        """
        if _disk_full(self.path.parent):
            return f"the disk under {self.path.parent} is full"
        try:
            with self._transaction(wait_seconds):
                pass  # BEGIN IMMEDIATE took the write lock: a write would go through
        except StoreLocked:
            return "another process holds its write lock"
        except StorageError as error:
            return str(error)
        return None

    def active_runs(self, owner: str | None = None) -> list[Run]:
        """Queued and running runs among the 500 newest (``list_runs()``), oldest first.

        Args:
            owner: only this owner's runs (a ``User.name``); None for everyone's.

        Returns:
            The active runs, by creation time, oldest first.

        Raises:
            StorageError: the store cannot be read or written.

        Example:
            >>> bool(store.active_runs(owner="local"))  # doctest: +SKIP
            False
        """
        return sorted(
            (run for run in self.list_runs() if run.is_active and owner in (None, run.owner)),
            key=lambda run: run.created_at,
        )

    def queue_position(self, run_id: str) -> int | None:
        """How many runs are ahead of a queued run in its lane on its device, the running ones included.

        Args:
            run_id: the run.

        Returns:
            The running runs of its lane plus the queued ones before it; None when it is not queued.

        Raises:
            RunError: there is no run with that id.
            StorageError: the store cannot be read or written.

        Example:
            >>> store.queue_position(run_id)  # doctest: +SKIP
            1
        """
        run = self.get(run_id)
        if run.status != "queued":
            return None
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, kind, status FROM runs WHERE device = ? AND status IN ('queued', 'running') "
                "ORDER BY created_at, rowid",
                (run.device,),
            ).fetchall()
        lane = [row for row in rows if lane_of(row["kind"]) == lane_of(run.kind)]
        position = [row["id"] for row in lane].index(run.id)
        return sum(row["status"] == "running" for row in lane) + sum(
            row["status"] == "queued" for row in lane[:position]
        )

    @contextlib.contextmanager
    def stop_checker(self, run_id: str) -> Iterator[Callable[[], bool]]:
        """Yield a check for a stop request cheap enough to call after every batch (it keeps one
        connection open), so a stop lands after the current batch however short batches are.

        Args:
            run_id: the running run.

        Returns:
            A context manager whose value is a function answering True when a stop was requested,
            or the run is no longer ``running`` (a reader found its worker silent and failed it),
            or is gone.

        Raises:
            StorageError: the store cannot be read (on entering, or from a call of the check).

        Example:
            >>> with store.stop_checker(run_id) as stop_requested:  # doctest: +SKIP
            ...     result = fit(spec, reporter, stop_requested)
        """
        with self._connect() as connection:

            def stop_requested() -> bool:
                row = connection.execute(
                    "SELECT stop_requested, status FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
                return row is None or bool(row["stop_requested"]) or row["status"] != "running"

            yield stop_requested

    def metrics_frame(self, run_id: str, since_id: int = 0) -> pd.DataFrame:
        """Metric rows of a run, oldest first.

        Args:
            run_id: the run (an unknown id gives an empty frame).
            since_id: only rows with a larger ``id`` (the last one read before), for cheap live updates.

        Returns:
            A DataFrame with the columns ``id``, ``step``, ``epoch``, ``name``, ``value`` and
            ``wall_time``, one row per logged value.

        Raises:
            StorageError: the store cannot be read.

        Example:
            >>> frame = store.metrics_frame(run_id)
            >>> newer = store.metrics_frame(run_id, since_id=int(frame["id"].iloc[-1]))
        """
        import pandas as pd

        with self._connect() as connection:
            return pd.read_sql_query(
                "SELECT id, step, epoch, name, value, wall_time FROM metrics "
                "WHERE run_id = ? AND id > ? ORDER BY id",
                connection,
                params=(run_id, since_id),
            )

    def events(self, run_id: str) -> list[RunEvent]:
        """The run's event log, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT time, kind, message FROM events WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [RunEvent(row["time"], row["kind"], row["message"]) for row in rows]

    def surface(self, run_id: str) -> DecisionSurface | None:
        """The latest decision surface of a binary run.

        Args:
            run_id: the run.

        Returns:
            The surface last saved, or None before the first one (and for other runs or unknown ids).

        Raises:
            StorageError: the store cannot be read.

        Example:
            >>> store.surface(run_id).epoch  # doctest: +SKIP
            12
        """
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM surfaces WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return DecisionSurface.from_dict(
            {**json.loads(row["payload"]), "step": row["step"], "epoch": row["epoch"]}
        )

    def reconcile(self) -> None:
        """Mark active runs whose worker process is gone (killed, out of memory), silent, or never started
        as failed, so that no run is left active for ever and none blocks its device's queue."""
        with self._connect() as connection:
            # One snapshot of both tables: a worker moves from the pool to its run at once.
            connection.execute("BEGIN")
            rows = connection.execute(
                "SELECT id, status, device, spec, worker_pid, heartbeat_at, created_at FROM runs "
                "WHERE status IN ('queued', 'running')"
            ).fetchall()
            waiting = connection.execute("SELECT pid, device, backend FROM workers").fetchall()
            connection.execute("COMMIT")
        workers = [(row["device"], row["backend"], row["pid"]) for row in waiting]
        for row in rows:

            def pool_has_workers(pool: tuple[str, str] = (row["device"], _backend_of(row["spec"]))) -> bool:
                return any(
                    (device, backend) == pool and process_alive(pid) for device, backend, pid in workers
                )

            reason = _worker_failure(
                row,
                pool_has_workers,
                self.log_path(row["id"]),
                self.path,
            )
            if reason:
                self.finish(row["id"], "failed", message=reason)


def _no_such_run(run_id: str) -> RunError:
    """The one message for a run id the store does not hold."""
    return RunError(f"there is no run {run_id!r}; `python -m zoo runs` lists the run ids.")


@contextlib.contextmanager
def _of_a_known_run(run_id: str) -> Iterator[None]:
    """Rows written for ``run_id``: a run the store does not hold (the row's foreign key fails) is a
    ``RunError`` naming it, not SQLite's bare IntegrityError."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        raise _no_such_run(run_id) from error


def _is_current(connection: sqlite3.Connection) -> bool:
    """Whether a store is in WAL mode at ``SCHEMA_VERSION`` already (asked with reads only)."""
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    return version == SCHEMA_VERSION and connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _disk_full(directory: Path) -> bool:
    try:
        return shutil.disk_usage(directory).free < FULL_DISK_BYTES
    except OSError:
        return False


def _result_code(error: sqlite3.Error) -> int:
    return (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF


def _storage_error(path: Path, error: BaseException) -> StorageError:
    """One line for a store that cannot be used: which file, what went wrong, and the fix."""
    code = _result_code(error) if isinstance(error, sqlite3.Error) else 0
    reason = (error.strerror if isinstance(error, OSError) else None) or str(error)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreLocked(
            f"the run store {path} cannot be used ({reason}): another process holds its write lock; "
            "try again when it lets go."
        )
    io_error = code == _SQLITE_IOERR or getattr(error, "errno", None) == 5
    if code == _SQLITE_FULL or getattr(error, "errno", None) == 28 or (io_error and _disk_full(path.parent)):
        fix = "free space on that disk, or set ZOO_HOME to a directory on another disk"
    elif io_error:
        fix = "check the disk (e.g. `dmesg`), or set ZOO_HOME to a directory on another disk"
    elif code in DAMAGE_CODES:
        fix = "open it again (any `python -m zoo` command) to move it aside and start a fresh store"
    else:
        fix = (
            f"make {path.parent} and the files in it writable for this user, "
            "or set ZOO_HOME to a writable directory"
        )
    return StorageError(f"the run store {path} cannot be used ({reason}): {fix}.")


def _startable(connection: sqlite3.Connection, device: str, slots: int) -> dict[str, str]:
    """The queued runs on ``device`` that may start now, with their backends: the first of each lane
    whose running runs leave one of its ``slots`` free (oldest first)."""
    rows = connection.execute(
        "SELECT id, kind, status, spec FROM runs WHERE device = ? AND status IN ('queued', 'running') "
        "ORDER BY created_at, rowid",
        (device,),
    ).fetchall()
    running = {lane: 0 for lane in LANES}
    for row in rows:
        if row["status"] == "running":
            running[lane_of(row["kind"])] += 1
    startable, seen = {}, set()
    for row in rows:
        lane = lane_of(row["kind"])
        if row["status"] == "queued" and lane not in seen:
            seen.add(lane)  # only the first of a lane may start: each lane keeps its order
            if running[lane] < slots:
                startable[row["id"]] = _backend_of(row["spec"])
    return startable


def _mark_running(connection: sqlite3.Connection, run_id: str, pid: int | None) -> None:
    now = time.time()
    connection.execute(
        "UPDATE runs SET status = 'running', started_at = ?, heartbeat_at = ?, "
        "worker_pid = COALESCE(?, worker_pid) WHERE id = ?",
        (now, now, pid, run_id),
    )


def _live_pool(connection: sqlite3.Connection, device: str, backend: str) -> list[int]:
    """The pids of the pool's live workers, oldest first; rows of workers that died are dropped."""
    pids = [
        row["pid"]
        for row in connection.execute(
            "SELECT pid FROM workers WHERE device = ? AND backend = ? ORDER BY joined_at, pid",
            (device, backend),
        ).fetchall()
    ]
    dead = [pid for pid in pids if not process_alive(pid)]
    connection.executemany("DELETE FROM workers WHERE pid = ?", [(pid,) for pid in dead])
    return [pid for pid in pids if pid not in dead]


def _backend_of(spec_json: str) -> str:
    """The backend a run's spec names; ``auto`` (no pool's) for a damaged spec."""
    try:
        return json.loads(spec_json).get("backend", "auto")
    except (ValueError, AttributeError):
        return "auto"


def _check_active_caps(connection: sqlite3.Connection, owner: str, limits: Limits) -> None:
    (mine,) = connection.execute(
        "SELECT COUNT(*) FROM runs WHERE owner = ? AND status IN ('queued', 'running')", (owner,)
    ).fetchone()
    (everyone,) = connection.execute(
        "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')"
    ).fetchone()
    if limits.active_runs_per_owner is not None and mine >= limits.active_runs_per_owner:
        raise PermissionDenied(
            f"you have {mine} runs queued or running, this host's limit per person; wait for one to end "
            "or stop one, then start this run again."
        )
    if limits.active_runs is not None and everyone >= limits.active_runs:
        raise PermissionDenied(
            f"this host has {everyone} runs queued or running, its limit; start this run again when one ends."
        )


def _insert_event(connection: sqlite3.Connection, run_id: str, kind: str, message: str) -> None:
    connection.execute(
        "INSERT INTO events (run_id, time, kind, message) VALUES (?,?,?,?)",
        (run_id, time.time(), kind, message),
    )


def _worker_failure(
    row: sqlite3.Row, pool_has_workers: Callable[[], bool], log_path: Path, store_path: Path
) -> str | None:
    """Why an active run can never end by itself (its worker's own last words when it left some), or
    None. A queued run has no worker of its own: it waits for the pool of its device and backend, and
    fails only when that pool has had no worker for a minute (the process that submitted it ended
    before a worker started, or the pool's workers were killed)."""
    pid, heartbeat_at = row["worker_pid"], row["heartbeat_at"]
    if pid is None:
        if time.time() - row["created_at"] > WORKER_START_TIMEOUT_SECONDS and not pool_has_workers():
            return (
                f"no worker process took up the run within {WORKER_START_TIMEOUT_SECONDS:.0f} s of its "
                "submission (the submitting process ended first); start the run again."
            )
        return None
    if not process_alive(pid):
        return last_words(log_path) or (
            f"the worker process {pid} ended without finishing the run (killed, or out of memory); "
            "start the run again, with a smaller batch size if memory was short."
        )
    if row["status"] == "running" and heartbeat_at and time.time() - heartbeat_at > HEARTBEAT_TIMEOUT_SECONDS:
        _end_worker(pid, store_path)
        return last_words(log_path) or (
            f"the worker process {pid} stopped reporting for over {HEARTBEAT_TIMEOUT_SECONDS:.0f} s; "
            "it was treated as hung and ended. Start the run again."
        )
    return None


def say_last_words(reason: str) -> None:
    """A worker's one line on stderr (its run's log) before it ends without closing its run, so that
    the reader who later finds it ended fails the run with this reason (``last_words``)."""
    with contextlib.suppress(OSError):  # the log may be unwritable too: then the generic reason stands
        print(LAST_WORDS_PREFIX + " ".join(reason.split()), file=sys.stderr, flush=True)


def last_words(log_path: Path) -> str | None:
    """The reason a worker gave in its log's last lines with ``say_last_words``, or None."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            tail = log.read().decode(errors="replace")
    except OSError:
        return None
    said = [line for line in tail.splitlines() if line.startswith(LAST_WORDS_PREFIX)]
    return said[-1].removeprefix(LAST_WORDS_PREFIX) if said else None


def _end_worker(pid: int, store_path: Path) -> None:
    """SIGKILL a hung worker (e.g. frozen by SIGSTOP) with its process group, but only while the pid is
    still a worker of this store (``python -m zoo.execution.jobs ... STORE``), never a process that
    reused it."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    store = os.path.realpath(store_path)
    if b"zoo.execution.jobs" not in arguments or not any(
        os.path.realpath(os.fsdecode(a)) == store for a in arguments[-2:]
    ):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if (
            os.getpgid(pid) == pid
        ):  # a worker leads its own session (jobs._start_worker): end its children too
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists and is not a zombie (an exited child not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _run_from_row(row: sqlite3.Row) -> Run:
    """The run a row records; a row with a column that cannot be read back is a run with status
    ``damaged`` whose message says which column and how to get rid of it (one bad row never hides
    the others)."""
    problems: list[str] = []

    def read(column: str, parse: Callable[[Any], Any], default: Any) -> Any:
        try:
            return default if row[column] is None else parse(json.loads(row[column]))
        except (ValueError, TypeError, AttributeError) as error:  # ZooError is a ValueError too
            problems.append(f"its {column} is not valid ({error})")
            return default

    stand_in = TrainSpec.binary() if row["kind"] == "binary" else TrainSpec.cnn()
    spec = read("spec", TrainSpec.from_dict, stand_in)
    environment = read("environment", lambda values: Environment.from_dict(values) if values else None, None)
    progress = read("progress", lambda values: Progress.from_dict(values) if values else None, None)
    final_metrics = read("final_metrics", lambda values: Scores.from_dict(values) if values else None, None)
    status, message = row["status"], row["message"]
    if problems:
        status = DAMAGED_STATUS
        message = (
            f"the record of run {row['id']} in the run store is damaged: {'; '.join(problems)}; the "
            "other runs are unaffected: delete it on the Runs page."
        )
    return Run(
        id=row["id"],
        kind=row["kind"],
        status=status,
        spec=spec,
        device=row["device"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        worker_pid=row["worker_pid"],
        data_source=row["data_source"],
        environment=environment,
        progress=progress,
        final_metrics=final_metrics,
        model_name=row["model_name"],
        message=message,
        owner=row["owner"],
        stop_requested=bool(row["stop_requested"]),
        heartbeat_at=row["heartbeat_at"],
    )
