"""The run store on one SQLite file (WAL): the first implementation of ``zoo.runs.store.RunStore``.

Each operation opens its own short connection, so one store object serves Streamlit's threads. The
file is checked, moved aside when damaged and migrated by ``zoo.core.database.SqliteFile``; its schema
is ``zoo.runs.sqlite_schema``. Nothing SQLite-specific leaves this module: callers see the contract's
records, ``describe()`` and one-line ``StorageError``s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from zoo.core.database import BUSY_WAIT_SECONDS, SqliteFile
from zoo.core.errors import RunError, StorageError
from zoo.core.hosting import LOCAL_OWNER, User, check_may_manage
from zoo.core.paths import runs_database_path
from zoo.core.scores import Scores
from zoo.core.settings import Limits
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, Environment
from zoo.runs.records import (
    FINAL_STATUSES,
    MetricBatch,
    MetricRow,
    MetricsReport,
    Person,
    Placement,
    Run,
    RunEvent,
    StoreDescription,
)
from zoo.runs.rows import (
    EVENT_COLUMNS,
    METRIC_COLUMNS,
    RUN_COLUMNS,
    check_active_caps,
    claim_statement,
    claimed,
    copied_metric_rows,
    event_rows,
    metric_rows,
    no_such_run,
    of_a_known_run,
    progress_column,
    queue_position,
    run_columns,
    run_from_row,
    scores_column,
    startable,
    surface_columns,
    surface_from_row,
)
from zoo.runs.sqlite_schema import MIGRATIONS, SCHEMA_V0_STATEMENTS

URL_PREFIX = "sqlite:///"  # then the path: sqlite:////absolute/runs.sqlite3 or sqlite:///relative.sqlite3

logger = logging.getLogger(__name__)


def sqlite_url(path: Path) -> str:
    """The run-store URL of a SQLite file (``ZOO_RUN_STORE``'s form)."""
    return URL_PREFIX + str(path)


class SqliteRunStore:
    """Runs, their metric streams, events and surfaces, in one SQLite file (default
    ``$ZOO_HOME/runs.sqlite3``). The contract's methods are documented on ``RunStore``.

    Example:
        >>> store = SqliteRunStore()
        >>> run_id = store.create_run(TrainSpec.binary(num_epochs=3), "cpu")
        >>> store.get(run_id).status
        'queued'
    """

    def __init__(self, path: str | Path | None = None) -> None:
        """Open (or create) the store, check it and bring its schema up to date.

        Raises:
            StorageError: the store cannot be opened or written, or a newer Zoo Studio wrote it.
        """
        path = Path(path if path is not None else runs_database_path()).absolute()
        self._file = SqliteFile(
            path, "the run store", "runs", SCHEMA_V0_STATEMENTS, MIGRATIONS, lambda: _had_runs(path)
        )
        self.url = sqlite_url(path)

    @classmethod
    def from_url(cls, url: str) -> SqliteRunStore:
        """The store a ``sqlite:///PATH`` URL names.

        Raises:
            StorageError: the URL names no file, or the store cannot be opened.
        """
        path = url.removeprefix(URL_PREFIX)
        if not url.startswith(URL_PREFIX) or not path:
            raise StorageError(
                f"the run store URL {url!r} names no file: write sqlite:////absolute/path/runs.sqlite3."
            )
        return cls(path)

    def describe(self) -> StoreDescription:
        return StoreDescription(self.url, str(self._file.path), self._file.schema_version, self._file.notice)

    # --- lifecycle ------------------------------------------------------------------------------

    def create_run(
        self,
        spec: TrainSpec,
        device: str,
        *,
        owner: User | None = None,
        limits: Limits | None = None,
        placement: Placement | None = None,
    ) -> str:
        owner = owner or User(LOCAL_OWNER, is_admin=True)
        run_id = uuid.uuid4().hex[:12]
        executor, host = (placement.executor, placement.host) if placement else (None, None)
        with self._file.transaction() as connection:
            if limits is not None and not owner.is_admin:
                (mine,) = connection.execute(
                    "SELECT COUNT(*) FROM runs WHERE owner = ? AND status IN ('queued', 'running')",
                    (owner.name,),
                ).fetchone()
                (everyone,) = connection.execute(
                    "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')"
                ).fetchone()
                check_active_caps(mine, everyone, limits)
            connection.execute(
                "INSERT INTO runs (id, kind, status, spec, device, created_at, model_name, owner, executor, "
                "host) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    spec.kind,
                    "queued",
                    json.dumps(spec.to_dict()),
                    device,
                    time.time(),
                    spec.model_name,
                    owner.name,
                    executor,
                    host,
                ),
            )
        return run_id

    def claim_next(self, device: str, backend: str, slots: int, placement: Placement) -> Run | None:
        with self._file.connect() as connection:  # the common answer, "nothing queued", without a write lock
            if not connection.execute(
                "SELECT 1 FROM runs WHERE device = ? AND status = 'queued' LIMIT 1", (device,)
            ).fetchone():
                return None
        with self._file.transaction() as connection:
            rows = connection.execute(
                "SELECT id, kind, status, spec, host FROM runs WHERE device = ? "
                "AND status IN ('queued', 'running') ORDER BY created_at, rowid",
                (device,),
            ).fetchall()
            startable_now = startable(rows, slots, placement.host)
            chosen = next((run_id for run_id, name in startable_now.items() if name == backend), None)
            if chosen is None:
                return None
            _mark_running(connection, chosen, placement)
        return claimed(self.get, chosen, placement)

    def claim(self, run_id: str, placement: Placement) -> Run | None:
        with self._file.transaction() as connection:
            if not _mark_running(connection, run_id, placement):
                return None
        return claimed(self.get, run_id, placement)

    def set_started(self, run_id: str, data_source: str, environment: Environment) -> None:
        with self._file.connect() as connection:
            connection.execute(
                "UPDATE runs SET data_source = ?, environment = ? WHERE id = ?",
                (data_source, json.dumps(environment.to_dict()), run_id),
            )

    def heartbeat(self, run_id: str) -> bool:
        with self._file.connect() as connection:
            connection.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))
            row = connection.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def log_metrics(
        self, run_id: str, reports: Sequence[MetricsReport], *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        if not reports:
            return
        with _of_a_known_run(run_id), self._file.transaction(wait_seconds) as connection:
            connection.executemany(
                "INSERT INTO metrics (run_id, step, epoch, name, value, wall_time) VALUES (?,?,?,?,?,?)",
                metric_rows(run_id, reports),
            )
            connection.execute(
                "UPDATE runs SET progress = ?, heartbeat_at = ? WHERE id = ?",
                (progress_column(reports), time.time(), run_id),
            )

    def save_surface(
        self, run_id: str, surface: DecisionSurface, *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        with _of_a_known_run(run_id), self._file.connect(wait_seconds=wait_seconds) as connection:
            connection.execute(
                "INSERT INTO surfaces (run_id, step, epoch, payload) VALUES (?,?,?,?) ON CONFLICT(run_id) "
                "DO UPDATE SET step = excluded.step, epoch = excluded.epoch, payload = excluded.payload",
                (run_id, *surface_columns(surface)),
            )

    def add_event(self, run_id: str, kind: str, message: str) -> None:
        with _of_a_known_run(run_id), self._file.connect() as connection:
            _insert_event(connection, run_id, kind, message)

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        message: str | None = None,
        final_metrics: Scores | None = None,
        model_name: str | None = None,
    ) -> bool:
        if status not in FINAL_STATUSES:
            raise RunError(f"status {status!r} is not final: use one of {', '.join(FINAL_STATUSES)}.")
        scores = scores_column(final_metrics)
        # One transaction: a reader that sees the run ended also sees why in its event log.
        with self._file.transaction() as connection:
            closed = connection.execute(
                "UPDATE runs SET status = ?, ended_at = ?, message = ?, final_metrics = ?, "
                "model_name = COALESCE(?, model_name) WHERE id = ? AND status IN ('queued', 'running')",
                (status, time.time(), message, scores, model_name, run_id),
            ).rowcount
            if closed:  # two supervisors may both find the same dead worker: one event, not two
                _insert_event(connection, run_id, status, message or status)
        if closed:
            logger.info("run %s %s%s", run_id, status, f": {message}" if message else "")
        return bool(closed)

    def request_stop(self, run_id: str, *, by: User) -> Run:
        run = self.get(run_id)
        check_may_manage(by, run.owner, f"run {run_id}")
        with self._file.connect() as connection:
            connection.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (run_id,))
            connection.execute(
                "UPDATE runs SET status = 'stopped', ended_at = ?, message = ? "
                "WHERE id = ? AND status = 'queued'",
                (time.time(), "stopped before it started", run_id),
            )
        return self.get(run_id)

    def delete(self, run_id: str, *, by: User) -> None:
        run = self.get(run_id)
        check_may_manage(by, run.owner, f"run {run_id}")
        if run.is_active:
            raise RunError(f"run {run_id} is {run.status}; stop it before deleting it.")
        with self._file.connect() as connection:
            connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def record_seen(self, user: User, at: float | None = None) -> None:
        if not user.signed_in:
            return
        with self._file.connect() as connection:
            connection.execute(
                "INSERT INTO people (name, email, is_admin, last_seen) VALUES (?,?,?,?) ON CONFLICT(name) "
                "DO UPDATE SET email = excluded.email, is_admin = excluded.is_admin, "
                "last_seen = MAX(last_seen, excluded.last_seen)",
                (user.name, user.email, int(user.is_admin), time.time() if at is None else at),
            )

    def import_run(
        self,
        run: Run,
        metrics: Sequence[MetricRow],
        events: Sequence[RunEvent],
        surface: DecisionSurface | None,
    ) -> bool:
        columns = ", ".join(RUN_COLUMNS)
        with self._file.transaction() as connection:
            if not connection.execute(
                f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) "
                "ON CONFLICT(id) DO NOTHING",
                run_columns(run),
            ).rowcount:
                return False
            connection.executemany(
                f"INSERT INTO metrics ({', '.join(METRIC_COLUMNS)}) VALUES (?,?,?,?,?,?)",
                copied_metric_rows(run.id, metrics),
            )
            connection.executemany(
                f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES (?,?,?,?)",
                event_rows(run.id, events),
            )
            if surface is not None:
                connection.execute(
                    "INSERT INTO surfaces (run_id, step, epoch, payload) VALUES (?,?,?,?)",
                    (run.id, *surface_columns(surface)),
                )
        return True

    # --- reads: they never change a run ---------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with self._file.connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = ?", (str(run_id),)).fetchone()
        if row is None:
            raise no_such_run(run_id)
        return run_from_row(row)

    def list_runs(self, limit: int = 500, *, wait_seconds: float = BUSY_WAIT_SECONDS) -> list[Run]:
        with self._file.connect(wait_seconds=wait_seconds) as connection:
            rows = connection.execute(
                "SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [run_from_row(row) for row in rows]

    def active_runs(self, owner: str | None = None, *, wait_seconds: float = BUSY_WAIT_SECONDS) -> list[Run]:
        with self._file.connect(wait_seconds=wait_seconds) as connection:
            rows = connection.execute(
                "SELECT * FROM runs WHERE status IN ('queued', 'running') AND (? IS NULL OR owner = ?) "
                "ORDER BY created_at, rowid",
                (owner, owner),
            ).fetchall()
        return [run_from_row(row) for row in rows]

    def queue_position(self, run_id: str) -> int | None:
        run = self.get(run_id)
        if run.status != "queued":
            return None
        with self._file.connect() as connection:
            rows = connection.execute(
                "SELECT id, kind, status FROM runs WHERE device = ? AND status IN ('queued', 'running') "
                "ORDER BY created_at, rowid",
                (run.device,),
            ).fetchall()
        return queue_position(rows, run)

    @contextlib.contextmanager
    def stop_checker(self, run_id: str) -> Iterator[Callable[[], bool]]:
        with self._file.connect() as connection:  # one connection for the whole fit: a check costs one read

            def stop_requested() -> bool:
                row = connection.execute(
                    "SELECT stop_requested, status FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
                return row is None or bool(row["stop_requested"]) or row["status"] != "running"

            yield stop_requested

    def metrics_since(self, run_id: str, cursor: int = 0) -> MetricBatch:
        with self._file.connect() as connection:
            rows = connection.execute(
                "SELECT id, step, epoch, name, value, wall_time FROM metrics WHERE run_id = ? AND id > ? "
                "ORDER BY id",
                (run_id, cursor),
            ).fetchall()
        return MetricBatch(
            tuple(MetricRow(row[1], row[2], row[3], row[4], row[5]) for row in rows),
            rows[-1][0] if rows else cursor,
        )

    def events(self, run_id: str) -> list[RunEvent]:
        with self._file.connect() as connection:
            rows = connection.execute(
                "SELECT time, kind, message FROM events WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [RunEvent(row["time"], row["kind"], row["message"]) for row in rows]

    def surface(self, run_id: str) -> DecisionSurface | None:
        with self._file.connect() as connection:
            row = connection.execute("SELECT * FROM surfaces WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return surface_from_row(row)

    def people(self) -> list[Person]:
        with self._file.connect() as connection:
            rows = connection.execute("SELECT * FROM people ORDER BY name").fetchall()
        return [Person(row["name"], row["email"], bool(row["is_admin"]), row["last_seen"]) for row in rows]

    def write_blocker(self, wait_seconds: float = 1.0) -> str | None:
        blocker = self._file.write_blocker(wait_seconds)
        if blocker and "write lock" in blocker:
            return f"{blocker} (`fuser -v {self._file.path}` names it)"
        return blocker


def _had_runs(path: Path) -> bool:
    """Whether runs were recorded beside the store file (the local workers' logs in ZOO_HOME/logs),
    so that the file emptied to 0 bytes is damage, not a new store."""
    logs = path.parent / "logs"
    return logs.is_dir() and any(logs.glob("*.log"))


def _of_a_known_run(run_id: str) -> contextlib.AbstractContextManager[None]:
    return of_a_known_run(run_id, sqlite3.IntegrityError)


def _insert_event(connection: sqlite3.Connection, run_id: str, kind: str, message: str) -> None:
    connection.execute(
        "INSERT INTO events (run_id, time, kind, message) VALUES (?,?,?,?)",
        (run_id, time.time(), kind, message),
    )


def _mark_running(connection: sqlite3.Connection, run_id: str, placement: Placement) -> bool:
    """Mark a queued run running at ``placement`` (in the caller's transaction); False when it is not
    queued."""
    return bool(connection.execute(*claim_statement(run_id, placement, "?")).rowcount)
