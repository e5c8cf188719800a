"""The PostgreSQL run store's schema: its migrations, one step per version (``zoo.runs.postgres`` applies
them in one transaction and records the version in ``zoo_schema``).

Version 1 is the SQLite store's schema at its version 5 in PostgreSQL's types (``seq`` keeps the order
runs were created in, as SQLite's rowid does). Changing the schema: append one step to ``MIGRATIONS``
and never edit a step that has shipped; ``SCHEMA_VERSION`` follows by itself.
"""

from __future__ import annotations

from zoo.core.hosting import LOCAL_OWNER

VERSION_TABLE = "zoo_schema"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: runs, their metrics, events and surfaces, and the people seen on a page.
    (
        "CREATE TABLE runs (id TEXT PRIMARY KEY, seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, "
        "kind TEXT NOT NULL, status TEXT NOT NULL, spec TEXT NOT NULL, device TEXT NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, ended_at DOUBLE PRECISION, "
        "heartbeat_at DOUBLE PRECISION, stop_requested BOOLEAN NOT NULL DEFAULT FALSE, data_source TEXT, "
        "environment TEXT, progress TEXT, final_metrics TEXT, model_name TEXT, message TEXT, "
        f"owner TEXT NOT NULL DEFAULT '{LOCAL_OWNER}', executor TEXT, host TEXT, worker TEXT)",
        "CREATE INDEX runs_queue ON runs(device, status, created_at)",
        "CREATE INDEX runs_by_host ON runs(host, device, status)",
        "CREATE TABLE metrics (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL, "
        "epoch INTEGER NOT NULL, name TEXT NOT NULL, value DOUBLE PRECISION, "
        "wall_time DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX metrics_by_run ON metrics(run_id, id)",
        "CREATE TABLE events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, time DOUBLE PRECISION NOT NULL, "
        "kind TEXT NOT NULL, message TEXT NOT NULL)",
        "CREATE INDEX events_by_run ON events(run_id, id)",
        "CREATE TABLE surfaces (run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE, "
        "step INTEGER NOT NULL, epoch INTEGER NOT NULL, payload TEXT NOT NULL)",
        "CREATE TABLE people (name TEXT PRIMARY KEY, email TEXT, is_admin BOOLEAN NOT NULL, "
        "last_seen DOUBLE PRECISION NOT NULL)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
