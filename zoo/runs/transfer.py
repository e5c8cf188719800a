"""Copy every run (with its metrics, event log and surface) and every person from one run store to
another, whatever their backends (SQLite -> PostgreSQL and back): ``python -m zoo store copy``. Through
the ``RunStore`` contract only, so any pair of backends works.
"""

from __future__ import annotations

import dataclasses
import logging

from zoo.core.errors import StorageError
from zoo.core.hosting import User
from zoo.runs.store import RunStore

EVERY_RUN = 2**62  # list_runs' limit that holds them all

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CopyReport:
    """What a copy wrote into the target, checked there after it."""

    runs: int
    metrics: int
    events: int
    surfaces: int
    people: int
    skipped: int  # runs the target held already (--merge): left as they were

    def summary(self) -> str:
        kept = f"; {self.skipped} runs it had already were left as they were" if self.skipped else ""
        return (
            f"copied {self.runs} runs ({self.metrics} metric rows, {self.events} events, {self.surfaces} "
            f"surfaces) and {self.people} people{kept}"
        )


def copy_runs(source: RunStore, target: RunStore, *, merge: bool = False) -> CopyReport:
    """Copy what ``source`` holds into ``target``, oldest run first, then check the target's counts.

    Args:
        source: the store to read.
        target: the store to write: empty, unless ``merge``.
        merge: add the runs ``target`` lacks to what it holds (a run id it has already is skipped).

    Raises:
        StorageError: ``target`` holds runs or people and ``merge`` is off (nothing is written), or
            the target's counts after the copy differ from the source's.
    """
    if source.url == target.url:
        raise StorageError(
            f"the source and the target are the same run store ({source.url}): name two stores."
        )
    if not merge and (target.list_runs(limit=1) or target.people()):
        raise StorageError(
            f"the target run store {target.url} is not empty: copy into an empty store, or add --merge to "
            "add the runs it lacks (the ones it has are left as they are)."
        )
    runs = metrics = events = surfaces = skipped = 0
    for run in reversed(source.list_runs(limit=EVERY_RUN)):
        rows = source.metrics_since(run.id).rows
        log = source.events(run.id)
        surface = source.surface(run.id)
        if not target.import_run(run, rows, log, surface):
            skipped += 1
            continue
        copied = (
            len(target.metrics_since(run.id).rows),
            len(target.events(run.id)),
            target.surface(run.id) is not None,
        )
        if copied != (len(rows), len(log), surface is not None):
            raise StorageError(
                f"run {run.id} in {target.url} has {copied[0]} metric rows and {copied[1]} events after the "
                f"copy, {len(rows)} and {len(log)} in {source.url}: copy it again into an empty store."
            )
        runs, metrics, events, surfaces = (
            runs + 1,
            metrics + len(rows),
            events + len(log),
            surfaces + bool(surface),
        )
        logger.info("run %s copied: %d metric rows, %d events", run.id, len(rows), len(log))
    people = source.people()
    for person in people:
        target.record_seen(User(person.name, person.email, person.is_admin), at=person.last_seen)
    missing = {person.name for person in people} - {person.name for person in target.people()}
    if missing:
        raise StorageError(f"{len(missing)} people were not copied into {target.url}: copy again.")
    return CopyReport(runs, metrics, events, surfaces, len(people), skipped)
