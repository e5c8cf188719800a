"""A SQLite file Zoo Studio keeps (the run store's, a host's worker pool): checked when opened, moved
aside when damaged, brought to its schema version by migrations, used through short connections, and
its failures told in one line with the file and the fix.

Opening checks the file (``PRAGMA quick_check``, then the schema version in ``PRAGMA user_version``),
one process at a time. A damaged file (not a database, malformed, or emptied to 0 bytes while its
owner says it held something) is moved aside to ``NAME.damaged-<time>`` with its ``-wal``/``-shm``
files, never deleted, and a fresh one starts; ``SqliteFile.notice`` then says where the old file is.
A file that cannot be opened, read or written raises ``StorageError`` with the path and the fix, on
opening or on any later operation; a write lock another process holds too long raises ``StoreLocked``.

Changing a schema: append one step to the owner's migrations (a tuple of SQL statements taking the
file from version N to N+1, N being the step's index) and never edit a step that has shipped. A fresh
file is built by the same path (the version-0 statements plus every step), so fresh and migrated files
cannot drift apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from zoo.core.errors import StorageError, StoreLocked
from zoo.core.paths import ensure_directory

BUSY_WAIT_SECONDS = 30.0  # how long a write waits for another process's write lock before StoreLocked
FULL_DISK_BYTES = 1_000_000  # less free space than this under the file: its disk is full
Migrations = Sequence[Sequence[str]]

# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF) that choose the fix to suggest;
# the others (read-only, cannot open, permission) are told to make the directory writable.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_CORRUPT = 5, 6, 10, 11
_SQLITE_FULL, _SQLITE_NOTADB = 13, 26
DAMAGE_CODES = (_SQLITE_CORRUPT, _SQLITE_NOTADB)

logger = logging.getLogger(__name__)


class SqliteFile:
    """One SQLite file in WAL mode, opened (checked, moved aside if damaged, migrated) on creation.

    Args:
        path: the file.
        what: how messages name it, e.g. ``the run store``.
        holds: what the old file keeps when it is moved aside, e.g. ``runs``.
        base: the statements of schema version 0 (``CREATE ... IF NOT EXISTS``).
        migrations: the steps from version 0 on (see the module's docstring).
        emptied_is_damage: whether a 0-byte file is damage (its owner knows it held something);
            otherwise it is simply a new file.

    Raises:
        StorageError: the file cannot be opened or written, or a newer Zoo Studio wrote it.
    """

    def __init__(
        self,
        path: Path,
        what: str,
        holds: str,
        base: Sequence[str],
        migrations: Migrations,
        emptied_is_damage: Callable[[], bool] = lambda: False,
    ) -> None:
        self.path, self.what, self.holds = path, what, holds
        self.base, self.migrations, self.emptied_is_damage = tuple(base), tuple(migrations), emptied_is_damage
        self.notice: str | None = None  # set when opening moved a damaged file aside
        ensure_directory(path.parent)
        self.open()

    @property
    def schema_version(self) -> int:
        return len(self.migrations)

    def open(self) -> None:
        """Check the file, move it aside if damaged, and bring its schema up to date."""
        with self._opening_lock():
            damage = self._damage()
            if damage:
                moved_to = self._move_aside()
                self.notice = (
                    f"{self.what} {self.path} was damaged ({damage}); it was moved to {moved_to} and a "
                    f"fresh {self.what.split()[-1]} started (the old {self.holds} are in that file)."
                )
                logger.info("%s", self.notice)
            with self.connect(recover=False) as connection:
                if not self._is_current(connection):  # opening a current file only reads: no write lock
                    connection.execute("PRAGMA journal_mode=WAL")
                    self._migrate(connection)

    @contextlib.contextmanager
    def _opening_lock(self) -> Iterator[None]:
        """One process at a time checks, moves aside and migrates (two must not both move a file)."""
        try:
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115 - held below
        except OSError as error:
            raise self.error(error) from error
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _damage(self) -> str | None:
        """Why the file is damaged, or None when it is sound (or new)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self.error(error) from error
        if size == 0:
            return (
                f"it was emptied to 0 bytes although {self.holds} were recorded (see their logs)"
                if self.emptied_is_damage()
                else None
            )
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                problems = [row[0] for row in connection.execute("PRAGMA quick_check(3)").fetchall()]
            finally:
                connection.close()
        except sqlite3.DatabaseError as error:
            if result_code(error) in DAMAGE_CODES:
                return str(error)
            raise self.error(error) from error
        if problems == ["ok"]:
            return None
        # SQLite's report spans lines ("*** in database main ***\nOn tree page 11 ..."): one line here
        return " ".join(" ".join(problems).replace("*** in database main ***", "").split())[:300]

    def _move_aside(self) -> Path:
        """Rename the file and its -wal/-shm files to ``<name>.damaged-<time>`` (never delete them)."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        counter = 1
        while target.exists():
            counter += 1
            target = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{counter}")
        try:
            for suffix in ("-wal", "-shm", ""):  # the main file last: while it stays, it reads as damaged
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    os.replace(source, f"{target}{suffix}")
        except OSError as error:
            raise self.error(error) from error
        return target

    def _is_current(self, connection: sqlite3.Connection) -> bool:
        """Whether the file is in WAL mode at the newest schema version already (asked with reads only)."""
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        return (
            version == self.schema_version
            and connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        )

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Bring the schema to ``schema_version`` in one transaction (a fresh file starts at version 0)."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > self.schema_version:
                raise StorageError(
                    f"{self.what} {self.path} has schema version {version}, newer than this Zoo Studio "
                    f"knows ({self.schema_version}): update Zoo Studio, or set ZOO_HOME to another directory."
                )
            steps = self.migrations[version:] if version else (self.base, *self.migrations)
            for step in steps:
                for statement in step:
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {self.schema_version}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextlib.contextmanager
    def connect(
        self, recover: bool = True, wait_seconds: float = BUSY_WAIT_SECONDS
    ) -> Iterator[sqlite3.Connection]:
        """A short connection; SQLite failures (read-only, disk full, I/O, damage) become StorageError,
        and a write lock another process holds for over ``wait_seconds`` StoreLocked.

        A file found damaged here (it was sound when opened) is moved aside and started afresh at
        once (``recover``), and the operation fails with the notice that says where the old file is."""
        try:
            connection = sqlite3.connect(self.path, timeout=wait_seconds, isolation_level=None)
        except sqlite3.Error as error:
            raise self.error(error) from error
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=NORMAL")
            yield connection
        except (sqlite3.OperationalError, sqlite3.InternalError) as error:
            raise self.error(error) from error
        except sqlite3.DatabaseError as error:
            if result_code(error) not in DAMAGE_CODES:
                raise
            if not recover:
                raise self.error(error) from error
            connection.close()
            self.open()
            raise StorageError(self.notice or str(self.error(error))) from error
        finally:
            connection.close()

    @contextlib.contextmanager
    def transaction(self, wait_seconds: float = BUSY_WAIT_SECONDS) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE`` (the write lock taken first): committed when the
        block ends, rolled back when it raises."""
        with self.connect(wait_seconds=wait_seconds) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def write_blocker(self, wait_seconds: float = 1.0) -> str | None:
        """Why the file cannot take a write now, found without writing a row: its disk is full,
        another process has held its write lock for ``wait_seconds``, or it cannot be written.

        Returns:
            The reason in a few words, or None when a write would go through now.
        """
        if disk_full(self.path.parent):
            return f"the disk under {self.path.parent} is full"
        try:
            with self.transaction(wait_seconds):
                pass  # BEGIN IMMEDIATE took the write lock: a write would go through
        except StoreLocked:
            return "another process holds its write lock"
        except StorageError as error:
            return str(error)
        return None

    def error(self, error: BaseException) -> StorageError:
        """One line for the file that cannot be used: which file, what went wrong, and the fix."""
        code = result_code(error) if isinstance(error, sqlite3.Error) else 0
        reason = (error.strerror if isinstance(error, OSError) else None) or str(error)
        where = f"{self.what} {self.path} cannot be used ({reason})"
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreLocked(f"{where}: another process holds its write lock; try again when it lets go.")
        errno = getattr(error, "errno", None)
        io_error = code == _SQLITE_IOERR or errno == 5
        if code == _SQLITE_FULL or errno == 28 or (io_error and disk_full(self.path.parent)):
            fix = "free space on that disk, or set ZOO_HOME to a directory on another disk"
        elif io_error:
            fix = "check the disk (e.g. `dmesg`), or set ZOO_HOME to a directory on another disk"
        elif code in DAMAGE_CODES:
            fix = "open it again (any `python -m zoo` command) to move it aside and start afresh"
        else:
            fix = (
                f"make {self.path.parent} and the files in it writable for this user, "
                "or set ZOO_HOME to a writable directory"
            )
        return StorageError(f"{where}: {fix}.")


def disk_full(directory: Path) -> bool:
    """Whether the disk under ``directory`` has less than ``FULL_DISK_BYTES`` free."""
    try:
        return shutil.disk_usage(directory).free < FULL_DISK_BYTES
    except OSError:
        return False


def result_code(error: sqlite3.Error) -> int:
    """SQLite's primary result code of ``error`` (0 when it carries none)."""
    return (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
