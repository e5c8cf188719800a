"""``python -m zoo``: see zoo/app/cli.py."""

import os
import sys


def silence_native_stderr() -> None:
    """Keep TensorFlow's C++ start-up lines (CPU features, no CUDA driver) off the terminal.

    Since TensorFlow 2.19 they are written before its logging reads TF_CPP_MIN_LOG_LEVEL, and
    they would break the CLI's promise of one line per error. File descriptor 2 goes to
    /dev/null; Python's own stderr keeps the original terminal. ZOO_NATIVE_LOGS=1 keeps them.
    """
    if os.environ.get("ZOO_NATIVE_LOGS") == "1":
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(terminal, "w", buffering=1)


silence_native_stderr()

from zoo.app.cli import main  # noqa: E402 - after stderr is redirected: TensorFlow loads below it

sys.exit(main())
