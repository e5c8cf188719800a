"""Where Zoo Studio keeps its files: one data directory (default ~/.zoo-studio, env ZOO_HOME)."""

import errno
import os
from pathlib import Path

from zoo.core.errors import StorageError
from zoo.core.settings import home_directory, load_settings


def zoo_home() -> Path:
    """Return the data directory, creating it if needed.

    ``ZOO_HOME`` overrides the default ``~/.zoo-studio``; it is read at call time so
    tests and several installs can point elsewhere.

    Raises:
        StorageError: the directory does not exist and cannot be created (e.g. under a read-only parent).
    """
    return ensure_directory(home_directory())


def ensure_directory(directory: Path) -> Path:
    """Create ``directory`` (and its parents) if needed and return it.

    Raises:
        StorageError: it cannot be created, in one line with the fix.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            f"the directory {directory} cannot be created ({error.strerror or error}): create it and make it "
            "writable for this user, or set ZOO_HOME to a writable directory."
        ) from error
    return directory


def unwritable(path: str | os.PathLike, error: OSError) -> StorageError:
    """One line for a file or directory under ``ZOO_HOME`` that cannot be written: which, why, and the fix
    (room on the disk when it is full or over quota, else write permission)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free space on that disk, or set ZOO_HOME to a directory on another disk"
    else:
        fix = "make it writable for this user, or set ZOO_HOME to a writable directory"
    return StorageError(f"{path} cannot be written ({error.strerror or error}): {fix}.")


def runs_database_path() -> Path:
    """Return the path of the SQLite run store."""
    return zoo_home() / "runs.sqlite3"


def model_store_url() -> str:
    """Where the local zoo and the digit sets are kept (``zoo.storage.files.open_storage`` reads it):
    the setting ``ZOO_MODEL_STORE`` (``model_store`` in config.toml; a directory, a ``file://`` URL or ``s3://BUCKET/PREFIX``),
    default ``ZOO_HOME`` (its folders ``models`` and ``digits``).

    Raises:
        SettingsError: the setting or the configuration file is not valid.
        StorageError: by default, ``ZOO_HOME`` does not exist and cannot be created.
    """
    settings = load_settings()
    if settings.source("model_store") == "default":
        return str(zoo_home())  # made here, or one line saying ZOO_HOME cannot be created
    return settings.model_store


def shown_path(path: str | os.PathLike) -> str:
    """A path as pages and run records show it: inside ``ZOO_HOME`` as ``$ZOO_HOME/...`` (so a shared
    host shows its visitors no server layout), elsewhere as given."""
    resolved, home = Path(path).resolve(), zoo_home().resolve()
    return f"$ZOO_HOME/{resolved.relative_to(home)}" if resolved.is_relative_to(home) else str(path)
