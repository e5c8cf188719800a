"""The SQLite run store's schema: version 0 and the migrations since (``zoo.core.database`` applies them).

Changing the schema: before anything else, save the current schema with a few rows as
``tests/fixtures/runs-schema-vN.sql`` (``sqlite3 runs.sqlite3 .dump`` of a store at version N, then
``PRAGMA user_version=N;``); then append one step to ``MIGRATIONS`` and never edit a step that has
shipped. ``SCHEMA_VERSION`` follows by itself. tests/test_run_store_sqlite.py migrates every fixture
to the newest version and compares it with a fresh store.
"""

from __future__ import annotations

from zoo.core.hosting import LOCAL_OWNER

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
    # 4 -> 5: where each run executes (its placement: executor, host, worker), so that several hosts can
    # share one queue and each counts its own slots; a worker recorded before is the local executor's
    # process (its host unknown). The warm pool's registry leaves the run store: each host keeps its
    # own (zoo/execution/pool.py), so the workers table is dropped.
    (
        "ALTER TABLE runs ADD COLUMN executor TEXT",
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN worker TEXT",
        "UPDATE runs SET executor = 'local', worker = CAST(worker_pid AS TEXT) WHERE worker_pid IS NOT NULL",
        "ALTER TABLE runs DROP COLUMN worker_pid",
        "DROP TABLE IF EXISTS workers",
        "CREATE INDEX IF NOT EXISTS runs_by_host ON runs(host, device, status)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
