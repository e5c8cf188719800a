"""A run's whole life through ``zoo.execution.jobs``: real background worker processes training real Keras
models on tiny data, the SQLite run store in between, the local zoo at the end.

Queueing, completion and reproducibility share one module fixture: three identical tiny CNN runs
submitted at once (the first trains, the second waits its turn, the third is stopped while queued).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from zoo.core.errors import RunError
from zoo.core.hosting import LOCAL_USER
from zoo.core.spec import TrainSpec
from zoo.execution import jobs
from zoo.ml.backend import Device
from zoo.ml.data import load_embedded_mnist
from zoo.ml.evaluation import evaluate_predictions
from zoo.ml.training import predict_in_batches, scale_digits
from zoo.runs.store import Run, RunStore
from zoo.storage.models import ModelStore

# 320 embedded digits, 10% held out for validation: 288 training images, 9 batches of 32 per epoch.
TINY_CNN = {"mnist_source": "embedded", "max_train_samples": 320, "batch_size": 32, "num_epochs": 2}
TINY_CNN_STEPS_PER_EPOCH = 9
RUN_TIMEOUT = 240


@dataclass
class QueuedRuns:
    """Three identical runs submitted together, what was seen while the first trained, how they ended."""

    store: RunStore
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
        store = RunStore()
        spec = TrainSpec.cnn(**TINY_CNN)
        first, second, third = (jobs.submit(spec, store, by=LOCAL_USER) for _ in range(3))
        deadline = time.monotonic() + RUN_TIMEOUT
        while store.get(first).status == "queued":
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.05)
        assert store.get(first).status == "running", store.get(first).message
        second_seen = (store.get(second).status, store.queue_position(second))
        third_seen = (store.get(third).status, store.queue_position(third))
        third_after_stop = store.request_stop(third, by=LOCAL_USER)
        assert store.get(first).status == "running", "the tiny run ended before the queue was observed"
        finished = [jobs.wait(run_id, RUN_TIMEOUT, store) for run_id in (first, second, third)]
    return QueuedRuns(
        store, ModelStore(home / "models"), *finished, second_seen, third_seen, third_after_stop
    )


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
    metrics = store.metrics_frame(run.id)
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
    epoch_losses = queued_runs.store.metrics_frame(run.id).query("name == 'epoch/loss'").value.tolist()
    assert [row["epoch"] for row in loaded.history] == [1.0, 2.0]
    assert [row["loss"] for row in loaded.history] == pytest.approx(epoch_losses, rel=1e-6)
    # The saved weights are the trained ones: they score exactly what the run reported.
    mnist = load_embedded_mnist()
    probabilities = predict_in_batches(loaded.model, scale_digits(mnist.x_test))
    assert evaluate_predictions(mnist.y_test, probabilities).accuracy == run.final_metrics.accuracy
    # The worker's library log lines are in the run's log, one line each.
    logged = queued_runs.store.log_path(run.id).read_text()
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
    assert queued_runs.store.metrics_frame(third.id).empty
    saved = {entry.config.run_id for entry in queued_runs.models.entries()}
    assert saved == {queued_runs.first.id, queued_runs.second.id}
    # Its worker noticed and exited instead of waiting for the device.
    assert wait_for_exit(third.worker_pid, 30), f"the stopped run's worker {third.worker_pid} still runs"


def test_same_seed_same_data_same_device_gives_the_same_metrics(queued_runs):
    store, first, second = queued_runs.store, queued_runs.first, queued_runs.second

    def epoch_metrics(run: Run) -> list[tuple[int, str, float]]:
        frame = store.metrics_frame(run.id)
        frame = frame[frame.name.str.startswith("epoch/") & (frame.name != "epoch/samples_per_second")]
        return list(zip(frame.step, frame.name, frame.value, strict=True))

    assert len(epoch_metrics(first)) == 10  # 2 epochs: loss, accuracy, val_loss, val_accuracy, learning_rate
    assert epoch_metrics(first) == epoch_metrics(second)  # identical, not merely close
    assert first.final_metrics == second.final_metrics


def test_a_stop_request_lands_within_one_batch_and_keeps_the_model(zoo_home):
    """The request is written while the worker is held mid-report by a SQLite write lock, so it
    arrives between two known batches; the worker must stop after the very next batch."""
    store = RunStore()
    # Batches of one point: about a millisecond each, so even a 0.1 s polling delay would show.
    spec = TrainSpec.binary(num_samples=20_000, batch_size=1, num_epochs=1)
    run_id = jobs.submit(spec, store, by=LOCAL_USER)
    wait_until(lambda: steps_done(store.get(run_id)) >= 20, RUN_TIMEOUT, store, run_id)
    connection = sqlite3.connect(store.path, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")  # the worker's next metrics write now waits for us
        (last_id,) = connection.execute("SELECT MAX(id) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
        time.sleep(1.5)  # six report intervals: the worker is surely held in a write
        # What request_stop writes, in the same transaction, so it lands before the held write returns.
        connection.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (run_id,))
        released_at = time.time()
        connection.execute("COMMIT")
    finally:
        connection.close()
    run = jobs.wait(run_id, RUN_TIMEOUT, store)
    assert run.status == "stopped", run.message
    after = store.metrics_frame(run_id, since_id=last_id)
    assert after.wall_time.iloc[0] < released_at, "the worker was not held by the lock: no proof"
    step_at_request = int(after.step.iloc[0])  # the batch whose report was held
    batches_after_request = run.progress.step - step_at_request
    assert batches_after_request == 1, (
        f"the stop was requested after batch {step_at_request} and training ended at batch "
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
    store = RunStore()
    spec = TrainSpec.cnn(**{**TINY_CNN, "num_epochs": 3}, optimizer="sgd", learning_rate=10.0)
    run = jobs.wait(jobs.submit(spec, store, by=LOCAL_USER), RUN_TIMEOUT, store)
    assert run.status == "diverged", run.message
    match = re.search(r"the loss became .+ at step (\d+): ", run.message)
    assert match, run.message
    step = int(match.group(1))
    assert 1 <= step <= 3 * TINY_CNN_STEPS_PER_EPOCH
    assert "learning rate 10 is too large" in run.message
    # Training ended there: no metric row comes from a later step, and nothing was saved.
    assert store.metrics_frame(run.id).step.max() <= step
    assert run.model_name is None and ModelStore().entries() == []
    assert store.events(run.id)[-1].kind == "diverged"


def test_a_killed_worker_leaves_a_failed_run_with_a_reason(zoo_home):
    store = RunStore()
    spec = TrainSpec.cnn(mnist_source="embedded", num_epochs=50)
    run_id = jobs.submit(spec, store, by=LOCAL_USER)
    wait_until(lambda: steps_done(store.get(run_id)) >= 1, RUN_TIMEOUT, store, run_id)
    pid = store.get(run_id).worker_pid
    os.kill(pid, signal.SIGKILL)
    assert wait_for_exit(pid, 30)
    run = store.get(run_id)  # the first read after the worker died
    assert run.status == "failed"
    assert f"worker process {pid} ended without finishing" in run.message
    assert run.ended_at is not None and not run.is_active
    assert store.events(run_id)[-1].kind == "failed"


def test_a_worker_whose_run_was_failed_as_hung_stops_and_saves_nothing(zoo_home):
    store = RunStore()
    run_id = jobs.submit(TrainSpec.cnn(mnist_source="embedded", num_epochs=50), store, by=LOCAL_USER)
    wait_until(lambda: steps_done(store.get(run_id)) >= 1, RUN_TIMEOUT, store, run_id)
    verdict = "the worker process stopped reporting for over 120 s; it is treated as hung."
    store.finish(run_id, "failed", message=verdict)  # what a reader records for a silent worker
    assert wait_for_exit(store.get(run_id).worker_pid, 30), "the worker went on training"
    run = store.get(run_id)
    assert (run.status, run.message, run.model_name) == ("failed", verdict, None)
    assert ModelStore().entries() == []


def test_an_invalid_spec_is_refused_before_anything_starts(zoo_home):
    store = RunStore()
    with pytest.raises(ValueError, match="batch_size=0"):
        jobs.submit(TrainSpec(batch_size=0), store, by=LOCAL_USER)
    assert store.list_runs() == []


def test_a_worker_that_cannot_start_fails_its_run_with_a_reason(zoo_home, monkeypatch):
    monkeypatch.setattr(jobs.sys, "executable", str(zoo_home / "no-python-here"))
    store = RunStore()
    with pytest.raises(RunError, match="the worker process could not be started"):
        jobs.submit(TrainSpec.binary(), store, by=LOCAL_USER)
    (run,) = store.list_runs()
    assert run.status == "failed" and "could not be started" in run.message and not run.is_active


def test_a_run_starts_in_a_warm_worker_that_then_ends_and_is_replaced(zoo_home, monkeypatch):
    monkeypatch.setenv("ZOO_WARM_WORKERS", "1")
    store = RunStore()
    assert jobs.fill_pool("cpu", "tensorflow", store) == 1
    (warm,) = store.pool_workers()
    deadline = time.monotonic() + RUN_TIMEOUT
    while not ready_workers(store):  # the worker loads TensorFlow and the data, then waits
        assert time.monotonic() < deadline, "the worker never became ready"
        time.sleep(0.1)
    assert jobs.fill_pool("cpu", "tensorflow", store) == 0  # the pool is full: nothing more starts
    run = jobs.wait(
        jobs.submit(TrainSpec.binary(num_epochs=2, device="cpu"), store, by=LOCAL_USER), RUN_TIMEOUT, store
    )
    assert run.status == "completed" and run.worker_pid == warm  # the waiting worker took it
    assert run.environment.backend == "tensorflow"
    assert wait_for_exit(warm, 30)  # and ended with its run: a worker is never reused
    (replacement,) = store.pool_workers()
    assert replacement != warm
    assert store.log_path(run.id).is_file()  # the run's own log, as with a worker started for it


def test_a_warm_worker_stops_mid_epoch_within_a_few_batches_and_no_page_starts_a_worker_meanwhile(
    zoo_home, monkeypatch
):
    """The Train page's run as the walk of issue 22 had it: the article's CNN (the compiled model a
    warm worker prepared) for 4 epochs on the embedded digits, stopped in epoch 2."""
    monkeypatch.setenv("ZOO_WARM_WORKERS", "1")
    store = RunStore()
    jobs.keep_pool_warm("cpu", store)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not ready_workers(store):
        assert time.monotonic() < deadline, "the worker never became ready"
        time.sleep(0.1)
    run_id = jobs.submit(TrainSpec.cnn(mnist_source="embedded", num_epochs=4), store, by=LOCAL_USER)
    steps_per_epoch = 29  # 3,600 training digits (4,000 less the validation split) in batches of 128
    wait_until(lambda: steps_done(store.get(run_id)) > steps_per_epoch + 3, RUN_TIMEOUT, store, run_id)
    # While the run trains on the CPU, a page shown tops up nothing: a worker's start-up would take a
    # core from the run (the run's worker starts its replacement when it ends).
    jobs.keep_pool_warm("cpu", store)
    assert store.pool_workers() == []
    step_at_request = steps_done(store.get(run_id))
    store.request_stop(run_id, by=LOCAL_USER)
    run = jobs.wait(run_id, RUN_TIMEOUT, store)
    assert run.status == "stopped", run.message
    # Reported progress lags the training by at most a report interval (0.25 s): a few batches.
    assert run.progress.epoch == 2 and run.progress.step - step_at_request <= 8, (
        f"stop requested at step {step_at_request}, training ended at step {run.progress.step}"
    )
    assert ModelStore().entry(run.model_name).config.status == "stopped"
    deadline = time.monotonic() + RUN_TIMEOUT
    while not store.pool_workers():  # the replacement, once the run has ended
        assert time.monotonic() < deadline, "no replacement worker started after the run"
        time.sleep(0.1)


def ready_workers(store: RunStore) -> list[int]:
    with sqlite3.connect(store.path) as connection:
        return [row[0] for row in connection.execute("SELECT pid FROM workers WHERE status = 'ready'")]


def test_pool_settings_are_checked_with_the_fix_in_the_message(monkeypatch):
    monkeypatch.setenv("ZOO_RUNS_PER_DEVICE", "two")
    with pytest.raises(ValueError, match="ZOO_RUNS_PER_DEVICE='two': set a whole number from 1 to 64"):
        jobs.runs_per_device("cpu")
    monkeypatch.setenv("ZOO_RUNS_PER_DEVICE", "3")
    assert jobs.runs_per_device("cpu") == 3 and jobs.memory_fraction("gpu") == pytest.approx(0.3)
    monkeypatch.delenv("ZOO_RUNS_PER_DEVICE")
    assert jobs.runs_per_device("cpu") == 1 and jobs.memory_fraction("cpu") is None
    monkeypatch.setenv("ZOO_WARM_WORKERS", "-1")
    with pytest.raises(ValueError, match="ZOO_WARM_WORKERS='-1'"):
        jobs.warm_workers()


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
    run_id = jobs.submit(TrainSpec.binary(num_epochs=1), by=LOCAL_USER)
    run = jobs.wait(run_id, timeout=50)  # a run no worker takes up waits 60 s before it fails
    assert run.status == "completed", run.message
