"""The run store's contract (``zoo.runs.store.RunStore``), one suite for every backend: a new backend
(SQLite, PostgreSQL) adds its name to ``BACKENDS`` and a branch to ``run_store``, and must pass all of it.

Real stores, real processes: claims from several processes at once never hand one run to two
workers, the caps on live runs are checked and reserved in one transaction, metrics keep their order
across batches and cursors, a stop request reaches the worker's stop check, and reads never change
a run."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time

import pytest

from zoo.core.errors import RunError
from zoo.core.hosting import LOCAL_USER, VISITOR, Limits, PermissionDenied, User
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.ml.backend import Device
from zoo.ml.training import DecisionSurface, Environment, Progress
from zoo.runs.records import MetricsReport, Person, Placement, RunEvent
from zoo.runs.store import RunStore, open_run_store

BACKENDS = ["sqlite", "postgresql"]
SPEC = TrainSpec.binary(num_epochs=3, model_name="points")
CNN = TrainSpec.cnn(num_epochs=10)


@pytest.fixture(params=BACKENDS)
def run_store(request, zoo_home) -> RunStore:
    """A fresh, empty store of each backend."""
    if request.param == "sqlite":
        return open_run_store(f"sqlite:///{zoo_home / 'runs.sqlite3'}")
    if request.param == "postgresql":  # a fresh database on the session's server (tests/postgres_server.py)
        return open_run_store(request.getfixturevalue("postgres_url"))
    raise AssertionError(f"no set-up for the {request.param} backend")


def placement(worker: int | str = 1, host: str = "host-a", device: str = "cpu") -> Placement:
    return Placement("local", host, str(worker), device)


def progress(step: int, epoch: int) -> Progress:
    return Progress(step, 6, epoch, 2, 64.0, 1.5, 0.5)


def report(step: int, epoch: int, **metrics: float) -> MetricsReport:
    return MetricsReport(
        {name.replace("_", "/", 1): value for name, value in metrics.items()},
        progress(step, epoch),
        time.time(),
    )


def surface(step: int, epoch: int, probability: float) -> DecisionSurface:
    return DecisionSurface(
        x=[0.0], y=[1.0], probability=[[probability]], hidden=[[[[0.5]]]], step=step, epoch=epoch
    )


def running(store: RunStore, spec: TrainSpec = SPEC, device: str = "cpu", host: str = "host-a") -> str:
    run_id = store.create_run(spec, device)
    claimed = store.claim_next(device, spec.backend, 64, placement(host=host, device=device))
    assert claimed is not None and claimed.id == run_id
    return run_id


def test_a_new_run_is_queued_with_its_spec_and_another_store_object_sees_it(run_store):
    run_id = run_store.create_run(SPEC, "cpu", placement=Placement("local", "host-a", None, "cpu"))
    run = run_store.get(run_id)
    assert (run.status, run.kind, run.device, run.model_name) == ("queued", "binary", "cpu", "points")
    assert run.spec == SPEC and run.is_active and run.placement == Placement("local", "host-a", None, "cpu")
    assert run.started_at is None and run.duration_seconds is None and run.progress is None
    row = run.to_row()
    assert (row["id"], row["status"], row["dataset"], row["epochs"]) == (
        run_id,
        "queued",
        "moons",
        3,
    )
    assert open_run_store(run_store.url).get(run_id) == run
    described = run_store.describe()
    assert described.url == run_store.url and described.schema_version >= 1 and described.notice is None


def test_unknown_run_ids_are_a_run_error_naming_them_and_nothing_is_written(run_store):
    run_id = running(run_store)
    run_store.log_metrics(run_id, [report(1, 1, batch_loss=0.9)])
    for name, call in {
        "get": lambda: run_store.get("0123456789ab"),
        "stop": lambda: run_store.request_stop("0123456789ab", by=LOCAL_USER),
        "delete": lambda: run_store.delete("0123456789ab", by=LOCAL_USER),
        "queue position": lambda: run_store.queue_position("0123456789ab"),
        "metrics": lambda: run_store.log_metrics("0123456789ab", [report(2, 1, batch_loss=0.5)]),
        "surface": lambda: run_store.save_surface("0123456789ab", surface(5, 1, 0.1)),
        "event": lambda: run_store.add_event("0123456789ab", "data", "moons"),
    }.items():
        with pytest.raises(RunError, match="there is no run '0123456789ab'"):
            call()
        assert [run.id for run in run_store.list_runs()] == [run_id], name
    assert [row.value for row in run_store.metrics_since(run_id).rows] == [0.9]
    assert run_store.get(run_id).progress == progress(1, 1)
    assert not run_store.finish("0123456789ab", "completed") and not run_store.heartbeat("0123456789ab")


def test_runs_on_one_device_take_turns_in_order_and_another_device_has_its_own_queue(run_store):
    first, second, third = (run_store.create_run(SPEC, "cpu") for _ in range(3))
    on_gpu = run_store.create_run(SPEC, "gpu")
    assert run_store.claim_next("cpu", SPEC.backend, 1, placement(1)).id == first
    assert run_store.claim_next("cpu", SPEC.backend, 1, placement(2)) is None  # the lane's one slot is taken
    assert run_store.claim_next("gpu", SPEC.backend, 1, placement(3, device="gpu")).id == on_gpu
    assert [run_store.queue_position(run_id) for run_id in (first, second, third, on_gpu)] == [
        None,
        1,
        2,
        None,
    ]
    assert run_store.finish(first, "completed")
    assert run_store.queue_position(second) == 0 and run_store.queue_position(third) == 1
    claimed = run_store.claim_next("cpu", SPEC.backend, 1, placement(4))
    assert claimed.id == second and claimed.placement == placement(4) and claimed.status == "running"
    assert claimed.started_at >= run_store.get(first).ended_at
    assert [run.id for run in run_store.active_runs()] == [second, third, on_gpu]


def test_a_playground_run_has_its_own_lane_and_does_not_wait_behind_a_cnn_run(run_store):
    long_cnn = running(run_store, CNN)
    next_cnn = run_store.create_run(CNN, "cpu")
    playground = run_store.create_run(SPEC, "cpu")  # submitted last, yet starts while the CNN trains
    assert run_store.queue_position(playground) == 0 and run_store.queue_position(next_cnn) == 1
    assert run_store.claim_next("cpu", CNN.backend, 1, placement(2)).id == playground
    assert run_store.get(long_cnn).status == "running" and run_store.get(next_cnn).status == "queued"


def test_a_device_with_two_slots_runs_two_runs_of_a_lane_and_queues_the_third(run_store):
    first, second, third = (run_store.create_run(CNN, "cpu") for _ in range(3))
    assert [run_store.claim_next("cpu", CNN.backend, 2, placement(worker)).id for worker in (1, 2)] == [
        first,
        second,
    ]
    assert run_store.claim_next("cpu", CNN.backend, 2, placement(3)) is None
    assert run_store.queue_position(third) == 2
    run_store.finish(first, "completed")
    assert run_store.claim_next("cpu", CNN.backend, 2, placement(3)).id == third


def test_slots_are_counted_per_host_and_hosts_share_one_queue_in_order(run_store):
    first, second, third = (run_store.create_run(CNN, "cpu") for _ in range(3))
    assert run_store.claim_next("cpu", CNN.backend, 1, placement(1, host="host-a")).id == first
    assert run_store.claim_next("cpu", CNN.backend, 1, placement(2, host="host-a")) is None  # a's slot: taken
    claimed = run_store.claim_next("cpu", CNN.backend, 1, placement(2, host="host-b"))
    assert claimed.id == second and claimed.placement.host == "host-b"  # b's own slot, the queue's order
    assert run_store.claim_next("cpu", CNN.backend, 1, placement(3, host="host-b")) is None
    assert run_store.get(third).status == "queued"


def test_a_worker_is_handed_only_runs_of_its_backend_in_the_lane_s_order(run_store):
    on_jax = run_store.create_run(TrainSpec.binary(backend="jax"), "cpu")
    on_tensorflow = run_store.create_run(TrainSpec.binary(backend="tensorflow"), "cpu")
    assert run_store.claim_next("cpu", "tensorflow", 1, placement()) is None  # the lane's head needs JAX
    assert run_store.claim_next("cpu", "jax", 1, placement()).id == on_jax
    run_store.finish(on_jax, "completed")
    assert run_store.claim_next("cpu", "tensorflow", 1, placement()).id == on_tensorflow


def test_a_run_handed_to_a_chosen_worker_is_claimed_once_whatever_its_lane_s_order(run_store):
    first, second = (run_store.create_run(SPEC, "cpu") for _ in range(2))
    chosen = placement("actor-2", host="node-b")
    claimed = run_store.claim(second, chosen)  # the executor placed it: the lane's order is not the store's
    assert claimed.status == "running" and claimed.placement == chosen
    assert run_store.claim(second, placement("actor-3")) is None  # never to two workers
    assert run_store.get(first).status == "queued"
    run_store.request_stop(first, by=LOCAL_USER)
    assert run_store.claim(first, placement("actor-4")) is None  # stopped while it waited: nobody trains it
    assert run_store.claim("no-such-run", placement("actor-5")) is None


def _claim_until_empty(url: str, worker: int, start, claimed: multiprocessing.Queue) -> None:
    """A worker process: open the store, wait for the others (``start``, a barrier), then claim runs
    until none is left."""
    store = open_run_store(url)
    start.wait(120)
    while True:
        run = store.claim_next("cpu", SPEC.backend, 1000, Placement("local", "host-a", str(worker), "cpu"))
        if run is None:
            break
        claimed.put((run.id, worker))
    claimed.put(None)


def test_concurrent_claims_from_several_processes_never_give_one_run_to_two_workers(run_store):
    run_ids = {run_store.create_run(SPEC, "cpu") for _ in range(40)}
    context = multiprocessing.get_context("spawn")
    claimed, start = context.Queue(), context.Barrier(4)  # the processes open the store, then claim at once
    workers = [
        context.Process(target=_claim_until_empty, args=(run_store.url, worker, start, claimed))
        for worker in range(4)
    ]
    for process in workers:
        process.start()
    pairs, done = [], 0
    while done < len(workers):
        item = claimed.get(timeout=120)
        if item is None:
            done += 1
        else:
            pairs.append(item)
    for process in workers:
        process.join(30)
    claimed_ids = [run_id for run_id, _ in pairs]
    assert sorted(claimed_ids) == sorted(run_ids)  # every run once, none twice
    assert len({worker for _, worker in pairs}) > 1, "one process claimed everything: no race was tried"
    for run_id, worker in pairs:
        assert run_store.get(run_id).placement.worker == str(worker)


def _create_at_the_limit(url: str, owner: str, start, outcomes: multiprocessing.Queue) -> None:
    store = open_run_store(url)
    limits = Limits(active_runs_per_owner=3, active_runs=None)
    start.wait(120)
    try:
        outcomes.put(store.create_run(SPEC, "cpu", owner=User(owner), limits=limits))
    except PermissionDenied as error:
        outcomes.put(f"refused: {error}")


def test_the_caps_on_live_runs_are_checked_and_reserved_in_one_transaction(run_store):
    limits = Limits(active_runs_per_owner=3, active_runs=4)
    alice = User("alice")
    for _ in range(2):
        run_store.create_run(SPEC, "cpu", owner=alice, limits=limits)
    context = multiprocessing.get_context("spawn")
    outcomes, start = context.Queue(), context.Barrier(4)
    creators = [
        context.Process(target=_create_at_the_limit, args=(run_store.url, "alice", start, outcomes))
        for _ in range(4)
    ]
    for process in creators:
        process.start()
    results = [outcomes.get(timeout=120) for _ in creators]
    for process in creators:
        process.join(30)
    refused = [result for result in results if result.startswith("refused")]
    assert len(refused) == 3, results  # four at once for the one place left: exactly one wins
    assert all("this host's limit per person" in result for result in refused)
    assert len(run_store.active_runs(owner="alice")) == 3
    run_store.create_run(SPEC, "cpu", owner=User("bob"), limits=limits)  # the host's 4th
    with pytest.raises(PermissionDenied, match="this host has 4 runs queued or running"):
        run_store.create_run(SPEC, "cpu", owner=User("carol"), limits=limits)
    run_store.create_run(
        SPEC, "cpu", owner=User("teacher", is_admin=True), limits=limits
    )  # admins are not held


def test_metrics_keep_their_order_across_batches_and_cursors(run_store):
    run_id = running(run_store)
    run_store.log_metrics(
        run_id, [report(1, 1, batch_loss=0.9, batch_accuracy=0.5), report(2, 1, batch_loss=0.8)]
    )
    first = run_store.metrics_since(run_id)
    assert [(row.step, row.epoch, row.name, row.value) for row in first.rows] == [
        (1, 1, "batch/loss", 0.9),
        (1, 1, "batch/accuracy", 0.5),
        (2, 1, "batch/loss", 0.8),
    ]
    assert run_store.metrics_since(run_id, first.cursor).rows == ()  # nothing new
    assert run_store.metrics_since(run_id, first.cursor).cursor == first.cursor
    run_store.log_metrics(run_id, [report(step, 2, epoch_loss=1 / step) for step in range(3, 53)])
    newer = run_store.metrics_since(run_id, first.cursor)
    assert [row.step for row in newer.rows] == list(range(3, 53))
    assert [row.wall_time for row in first.rows + newer.rows] == sorted(
        row.wall_time for row in first.rows + newer.rows
    )
    assert run_store.metrics_since(run_id).rows == first.rows + newer.rows
    assert run_store.get(run_id).progress == progress(52, 2)  # the last report's
    assert run_store.metrics_since("0123456789ab").rows == ()


def test_a_stop_request_reaches_the_worker_s_stop_check_and_heartbeat(run_store):
    run_id = running(run_store)
    with run_store.stop_checker(run_id) as stop_requested:
        for _ in range(100):  # the worker checks after every batch
            assert not stop_requested()
        assert not run_store.heartbeat(run_id)
        stopping = open_run_store(run_store.url).request_stop(run_id, by=LOCAL_USER)  # another reader
        assert stopping.status == "running" and stopping.stop_requested  # it stops after its batch
        assert stop_requested()  # seen at the very next check
    assert run_store.heartbeat(run_id)


def test_a_stop_check_answers_true_once_the_run_was_failed_by_its_supervisor(run_store):
    run_id = running(run_store)
    with run_store.stop_checker(run_id) as stop_requested:
        assert not stop_requested()
        run_store.finish(run_id, "failed", message="its worker stopped reporting")
        assert stop_requested()


def test_stopping_a_queued_run_ends_it_at_once(run_store):
    busy = running(run_store)
    queued = run_store.create_run(SPEC, "cpu")
    stopped = run_store.request_stop(queued, by=LOCAL_USER)
    assert stopped.status == "stopped" and stopped.message == "stopped before it started"
    assert stopped.ended_at is not None and stopped.started_at is None
    run_store.finish(busy, "completed")
    assert run_store.claim_next("cpu", SPEC.backend, 1, placement()) is None
    assert run_store.get(busy).status == "completed"


def test_only_the_owner_or_an_admin_stops_or_deletes_a_run(run_store):
    run_id = run_store.create_run(SPEC, "cpu", owner=User("alice"))
    for intruder in (User("bob"), VISITOR):
        with pytest.raises(PermissionDenied):
            run_store.request_stop(run_id, by=intruder)
    assert run_store.request_stop(run_id, by=User("alice")).status == "stopped"
    with pytest.raises(PermissionDenied):
        run_store.delete(run_id, by=User("bob"))
    run_store.delete(run_id, by=User("teacher", is_admin=True))
    assert run_store.list_runs() == []


def test_finish_closes_a_run_once_and_says_so_in_its_event_log(run_store):
    run_id = running(run_store)
    scores = Scores(0.9, macro_f1=0.88)
    assert run_store.finish(run_id, "completed", final_metrics=scores, model_name="saved-as")
    assert not run_store.finish(run_id, "failed", message="too late")  # a second supervisor, say
    run = run_store.get(run_id)
    assert (run.status, run.message, run.final_metrics, run.model_name) == (
        "completed",
        None,
        scores,
        "saved-as",
    )
    assert [event.kind for event in run_store.events(run_id)] == ["completed"]
    with pytest.raises(RunError, match="status 'running' is not final"):
        run_store.finish(run_id, "running")


def test_events_surfaces_and_the_started_record_round_trip(run_store):
    run_id = running(run_store)
    environment = Environment("tensorflow", (Device("/device:CPU:0", "CPU"),), {"keras": "3"}, "host-a")
    run_store.set_started(run_id, "moons (400 points)", environment)
    run_store.add_event(run_id, "data", "moons (400 points)")
    run_store.add_event(run_id, "warning", "no GPU found")
    assert run_store.surface(run_id) is None
    run_store.save_surface(run_id, surface(5, 1, 0.1))
    run_store.save_surface(run_id, surface(10, 2, 0.2))
    assert run_store.surface(run_id) == surface(10, 2, 0.2)  # the latest only
    run = run_store.get(run_id)
    assert run.data_source == "moons (400 points)" and run.environment == environment
    events = run_store.events(run_id)
    assert all(isinstance(event, RunEvent) for event in events)
    assert [(event.kind, event.message) for event in events] == [
        ("data", "moons (400 points)"),
        ("warning", "no GPU found"),
    ]


def test_delete_refuses_a_live_run_and_removes_a_finished_one_with_everything_it_had(run_store):
    run_id = running(run_store)
    run_store.log_metrics(run_id, [report(1, 1, batch_loss=1.0)])
    run_store.save_surface(run_id, surface(1, 1, 0.5))
    run_store.add_event(run_id, "data", "moons")
    with pytest.raises(RunError, match="is running; stop it before deleting it"):
        run_store.delete(run_id, by=LOCAL_USER)
    run_store.finish(run_id, "stopped")
    run_store.delete(run_id, by=LOCAL_USER)
    assert run_store.list_runs() == [] and run_store.metrics_since(run_id).rows == ()
    assert run_store.events(run_id) == [] and run_store.surface(run_id) is None
    with pytest.raises(RunError):
        run_store.get(run_id)


def test_reads_never_change_a_run_whose_worker_is_silent(run_store):
    """Failing runs is supervision's (the executor's), never a reader's."""
    run_id = run_store.create_run(SPEC, "cpu")
    run_store.claim_next(
        "cpu", SPEC.backend, 1, Placement("local", "host-a", "999999999", "cpu")
    )  # no such pid
    orphan = run_store.create_run(CNN, "gpu")
    before = run_store.get(run_id)
    for _ in range(3):
        assert [run.status for run in run_store.list_runs()] == ["queued", "running"]
        assert run_store.active_runs()[0] == before
        assert run_store.queue_position(orphan) == 0
    assert run_store.get(run_id) == before and run_store.events(run_id) == []


def test_runs_are_listed_newest_first_and_live_ones_oldest_first_by_owner(run_store):
    ids = [run_store.create_run(SPEC, "cpu", owner=User(name)) for name in ("alice", "bob", "alice")]
    assert [run.id for run in run_store.list_runs()] == ids[::-1]
    assert [run.id for run in run_store.list_runs(limit=2)] == ids[:0:-1]
    assert [run.id for run in run_store.active_runs(owner="alice")] == [ids[0], ids[2]]
    run_store.request_stop(ids[0], by=User("alice"))
    assert [run.id for run in run_store.active_runs()] == ids[1:]


def test_the_store_records_when_each_signed_in_person_was_last_seen(run_store):
    assert run_store.people() == []
    run_store.record_seen(User("alice", "alice@example.org"), at=100.0)
    run_store.record_seen(User("teacher", is_admin=True), at=150.0)
    run_store.record_seen(User("alice", "alice@example.org"), at=200.0)  # seen again: the latest time
    run_store.record_seen(User("alice", "alice@example.org"), at=50.0)  # a late write does not go back
    assert run_store.people() == [
        Person("alice", "alice@example.org", is_admin=False, last_seen=200.0),
        Person("teacher", None, is_admin=True, last_seen=150.0),
    ]
    run_store.record_seen(VISITOR, at=300.0)  # nobody to record
    assert [person.name for person in run_store.people()] == ["alice", "teacher"]


def test_one_store_object_serves_several_threads_writing_at_once(run_store):
    """Streamlit shares one store across sessions' threads."""
    run_ids = [running(run_store, device=f"device-{index}") for index in range(4)]
    errors: list[BaseException] = []

    def write(run_id: str) -> None:
        try:
            for step in range(1, 51):
                run_store.log_metrics(run_id, [report(step, 1, batch_loss=1.0 / step)])
                run_store.heartbeat(run_id)
        except BaseException as error:  # reported below with the test's assertion
            errors.append(error)

    threads = [threading.Thread(target=write, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run_id in run_ids:
        assert [row.step for row in run_store.metrics_since(run_id).rows] == list(range(1, 51))
        assert run_store.get(run_id).progress == progress(50, 1)


def test_the_store_reports_nothing_blocks_a_write_when_nothing_does(run_store):
    assert run_store.write_blocker() is None


def test_a_run_imported_from_another_store_is_written_whole_and_only_once(run_store):
    run_id = running(run_store)
    run_store.log_metrics(run_id, [report(1, 1, batch_loss=0.9), report(2, 1, batch_loss=0.8)])
    run_store.save_surface(run_id, surface(2, 1, 0.3))
    run_store.finish(run_id, "completed", final_metrics=Scores(0.9), model_name="points")
    run = run_store.get(run_id)
    metrics, events = run_store.metrics_since(run_id).rows, run_store.events(run_id)
    copy = dataclasses.replace(run, id="0123456789ab")  # as another store would hand it over
    assert run_store.import_run(copy, metrics, events, surface(2, 1, 0.3))
    assert run_store.get(copy.id) == copy and run_store.metrics_since(copy.id).rows == metrics
    assert run_store.events(copy.id) == events and run_store.surface(copy.id) == surface(2, 1, 0.3)
    assert not run_store.import_run(dataclasses.replace(copy, status="failed"), metrics, [], None)
    assert run_store.get(copy.id) == copy and len(run_store.metrics_since(copy.id).rows) == 2  # untouched
    queued = dataclasses.replace(run_store.get(run_store.create_run(SPEC, "gpu")), id="queued000001")
    assert run_store.import_run(queued, [], [], None)
    assert run_store.get(queued.id) == queued and run_store.queue_position(queued.id) == 1  # it queues
