"""A run's whole life through ``zoo.execution``: admission, the local executor's real background worker
processes training real Keras models on tiny data, the run store in between, the local zoo at the end.

Queueing, completion and reproducibility share one module fixture: three identical tiny CNN runs
submitted at once (the first trains, the second waits its turn, the third is stopped while queued).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_helpers import claim

from zoo.app.charts.training import metrics_frame
from zoo.core.errors import RunError
from zoo.core.hosting import LOCAL_USER
from zoo.core.spec import TrainSpec
from zoo.execution import local
from zoo.execution.admission import start
from zoo.execution.devices import memory_fraction, runs_per_device
from zoo.execution.executor import Executor, open_executor, wait
from zoo.execution.local import warm_workers
from zoo.ml.backend import Device
from zoo.ml.data import load_embedded_mnist
from zoo.ml.evaluation import evaluate_predictions
from zoo.ml.training import predict_in_batches, scale_digits
from zoo.runs.records import Run
from zoo.runs.store import RunStore, open_run_store
from zoo.storage.models import ModelStore

# 320 embedded digits, 10% held out for validation: 288 training images, 9 batches of 32 per epoch.
TINY_CNN = {"mnist_source": "embedded", "max_train_samples": 320, "batch_size": 32, "num_epochs": 2}
TINY_CNN_STEPS_PER_EPOCH = 9
RUN_TIMEOUT = 240


@dataclass
class QueuedRuns:
    """Three identical runs submitted together, what was seen while the first trained, how they ended."""

    store: RunStore
    executor: Executor
    models: ModelStore
    first: Run
    second: Run
    third: Run
    second_while_first_ran: tuple[str, int | None]  # status and queue position
    third_while_first_ran: tuple[str, int | None]
    third_after_stop: Run


@pytest.fixture(scope="module")
def queued_runs(tmp_path_factory) -> QueuedRuns:
    home = tmp_path_factory.mktemp("queued-runs-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_HOME", str(home))
        executor = open_executor()
        store = executor.store
        spec = TrainSpec.cnn(**TINY_CNN)
        first, second, third = (start(spec, by=LOCAL_USER, executor=executor) for _ in range(3))
        deadline = time.monotonic() + RUN_TIMEOUT
        while store.get(first).status == "queued":
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.05)
        assert store.get(first).status == "running", store.get(first).message
        second_seen = (store.get(second).status, store.queue_position(second))
        third_seen = (store.get(third).status, store.queue_position(third))
        third_after_stop = store.request_stop(third, by=LOCAL_USER)
        assert store.get(first).status == "running", "the tiny run ended before the queue was observed"
        finished = [wait(run_id, RUN_TIMEOUT, executor) for run_id in (first, second, third)]
        executor.shutdown()
    return QueuedRuns(
        store, executor, ModelStore(home / "models"), *finished, second_seen, third_seen, third_after_stop
    )


def frame(store: RunStore, run_id: str, cursor: int = 0) -> pd.DataFrame:
    """A run's metric rows as the pages chart them."""
    return metrics_frame(store.metrics_since(run_id, cursor).rows)


def worker_pid(run: Run) -> int:
    return int(run.placement.worker)


def test_a_run_completes_with_metrics_model_environment_and_data_source(queued_runs):
    run, store = queued_runs.first, queued_runs.store
    assert run.status == "completed", run.message
    assert run.started_at <= run.ended_at
    # Final metrics: the evaluation of the whole embedded test set.
    assert run.final_metrics.num_examples == 1000
    assert 0.2 < run.final_metrics.accuracy <= 1.0  # chance is 0.1; 2 tiny epochs do better
    assert [scores.label for scores in run.final_metrics.per_class] == list(range(10))
    assert run.to_row()["test_accuracy"] == run.final_metrics.accuracy
    # Progress reached the last step of the last epoch.
    total = 2 * TINY_CNN_STEPS_PER_EPOCH
    assert (run.progress.step, run.progress.total_steps, run.progress.epoch) == (total, total, 2)
    # Metric rows: batches within the run, one row per epoch and metric at the epoch's last step.
    metrics = frame(store, run.id)
    batch_steps = metrics[metrics.name == "batch/loss"].step.tolist()
    assert batch_steps == sorted(batch_steps) and 1 <= batch_steps[0] <= batch_steps[-1] <= total
    epoch_rows = metrics[metrics.name == "epoch/loss"]
    assert epoch_rows.epoch.tolist() == [1, 2]
    assert epoch_rows.step.tolist() == [TINY_CNN_STEPS_PER_EPOCH, total]
    for name in ("epoch/accuracy", "epoch/val_loss", "epoch/val_accuracy", "epoch/samples_per_second"):
        assert (metrics.name == name).sum() == 2, name
    # Environment: the devices TensorFlow saw and the library versions of the worker.
    import keras
    import tensorflow as tf

    assert Device("/device:CPU:0", "CPU") in run.environment.devices
    assert run.environment.versions["tensorflow"] == tf.__version__
    assert run.environment.versions["keras"] == keras.__version__
    assert run.environment.versions["numpy"] == np.__version__
    assert run.device == "cpu"
    # The data source names the embedded subset and the cut to 320 images.
    assert "embedded MNIST subset" in run.data_source and "first 320 training images" in run.data_source
    kinds = [event.kind for event in store.events(run.id)]
    assert kinds[0] == "data" and "started" in kinds and kinds[-1] == "completed"


def test_the_completed_run_saved_its_trained_model_in_the_local_zoo(queued_runs):
    run, models = queued_runs.first, queued_runs.models
    assert run.model_name in [entry.name for entry in models.entries()]
    loaded = models.load(run.model_name)
    config = loaded.entry.config
    assert (config.kind, config.run_id, config.status) == ("cnn", run.id, "completed")
    assert config.spec == run.spec
    assert config.data_source == run.data_source
    assert loaded.entry.metrics == run.final_metrics
    epoch_losses = frame(queued_runs.store, run.id).query("name == 'epoch/loss'").value.tolist()
    assert [row["epoch"] for row in loaded.history] == [1.0, 2.0]
    assert [row["loss"] for row in loaded.history] == pytest.approx(epoch_losses, rel=1e-6)
    # The saved weights are the trained ones: they score exactly what the run reported.
    mnist = load_embedded_mnist()
    probabilities = predict_in_batches(loaded.model, scale_digits(mnist.x_test))
    assert evaluate_predictions(mnist.y_test, probabilities).accuracy == run.final_metrics.accuracy
    # The worker's library log lines are in the run's log, one line each.
    logged = queued_runs.executor.log_path(run.id).read_text()
    assert f" INFO zoo.storage.models: saved model {run.model_name} (cnn) in " in logged, logged


def test_runs_submitted_together_queue_on_the_device_one_after_the_other(queued_runs):
    assert queued_runs.second_while_first_ran == ("queued", 1)
    assert queued_runs.third_while_first_ran == ("queued", 2)
    first, second = queued_runs.first, queued_runs.second
    assert first.device == second.device == "cpu"
    assert second.status == "completed", second.message
    assert second.started_at >= first.ended_at  # never two runs on the device at once
    assert queued_runs.store.queue_position(second.id) is None  # no longer queued


def test_a_queued_run_stopped_before_it_starts_never_trains(queued_runs):
    stopped_at_once, third = queued_runs.third_after_stop, queued_runs.third
    assert stopped_at_once.status == "stopped"  # at once, not when its turn comes
    assert third.status == "stopped" and "before it started" in third.message
    assert third.started_at is None and third.model_name is None and third.progress is None
    assert queued_runs.store.metrics_since(third.id).rows == ()
    saved = {entry.config.run_id for entry in queued_runs.models.entries()}
    assert saved == {queued_runs.first.id, queued_runs.second.id}
    assert third.placement.worker is None  # no worker ever took it


def test_same_seed_same_data_same_device_gives_the_same_metrics(queued_runs):
    store, first, second = queued_runs.store, queued_runs.first, queued_runs.second

    def epoch_metrics(run: Run) -> list[tuple[int, str, float]]:
        rows = frame(store, run.id)
        rows = rows[rows.name.str.startswith("epoch/") & (rows.name != "epoch/samples_per_second")]
        return list(zip(rows.step, rows.name, rows.value, strict=True))

    assert len(epoch_metrics(first)) == 10  # 2 epochs: loss, accuracy, val_loss, val_accuracy, learning_rate
    assert epoch_metrics(first) == epoch_metrics(second)  # identical, not merely close
    assert first.final_metrics == second.final_metrics


def test_a_stop_request_lands_within_one_compiled_call_and_keeps_the_model(zoo_home):
    """The request is written while the worker is held mid-report by a SQLite write lock, so it
    arrives between two known calls of training steps (the binary classifier trains in compiled calls
    of about 0.1 s, each reported once); the worker must stop after the very next call."""
    executor = open_executor()
    store = executor.store
    # Batches of one point: 14,000 steps an epoch, so a stop that came an epoch late would show.
    spec = TrainSpec.binary(num_samples=20_000, batch_size=1, num_epochs=1)
    run_id = start(spec, by=LOCAL_USER, executor=executor)
    wait_until(lambda: steps_done(store.get(run_id)) >= 20, RUN_TIMEOUT, store, run_id)
    connection = sqlite3.connect(store.describe().location, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")  # the worker's next write (metrics or surface) now waits for us
        locked_at = time.time()
        cursor = store.metrics_since(run_id).cursor  # a reader still reads: the rows written so far
        time.sleep(1.5)  # fifteen calls' time: the worker is surely held in a write
        # What request_stop writes, in the same transaction, so it lands before the held write returns.
        connection.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (run_id,))
        released_at = time.time()
        connection.execute("COMMIT")
    finally:
        connection.close()
    run = wait(run_id, RUN_TIMEOUT, executor)
    assert run.status == "stopped", run.message
    after = frame(store, run_id, cursor)
    # A free worker reports every call (about 0.1 s): none made in the lock's last second proves it held.
    assert not after.wall_time.between(locked_at + 0.5, released_at).any(), (
        "the worker was not held: no proof"
    )
    calls_after_request = sorted(
        set(after[(after.name == "batch/loss") & (after.wall_time > released_at)].step)
    )
    assert calls_after_request == [run.progress.step], (
        f"training reported the steps {calls_after_request} after the stop request; it ended at "
        f"{run.progress.step}"
    )
    assert run.progress.step < run.progress.total_steps
    epoch_row = after[after.name == "epoch/loss"]
    assert epoch_row.step.tolist() == [run.progress.step]  # the epoch ended where training did
    # The model as it stood at the stop is in the local zoo, evaluated.
    assert "stopped on request" in run.message
    entry = ModelStore().entry(run.model_name)
    assert entry.config.status == "stopped" and entry.config.run_id == run_id
    assert 0 <= run.final_metrics.accuracy <= 1 and run.final_metrics.num_examples == 6000


def test_an_absurd_learning_rate_ends_the_run_as_diverged(zoo_home):
    executor = open_executor()
    store = executor.store
    spec = TrainSpec.cnn(**{**TINY_CNN, "num_epochs": 3}, optimizer="sgd", learning_rate=10.0)
    run = wait(start(spec, by=LOCAL_USER, executor=executor), RUN_TIMEOUT, executor)
    assert run.status == "diverged", run.message
    match = re.search(r"the loss became .+ at step (\d+): ", run.message)
    assert match, run.message
    step = int(match.group(1))
    assert 1 <= step <= 3 * TINY_CNN_STEPS_PER_EPOCH
    assert "learning rate 10 is too large" in run.message
    # Training ended there: no metric row comes from a later step, and nothing was saved.
    assert max(row.step for row in store.metrics_since(run.id).rows) <= step
    assert run.model_name is None and ModelStore().entries() == []
    assert store.events(run.id)[-1].kind == "diverged"


def test_a_killed_worker_leaves_a_failed_run_with_a_reason_at_the_next_supervision(zoo_home):
    executor = open_executor()
    store = executor.store
    spec = TrainSpec.cnn(mnist_source="embedded", num_epochs=50)
    run_id = start(spec, by=LOCAL_USER, executor=executor)
    wait_until(lambda: steps_done(store.get(run_id)) >= 1, RUN_TIMEOUT, store, run_id)
    pid = worker_pid(store.get(run_id))
    os.kill(pid, signal.SIGKILL)
    assert wait_for_exit(pid, 30)
    assert store.get(run_id).status == "running"  # reading it changes nothing: supervision does
    assert executor.supervise() == [run_id]
    run = store.get(run_id)
    assert run.status == "failed"
    assert f"worker process {pid} ended without finishing" in run.message
    assert run.ended_at is not None and not run.is_active
    assert store.events(run_id)[-1].kind == "failed"
    assert executor.supervise() == []  # failed once


def test_a_worker_whose_run_was_failed_as_hung_stops_and_saves_nothing(zoo_home):
    executor = open_executor()
    store = executor.store
    run_id = start(TrainSpec.cnn(mnist_source="embedded", num_epochs=50), by=LOCAL_USER, executor=executor)
    wait_until(lambda: steps_done(store.get(run_id)) >= 1, RUN_TIMEOUT, store, run_id)
    verdict = "the worker process stopped reporting for over 120 s; it is treated as hung."
    store.finish(run_id, "failed", message=verdict)  # what supervision records for a silent worker
    assert wait_for_exit(worker_pid(store.get(run_id)), 30), "the worker went on training"
    run = store.get(run_id)
    assert (run.status, run.message, run.model_name) == ("failed", verdict, None)
    assert ModelStore().entries() == []


def test_an_invalid_spec_is_refused_before_anything_starts(zoo_home):
    executor = open_executor()
    with pytest.raises(ValueError, match="batch_size=0"):
        start(TrainSpec(batch_size=0), by=LOCAL_USER, executor=executor)
    assert executor.store.list_runs() == [] and executor.pool.workers() == []


def test_a_worker_that_cannot_start_is_one_error_and_nothing_is_queued(zoo_home, monkeypatch):
    monkeypatch.setattr(local.sys, "executable", str(zoo_home / "no-python-here"))
    executor = open_executor()
    with pytest.raises(RunError, match=r"the worker process could not be started .*; start the run again"):
        start(TrainSpec.binary(), by=LOCAL_USER, executor=executor)
    assert executor.store.list_runs() == []  # no run waits for a worker that never comes


def test_a_run_starts_in_a_warm_worker_that_then_ends_and_is_replaced(zoo_home, monkeypatch):
    monkeypatch.setenv("ZOO_WARM_WORKERS", "1")
    executor = open_executor()
    assert executor.fill_pool("cpu", "tensorflow") == 1
    (warm,) = executor.pool.workers()
    deadline = time.monotonic() + RUN_TIMEOUT
    while not executor.pool.ready("cpu"):  # the worker loads TensorFlow and the data, then waits
        assert time.monotonic() < deadline, "the worker never became ready"
        time.sleep(0.1)
    assert executor.capacity().waiting_workers == 1
    assert executor.fill_pool("cpu", "tensorflow") == 0  # the pool is full: nothing more starts
    run = wait(
        start(TrainSpec.binary(num_epochs=2, device="cpu"), by=LOCAL_USER, executor=executor),
        RUN_TIMEOUT,
        executor,
    )
    assert run.status == "completed" and worker_pid(run) == warm  # the waiting worker took it
    assert run.placement.host == executor.host and run.placement.executor == "local"
    assert run.environment.backend == "tensorflow"
    assert wait_for_exit(warm, 30)  # and ended with its run: a worker is never reused
    (replacement,) = executor.pool.workers()
    assert replacement != warm
    assert executor.log_path(run.id).is_file()  # the run's own log, as with a worker started for it
    assert executor.worker_log(run) == str(executor.log_path(run.id))


def test_a_warm_worker_stops_mid_epoch_within_a_few_batches_and_no_page_starts_a_worker_meanwhile(
    zoo_home, monkeypatch
):
    """The Train page's run as the walk of issue 22 had it: the article's CNN (the compiled model a
    warm worker prepared) for 4 epochs on the embedded digits, stopped in epoch 2."""
    monkeypatch.setenv("ZOO_WARM_WORKERS", "1")
    executor = open_executor()
    store = executor.store
    executor.keep_warm()
    deadline = time.monotonic() + RUN_TIMEOUT
    while not executor.pool.ready("cpu"):
        assert time.monotonic() < deadline, "the worker never became ready"
        time.sleep(0.1)
    run_id = start(TrainSpec.cnn(mnist_source="embedded", num_epochs=4), by=LOCAL_USER, executor=executor)
    steps_per_epoch = 29  # 3,600 training digits (4,000 less the validation split) in batches of 128
    wait_until(lambda: steps_done(store.get(run_id)) > steps_per_epoch + 3, RUN_TIMEOUT, store, run_id)
    # While the run trains on the CPU, a page shown tops up nothing: a worker's start-up would take a
    # core from the run (the run's worker starts its replacement when it ends).
    executor.keep_warm()
    assert executor.pool.workers() == []
    step_at_request = steps_done(store.get(run_id))
    executor.stop(run_id, by=LOCAL_USER)
    run = wait(run_id, RUN_TIMEOUT, executor)
    assert run.status == "stopped", run.message
    # Reported progress lags the training by at most a report interval (0.25 s): a few batches.
    assert run.progress.epoch == 2 and run.progress.step - step_at_request <= 8, (
        f"stop requested at step {step_at_request}, training ended at step {run.progress.step}"
    )
    assert ModelStore().entry(run.model_name).config.status == "stopped"
    deadline = time.monotonic() + RUN_TIMEOUT
    while not executor.pool.workers():  # the replacement, once the run has ended
        assert time.monotonic() < deadline, "no replacement worker started after the run"
        time.sleep(0.1)


def test_pool_settings_are_checked_with_the_fix_in_the_message(monkeypatch):
    monkeypatch.setenv("ZOO_RUNS_PER_DEVICE", "two")
    with pytest.raises(ValueError, match="ZOO_RUNS_PER_DEVICE='two': set a whole number from 1 to 64"):
        runs_per_device("cpu")
    monkeypatch.setenv("ZOO_RUNS_PER_DEVICE", "3")
    assert runs_per_device("cpu") == 3 and memory_fraction("gpu") == pytest.approx(0.3)
    monkeypatch.delenv("ZOO_RUNS_PER_DEVICE")
    assert runs_per_device("cpu") == 1 and memory_fraction("cpu") is None
    monkeypatch.setenv("ZOO_WARM_WORKERS", "-1")
    with pytest.raises(ValueError, match="ZOO_WARM_WORKERS='-1'"):
        warm_workers()


def steps_done(run: Run) -> int:
    return run.progress.step if run.progress else 0


def wait_until(condition, timeout: float, store: RunStore, run_id: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        run = store.get(run_id)
        assert run.is_active, f"run ended early: {run.status} {run.message}"
        assert time.monotonic() < deadline, f"run still {run.status} after {timeout} s"
        time.sleep(0.05)


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether ``pid`` ended (gone, or a zombie its parent has not reaped) within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    stat = Path(f"/proc/{pid}/stat")
    while time.monotonic() < deadline:
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_workers_find_zoo_wherever_the_caller_stands(zoo_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as a script elsewhere, or `streamlit run /abs/path/app.py`: no zoo/ here
    monkeypatch.delenv("PYTHONPATH", raising=False)
    executor = open_executor()
    run_id = start(TrainSpec.binary(num_epochs=1), by=LOCAL_USER, executor=executor)
    run = wait(run_id, 50, executor)  # a run no worker takes up waits 60 s before it fails
    assert run.status == "completed", run.message


def process_state(pid: int) -> str:
    """The state letter of ``pid`` in /proc (``T``: stopped by a signal, ``Z``: a zombie)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_reading_runs_never_signals_a_frozen_worker_and_supervision_then_ends_it(zoo_home):
    """A worker frozen by SIGSTOP mid-run, its heartbeat older than the hung limit: every read a page
    or a health check makes leaves the process frozen and the run running; only a supervision sweep
    kills it (its whole process group) and fails the run as hung."""
    executor = open_executor()
    store = executor.store
    run_id = start(TrainSpec.cnn(mnist_source="embedded", num_epochs=50), by=LOCAL_USER, executor=executor)
    wait_until(lambda: steps_done(store.get(run_id)) >= 1, RUN_TIMEOUT, store, run_id)
    pid = worker_pid(store.get(run_id))
    os.kill(pid, signal.SIGSTOP)
    time.sleep(1.5)  # silent for longer than the sweep below allows (and than a page's refresh)
    for _ in range(5):
        store.get(run_id), store.list_runs(), store.active_runs(), store.queue_position(run_id)
        store.metrics_since(run_id), store.events(run_id), store.surface(run_id)
    assert process_state(pid) == "T", "a read signalled the frozen worker"
    assert store.get(run_id).status == "running"
    impatient = local.LocalExecutor(store, heartbeat_timeout=1.0)  # the 120 s of silence, taken as passed
    assert impatient.supervise() == [run_id]
    assert wait_for_exit(pid, 30), "supervision did not end the frozen worker"
    run = store.get(run_id)
    assert run.status == "failed" and f"worker process {pid} stopped reporting" in run.message
    assert "treated as hung and ended" in run.message


def test_a_run_of_another_host_is_judged_by_its_heartbeat_only_and_its_process_never_signalled(zoo_home):
    """A run claimed by a worker on host-b (its pid happening to be a live process here): host-a's
    supervision leaves it while it beats, fails it once its heartbeat is stale, and never signals the
    process with that pid on this machine."""
    store = open_run_store()
    here = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        run_id = store.create_run(TrainSpec.binary(), "cpu")
        claim(store, run_id, worker=here.pid, host="host-b")
        store.heartbeat(run_id)
        host_a = local.LocalExecutor(store, host="host-a")
        assert host_a.liveness(store.get(run_id)).state == local.UNKNOWN
        assert host_a.supervise() == []
        time.sleep(1.2)
        stale = local.LocalExecutor(store, host="host-a", heartbeat_timeout=1.0)
        assert stale.supervise() == [run_id]
        run = store.get(run_id)
        assert run.status == "failed" and "its worker on host-b stopped reporting" in run.message
        assert here.poll() is None and process_state(here.pid) != "T", (
            "host-a signalled a process of host-b's"
        )
    finally:
        here.kill()
        here.wait()


def test_a_start_goes_page_admission_executor_store_and_never_calls_back_up(zoo_home, monkeypatch):
    """Every call made between zoo modules during a Start (``admission.start``, as the Train page
    calls it), recorded with ``sys.setprofile``. The modules are ranked as the flow should run:
    admission (0), the executor (1: ``zoo.execution`` but the records and devices vocabulary), the run
    store (2: ``zoo.runs``). Asserted: the three are entered in that order, and no call goes from a
    module to one ranked before it (the store never calls the executor or admission, the executor
    never calls admission), so the flow never climbs back to a module it left; the calls back
    the other way that the issue counted (jobs -> runs -> jobs -> runs) would fail it."""
    monkeypatch.setenv("ZOO_WARM_WORKERS", "0")  # one worker, started for the run
    executor = open_executor()
    neutral = {"zoo.execution.records", "zoo.execution.devices", "zoo.runs.records"}

    def rank(module: str) -> int | None:
        if module in neutral:
            return None
        if module == "zoo.execution.admission":
            return 0
        if module.startswith("zoo.execution."):
            return 1
        return 2 if module.startswith("zoo.runs.") else None

    entered: list[int] = []
    upward: list[str] = []

    def profile(frame, event, _argument) -> None:
        if event != "call":
            return
        callee = rank(frame.f_globals.get("__name__", ""))
        if callee is None:
            return
        if not entered or entered[-1] != callee:
            entered.append(callee)
        caller = frame.f_back
        while caller is not None and rank(caller.f_globals.get("__name__", "")) is None:
            caller = caller.f_back  # through the standard library (contextlib, sqlite3) to a zoo module
        if caller is not None and rank(caller.f_globals["__name__"]) > callee:
            upward.append(f"{caller.f_globals['__name__']}.{caller.f_code.co_name} -> {frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        run_id = start(TrainSpec.binary(num_epochs=1), by=LOCAL_USER, executor=executor)
    finally:
        sys.setprofile(None)
    assert upward == []
    assert [ranked for index, ranked in enumerate(entered) if ranked not in entered[:index]] == [0, 1, 2]
    assert executor.store.get(run_id).status in ("queued", "running", "completed")
    executor.stop(run_id, by=LOCAL_USER)
