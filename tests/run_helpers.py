"""Helpers for tests that play a worker's part against a run store."""

from __future__ import annotations

import os

from zoo.execution.devices import host_name
from zoo.runs.records import Placement, Run
from zoo.runs.store import RunStore


def claim(store: RunStore, run_id: str, worker: int | None = None, host: str | None = None) -> Run:
    """Mark a queued run running as a worker would (``RunStore.claim_next``), the worker being this
    test process unless ``worker`` (a pid) is given, on this host unless ``host`` is. The run must be
    first in its lane's queue."""
    run = store.get(run_id)
    placement = Placement("local", host or host_name(), str(worker or os.getpid()), run.device)
    claimed = store.claim_next(run.device, run.spec.backend, 64, placement)
    assert claimed is not None and claimed.id == run_id, f"run {run_id} was not first in its queue"
    return claimed
