"""A real PostgreSQL 15 (Debian's ``postgresql`` package) for the tests: one server per test session on
127.0.0.1, on a free port, with its own temporary data and socket directories and trust authentication
on loopback; each test gets a fresh database of its own.

``initdb`` and ``pg_ctl`` refuse to run as root: as root they run as the ``postgres`` user (``runuser``),
who owns the temporary directories. A server that cannot start is an error naming why, never a skip.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BIN_DIRECTORY = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"


class PostgresServer:
    """A PostgreSQL server of the test session; ``start()`` it, ``stop()`` it at the session's end."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="zoo-postgres-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._databases = itertools.count(1)
        self.cold_start_seconds: float | None = None

    def url(self, database: str = "postgres") -> str:
        """The run-store URL of ``database`` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Create the cluster on first use, then start the server and wait until it answers.

        Raises:
            RuntimeError: the server cannot be started (the message has its log's last lines).
        """
        began = time.perf_counter()
        if not self.data.exists():
            self.sockets.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.root, SUPERUSER)
                shutil.chown(self.sockets, SUPERUSER)
            self._run(
                "initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "--no-sync", "-E", "UTF8"
            )
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )
        if self.cold_start_seconds is None:
            self.cold_start_seconds = time.perf_counter() - began

    def stop(self) -> None:
        """Stop the server at once (connections are cut, as in a crash or a restart)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """Stop the server and start it again on the same port."""
        self.stop()
        self.start()

    def create_database(self) -> str:
        """A fresh, empty database; its run-store URL."""
        name = f"zoo_test_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``create_database``, cutting its connections."""
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def remove(self) -> None:
        """Stop the server if it runs, and remove its directories."""
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(BIN_DIRECTORY / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        finished = subprocess.run(command, capture_output=True, text=True, cwd=self.root, timeout=120)
        if finished.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"PostgreSQL's {program} failed ({finished.returncode}): {finished.stderr.strip()} {log}"
                f" (the tests need Debian's postgresql 15: apt-get install -y postgresql)"
            )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
