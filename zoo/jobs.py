"""Where runs execute: one background worker process per run, queued per device.

``submit`` records a queued run and starts ``python -m zoo.jobs RUN_ID`` in a new process
session, so the run survives the page (or CLI) that started it, and a crash of the run
(exception, kill, out of memory) never touches the caller. The worker waits until its run
is first in its device's queue, trains, saves the model to the local zoo and closes the run.
Everything goes through the run store; nothing is passed back in memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

from zoo.backend import worker_environment
from zoo.data import load_mnist
from zoo.errors import RunError, ZooError
from zoo.paths import ensure_directory, zoo_home
from zoo.runs import Run, RunStore
from zoo.training import TrainSpec, check_fine_tuning

QUEUE_POLL_SECONDS = 0.2
HEARTBEAT_SECONDS = 1.0


def detect_device() -> str:
    """``gpu`` when this host has an NVIDIA GPU, else ``cpu``.

    Asks ``nvidia-smi`` rather than TensorFlow, so pages can show it without importing TensorFlow.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return "cpu"
    nvidia_smi = shutil.which("nvidia-smi")
    if not nvidia_smi:
        return "cpu"
    try:
        listing = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "cpu"
    return "gpu" if listing.returncode == 0 and "GPU" in listing.stdout else "cpu"


def describe_device() -> str:
    """One line for people: which GPU(s) this host trains on, or that it trains on the CPU."""
    if detect_device() == "gpu":
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5, check=False)
        names = [
            line.split(":", 1)[1].split("(")[0].strip() for line in listing.stdout.splitlines() if ":" in line
        ]
        return f"GPU: {', '.join(names)}"
    return f"CPU ({os.cpu_count()} cores)"


def submit(spec: TrainSpec, store: RunStore | None = None) -> str:
    """Queue a run for ``spec`` and start its worker process; return the run id at once.

    Raises:
        ZooError: the spec is invalid, or the MNIST file it names is missing or malformed
            (checked here, before anything starts).
        RunError: the worker process could not be started (the run is then closed as failed).
    """
    spec = spec.resolved()
    spec.validate()
    if spec.model == "cnn" and spec.mnist_source not in ("auto", "embedded"):
        load_mnist(spec.mnist_source)  # a bad file is refused now, not after a worker started
    check_fine_tuning(spec)  # so is a missing base model or a digit set unfit for fine-tuning
    store = store or RunStore()
    device = "cpu" if spec.device == "cpu" else detect_device()
    run_id = store.create_run(spec, device)
    log_path = ensure_directory(store.log_path(run_id).parent) / f"{run_id}.log"
    environment = {**os.environ, "ZOO_HOME": str(zoo_home()), **worker_environment(spec.backend, None)}
    if device == "cpu":
        environment["CUDA_VISIBLE_DEVICES"] = ""
    try:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "zoo.jobs", run_id, str(store.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
    except OSError as error:
        message = f"the worker process could not be started ({error.strerror or error}); start the run again."
        store.finish(run_id, "failed", message=message)
        raise RunError(message) from error
    store.set_worker(run_id, process.pid)
    return run_id


def wait(run_id: str, timeout: float = 600.0, store: RunStore | None = None, poll: float = 0.2) -> Run:
    """Block until the run has ended (or ``timeout`` seconds pass) and return it.

    Raises:
        RunError: the run is still active after ``timeout`` seconds.
    """
    store = store or RunStore()
    deadline = time.monotonic() + timeout
    while True:
        run = store.get(run_id)
        if not run.is_active:
            return run
        if time.monotonic() > deadline:
            raise RunError(f"run {run_id} is still {run.status} after {timeout:.0f} s.")
        time.sleep(poll)


class StoreReporter:
    """Sends ``training.fit`` progress to the run store (a ``ProgressReporter``)."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id

    def batch(self, step: int, epoch: int, metrics: dict[str, float], progress: dict[str, float]) -> None:
        self.store.log_metrics(self.run_id, step, epoch, _prefixed("batch", metrics), progress)

    def epoch(self, step: int, epoch: int, metrics: dict[str, float], progress: dict[str, float]) -> None:
        named = _prefixed("epoch", metrics)
        named["epoch/samples_per_second"] = progress["samples_per_second"]
        self.store.log_metrics(self.run_id, step, epoch, named, progress)

    def surface(self, step: int, epoch: int, surface: dict[str, Any]) -> None:
        self.store.save_surface(self.run_id, step, epoch, surface)

    def event(self, kind: str, message: str) -> None:
        self.store.add_event(self.run_id, kind, message)


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{name}": value for name, value in metrics.items()}


def run_worker(run_id: str, store: RunStore) -> int:
    """The worker process: wait for the device, train, save, close the run. Returns an exit code."""
    run = store.get(run_id)
    import keras  # noqa: F401 - TensorFlow's import (seconds) overlaps the wait in the queue

    from zoo import training

    while not store.try_claim(run_id):
        if not store.get(run_id).is_active:
            return 0  # stopped while queued
        store.heartbeat(run_id)
        time.sleep(QUEUE_POLL_SECONDS)
    finished = threading.Event()
    threading.Thread(target=_beat_heart, args=(store, run_id, finished), daemon=True).start()
    try:
        data = training.load_training_data(run.spec)
        store.set_started(run_id, data.source, training.describe_environment())
        with store.stop_checker(run_id) as stop_requested:
            result = training.fit(run.spec, StoreReporter(store, run_id), stop_requested, data)
        if not store.get(run_id).is_active:
            return 1  # failed meanwhile by a reader that found this worker silent: that verdict stands
        if result.status == "diverged":
            store.finish(run_id, "diverged", message=result.message)
            return 0
        model_name = _save_model(run, result, data)
        message = "stopped on request; the model as it stood is saved" if result.status == "stopped" else None
        store.finish(
            run_id, result.status, message=message, final_metrics=result.evaluation, model_name=model_name
        )
        return 0
    except ZooError as error:
        store.finish(run_id, "failed", message=str(error))
        return 1
    except Exception as error:  # the run fails; the reason is kept for the person who started it
        store.add_event(run_id, "traceback", traceback.format_exc())
        store.finish(run_id, "failed", message=f"{type(error).__name__}: {error}"[:500])
        return 1
    finally:
        finished.set()


def _beat_heart(store: RunStore, run_id: str, finished: threading.Event) -> None:
    """Mark the worker alive off the training thread, also through data loading and long steps."""
    while not finished.is_set():
        store.heartbeat(run_id)
        finished.wait(HEARTBEAT_SECONDS)


def _save_model(run: Run, result: Any, data: Any) -> str:
    from zoo.store import ModelStore

    models = ModelStore()
    name = models.unique_name(run.spec.model_name or f"{run.kind}-{run.id}")
    config = {
        "kind": run.kind,
        "spec": run.spec.to_dict(),
        "data_source": data.source,
        "run_id": run.id,
        "status": result.status,
    }
    if data.lineage is not None:
        config["lineage"] = data.lineage.to_dict()
    models.save(result.model, name, config=config, metrics=result.evaluation, history=result.history)
    return name


if __name__ == "__main__":
    sys.exit(run_worker(sys.argv[1], RunStore(sys.argv[2])))
