"""Where Zoo Studio keeps its files: one data directory (default ~/.zoo-studio, env ZOO_HOME)."""

import os
from pathlib import Path


def zoo_home() -> Path:
    """Return the data directory, creating it if needed.

    ``ZOO_HOME`` overrides the default ``~/.zoo-studio``; it is read at call time so
    tests and several installs can point elsewhere.
    """
    home = Path(os.environ.get("ZOO_HOME") or Path.home() / ".zoo-studio").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def runs_database_path() -> Path:
    """Return the path of the SQLite run store."""
    return zoo_home() / "runs.sqlite3"


def models_directory() -> Path:
    """Return the directory of the local zoo (one sub-directory per trained model)."""
    directory = zoo_home() / "models"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
