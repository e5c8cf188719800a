"""The run store on a PostgreSQL server (psycopg 3): the backend for several app servers and worker
hosts sharing one queue (``ZOO_RUN_STORE=postgresql://USER@HOST:PORT/DB``).

Each process keeps one bounded connection pool per database (``ZOO_RUN_STORE_POOL`` connections at
most, opened when needed and closed after 10 idle minutes), shared by every store object and thread;
a connection is checked before use, so a store keeps working after the server restarts. The schema
is created on first use and migrated (``zoo.runs.postgres_schema``, its version in ``zoo_schema``).
Claims lock the lane's head with ``FOR UPDATE SKIP LOCKED``; the caps on live runs are counted and
the run inserted under one transaction-scoped advisory lock; metrics are appended with ``COPY``.
Nothing PostgreSQL-specific leaves this module, and a password never does: ``url`` and every message
name user, host, port and database only (the password comes from the URL in ZOO_RUN_STORE,
``PGPASSWORD`` or ``~/.pgpass``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from zoo.core.database import BUSY_WAIT_SECONDS
from zoo.core.errors import RunError, StorageError, StoreUnreachable
from zoo.core.hosting import LOCAL_OWNER, User, check_may_manage
from zoo.core.scores import Scores
from zoo.core.settings import Limits, load_settings
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, Environment
from zoo.runs.postgres_schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE
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

# Advisory-lock keys (any bigint this database's other users do not take): the schema's migration,
# and every create_run (the caps are counted and the run inserted while it is held).
SCHEMA_LOCK, CREATE_LOCK = 7_200_190_001, 7_200_190_002
CONNECT_WAIT_SECONDS = 5.0  # how long a read or write waits for a connection (the server down: then it fails)
CLAIM_RETRY_SECONDS = 0.005  # the lane's head is being claimed by another worker: look again after it

logger = logging.getLogger(__name__)

Connection = psycopg.Connection[dict[str, Any]]


class PostgresRunStore:
    """Runs, their metric streams, events and surfaces, in one PostgreSQL database. The contract's
    methods are documented on ``RunStore``.

    Example:
        >>> store = PostgresRunStore("postgresql://zoo@db.example.org:5432/zoo")  # doctest: +SKIP
        >>> store.get(store.create_run(TrainSpec.binary(), "cpu")).status  # doctest: +SKIP
        'queued'
    """

    def __init__(self, url: str) -> None:
        """Connect, and create or migrate the schema.

        Raises:
            StorageError: the server cannot be reached or written, or a newer Zoo Studio wrote the schema.
        """
        parts = urlsplit(url)
        if parts.scheme != "postgresql" or not parts.hostname or not parts.path.strip("/"):
            raise StorageError(
                f"the run store URL {without_password(url)!r} names no database: write "
                "postgresql://USER@HOST:PORT/DATABASE."
            )
        self.url = without_password(url)
        self.location = (
            f"PostgreSQL database {parts.path.strip('/')} on {parts.hostname}:{parts.port or 5432}"
        )
        self._conninfo = _with_configured_password(url)
        self._pool = _pool(self._conninfo, load_settings().run_store_pool)
        self.schema_version = self._migrate()

    def describe(self) -> StoreDescription:
        return StoreDescription(self.url, self.location, self.schema_version, None)

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
        with self._transaction() as connection:
            # App servers share no memory: the count and the insert happen under one lock of the database's.
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_LOCK,))
            if limits is not None and not owner.is_admin:
                counts = connection.execute(
                    "SELECT COUNT(*) FILTER (WHERE owner = %s) AS mine, COUNT(*) AS everyone FROM runs "
                    "WHERE status IN ('queued', 'running')",
                    (owner.name,),
                ).fetchone()
                assert counts is not None  # an aggregate always has its row
                check_active_caps(counts["mine"], counts["everyone"], limits)
            connection.execute(
                "INSERT INTO runs (id, kind, status, spec, device, created_at, model_name, owner, executor, "
                "host) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
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
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while time.monotonic() < deadline:
            with self._transaction() as connection:
                rows = connection.execute(
                    "SELECT id, kind, status, spec, host FROM runs WHERE device = %s "
                    "AND status IN ('queued', 'running') ORDER BY created_at, seq",
                    (device,),
                ).fetchall()
                chosen = next(
                    (
                        run_id
                        for run_id, name in startable(rows, slots, placement.host).items()
                        if name == backend
                    ),
                    None,
                )
                if chosen is None:
                    return None
                # Another worker claiming it holds its row: skip it and look again once it has it.
                if connection.execute(
                    "SELECT id FROM runs WHERE id = %s AND status = 'queued' FOR UPDATE SKIP LOCKED",
                    (chosen,),
                ).fetchone():
                    _mark_running(connection, chosen, placement)
                    break
            time.sleep(CLAIM_RETRY_SECONDS)
        else:
            return None
        return claimed(self.get, chosen, placement)

    def claim(self, run_id: str, placement: Placement) -> Run | None:
        with self._transaction() as connection:
            if not _mark_running(connection, run_id, placement):
                return None
        return claimed(self.get, run_id, placement)

    def set_started(self, run_id: str, data_source: str, environment: Environment) -> None:
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET data_source = %s, environment = %s WHERE id = %s",
                (data_source, json.dumps(environment.to_dict()), run_id),
            )

    def heartbeat(self, run_id: str) -> bool:
        with self._connect() as connection:
            row = connection.execute(
                "UPDATE runs SET heartbeat_at = %s WHERE id = %s RETURNING stop_requested",
                (time.time(), run_id),
            ).fetchone()
        return bool(row and row["stop_requested"])

    def log_metrics(
        self, run_id: str, reports: Sequence[MetricsReport], *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        if not reports:
            return
        with self._known(run_id), self._transaction(wait_seconds) as connection:
            with connection.cursor().copy(f"COPY metrics ({', '.join(METRIC_COLUMNS)}) FROM STDIN") as copy:
                for row in metric_rows(run_id, reports):
                    copy.write_row(row)
            connection.execute(
                "UPDATE runs SET progress = %s, heartbeat_at = %s WHERE id = %s",
                (progress_column(reports), time.time(), run_id),
            )

    def save_surface(
        self, run_id: str, surface: DecisionSurface, *, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> None:
        with self._known(run_id), self._connect(wait_seconds) as connection:
            connection.execute(
                "INSERT INTO surfaces (run_id, step, epoch, payload) VALUES (%s,%s,%s,%s) "
                "ON CONFLICT (run_id) DO UPDATE SET step = excluded.step, epoch = excluded.epoch, "
                "payload = excluded.payload",
                (run_id, *surface_columns(surface)),
            )

    def add_event(self, run_id: str, kind: str, message: str) -> None:
        with self._known(run_id), self._connect() as connection:
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
        # One transaction: a reader that sees the run ended also sees why in its event log.
        with self._transaction() as connection:
            closed = connection.execute(
                "UPDATE runs SET status = %s, ended_at = %s, message = %s, final_metrics = %s, "
                "model_name = COALESCE(%s, model_name) WHERE id = %s AND status IN ('queued', 'running')",
                (status, time.time(), message, scores_column(final_metrics), model_name, run_id),
            ).rowcount
            if closed:  # two supervisors may both find the same dead worker: one event, not two
                _insert_event(connection, run_id, status, message or status)
        if closed:
            logger.info("run %s %s%s", run_id, status, f": {message}" if message else "")
        return bool(closed)

    def request_stop(self, run_id: str, *, by: User) -> Run:
        run = self.get(run_id)
        check_may_manage(by, run.owner, f"run {run_id}")
        with self._transaction() as connection:
            connection.execute("UPDATE runs SET stop_requested = TRUE WHERE id = %s", (run_id,))
            connection.execute(
                "UPDATE runs SET status = 'stopped', ended_at = %s, message = %s "
                "WHERE id = %s AND status = 'queued'",
                (time.time(), "stopped before it started", run_id),
            )
        return self.get(run_id)

    def delete(self, run_id: str, *, by: User) -> None:
        run = self.get(run_id)
        check_may_manage(by, run.owner, f"run {run_id}")
        if run.is_active:
            raise RunError(f"run {run_id} is {run.status}; stop it before deleting it.")
        with self._connect() as connection:
            connection.execute("DELETE FROM runs WHERE id = %s", (run_id,))

    def record_seen(self, user: User, at: float | None = None) -> None:
        if not user.signed_in:
            return
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO people (name, email, is_admin, last_seen) VALUES (%s,%s,%s,%s) "
                "ON CONFLICT (name) DO UPDATE SET email = excluded.email, is_admin = excluded.is_admin, "
                "last_seen = GREATEST(people.last_seen, excluded.last_seen)",
                (user.name, user.email, user.is_admin, time.time() if at is None else at),
            )

    def import_run(
        self,
        run: Run,
        metrics: Sequence[MetricRow],
        events: Sequence[RunEvent],
        surface: DecisionSurface | None,
    ) -> bool:
        columns = ", ".join(RUN_COLUMNS)
        with self._transaction() as connection:
            if not connection.execute(
                f"INSERT INTO runs ({columns}) VALUES ({', '.join(['%s'] * len(RUN_COLUMNS))}) "
                "ON CONFLICT (id) DO NOTHING",
                run_columns(run),
            ).rowcount:
                return False
            with connection.cursor().copy(f"COPY metrics ({', '.join(METRIC_COLUMNS)}) FROM STDIN") as copy:
                for row in copied_metric_rows(run.id, metrics):
                    copy.write_row(row)
            connection.cursor().executemany(
                f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES (%s,%s,%s,%s)",
                event_rows(run.id, events),
            )
            if surface is not None:
                connection.execute(
                    "INSERT INTO surfaces (run_id, step, epoch, payload) VALUES (%s,%s,%s,%s)",
                    (run.id, *surface_columns(surface)),
                )
        return True

    # --- reads: they never change a run ---------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = %s", (str(run_id),)).fetchone()
        if row is None:
            raise no_such_run(run_id)
        return run_from_row(row)

    def list_runs(self, limit: int = 500, *, wait_seconds: float = CONNECT_WAIT_SECONDS) -> list[Run]:
        with self._connect(wait_seconds) as connection:
            rows = connection.execute(
                "SELECT * FROM runs ORDER BY created_at DESC, seq DESC LIMIT %s", (limit,)
            ).fetchall()
        return [run_from_row(row) for row in rows]

    def active_runs(
        self, owner: str | None = None, *, wait_seconds: float = CONNECT_WAIT_SECONDS
    ) -> list[Run]:
        with self._connect(wait_seconds) as connection:
            rows = connection.execute(
                "SELECT * FROM runs WHERE status IN ('queued', 'running') "
                "AND (%s::text IS NULL OR owner = %s) ORDER BY created_at, seq",
                (owner, owner),
            ).fetchall()
        return [run_from_row(row) for row in rows]

    def queue_position(self, run_id: str) -> int | None:
        run = self.get(run_id)
        if run.status != "queued":
            return None
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, kind, status FROM runs WHERE device = %s AND status IN ('queued', 'running') "
                "ORDER BY created_at, seq",
                (run.device,),
            ).fetchall()
        return queue_position(rows, run)

    @contextlib.contextmanager
    def stop_checker(self, run_id: str) -> Iterator[Callable[[], bool]]:
        # A connection from the pool per check (one query): a fit outlives a server restart.
        def stop_requested() -> bool:
            with self._connect() as connection:
                row = connection.execute(
                    "SELECT stop_requested, status FROM runs WHERE id = %s", (run_id,)
                ).fetchone()
            return row is None or bool(row["stop_requested"]) or row["status"] != "running"

        yield stop_requested

    def metrics_since(self, run_id: str, cursor: int = 0) -> MetricBatch:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, step, epoch, name, value, wall_time FROM metrics WHERE run_id = %s AND id > %s "
                "ORDER BY id",
                (run_id, cursor),
            ).fetchall()
        return MetricBatch(
            tuple(
                MetricRow(row["step"], row["epoch"], row["name"], row["value"], row["wall_time"])
                for row in rows
            ),
            rows[-1]["id"] if rows else cursor,
        )

    def events(self, run_id: str) -> list[RunEvent]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT time, kind, message FROM events WHERE run_id = %s ORDER BY id", (run_id,)
            ).fetchall()
        return [RunEvent(row["time"], row["kind"], row["message"]) for row in rows]

    def surface(self, run_id: str) -> DecisionSurface | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM surfaces WHERE run_id = %s", (run_id,)).fetchone()
        return None if row is None else surface_from_row(row)

    def people(self) -> list[Person]:
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM people ORDER BY name").fetchall()
        return [Person(row["name"], row["email"], row["is_admin"], row["last_seen"]) for row in rows]

    def write_blocker(self, wait_seconds: float = 1.0) -> str | None:
        try:
            with self._connect(wait_seconds) as connection:
                row = connection.execute("SELECT pg_is_in_recovery() AS standby").fetchone()
        except StorageError as error:
            return str(error)
        if row and row["standby"]:
            return (
                f"the run store's {self.location} is a read-only standby: point ZOO_RUN_STORE at the primary"
            )
        return None

    # --- connections ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self, wait_seconds: float = CONNECT_WAIT_SECONDS) -> Iterator[Connection]:
        """A connection from the pool (autocommit). The server unreachable, or the connection cut
        mid-query, is one ``StoreUnreachable``: whoever can wait (a worker) tries again on a new
        connection (the pool drops the cut one), a page or the CLI says it in one line."""
        try:
            with self._pool.connection(timeout=wait_seconds) as connection:
                yield connection
        except psycopg_pool.PoolTimeout as error:
            raise StoreUnreachable(
                self._unusable(self._probe() or f"no connection within {wait_seconds:g} s")
            ) from error
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            raise StoreUnreachable(self._unusable(error)) from error

    def _unusable(self, reason: object) -> str:
        """The one line for a server that cannot be used now: where, why, what to do."""
        return (
            f"the run store's {self.location} cannot be used ({' '.join(str(reason).split())}): start the "
            "server or check ZOO_RUN_STORE (`pg_isready -h HOST -p PORT` says whether it answers)."
        )

    def _probe(self) -> str | None:
        """Why a new connection fails now (the pool only says it waited); None if one opens."""
        try:
            psycopg.connect(self._conninfo, connect_timeout=2).close()
        except psycopg.Error as error:
            return str(error)
        return None

    @contextlib.contextmanager
    def _transaction(self, wait_seconds: float = BUSY_WAIT_SECONDS) -> Iterator[Connection]:
        """A connection inside one transaction: committed when the block ends, rolled back if it raises."""
        with self._connect(wait_seconds) as connection, connection.transaction():
            yield connection

    def _known(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        return of_a_known_run(run_id, psycopg.errors.ForeignKeyViolation)

    def _migrate(self) -> int:
        """Bring the schema to ``SCHEMA_VERSION`` in one transaction (a new database starts at 0).

        Raises:
            StorageError: a newer Zoo Studio wrote it.
        """
        try:  # its own connection: a server that cannot be reached says why at once
            with psycopg.connect(self._conninfo, connect_timeout=5, row_factory=dict_row) as connection:
                return self._migrate_with(connection)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            raise StorageError(self._unusable(error)) from error

    def _migrate_with(self, connection: Connection) -> int:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            exists = connection.execute("SELECT to_regclass(%s) AS found", (VERSION_TABLE,)).fetchone()
            version = 0
            if exists and exists["found"]:
                row = connection.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
                version = row["version"] if row else 0
            else:
                connection.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
                connection.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (0)")
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"the run store's {self.location} has schema version {version}, newer than this "
                    f"Zoo Studio knows ({SCHEMA_VERSION}): update Zoo Studio, or set ZOO_RUN_STORE to "
                    "another database."
                )
            for step in MIGRATIONS[version:]:
                for statement in step:
                    connection.execute(statement)
            if version < SCHEMA_VERSION:
                connection.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (SCHEMA_VERSION,))
                logger.info("run store %s: schema version %d -> %d", self.location, version, SCHEMA_VERSION)
        return SCHEMA_VERSION


def without_password(url: str) -> str:
    """``url`` with no password in it (what is shown, logged and passed to workers).

    Example:
        >>> without_password("postgresql://zoo:s3cret@db:5432/zoo")
        'postgresql://zoo@db:5432/zoo'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{netloc}"))


def _with_configured_password(url: str) -> str:
    """The URL to connect with: ZOO_RUN_STORE's, password included, when ``url`` is it without its
    password (a worker is started with the URL that shows none); else ``url`` itself."""
    configured = load_settings().run_store
    return configured if without_password(configured) == url else url


@functools.cache
def _pool(conninfo: str, size: int) -> psycopg_pool.ConnectionPool[Connection]:
    """This process's pool for one database: at most ``size`` connections, opened when needed, each
    checked before it is handed out (a server restarted since is reconnected to)."""
    return psycopg_pool.ConnectionPool(
        conninfo,
        min_size=0,
        max_size=size,
        open=True,
        check=psycopg_pool.ConnectionPool.check_connection,
        kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 5},
        name=without_password(conninfo),
    )


def _insert_event(connection: Connection, run_id: str, kind: str, message: str) -> None:
    connection.execute(
        "INSERT INTO events (run_id, time, kind, message) VALUES (%s,%s,%s,%s)",
        (run_id, time.time(), kind, message),
    )


def _mark_running(connection: Connection, run_id: str, placement: Placement) -> bool:
    """Mark a queued run running at ``placement`` (in the caller's transaction); False when it is not
    queued (a concurrent claim waits for the first one's row lock, then finds it running)."""
    return bool(connection.execute(*claim_statement(run_id, placement, "%s")).rowcount)
