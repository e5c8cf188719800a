"""The run store on real SQLite, without workers: the queue per device, stop requests, closing runs,
dead and silent workers, metric streams, events, surfaces, and several readers and writers at once."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zoo.core.errors import RunError, StorageError
from zoo.core.hosting import LOCAL_USER, VISITOR, User
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.ml.backend import Device
from zoo.ml.training import DecisionSurface, Environment, Progress
from zoo.runs.store import SCHEMA_VERSION, Person, RunStore, process_alive

SPEC = TrainSpec.binary(num_epochs=3, model_name="points")


def progress(step: int, epoch: int) -> Progress:
    return Progress(step, 6, epoch, 2, 64.0, 1.5, 0.5)


def surface(step: int, epoch: int, probability: float) -> DecisionSurface:
    return DecisionSurface(
        x=[0.0], y=[1.0], probability=[[probability]], hidden=[[[[0.5]]]], step=step, epoch=epoch
    )


@pytest.fixture
def store(zoo_home) -> RunStore:
    return RunStore()


def running_run(store: RunStore, device: str = "cpu") -> str:
    return running_run_of(store, SPEC, device)


def running_run_of(store: RunStore, spec: TrainSpec, device: str = "cpu") -> str:
    run_id = store.create_run(spec, device)
    store.set_worker(run_id, _live_pid())
    assert store.try_claim(run_id)
    return run_id


def _live_pid() -> int:
    return os.getpid()


def exited_pid(reap: bool) -> int:
    """The pid of a process that has ended: reaped, or a zombie this process never waited for."""
    process = subprocess.Popen(["true"])
    if reap:
        process.wait()
    else:
        while process_alive(process.pid):
            time.sleep(0.01)
    return process.pid


def test_a_new_run_is_queued_with_its_spec(store):
    run_id = store.create_run(SPEC, "cpu")
    run = store.get(run_id)
    assert (run.status, run.kind, run.device, run.model_name) == ("queued", "binary", "cpu", "points")
    assert run.spec == SPEC and run.is_active
    assert run.started_at is None and run.duration_seconds is None and run.progress is None
    summary = run.to_row()
    assert (summary["id"], summary["status"], summary["dataset"], summary["epochs"]) == (
        run_id,
        "queued",
        "moons",
        3,
    )
    assert RunStore(store.path).get(run_id) == run  # another store object on the same file sees it


def test_an_unknown_run_id_is_a_run_error(store):
    with pytest.raises(RunError, match="there is no run 'nope'; `python -m zoo runs` lists the run ids"):
        store.get("nope")
    with pytest.raises(RunError):
        store.request_stop("nope", by=LOCAL_USER)


def test_runs_on_one_device_take_turns_in_order(store):
    first, second, third = (store.create_run(SPEC, "cpu") for _ in range(3))
    other_device = store.create_run(SPEC, "gpu")
    assert not store.try_claim(second)  # not first in line
    assert store.try_claim(first)
    assert not store.try_claim(first)  # already running
    assert not store.try_claim(second)  # the device is busy
    assert store.try_claim(other_device)  # another device has its own queue
    assert [store.queue_position(run_id) for run_id in (first, second, third, other_device)] == [
        None,
        1,
        2,
        None,
    ]
    store.finish(first, "completed")
    assert store.queue_position(second) == 0 and store.queue_position(third) == 1
    assert not store.try_claim(third)
    assert store.try_claim(second)
    assert store.get(second).started_at >= store.get(first).ended_at
    assert [run.id for run in store.active_runs()] == [second, third, other_device]


CNN = TrainSpec.cnn(num_epochs=10)


@pytest.fixture
def live_pids() -> Iterator[Callable[[], int]]:
    """Start stand-ins for pool workers: processes that live until the test ends."""
    processes: list[subprocess.Popen] = []

    def start() -> int:
        processes.append(subprocess.Popen(["sleep", "120"]))
        return processes[-1].pid

    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_a_playground_run_does_not_wait_behind_a_cnn_run_it_has_its_own_lane(store):
    long_cnn, next_cnn = running_run_of(store, CNN), store.create_run(CNN, "cpu")
    playground = store.create_run(SPEC, "cpu")  # submitted last, yet starts while the CNN trains
    assert store.queue_position(playground) == 0 and store.queue_position(next_cnn) == 1
    assert not store.try_claim(next_cnn)
    assert store.try_claim(playground)
    assert store.get(long_cnn).status == "running" and store.get(next_cnn).status == "queued"


def test_a_device_with_two_slots_runs_two_runs_of_a_lane_and_queues_the_third(store):
    first, second, third = (store.create_run(CNN, "cpu") for _ in range(3))
    assert store.try_claim(first, slots=2) and not store.try_claim(third, slots=2)  # in order
    assert store.try_claim(second, slots=2)
    assert not store.try_claim(third, slots=2)
    assert store.queue_position(third) == 2
    store.finish(first, "completed")
    assert store.try_claim(third, slots=2)


def test_a_pool_worker_is_handed_the_oldest_run_of_its_backend_and_leaves_the_pool(store, live_pids):
    worker = live_pids()
    assert store.join_pool(worker, "cpu", "tensorflow", size=1)
    assert not store.join_pool(exited_pid(reap=True), "cpu", "tensorflow", size=1)  # pool full
    assert store.mark_worker_ready(worker) and store.pool_size("cpu", "tensorflow") == 1
    assert store.claim_next(worker, "cpu", "tensorflow", slots=1) is None  # nothing queued
    on_jax = store.create_run(TrainSpec.binary(backend="jax"), "cpu")
    assert store.claim_next(worker, "cpu", "tensorflow", slots=1) is None  # the lane's head needs JAX
    store.request_stop(on_jax, by=LOCAL_USER)
    first, second = (store.create_run(TrainSpec.binary(backend="tensorflow"), "cpu") for _ in range(2))
    claimed = store.claim_next(worker, "cpu", "tensorflow", slots=1)
    assert (claimed.id, claimed.status, claimed.worker_pid) == (first, "running", worker)
    assert store.pool_size("cpu", "tensorflow") == 0  # a worker takes one run, then ends: never reused
    assert not store.mark_worker_ready(worker)
    assert store.get(second).status == "queued"


def test_a_pool_keeps_its_size_one_surplus_worker_leaves_at_a_time_and_dead_ones_drop_out(store, live_pids):
    older, newer = live_pids(), live_pids()
    assert store.join_pool(older, "cpu", "jax", size=3) and store.join_pool(newer, "cpu", "jax", size=3)
    assert store.join_pool(exited_pid(reap=True), "cpu", "jax", size=3)
    assert store.pool_size("cpu", "jax") == 2  # the dead one is not counted, and its row is dropped
    assert not store.leave_pool_if_surplus(older, target=1)  # the newest leaves first
    assert store.leave_pool_if_surplus(newer, target=1)
    assert not store.leave_pool_if_surplus(older, target=1)
    assert store.pool_workers() == [older]


def test_a_queued_run_waiting_for_a_busy_device_is_not_failed_while_its_pool_lives(store, live_pids):
    waiting = store.create_run(TrainSpec.binary(backend="tensorflow"), "cpu")
    with sqlite3.connect(store.path) as connection:  # queued behind a long run for over a minute
        connection.execute("UPDATE runs SET created_at = ? WHERE id = ?", (time.time() - 61, waiting))
    worker = live_pids()
    assert store.join_pool(worker, "cpu", "tensorflow", size=1)
    assert store.get(waiting).status == "queued"
    store.leave_pool(worker)
    assert "no worker process took up the run within 60 s" in store.get(waiting).message


def test_stopping_a_queued_run_ends_it_at_once(store):
    running = running_run(store)
    queued = store.create_run(SPEC, "cpu")
    stopped = store.request_stop(queued, by=LOCAL_USER)
    assert stopped.status == "stopped" and stopped.message == "stopped before it started"
    assert stopped.ended_at is not None and stopped.started_at is None
    assert not store.try_claim(queued)
    assert store.get(running).status == "running"


def test_stopping_a_running_run_asks_its_worker(store):
    run_id = running_run(store)
    with store.stop_checker(run_id) as stop_requested:
        for _ in range(100):  # the worker checks after every batch, on one open connection
            assert not stop_requested()
        other_reader = RunStore(store.path)
        stopping = other_reader.request_stop(run_id, by=LOCAL_USER)
        assert stopping.status == "running"  # it stops after its batch
        assert stop_requested()  # seen at the very next check
    assert store.heartbeat(run_id)


def test_finish_closes_a_run_once(store):
    run_id = running_run(store)
    store.finish(run_id, "completed", final_metrics=Scores(0.9, macro_f1=0.88), model_name="saved-as")
    store.finish(run_id, "failed", message="too late")  # e.g. a second reader that found it dead
    run = store.get(run_id)
    assert (run.status, run.message, run.final_metrics, run.model_name) == (
        "completed",
        None,
        Scores(0.9, macro_f1=0.88),
        "saved-as",
    )
    assert run.final_metrics.accuracy == 0.9
    assert [event.kind for event in store.events(run_id)] == ["completed"]
    with pytest.raises(RunError, match="status 'running' is not final"):
        store.finish(run_id, "running")


def test_a_run_ended_without_scores_reads_none_and_keeps_the_record_older_versions_read(store):
    run_id = running_run(store)
    store.finish(run_id, "failed", message="out of memory; use a smaller batch size")
    assert store.get(run_id).final_metrics is None
    with contextlib.closing(sqlite3.connect(store.path)) as connection:
        (recorded,) = connection.execute("SELECT final_metrics FROM runs WHERE id = ?", (run_id,)).fetchone()
    assert json.loads(recorded) == {}  # older versions read {} as no scores; null would be damage to them


@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_a_run_whose_worker_died_is_failed_on_the_next_read(store, reap):
    running = running_run(store)
    store.set_worker(running, exited_pid(reap))  # as if its worker had died while training
    queued = store.create_run(SPEC, "cpu")
    store.set_worker(queued, exited_pid(reap=True))
    for run_id in (running, queued):
        run = store.get(run_id)
        assert run.status == "failed" and not run.is_active
        assert f"the worker process {run.worker_pid} ended without finishing the run" in run.message
    assert store.get(running).status == "failed"  # read again: still closed once
    assert [event.kind for event in store.events(running)] == ["failed"]


def test_a_silent_worker_is_failed_a_live_one_is_not(store):
    silent, alive = running_run(store, device="cpu"), running_run(store, device="gpu")
    with sqlite3.connect(store.path) as connection:  # its last sign of life, 121 s ago
        connection.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - 121, silent))
    store.heartbeat(alive)
    assert "stopped reporting for over 120 s" in store.get(silent).message
    assert store.get(alive).status == "running"


def test_a_run_no_worker_took_up_is_failed_after_a_minute_and_frees_the_queue(store):
    orphan = store.create_run(SPEC, "cpu")  # its submitter died before it could start a worker
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE runs SET created_at = ? WHERE id = ?", (time.time() - 61, orphan))
    just_submitted = store.create_run(SPEC, "cpu")
    store.set_worker(just_submitted, _live_pid())
    assert store.try_claim(just_submitted)
    run = store.get(orphan)
    assert run.status == "failed" and "no worker process took up the run within 60 s" in run.message
    starting = store.create_run(SPEC, "gpu")  # a worker is being started: left queued
    assert store.get(starting).status == "queued"


def test_process_alive_tells_live_from_ended_processes():
    assert process_alive(_live_pid())
    assert not process_alive(exited_pid(reap=True))
    assert not process_alive(exited_pid(reap=False))


def test_metrics_stream_in_order_and_can_be_read_incrementally(store):
    run_id = running_run(store)
    store.log_metrics(run_id, {"batch/loss": 0.9, "batch/accuracy": 0.5}, progress(1, 1))
    store.log_metrics(run_id, {"batch/loss": 0.8}, progress(2, 1))
    frame = store.metrics_frame(run_id)
    assert list(frame.columns) == ["id", "step", "epoch", "name", "value", "wall_time"]
    assert list(zip(frame.step, frame.name, frame.value, strict=True)) == [
        (1, "batch/loss", 0.9),
        (1, "batch/accuracy", 0.5),
        (2, "batch/loss", 0.8),
    ]
    assert frame.wall_time.is_monotonic_increasing
    store.log_metrics(run_id, {"epoch/loss": 0.7}, progress(3, 2))
    newer = store.metrics_frame(run_id, since_id=int(frame.id.max()))
    assert newer.name.tolist() == ["epoch/loss"] and newer.epoch.tolist() == [2]
    assert store.get(run_id).progress == progress(3, 2)


def test_events_surfaces_and_the_started_record(store):
    run_id = running_run(store)
    store.set_started(run_id, "moons (400 points)", Environment(devices=(Device("/device:CPU:0", "CPU"),)))
    store.add_event(run_id, "data", "moons (400 points)")
    assert store.surface(run_id) is None
    store.save_surface(run_id, surface(5, 1, 0.1))
    store.save_surface(run_id, surface(10, 2, 0.2))
    assert store.surface(run_id) == surface(10, 2, 0.2)  # the latest only
    run = store.get(run_id)
    assert run.data_source == "moons (400 points)" and run.environment.devices[0].type == "CPU"
    assert [(event.kind, event.message) for event in store.events(run_id)] == [("data", "moons (400 points)")]


def test_rows_for_a_run_the_store_does_not_hold_are_refused_naming_it_and_nothing_is_written(store):
    run_id = running_run(store)
    store.log_metrics(run_id, {"batch/loss": 0.9}, progress(1, 1))
    writes = {
        "metrics": lambda: store.log_metrics("0123456789ab", {"batch/loss": 0.5}, progress(2, 1)),
        "surface": lambda: store.save_surface("0123456789ab", surface(5, 1, 0.1)),
        "event": lambda: store.add_event("0123456789ab", "data", "moons"),
    }
    for name, write in writes.items():
        with pytest.raises(RunError, match="there is no run '0123456789ab'"):
            write()
        assert [run.id for run in store.list_runs()] == [run_id], name
    assert store.metrics_frame(run_id).value.tolist() == [0.9]
    assert store.get(run_id).progress == progress(1, 1)


def test_delete_refuses_an_active_run_and_removes_a_finished_one_with_its_rows(store):
    run_id = running_run(store)
    store.log_metrics(run_id, {"batch/loss": 1.0}, progress(1, 1))
    store.save_surface(run_id, surface(1, 1, 0.5))
    with pytest.raises(RunError, match="is running; stop it before deleting it"):
        store.delete(run_id, by=LOCAL_USER)
    store.finish(run_id, "stopped")
    store.delete(run_id, by=LOCAL_USER)
    assert store.list_runs() == [] and store.metrics_frame(run_id).empty
    assert store.events(run_id) == [] and store.surface(run_id) is None


def test_the_store_records_when_each_signed_in_person_was_last_seen(store):
    assert store.people() == []
    store.record_seen(User("alice", "alice@example.org"), at=100.0)
    store.record_seen(User("teacher", is_admin=True), at=150.0)
    store.record_seen(User("alice", "alice@example.org"), at=200.0)  # seen again: one row, the latest time
    assert store.people() == [
        Person("alice", "alice@example.org", is_admin=False, last_seen=200.0),
        Person("teacher", None, is_admin=True, last_seen=150.0),
    ]
    store.record_seen(VISITOR, at=300.0)  # nobody to record
    assert [person.name for person in store.people()] == ["alice", "teacher"]


def test_runs_are_listed_newest_first(store):
    ids = [store.create_run(SPEC, "cpu") for _ in range(3)]
    assert [run.id for run in store.list_runs()] == ids[::-1]
    assert [run.id for run in store.list_runs(limit=2)] == ids[:0:-1]


def test_one_store_serves_several_threads_writing_at_once(store):
    """Streamlit shares one store across sessions' threads; each call has its own connection."""
    run_ids = [running_run(store, device=f"device-{index}") for index in range(4)]
    errors: list[BaseException] = []

    def write(run_id: str) -> None:
        try:
            for step in range(1, 51):
                store.log_metrics(run_id, {"batch/loss": 1.0 / step}, progress(step, 1))
                store.heartbeat(run_id)
        except BaseException as error:  # reported below with the test's assertion
            errors.append(error)

    threads = [threading.Thread(target=write, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run_id in run_ids:
        assert store.metrics_frame(run_id).step.tolist() == list(range(1, 51))
        assert store.get(run_id).progress == progress(50, 1)


# --- opening: schema versions, migrations, damaged stores ----------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


def schema_of(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    finally:
        connection.close()
    return {" ".join(row[0].replace("IF NOT EXISTS ", "").split()) for row in rows}


def user_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA user_version").fetchone()[0]
    finally:
        connection.close()


def test_there_is_a_fixture_for_every_earlier_schema_version():
    versions = sorted(int(path.stem.rsplit("v", 1)[1]) for path in FIXTURES.glob("runs-schema-v*.sql"))
    assert versions == list(range(SCHEMA_VERSION))


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("runs-schema-v*.sql")), ids=lambda path: path.stem)
def test_a_store_of_every_earlier_schema_version_is_migrated_with_its_runs(fixture, tmp_path):
    old = tmp_path / "old" / "runs.sqlite3"
    old.parent.mkdir()
    connection = sqlite3.connect(old)
    connection.executescript(fixture.read_text())
    connection.close()
    store = RunStore(old)
    assert store.notice is None
    assert user_version(old) == SCHEMA_VERSION
    assert schema_of(old) == schema_of(RunStore(tmp_path / "fresh" / "runs.sqlite3").path)
    runs = {run.model_name or run.kind: run for run in store.list_runs()}
    assert runs["points-v0"].status == "completed" and runs["points-v0"].final_metrics == Scores(0.9)
    assert runs["cnn"].status == "stopped" and runs["cnn"].final_metrics is None
    completed = runs["points-v0"].id
    assert list(store.metrics_frame(completed)["name"]) == ["batch/loss", "batch/accuracy", "epoch/loss"]
    assert store.surface(completed).probability == [[0.1]] and store.surface(completed).epoch == 1
    assert [event.kind for event in store.events(completed)] == ["completed"]
    store.add_event(completed, "note", "written after the migration")  # and it is writable


def test_a_fresh_store_has_the_newest_schema_version(store):
    assert user_version(store.path) == SCHEMA_VERSION and store.notice is None


def test_a_store_from_a_newer_zoo_studio_is_refused_not_touched(store):
    connection = sqlite3.connect(store.path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StorageError, match="newer than this Zoo Studio knows"):
        RunStore(store.path)
    assert user_version(store.path) == SCHEMA_VERSION + 1 and not list(store.path.parent.glob("*.damaged-*"))


def test_a_store_of_random_bytes_is_moved_aside_and_a_fresh_one_started(zoo_home):
    path = RunStore().path
    garbage = os.urandom(65536)
    path.write_bytes(garbage)
    store = RunStore()
    (moved,) = path.parent.glob("runs.sqlite3.damaged-*")
    assert moved.read_bytes() == garbage
    assert str(moved) in store.notice and "file is not a database" in store.notice
    assert store.list_runs() == [] and store.get(store.create_run(SPEC, "cpu")).status == "queued"
    assert RunStore().notice is None  # the fresh store is sound: no second move


def test_an_emptied_store_is_reported_when_runs_had_been_recorded(zoo_home):
    store = RunStore()
    run_id = store.create_run(SPEC, "cpu")
    store.log_path(run_id).parent.mkdir()
    store.log_path(run_id).write_text("worker output\n")
    store.path.write_bytes(b"")
    reopened = RunStore()
    assert "emptied to 0 bytes" in reopened.notice
    assert len(list(store.path.parent.glob("runs.sqlite3.damaged-*"))) == 1


def test_an_empty_file_without_any_run_history_is_simply_a_new_store(zoo_home):
    path = RunStore().path
    path.write_bytes(b"")
    assert RunStore().notice is None and not list(path.parent.glob("*.damaged-*"))


def test_a_store_damaged_while_in_use_is_moved_aside_on_the_next_operation(store):
    store.create_run(SPEC, "cpu")
    for suffix in ("-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    store.path.write_bytes(os.urandom(8192))
    with pytest.raises(StorageError, match=r"moved to .*damaged-"):
        store.list_runs()
    assert store.list_runs() == []  # the next operation works on the fresh store
