"""The Ray executor (``ZOO_EXECUTOR=ray``) on a real Ray cluster of this machine: a head node with one
CPU and a second node with one CPU and one logical GPU (``ray.cluster_utils.Cluster``; a GPU Ray only
counts: the runs placed on it train on the CPU), shared by the module's tests and shut down after them.

Real actors import Keras, warm up, and train tiny runs into the test's SQLite run store and local zoo.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster
from test_app import chart_keys, click, open_page, texts

from zoo.app.cli import main
from zoo.app.health import check_health
from zoo.core.hosting import LOCAL_USER, PermissionDenied, User
from zoo.core.settings import Limits
from zoo.core.spec import TrainSpec
from zoo.execution.admission import admit, start
from zoo.execution.cluster import NAMESPACE, ActorKind, RayExecutor
from zoo.execution.executor import open_executor, wait
from zoo.execution.records import AdmittedRun
from zoo.runs.records import Run
from zoo.runs.store import open_run_store
from zoo.storage.models import ModelStore

REPOSITORY = Path(__file__).resolve().parents[1]
NODE = {"num_cpus": 1, "object_store_memory": 80 * 1024**2}
# Nodes found dead in about a second (Ray's default: tens of seconds), for the node that leaves.
FAST_HEALTH_CHECKS = {"health_check_period_ms": 300, "health_check_failure_threshold": 3}
# 288 training images, three batches of the article's 128: the form the actors compile while they wait
TINY_CNN = {"mnist_source": "embedded", "max_train_samples": 320}
LONG_CNN = {**TINY_CNN, "num_epochs": 500}  # trains until stopped
TIMEOUT = 180


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**NODE, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECKS},
    )
    cluster.add_node(**NODE, num_gpus=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ADDRESS", cluster.address)
        yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(autouse=True)
def on_ray(cluster, zoo_home, monkeypatch) -> Iterator[None]:
    """Every test of the module trains through the Ray executor; its actors end with the test."""
    monkeypatch.setenv("ZOO_EXECUTOR", "ray")
    monkeypatch.setenv("ZOO_WARM_WORKERS", "0")
    yield
    if ray.is_initialized():
        for name in ray.util.list_named_actors():
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)


def gpu_node_ids() -> set[str]:
    return {node["NodeID"][:16] for node in ray.nodes() if node["Alive"] and node["Resources"].get("GPU")}


def node_of(run: Run) -> str:
    return run.placement.host.rpartition("/")[2]


def wait_for(condition, what: str, executor: RayExecutor | None = None, timeout: float = TIMEOUT):
    """Poll ``condition`` (supervising ``executor`` meanwhile) until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if executor is not None:
            executor.supervise()
        if found := condition():
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


def test_runs_start_on_warm_actors_placed_by_resources_and_say_where_they_ran(monkeypatch, capsys):
    monkeypatch.setenv("ZOO_WARM_WORKERS", "1")
    executor = open_executor()
    assert isinstance(executor, RayExecutor)
    executor.keep_warm()  # one CNN actor (the cluster has a GPU: on it) and one Playground actor
    wait_for(lambda: executor.capacity().waiting_workers == 2, "two warm actors")
    warm = set(ray.util.list_named_actors())

    cnn = start(TrainSpec.cnn(**TINY_CNN, num_epochs=1), by=LOCAL_USER, executor=executor)
    playground = start(TrainSpec.binary(num_epochs=5, num_samples=100), by=LOCAL_USER, executor=executor)
    cnn_run, playground_run = (wait(run_id, TIMEOUT, executor) for run_id in (cnn, playground))

    assert cnn_run.status == playground_run.status == "completed", (cnn_run.message, playground_run.message)
    assert {cnn_run.placement.worker, playground_run.placement.worker} == warm, "taken by the warm actors"
    assert cnn_run.device == "gpu" and node_of(cnn_run) in gpu_node_ids(), "the CNN run asked for the GPU"
    assert playground_run.device == "cpu" and playground_run.placement.executor == "ray"
    assert {entry.name for entry in ModelStore().entries()} >= {cnn_run.model_name, playground_run.model_name}
    # an actor trains one run, then ends; each was replaced when it took its run
    replacements = set(ray.util.list_named_actors()) - warm
    assert len(replacements) == 2
    wait_for(lambda: not warm & set(ray.util.list_named_actors()), "the actors that trained ended")
    # and a waiting actor that dies (its machine gone, or killed) is replaced at the next sweep
    gone = replacements.pop()
    ray.kill(ray.get_actor(gone, namespace=NAMESPACE), no_restart=True)
    others = replacements | {gone}
    refilled = wait_for(lambda: set(ray.util.list_named_actors()) - others, "a new one", executor)
    assert gone not in ray.util.list_named_actors() and len(refilled) == 1

    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    listed = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert (listed[cnn]["executor"], listed[cnn]["device"]) == ("ray", "gpu")
    assert listed[cnn]["host"] == cnn_run.placement.host and listed[cnn]["worker"] == cnn_run.placement.worker


def test_two_runs_share_the_gpu_a_third_waits_and_the_caps_hold(monkeypatch):
    monkeypatch.setenv("ZOO_RUNS_PER_DEVICE", "2")  # each CNN run asks half of the GPU
    executor = open_executor()
    first, second = (start(TrainSpec.cnn(**LONG_CNN), by=LOCAL_USER, executor=executor) for _ in range(2))
    store = executor.store
    wait_for(
        lambda: all(store.get(run_id).status == "running" for run_id in (first, second)),
        "both runs training at once on the one GPU",
        executor,
    )
    assert {node_of(store.get(first)), node_of(store.get(second))} <= gpu_node_ids()
    third = start(TrainSpec.cnn(**LONG_CNN), by=LOCAL_USER, executor=executor)
    time.sleep(3)  # time enough for an actor to start, were there room on the GPU
    assert store.get(third).status == "queued", "the GPU's two shares are taken"

    # the host's cap on live runs holds (the store counts, whatever executes): nothing recorded, no actor
    actors = set(ray.util.list_named_actors())
    spec = admit(TrainSpec.binary(num_epochs=5, num_samples=100), LOCAL_USER).spec
    with pytest.raises(PermissionDenied, match="this host has 3 runs queued or running"):
        executor.submit(AdmittedRun(spec, User("alice"), "cpu", Limits(active_runs=3)))
    assert len(store.list_runs()) == 3 and set(ray.util.list_named_actors()) == actors

    for run_id in (third, first, second):
        executor.stop(run_id, by=LOCAL_USER)
    ended = [wait(run_id, TIMEOUT, executor) for run_id in (first, second, third)]
    assert [run.status for run in ended] == ["stopped"] * 3, [run.message for run in ended]
    assert ended[0].model_name and ended[1].model_name, "a stopped run's model is saved as it stood"
    assert ended[2].message == "stopped before it started"


def test_a_cnn_run_on_a_gpu_asks_its_share_and_its_framework_is_held_to_that_share_of_memory(monkeypatch):
    monkeypatch.setenv("ZOO_RUNS_PER_DEVICE", "4")
    monkeypatch.setenv("ZOO_AUTH_COOKIE_SECRET", "not-for-the-cluster")
    kind = ActorKind.of("gpu", "jax", "main")
    assert kind.resources() == {"num_cpus": 0, "num_gpus": 0.25}
    assert kind.memory_fraction() == pytest.approx(0.9 / 4)  # of the 90% of a GPU that runs share
    environment = kind.environment("/home")  # what Ray keeps in its control store and starts the actor with
    assert "CUDA_VISIBLE_DEVICES" not in environment, "Ray gives a GPU actor its GPU"
    assert environment["ZOO_RUNS_PER_DEVICE"] == "4" and "ZOO_AUTH_COOKIE_SECRET" not in environment
    playground = ActorKind.of("cpu", "jax", "playground")
    assert playground.resources() == {"num_cpus": 0, "num_gpus": 0} and playground.memory_fraction() is None
    assert playground.environment("/home")["CUDA_VISIBLE_DEVICES"] == ""


def _actor_training(home: Path) -> int:
    """The process id of the actor training a run of this test (Ray titles it ray::RunActor.train;
    its environment names the test's ZOO_HOME)."""
    for process in Path("/proc").iterdir():
        try:
            title = (process / "cmdline").read_bytes() if process.name.isdigit() else b""
            ours = title.startswith(b"ray::RunActor.train") and f"ZOO_HOME={home}".encode() in (
                (process / "environ").read_bytes().split(b"\0")
            )
            if ours:
                return int(process.name)
        except OSError:
            continue
    return 0


def test_a_run_that_does_not_stop_within_the_grace_period_is_ended_through_ray(zoo_home):
    executor = RayExecutor(open_run_store(), stop_grace=2.0)
    run_id = start(TrainSpec.binary(num_epochs=1000, num_samples=400), by=LOCAL_USER, executor=executor)
    wait_for(lambda: executor.store.get(run_id).progress is not None, "the run training")
    pid = wait_for(lambda: _actor_training(zoo_home), "its actor's process")
    os.kill(pid, signal.SIGSTOP)  # frozen: it can neither see the stop request nor answer
    try:
        executor.stop(run_id, by=LOCAL_USER)
        executor.supervise()
        assert executor.store.get(run_id).status == "running", "the grace period first"
        run = wait_for(lambda: not (now := executor.store.get(run_id)).is_active and now, "ended", executor)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert run.status == "stopped" and "did not stop within 2 s" in run.message
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), "the actor's process ended")


def test_a_run_whose_machine_leaves_the_cluster_fails_with_that_reason_and_the_other_goes_on(cluster):
    before = gpu_node_ids()
    leaving = cluster.add_node(**NODE, num_gpus=1)
    (new_node,) = wait_for(lambda: gpu_node_ids() - before, "the new node")
    executor = open_executor()
    runs = [start(TrainSpec.cnn(**LONG_CNN), by=LOCAL_USER, executor=executor) for _ in range(2)]
    store = executor.store
    wait_for(lambda: all(store.get(run_id).progress is not None for run_id in runs), "both runs training")
    (doomed,) = [run_id for run_id in runs if node_of(store.get(run_id)) == new_node]
    (other,) = set(runs) - {doomed}

    cluster.remove_node(leaving, allow_graceful=False)
    failed = wait(doomed, 60, executor)
    assert failed.status == "failed" and "the machine training it left the cluster" in failed.message
    assert store.get(other).status == "running", "the run on the machine that stayed goes on"
    executor.stop(other, by=LOCAL_USER)
    assert wait(other, TIMEOUT, executor).status == "stopped"


def test_the_train_page_trains_through_ray_and_the_sidebar_and_doctor_describe_the_cluster():
    sidebar = texts(open_page().sidebar.caption)
    assert "Ray cluster: 2 node(s), 1 GPU(s), 2 CPU(s); CNN slots: 1 free of 1" in sidebar
    app = open_page("train")
    app.radio[0].set_value("embedded")
    for label, value in (("Epochs", 1), ("Training images to use (0 = all)", 320)):
        next(widget for widget in app.number_input if widget.label == label).set_value(value)
    click(app, "Start training")
    assert {"batch_curves", "epoch_curves"} <= chart_keys(app)
    run = wait(app.query_params["run"], TIMEOUT)
    assert run.status == "completed" and run.placement.executor == "ray", run.message

    found = {check.name: check for check in check_health()}["executor"]
    assert found.ok and found.detail.startswith(f"ray ({os.environ['RAY_ADDRESS']}): trains on Ray cluster")


def test_a_cluster_that_does_not_answer_is_one_line_from_the_cli_at_once(zoo_home):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nobody listens on
    address = f"127.0.0.1:{closed.getsockname()[1]}"
    environment = {**os.environ, "RAY_ADDRESS": address, "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-m", "zoo", "train", "binary", "--epochs", "2"]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    closed.close()
    assert finished.returncode == 1 and finished.stdout == ""
    assert finished.stderr.splitlines() == [
        f"error: the Ray cluster at {address} cannot be reached ([Errno 111] Connection refused); start it "
        "(ray start --head) or set RAY_ADDRESS to its address, host:port."
    ]
    assert open_run_store().list_runs() == [], "nothing recorded"
