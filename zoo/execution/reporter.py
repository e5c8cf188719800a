"""How a worker reports a fit to the run store: ``StoreReporter`` (a ``training.ProgressReporter``) and
the worker's patient writes.

``training.fit`` reports batch metrics every ``REPORT_INTERVAL_SECONDS`` (0.25 s) and every epoch; the
reporter writes the reports gathered since its last write as one batch (``RunStore.log_metrics``).
Another process holding the store never holds training up, nor loses a metric: the reports are kept
in memory and written together once it lets go.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from zoo.core.errors import StoreLocked
from zoo.ml.training import DecisionSurface, Progress
from zoo.runs.records import MetricsReport
from zoo.runs.store import RunStore

STORE_RETRY_SECONDS = 300.0  # how long a worker whose store failed (or stays locked) keeps trying to write
# A report waits this long for another process's write lock (a write takes milliseconds: a lock held
# this long is no passing write), then it is kept in memory and training goes on; while reports are
# kept, writing them is tried again every LOCKED_RETRY_SECONDS.
LOCKED_REPORT_WAIT_SECONDS = 2.0
LOCKED_RETRY_SECONDS = 10.0


class StoreReporter:
    """Sends ``training.fit`` progress to the run store (a ``ProgressReporter``).

    Reports kept while the store is locked are written together once it lets go (tried again every
    ``LOCKED_RETRY_SECONDS``, for up to ``STORE_RETRY_SECONDS``); so is the latest decision surface.
    ``flush`` writes what is still kept when the fit ends. ``on_first_report`` is called once, after
    the first metrics are written.
    """

    def __init__(
        self, store: RunStore, run_id: str, on_first_report: Callable[[], None] | None = None
    ) -> None:
        self.store, self.run_id, self.on_first_report = store, run_id, on_first_report
        self.kept: list[MetricsReport] = []
        self.kept_surface: DecisionSurface | None = None
        self.last_try = 0.0

    def batch(self, metrics: dict[str, float], progress: Progress) -> None:
        self._report(_prefixed("batch", metrics), progress)

    def epoch(self, metrics: dict[str, float], progress: Progress) -> None:
        self.epochs_ended([(metrics, progress)])

    def epochs_ended(self, reports: Sequence[tuple[dict[str, float], Progress]]) -> None:
        # One write for them all: a write costs milliseconds, a compiled call ends dozens of epochs.
        now, waiting = time.time(), bool(self.kept)
        for metrics, progress in reports:
            named = _prefixed("epoch", metrics)
            named["epoch/samples_per_second"] = progress.samples_per_second
            self.kept.append(MetricsReport(named, progress, now))
        self._write(now, waiting)

    def _report(self, metrics: dict[str, float], progress: Progress) -> None:
        now, waiting = time.time(), bool(self.kept)
        self.kept.append(MetricsReport(metrics, progress, now))
        self._write(now, waiting)

    def _write(self, now: float, waiting: bool) -> None:
        """Write the kept reports, unless some were kept already (``waiting``) a moment ago."""
        if waiting and now - self.last_try < LOCKED_RETRY_SECONDS:
            return  # the store was locked a moment ago: keep this one too
        self.last_try = now
        try:
            self.store.log_metrics(self.run_id, self.kept, wait_seconds=LOCKED_REPORT_WAIT_SECONDS)
        except StoreLocked:
            if now - self.kept[0].wall_time > STORE_RETRY_SECONDS:
                raise
            return
        self.kept = []
        if self.kept_surface is not None:
            self.surface(self.kept_surface)
        if self.on_first_report is not None:
            callback, self.on_first_report = self.on_first_report, None
            callback()

    def surface(self, surface: DecisionSurface) -> None:
        # Only the latest surface counts: while reports are kept (the store is locked), so is it.
        self.kept_surface = surface
        if self.kept:
            return
        with contextlib.suppress(StoreLocked):  # if locked: written with the next reports, or by flush
            self.store.save_surface(self.run_id, surface, wait_seconds=LOCKED_REPORT_WAIT_SECONDS)
            self.kept_surface = None

    def event(self, kind: str, message: str) -> None:
        patiently(lambda: self.store.add_event(self.run_id, kind, message))

    def flush(self) -> None:
        """Write the reports and the surface still kept, waiting for the store's write lock if need be.

        Raises:
            StoreLocked: the store stayed locked for ``STORE_RETRY_SECONDS``.
            StorageError: the store cannot be written.
        """
        patiently(lambda: self.store.log_metrics(self.run_id, self.kept))
        self.kept = []
        surface = self.kept_surface
        if surface is not None:
            patiently(lambda: self.store.save_surface(self.run_id, surface))
            self.kept_surface = None


Written = TypeVar("Written")


def patiently(write: Callable[[], Written]) -> Written:
    """One of a worker's writes, tried again while another process holds the store's write lock (each
    try waits the store's own time), for up to ``STORE_RETRY_SECONDS``: a lock delays a run, it does
    not fail it.

    Raises:
        StoreLocked: the store stayed locked that long.
    """
    deadline = time.monotonic() + STORE_RETRY_SECONDS
    while True:
        try:
            return write()
        except StoreLocked:
            if time.monotonic() > deadline:
                raise


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{name}": value for name, value in metrics.items()}
