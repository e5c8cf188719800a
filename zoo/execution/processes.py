"""This host's processes, as the local executor sees them: alive or not, who they are, and ending one."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists and is not a zombie (an exited child not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def process_identity(pid: int) -> str:
    """``pid`` with its start time (``pid:ticks since boot``), which a process that reuses the pid
    later does not share; the bare pid where /proc does not say."""
    try:
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return str(pid)
    return f"{pid}:{started}"


def command_line(pid: int) -> list[str]:
    """The arguments ``pid`` was started with ([] when /proc does not say, or it has ended)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
    return [os.fsdecode(argument) for argument in arguments if argument]


def kill_process_group(pid: int) -> None:
    """SIGKILL ``pid`` with its process group when it leads one (a worker leads its own session, so
    its children end too), else ``pid`` alone; nothing when it has ended."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
