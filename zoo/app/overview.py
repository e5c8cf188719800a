"""A host at a glance, for its admins (the Admin page): who was active, everyone's runs and models, the
queue, each person's best models on the test set, and the host's load and limits.

"Active" is what the studio can know: Streamlit tells no session about another one, so a person is
active when a page of theirs ran (opened, clicked, a form sent) in the last ``ACTIVE_SECONDS``; app.py
records it in the run store (``RunStore.record_seen``). Nothing here imports Streamlit or Keras.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from zoo.core.hosting import LOCAL_OWNER, HostingConfig, Limits
from zoo.execution.executor import Executor
from zoo.runs.records import FINAL_STATUSES, Run
from zoo.storage.models import ModelEntry, ModelStore

ACTIVE_SECONDS = 600.0  # seen on a page in the last 10 minutes
MEMINFO = Path("/proc/meminfo")  # Linux's memory counters (None elsewhere)


@dataclass(frozen=True)
class PersonOverview:
    """One person: when they were last seen, how many runs they have in each state, their models and
    their best model of each kind by test accuracy (None: no scored model of that kind)."""

    name: str
    is_admin: bool
    last_seen: float | None  # None: an owner never seen on a page (the CLI's local owner, or before)
    active: bool
    queued: int
    running: int
    finished: int
    models: int
    best_cnn: ModelEntry | None
    best_binary: ModelEntry | None


@dataclass(frozen=True)
class QueueEntry:
    """A live run: running (``position`` None) or queued behind ``position`` runs of its lane."""

    run: Run
    position: int | None


@dataclass(frozen=True)
class HostLoad:
    """The machine: its CPU and memory, its training device, and the worker processes."""

    cpu_count: int
    load_average: tuple[float, float, float]  # processes wanting a CPU, over 1, 5 and 15 minutes
    memory_total_mb: int | None  # None where /proc/meminfo is not there to tell
    memory_available_mb: int | None
    device: str  # cpu or gpu
    training_workers: int  # one per running run
    waiting_workers: int  # warm workers waiting for the next run (ready, or still loading)


@dataclass(frozen=True)
class HostOverview:
    """Everything the Admin page shows, gathered at ``taken_at``."""

    people: tuple[PersonOverview, ...]
    queue: tuple[QueueEntry, ...]  # the live runs, oldest first
    runs: tuple[Run, ...]  # the newest 500 runs, newest first
    models: tuple[ModelEntry, ...]
    load: HostLoad
    limits: Limits
    taken_at: float


def host_overview(
    executor: Executor, models: ModelStore, config: HostingConfig, now: float | None = None
) -> HostOverview:
    """Gather the overview of this host.

    Args:
        executor: where runs execute (its capacity), over the run store (its runs, queue and the
            people it saw).
        models: the local zoo.
        config: the hosting configuration (admins and limits).
        now: the time to judge "active" against (default: now).

    Returns:
        The overview; people by name: everyone seen on a page and every owner of a run or model.

    Raises:
        StorageError: the run store cannot be read.

    Example:
        >>> overview = host_overview(open_executor(), open_local_zoo(), load_config())  # doctest: +SKIP
        >>> [person.name for person in overview.people]  # doctest: +SKIP
        ['alice', 'bob', 'local', 'teacher']
    """
    now = time.time() if now is None else now
    runs = executor.store
    all_runs, entries = runs.list_runs(), models.entries()
    seen = {person.name: person for person in runs.people()}
    names = sorted(
        set(seen) | {run.owner for run in all_runs} | {entry.owner for entry in entries if entry.owner}
    )
    people = tuple(_person(name, seen.get(name), config, all_runs, entries, now) for name in names)
    live = sorted((run for run in all_runs if run.is_active), key=lambda run: run.created_at)
    queue = tuple(QueueEntry(run, runs.queue_position(run.id)) for run in live)
    capacity = executor.capacity()
    load = _host_load(
        capacity.device,
        training=sum(run.status == "running" for run in live),
        waiting=capacity.waiting_workers + capacity.starting_workers,
    )
    return HostOverview(people, queue, tuple(all_runs), tuple(entries), load, config.limits, now)


def _person(name, seen, config: HostingConfig, runs: list[Run], entries: list[ModelEntry], now: float):
    theirs = [run for run in runs if run.owner == name]
    models = [entry for entry in entries if entry.owner == name]
    last_seen = seen.last_seen if seen is not None else None
    return PersonOverview(
        name=name,
        is_admin=seen.is_admin if seen is not None else name == LOCAL_OWNER or name.lower() in config.admins,
        last_seen=last_seen,
        active=last_seen is not None and now - last_seen <= ACTIVE_SECONDS,
        queued=sum(run.status == "queued" for run in theirs),
        running=sum(run.status == "running" for run in theirs),
        finished=sum(run.status in FINAL_STATUSES for run in theirs),
        models=len(models),
        best_cnn=_best(models, "cnn"),
        best_binary=_best(models, "binary"),
    )


def _best(models: list[ModelEntry], kind: str) -> ModelEntry | None:
    scored = [entry for entry in models if entry.kind == kind and entry.accuracy is not None]
    return max(scored, key=lambda entry: entry.accuracy or 0.0, default=None)  # all scored


def _host_load(device: str, training: int, waiting: int) -> HostLoad:
    total = available = None
    if MEMINFO.is_file():
        counters = dict(line.split(":", 1) for line in MEMINFO.read_text().splitlines() if ":" in line)
        kilobytes = {name: int(value.split()[0]) for name, value in counters.items() if value.split()}
        total = kilobytes.get("MemTotal", 0) // 1024 or None
        available = kilobytes.get("MemAvailable", 0) // 1024 or None
    return HostLoad(
        cpu_count=os.cpu_count() or 1,
        load_average=os.getloadavg(),
        memory_total_mb=total,
        memory_available_mb=available,
        device=device,
        training_workers=training,
        waiting_workers=waiting,
    )
