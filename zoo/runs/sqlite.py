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
from typing import Any

from zoo.core.database import BUSY_WAIT_SECONDS, SqliteFile
from zoo.core.errors import RunError, StorageError
from zoo.core.hosting import LOCAL_OWNER, PermissionDenied, User, check_may_manage
from zoo.core.paths import runs_database_path
from zoo.core.scores import Scores
from zoo.core.settings import Limits
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, Environment, Progress
from zoo.runs.records import (
    DAMAGED_STATUS,
    FINAL_STATUSES,
    LANES,
    MetricBatch,
    MetricRow,
    MetricsReport,
    Person,
    Placement,
    Run,
    RunEvent,
    StoreDescription,
    lane_of,
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
                _check_active_caps(connection, owner.name, limits)
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
            startable = _startable(connection, device, slots, placement.host)
            claimed = next((run_id for run_id, name in startable.items() if name == backend), None)
            if claimed is None:
                return None
            now = time.time()
            connection.execute(
                "UPDATE runs SET status = 'running', started_at = ?, heartbeat_at = ?, executor = ?, "
                "host = ?, worker = ? WHERE id = ?",
                (now, now, placement.executor, placement.host, placement.worker, claimed),
            )
        logger.info("run %s claimed by worker %s on %s", claimed, placement.worker, placement.host)
        return self.get(claimed)

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
        rows = [
            (run_id, report.progress.step, report.progress.epoch, name, value, report.wall_time)
            for report in reports
            for name, value in report.metrics.items()
        ]
        with _of_a_known_run(run_id), self._file.transaction(wait_seconds) as connection:
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
        payload = surface.to_dict()
        step, epoch = payload.pop("step"), payload.pop("epoch")  # they have columns of their own
        with _of_a_known_run(run_id), self._file.connect(wait_seconds=wait_seconds) as connection:
            connection.execute(
                "INSERT INTO surfaces (run_id, step, epoch, payload) VALUES (?,?,?,?) ON CONFLICT(run_id) "
                "DO UPDATE SET step = excluded.step, epoch = excluded.epoch, payload = excluded.payload",
                (run_id, step, epoch, json.dumps(payload)),
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
        # No scores are kept as {}: what older versions read as none (null would be damage to them).
        scores = json.dumps(final_metrics.to_dict() if final_metrics is not None else {})
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

    # --- reads: they never change a run ---------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with self._file.connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = ?", (str(run_id),)).fetchone()
        if row is None:
            raise _no_such_run(run_id)
        return _run_from_row(row)

    def list_runs(self, limit: int = 500) -> list[Run]:
        with self._file.connect() as connection:
            rows = connection.execute(
                "SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_run_from_row(row) for row in rows]

    def active_runs(self, owner: str | None = None) -> list[Run]:
        with self._file.connect() as connection:
            rows = connection.execute(
                "SELECT * FROM runs WHERE status IN ('queued', 'running') AND (? IS NULL OR owner = ?) "
                "ORDER BY created_at, rowid",
                (owner, owner),
            ).fetchall()
        return [_run_from_row(row) for row in rows]

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
        lane = [row for row in rows if lane_of(row["kind"]) == lane_of(run.kind)]
        position = [row["id"] for row in lane].index(run.id)
        return sum(row["status"] == "running" for row in lane) + sum(
            row["status"] == "queued" for row in lane[:position]
        )

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
        return DecisionSurface.from_dict(
            {**json.loads(row["payload"]), "step": row["step"], "epoch": row["epoch"]}
        )

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


def _startable(connection: sqlite3.Connection, device: str, slots: int, host: str | None) -> dict[str, str]:
    """The queued runs on ``device`` that may start on ``host`` now, with their backends: the first of
    each lane (oldest first; the queue is shared by every host) whose runs running on ``host`` leave
    one of its ``slots`` free."""
    rows = connection.execute(
        "SELECT id, kind, status, spec, host FROM runs WHERE device = ? AND status IN ('queued', 'running') "
        "ORDER BY created_at, rowid",
        (device,),
    ).fetchall()
    running = dict.fromkeys(LANES, 0)
    for row in rows:
        if row["status"] == "running" and row["host"] == host:
            running[lane_of(row["kind"])] += 1
    startable, seen = {}, set()
    for row in rows:
        lane = lane_of(row["kind"])
        if row["status"] == "queued" and lane not in seen:
            seen.add(lane)  # only the first of a lane may start: each lane keeps its order
            if running[lane] < slots:
                startable[row["id"]] = _backend_of(row["spec"])
    return startable


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
    placement = (
        Placement(row["executor"], row["host"], row["worker"], row["device"]) if row["executor"] else None
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
        placement=placement,
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
