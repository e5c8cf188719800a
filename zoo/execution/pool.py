"""The local executor's registry of warm workers: its own small SQLite file (``$ZOO_HOME/pool.sqlite3``),
one row per worker that waits for a run on this host, keyed by host, so that with a run store shared
by several hosts (a database server) each host keeps its own pool.

A worker joins as ``starting`` when it is started, is ``ready`` once its backend and data are
loaded, and leaves when it claims a run (a worker takes one run, then ends) or is not needed. Rows
of workers that died are dropped whenever the pool is counted.
"""

from __future__ import annotations

import time
from pathlib import Path

from zoo.core.database import SqliteFile
from zoo.execution.processes import process_alive

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS workers (host TEXT NOT NULL, pid INTEGER NOT NULL, device TEXT NOT NULL, "
    "backend TEXT NOT NULL, status TEXT NOT NULL, joined_at REAL NOT NULL, PRIMARY KEY (host, pid))",
)


class WorkerPool:
    """The warm workers of one host, by device and backend.

    Raises (every method):
        StorageError: the pool's file cannot be opened or written (one line with the fix).
    """

    def __init__(self, path: Path, host: str) -> None:
        self._file = SqliteFile(path, "the worker pool", "workers", SCHEMA, ())
        self.host = host

    def join(self, pid: int, device: str, backend: str, size: int) -> bool:
        """Add a just-started worker to the pool of ``device`` and ``backend`` unless that pool
        already has ``size`` live workers (then the caller ends it).

        Returns:
            True when it joined (as ``starting``); False when the pool was full.
        """
        with self._file.transaction() as connection:
            if len(self._live(connection, device, backend)) >= size:
                return False
            connection.execute(
                "INSERT INTO workers (host, pid, device, backend, status, joined_at) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(host, pid) DO UPDATE SET device = excluded.device, backend = excluded.backend, "
                "status = excluded.status, joined_at = excluded.joined_at",
                (self.host, pid, device, backend, "starting", time.time()),
            )
            return True

    def mark_ready(self, pid: int) -> bool:
        """Record that a worker has loaded its backend and data; False when it is not in the pool
        (it should end)."""
        with self._file.connect() as connection:
            return bool(
                connection.execute(
                    "UPDATE workers SET status = 'ready' WHERE host = ? AND pid = ?", (self.host, pid)
                ).rowcount
            )

    def size(self, device: str, backend: str) -> int:
        """How many live workers (starting or ready) the pool of ``device`` and ``backend`` has."""
        with self._file.transaction() as connection:
            return len(self._live(connection, device, backend))

    def ready(self, device: str, backend: str | None = None) -> int:
        """How many live workers of ``device`` (and ``backend``, when given) are ready for a run."""
        with self._file.transaction() as connection:
            pids = self._live(connection, device, backend)
            statuses = connection.execute(
                "SELECT pid FROM workers WHERE host = ? AND status = 'ready'", (self.host,)
            ).fetchall()
        return len(set(pids) & {row["pid"] for row in statuses})

    def leave_if_surplus(self, pid: int, target: int) -> bool:
        """Take worker ``pid`` out of its pool if the pool has more than ``target`` live workers and
        it joined last (so that of several surplus workers one leaves at a time).

        Returns:
            Whether the worker must end: True when it left the pool, or was no longer in it.
        """
        with self._file.transaction() as connection:
            row = connection.execute(
                "SELECT device, backend FROM workers WHERE host = ? AND pid = ?", (self.host, pid)
            ).fetchone()
            if row is None:
                return True
            pool = self._live(connection, row["device"], row["backend"])
            if len(pool) <= target or pool[-1] != pid:
                return False
            connection.execute("DELETE FROM workers WHERE host = ? AND pid = ?", (self.host, pid))
            return True

    def leave(self, pid: int) -> None:
        """Take worker ``pid`` out of its pool (nothing happens when it is not in one)."""
        with self._file.connect() as connection:
            connection.execute("DELETE FROM workers WHERE host = ? AND pid = ?", (self.host, pid))

    def workers(self) -> list[int]:
        """The pids of every live worker of this host's pools."""
        with self._file.connect() as connection:
            pids = [
                row["pid"]
                for row in connection.execute("SELECT pid FROM workers WHERE host = ?", (self.host,))
            ]
        return [pid for pid in pids if process_alive(pid)]

    def _live(self, connection, device: str, backend: str | None) -> list[int]:
        """The pids of a pool's live workers, oldest first; rows of workers that died are dropped."""
        rows = connection.execute(
            "SELECT pid, backend FROM workers WHERE host = ? AND device = ? ORDER BY joined_at, pid",
            (self.host, device),
        ).fetchall()
        pids = [row["pid"] for row in rows if backend is None or row["backend"] == backend]
        dead = [pid for pid in pids if not process_alive(pid)]
        connection.executemany(
            "DELETE FROM workers WHERE host = ? AND pid = ?", [(self.host, pid) for pid in dead]
        )
        return [pid for pid in pids if pid not in dead]
