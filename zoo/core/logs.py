"""Where the library's log lines go. Every module logs to its own ``logging.getLogger(__name__)``
(``zoo.hub.operations``, ...) and configures nothing; each entry point says where the lines go, once:
the CLI (stderr; warnings unless ``-v``/``-vv``), the app server (its console) and a pool worker
(stderr, which the pool sends to the workers' and the run's log files), each at ``ZOO_LOG_LEVEL``
when it is set.

A line is one line (``time LEVEL logger: message``): a traceback is shown only at the debug level,
else its last line, so an expected error stays the CLI's one ``error:`` line. No line holds a secret:
the modules log names, never tokens, and ``zoo.core.settings.hide_passwords`` hides URL passwords.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

LIBRARY_LOGGER = "zoo"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class OneLineFormatter(logging.Formatter):
    """``FORMAT`` on one line: line breaks in a message become " | " and an exception is its last line
    (``with_tracebacks``: the traceback follows, for whoever debugs)."""

    def __init__(self, with_tracebacks: bool) -> None:
        super().__init__(FORMAT, datefmt="%H:%M:%S")
        self.with_tracebacks = with_tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.with_tracebacks or not record.exc_info:
            return " | ".join(part for part in super().format(record).splitlines() if part.strip())
        error = record.exc_info[1]
        kept = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None  # other handlers get the record as it came
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.exc_text = kept
        said = (str(error).strip().splitlines() or [""])[-1]
        return (
            " | ".join(part for part in line.splitlines() if part.strip())
            + f" ({type(error).__name__}: {said})"
        )


class _CurrentStderr(logging.StreamHandler):
    """Writes to what ``sys.stderr`` is at each line: a worker's log file once it sends its output
    there, a test's captured stream."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        """``StreamHandler`` sets its stream when made; this handler's is always ``sys.stderr``."""


def configure_logging(level: int) -> None:
    """Send the library's lines of ``level`` and above to stderr, one per line; a call with another
    level replaces what the last set, one with the same level changes nothing (the app server asks on
    every page run, while other sessions log)."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    ours = [handler for handler in logger.handlers if isinstance(handler, _CurrentStderr)]
    if [handler.level for handler in ours] == [level]:
        return
    for handler in ours:
        logger.removeHandler(handler)
    handler = _CurrentStderr()
    handler.setLevel(level)
    handler.setFormatter(OneLineFormatter(with_tracebacks=level <= logging.DEBUG))
    logger.addHandler(handler)
    # Below warning the library's loggers must pass those lines on; at warning they follow the root
    # logger (warning, unless a host such as pytest's caplog asks for more).
    logger.setLevel(level if level < logging.WARNING else logging.NOTSET)


def chosen_level(setting: str | None, default: str, verbose: int = 0) -> int:
    """The level to log at: ``ZOO_LOG_LEVEL`` (``setting``) or the process's ``default``, lowered to
    info by one ``-v`` and to debug by two."""
    level = LEVELS[setting or default]
    if verbose:
        level = min(level, logging.INFO if verbose == 1 else logging.DEBUG)
    return level
