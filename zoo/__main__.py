"""``python -m zoo``: see zoo/app/cli.py."""

import os
import sys

from zoo.core.errors import SettingsError
from zoo.core.settings import native_logs_kept


def silence_native_stderr() -> None:
    """Keep TensorFlow's C++ start-up lines (CPU features, no CUDA driver) off the terminal.

    Since TensorFlow 2.19 they are written before its logging reads TF_CPP_MIN_LOG_LEVEL, and
    they would break the CLI's promise of one line per error. File descriptor 2 goes to
    /dev/null; Python's own stderr keeps the original terminal. ZOO_NATIVE_LOGS=1 keeps them.

    Raises:
        SettingsError: ZOO_NATIVE_LOGS is not 1 or 0.
    """
    if native_logs_kept():
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(terminal, "w", buffering=1)


try:
    silence_native_stderr()
except SettingsError as error:
    sys.exit(f"error: {error}")  # the CLI's one line, before it starts

from zoo.app.cli import main  # noqa: E402 - after stderr is redirected: TensorFlow loads below it

sys.exit(main())
