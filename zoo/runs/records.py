"""What the run store holds and hands out, as typed records: a run, where it executes, the metrics it
reports, its events, the people seen on pages, and what the store says of itself."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zoo.core.hosting import LOCAL_OWNER
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.ml.training import Environment, Progress

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "stopped", "diverged", "failed")
DAMAGED_STATUS = "damaged"  # how a run whose record cannot be read is listed (the others stay readable)
# Each device runs its lanes side by side, each with its own slots and its own queue: a Playground
# run (a tiny 2-D classifier) never waits behind a long CNN run.
LANES = ("main", "playground")


def lane_of(kind: str) -> str:
    """The lane a run of ``kind`` queues in on its device."""
    return "playground" if kind == "binary" else "main"


@dataclass(frozen=True)
class Placement:
    """Where a run executes: which executor, on which host, in which worker, on which device.

    Recorded when the run is submitted (executor and host; the Ray executor also the actor it hands
    the run to, and no host yet) and again when a worker claims it (``RunStore.claim_next``,
    ``RunStore.claim``). The local executor's worker is a process id, the Ray executor's an actor's
    name, its host ``NODE_IP/NODE_ID`` (16 hex digits of Ray's node id).
    """

    executor: str  # e.g. "local"
    host: str | None  # ZOO_HOST (default: the machine's name); None when not recorded (older stores)
    worker: str | None  # None while queued
    device: str  # cpu or gpu


@dataclass(frozen=True)
class Run:
    """One run as the store knows it."""

    id: str
    kind: str
    status: str
    spec: TrainSpec
    device: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    placement: Placement | None  # None for runs recorded before placements were (or by hand)
    data_source: str | None
    environment: Environment | None  # None until its worker started it
    progress: Progress | None  # None until the first batch is reported
    final_metrics: Scores | None  # its test-set scores; None until it ends, or when it ends without (failed)
    model_name: str | None
    message: str | None
    owner: str = LOCAL_OWNER
    stop_requested: bool = False  # a stop was asked for (a running run ends after its current batch)
    heartbeat_at: float | None = None  # when its worker last said it was alive

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table or a ``--json`` listing (made at that edge, read by nothing else)."""
        return {
            "id": self.id,
            "status": self.status,
            "owner": self.owner,
            "kind": self.kind,
            "dataset": self.spec.dataset,
            "data_source": self.data_source,
            "device": self.device,
            "executor": self.placement.executor if self.placement else None,
            "host": self.placement.host if self.placement else None,  # the local pool's host, Ray's node
            "worker": self.placement.worker if self.placement else None,
            "created_at": self.created_at,
            "duration_seconds": self.duration_seconds,
            "epochs": self.spec.num_epochs,
            "test_accuracy": self.final_metrics.accuracy if self.final_metrics is not None else None,
            "model_name": self.model_name,
            "message": self.message,
        }


@dataclass(frozen=True)
class Person:
    """A signed-in person as the store last saw them (``RunStore.record_seen``)."""

    name: str
    email: str | None
    is_admin: bool
    last_seen: float  # time.time() of the last page of theirs that ran


@dataclass(frozen=True)
class MetricsReport:
    """Metric values a run reported at one point of its fit, and when (``RunStore.log_metrics``)."""

    metrics: Mapping[str, float]  # values by name, e.g. {"batch/loss": 0.31}
    progress: Progress  # where the fit stood
    wall_time: float  # time.time() when reported


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One metric value as the store keeps it."""

    step: int
    epoch: int
    name: str
    value: float | None
    wall_time: float


@dataclass(frozen=True)
class MetricBatch:
    """Metric rows of a run in the order they were reported, and the cursor to read on from."""

    rows: tuple[MetricRow, ...]
    cursor: int  # pass it to ``RunStore.metrics_since`` for the rows reported after these


@dataclass(frozen=True)
class RunEvent:
    """One line of a run's event log."""

    time: float
    kind: str  # a short tag, e.g. data, warning, traceback, or the final status
    message: str


@dataclass(frozen=True)
class StoreDescription:
    """What a run store says of itself, for doctor and the pages (no secrets)."""

    url: str  # e.g. sqlite:////home/me/.zoo-studio/runs.sqlite3
    location: str  # where people find it: a file, a server
    schema_version: int
    notice: str | None  # set when opening it moved a damaged store aside
