"""What passes between admission, the executors and their callers, as typed records."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.core.hosting import User
from zoo.core.settings import Limits
from zoo.core.spec import TrainSpec

ALIVE, DEAD, HUNG, UNKNOWN = "alive", "dead", "hung", "unknown"  # Liveness.state


@dataclass(frozen=True)
class AdmittedRun:
    """A run that passed admission (``admission.admit``): every check made, nothing recorded yet."""

    spec: TrainSpec  # resolved (its backend concrete) and validated
    owner: User
    device: str  # the queue it waits in: cpu or gpu
    limits: Limits  # the host's caps, checked again (and reserved) when the store records the run


@dataclass(frozen=True)
class Liveness:
    """An executor's verdict on one active run.

    ``alive``: it runs, or waits for a worker as it should. ``dead``: it can never end by itself (its
    worker is gone, or said why it fails; no worker took it up). ``hung``: its worker lives but has
    stopped reporting. ``unknown``: not this executor's to judge (another host's worker still reports).
    """

    state: str  # ALIVE, DEAD, HUNG or UNKNOWN
    reason: str | None = None  # why, for people, when dead or hung

    @property
    def failed(self) -> bool:
        return self.state in (DEAD, HUNG)


@dataclass(frozen=True)
class Capacity:
    """What an executor can take on now, on this host."""

    device: str  # cpu or gpu
    slots_per_lane: int  # runs one lane of the device trains at once
    running: int  # runs training on this host now
    waiting_workers: int  # warm workers ready for the next run
    starting_workers: int  # workers still loading their backend and data


@dataclass(frozen=True)
class ExecutorDescription:
    """An executor in words, for the sidebar and doctor."""

    name: str  # e.g. local
    host: str
    devices: str  # e.g. "GPU: NVIDIA H100", "CPU (2 cores)"
