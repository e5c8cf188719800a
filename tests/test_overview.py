"""The admin page's overview of a host, gathered from a real run store and local zoo: who was active
when, each person's runs and best models, the queue in order, the host's load and limits."""

from __future__ import annotations

import os

from run_helpers import claim

from zoo.app.overview import ACTIVE_SECONDS, host_overview
from zoo.core.hosting import HostingConfig, User
from zoo.core.scores import Scores
from zoo.core.settings import HOSTED_LIMITS
from zoo.core.spec import TrainSpec
from zoo.execution.executor import open_executor
from zoo.ml.architectures import build_binary_classifier, build_mnist_cnn
from zoo.runs.store import open_run_store
from zoo.storage.models import ModelConfig, ModelStore, open_local_zoo

ALICE, BOB = User("alice", "alice@example.org"), User("bob")
CONFIG = HostingConfig(mode="hosted", admins=frozenset({"teacher"}), limits=HOSTED_LIMITS)


def model(name: str, owner: str, kind: str, accuracy: float) -> None:
    ModelStore().save(
        build_mnist_cnn() if kind == "cnn" else build_binary_classifier((3,), "sigmoid"),
        name,
        config=ModelConfig(kind, owner=owner),
        metrics=Scores(accuracy),
    )


def test_the_overview_says_who_is_active_and_each_persons_runs_queue_and_best_models():
    store, now = open_run_store(), 10_000.0
    store.record_seen(ALICE, at=now - 60)
    store.record_seen(BOB, at=now - ACTIVE_SECONDS - 1)
    store.record_seen(User("teacher", is_admin=True), at=now - 5)
    running = store.create_run(TrainSpec.cnn(mnist_source="embedded"), "cpu", owner=ALICE)
    assert claim(store, running)
    finished = store.create_run(TrainSpec.binary(), "cpu", owner=BOB)
    assert claim(store, finished)
    store.finish(finished, "completed")
    queued = store.create_run(TrainSpec.cnn(mnist_source="embedded"), "cpu", owner=BOB)
    model("alices-cnn", "alice", "cnn", 0.97)
    model("alices-better-cnn", "alice", "cnn", 0.99)
    model("alices-points", "alice", "binary", 0.9)
    model("bobs-points", "bob", "binary", 0.8)

    overview = host_overview(open_executor(store), open_local_zoo(), CONFIG, now=now)

    people = {person.name: person for person in overview.people}
    assert list(people) == ["alice", "bob", "local", "teacher"]
    alice, bob, teacher, local = people["alice"], people["bob"], people["teacher"], people["local"]
    # the machine's owner (the CLI's), who owns the shipped starter: never on a page, an admin
    assert (local.last_seen, local.is_admin, local.best_cnn.name) == (None, True, "mnist-cnn")
    assert (alice.active, bob.active, teacher.active) == (True, False, True)
    assert (alice.last_seen, teacher.is_admin, alice.is_admin) == (now - 60, True, False)
    assert (alice.running, alice.queued, alice.finished) == (1, 0, 0)
    assert (bob.running, bob.queued, bob.finished) == (0, 1, 1)
    assert (alice.models, bob.models, teacher.models) == (3, 1, 0)
    assert (alice.best_cnn.name, alice.best_binary.name) == ("alices-better-cnn", "alices-points")
    assert (bob.best_cnn, bob.best_binary.name, teacher.best_cnn) == (None, "bobs-points", None)

    assert [(entry.run.id, entry.position) for entry in overview.queue] == [(running, None), (queued, 1)]
    assert {run.id for run in overview.runs} == {running, queued, finished}
    assert {entry.name for entry in overview.models} >= {"alices-cnn", "bobs-points", "mnist-cnn"}

    load = overview.load
    assert load.cpu_count == os.cpu_count() and len(load.load_average) == 3
    assert 0 < load.memory_available_mb <= load.memory_total_mb
    assert (load.training_workers, load.waiting_workers) == (1, 0)
    assert overview.limits == HOSTED_LIMITS


def test_an_owner_never_seen_on_a_page_is_listed_with_their_runs():
    store = open_run_store()
    store.create_run(TrainSpec.binary(), "cpu", owner=User("carol"))
    (carol,) = host_overview(open_executor(store), ModelStore(), CONFIG, now=1.0).people
    assert (carol.name, carol.last_seen, carol.active, carol.queued) == ("carol", None, False, 1)
