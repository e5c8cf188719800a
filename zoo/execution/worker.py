"""A worker: the process that trains one run. ``python -m zoo.execution.worker DEVICE BACKEND URL`` is a
local pool worker (``zoo.execution.local``): it loads its backend and the data, waits in the pool of
its device and backend, claims the first run it can start from the run store at ``URL``, trains it
(``train_run``) and exits.

``train_run`` is what any executor's worker does with a claimed run: train (``training.fit``),
evaluate the model on the test set (``evaluation.evaluate_model``), save it to the local zoo with its
``ModelConfig``, and close the run; a store that fails under it ends the run as failed with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from zoo.core.errors import SettingsError, StorageError, StoreLocked, ZooError
from zoo.core.logs import chosen_level, configure_logging
from zoo.core.paths import ensure_directory
from zoo.core.scores import Scores
from zoo.core.settings import log_level
from zoo.core.spec import TrainSpec
from zoo.execution.devices import runs_per_device
from zoo.execution.local import LAST_WORDS_PREFIX, LocalExecutor, pool_owner_alive
from zoo.execution.reporter import STORE_RETRY_SECONDS, StoreReporter, patiently
from zoo.ml.evaluation import evaluate_model
from zoo.ml.printed import with_printed_digits
from zoo.ml.training import FitResult, PreparedModel, TrainingData
from zoo.runs.records import Placement, Run
from zoo.runs.store import RunStore, open_run_store

POOL_POLL_SECONDS = 0.1  # how often a waiting worker looks for a queued run: part of the start latency
SUPERVISE_SECONDS = 5.0  # how often a waiting worker sweeps this host's runs (zoo.execution.supervisor)
HEARTBEAT_SECONDS = 1.0
IDLE_SECONDS = 900.0  # a waiting worker beyond the pool's need leaves after this long
# A waiting worker prepares (builds and compiles) these models: a run of the same compiled form
# (the Train and Playground pages' defaults, whatever their data, length and seed) starts at once.
PREPARED_SPECS = (TrainSpec.binary(), TrainSpec.cnn())

logger = logging.getLogger(__name__)


def run_pool_worker(device: str, backend_name: str, executor: LocalExecutor) -> int:
    """A pool worker: load the backend and the data, wait in the pool, train the first run it is
    handed, and exit. Returns an exit code."""
    from zoo.ml import training

    pid, run, pool, store = os.getpid(), None, executor.pool, executor.store
    logger.info("worker %s started: %s on %s", pid, backend_name, device)
    try:
        load_backend()
        prepared = []  # a run waits already (or nobody wants the pool): no models prepared first
        if not executor.queued_count(device, backend_name) and pool_owner_alive():
            prepared = training.warm_up(PREPARED_SPECS)
        run = _wait_for_run(pid, device, backend_name, executor)
    finally:
        pool.leave(pid)  # claimed a run, or is not needed: either way out of the pool
    if run is None:
        logger.info("worker %s ended: not needed", pid)
        return 0

    def replace_this_worker() -> None:
        if not (pool_owner_alive() or executor.queued_count(device, backend_name)):
            return  # the server (or command) that wanted the pool has ended, and no run waits
        try:
            executor.fill_pool(device, backend_name)
        except (OSError, StorageError) as error:  # the next submit fills the pool instead
            with contextlib.suppress(StorageError):
                store.add_event(run.id, "pool", f"no replacement worker could be started: {error}")

    write_output_to(executor.log_path(run.id))
    if executor.queued_count(device, backend_name):
        replace_this_worker()  # a queued run needs a worker now
    # Else, on a GPU, once the run's first metric is in (not before: its start-up would compete with this
    # run's start for the CPU). On a CPU, only when the run ends: the start-up (backend import, warm-up
    # compiles) takes a whole core for 10-15 s, and the run trained at 0.66x of plain Keras meanwhile
    # (JAX, 2 cores, benchmarks/gpu.py).
    exit_code = train_run(run, store, replace_this_worker if device != "cpu" else None, prepared)
    replace_this_worker()  # and at the end, for the next run and for runs queued meanwhile
    logger.info("worker %s ended: run %s done (exit code %s)", pid, run.id, exit_code)
    return exit_code


def load_backend() -> None:
    """Import this worker's Keras backend (the bulk of a cold start) and hold it to its share of GPU
    memory when its environment gives one (``backend.worker_environment``)."""
    from zoo.ml import backend

    implementation = backend.current()
    fraction = os.environ.get(backend.MEMORY_FRACTION_VARIABLE)
    if fraction:
        megabytes = int(os.environ.get(backend.MEMORY_MEGABYTES_VARIABLE) or 0)
        implementation.limit_memory(float(fraction), megabytes)


def _wait_for_run(pid: int, device: str, backend_name: str, executor: LocalExecutor) -> Run | None:
    """Wait in the pool until a run is handed over; None when this worker is no longer needed: the
    pool has more workers than it needs, counting no waiting ones after IDLE_SECONDS or once the
    process that wanted the pool has ended (its queued runs are still taken up). Meanwhile it
    supervises this host's runs every SUPERVISE_SECONDS (a host with a warm pool is supervised even
    when no page or command is open)."""
    pool, store = executor.pool, executor.store
    if not pool.mark_ready(pid):
        return None  # not (or no longer) in the pool
    placement = Placement(executor.name, executor.host, str(pid), device)
    idle_since = next_sweep = time.monotonic()
    while True:
        with contextlib.suppress(StoreLocked):  # the store out of reach a moment: look again at the next poll
            run = store.claim_next(device, backend_name, runs_per_device(device), placement)
            if run is not None:
                return run
        now = time.monotonic()
        if now >= next_sweep:
            executor.supervise()
            next_sweep = now + SUPERVISE_SECONDS
        idle = now - idle_since > IDLE_SECONDS or not pool_owner_alive()
        if pool.leave_if_surplus(pid, executor.pool_target(device, backend_name, idle)):
            return None
        time.sleep(POOL_POLL_SECONDS)


def write_output_to(path: Path) -> None:
    """Send this process's stdout and stderr (Python's and native libraries') to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor = os.open(ensure_directory(path.parent) / path.name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for stream in (1, 2):
        os.dup2(descriptor, stream)
    os.close(descriptor)


def train_run(
    run: Run,
    store: RunStore,
    on_first_report: Callable[[], None] | None = None,
    prepared: Sequence[PreparedModel] = (),
) -> int:
    """Train a run this process has claimed, save its model and close it. Returns an exit code.

    When the run store fails under it (read-only, disk full, I/O error), the run ends as failed
    with that reason: see ``_fail_when_store_takes_it``."""
    try:
        return _train(run, store, on_first_report, prepared)
    except StorageError as error:
        return _fail_when_store_takes_it(store, run.id, str(error))


def say_last_words(reason: str) -> None:
    """A worker's one line on stderr (its run's log) before it ends without closing its run, so that
    its executor's supervision fails the run with this reason (``LocalExecutor.last_words``)."""
    with contextlib.suppress(OSError):  # the log may be unwritable too: then the generic reason stands
        print(LAST_WORDS_PREFIX + " ".join(reason.split()), file=sys.stderr, flush=True)


def _fail_when_store_takes_it(store: RunStore, run_id: str, reason: str) -> int:
    """Leave the reason as last words in the run's log, then close the run as failed as soon as the
    store takes writes again (retrying for up to STORE_RETRY_SECONDS). If it never does, supervision
    fails the run with the same reason, read from the log."""
    say_last_words(reason)
    deadline = time.monotonic() + STORE_RETRY_SECONDS
    while True:
        try:
            store.finish(run_id, "failed", message=reason)
            return 1
        except StorageError:
            if time.monotonic() > deadline:
                return 1
            time.sleep(HEARTBEAT_SECONDS)


def _train(
    run: Run,
    store: RunStore,
    on_first_report: Callable[[], None] | None,
    prepared: Sequence[PreparedModel],
) -> int:
    from zoo.ml import training

    run_id = run.id
    finished = threading.Event()
    threading.Thread(target=_beat_heart, args=(store, run_id, finished), daemon=True).start()
    try:
        data = training.load_training_data(run.spec)
        if run.spec.printed:
            data = with_printed_digits(run.spec, data)
        environment = training.describe_environment()
        patiently(lambda: store.set_started(run_id, data.source, environment))
        with store.stop_checker(run_id) as stop_requested:
            reporter = StoreReporter(store, run_id, on_first_report)
            result = training.fit(run.spec, reporter, _unless_out_of_reach(stop_requested), data, prepared)
        reporter.flush()
        if not patiently(lambda: store.get(run_id)).is_active:
            return 1  # failed meanwhile by supervision that found this worker silent: that verdict stands
        if result.status == "diverged":
            patiently(lambda: store.finish(run_id, "diverged", message=result.message))
            return 0
        # a stopped model is evaluated too, as it stood
        scores = evaluate_model(result.model, data).scores(result.fine_tuning)
        model_name = _save_model(run, result, scores, data)
        message = "stopped on request; the model as it stood is saved" if result.status == "stopped" else None
        patiently(
            lambda: store.finish(
                run_id, result.status, message=message, final_metrics=scores, model_name=model_name
            )
        )
        return 0
    except ZooError as error:
        reason = str(error)
        patiently(lambda: store.finish(run_id, "failed", message=reason))
        return 1
    except Exception as error:  # the run fails; the reason is kept for the person who started it
        reason, details = f"{type(error).__name__}: {error}"[:500], traceback.format_exc()
        patiently(lambda: store.add_event(run_id, "traceback", details))
        patiently(lambda: store.finish(run_id, "failed", message=reason))
        return 1
    finally:
        finished.set()


def _unless_out_of_reach(stop_requested: Callable[[], bool]) -> Callable[[], bool]:
    """The stop check, answering "no stop known" while the store is out of reach (locked, or its server
    cut the connection): the fit goes on, its reports kept by the reporter until the store answers."""

    def check() -> bool:
        try:
            return stop_requested()
        except StoreLocked:
            return False

    return check


def _beat_heart(store: RunStore, run_id: str, finished: threading.Event) -> None:
    """Mark the worker alive off the training thread, also through data loading and long steps."""
    while not finished.is_set():
        with contextlib.suppress(StorageError):  # the training thread meets the same failure and ends the run
            store.heartbeat(run_id)
        finished.wait(HEARTBEAT_SECONDS)


def _save_model(run: Run, result: FitResult, scores: Scores, data: TrainingData) -> str:
    from zoo.storage.models import ModelConfig, ModelStore

    models = ModelStore()
    config = ModelConfig(
        run.kind,
        run.spec,
        data.source,
        run.id,
        result.status,
        lineage=data.lineage,
        owner=run.owner,
        kept=run.spec.keep_model,
    )
    name = run.spec.model_name or f"{run.kind}-{run.id}"
    saved = models.save(
        result.model, name, config=config, metrics=scores, history=result.history, unique=True
    )
    models.remove_unkept()  # Playground models nobody kept for a day
    return saved.name  # the name it really got: another run may have taken the one asked for meanwhile


def main(device: str, backend_name: str, store_url: str) -> int:
    """``python -m zoo.execution.worker DEVICE BACKEND URL``: a pool worker's entry point; a store that
    cannot be used is one line in the workers' log, not a traceback."""
    try:
        configure_logging(chosen_level(log_level(), "info"))  # to stderr: the workers' log, then the run's
        return run_pool_worker(device, backend_name, LocalExecutor(open_run_store(store_url)))
    except (StorageError, SettingsError) as error:
        print(f"zoo worker {os.getpid()}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
