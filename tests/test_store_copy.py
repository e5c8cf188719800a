"""``python -m zoo store copy SRC_URL DST_URL [--merge]``: every run with its metrics, events and surface,
and every person, from SQLite to PostgreSQL and back, checked after; a non-empty target is refused
without ``--merge``. Real stores (a SQLite file, the session's PostgreSQL) and the real CLI."""

from __future__ import annotations

import time

from test_cli import run_zoo, succeeded

from zoo.core.hosting import User
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.ml.backend import Device
from zoo.ml.training import DecisionSurface, Environment, Progress
from zoo.runs.records import MetricsReport, Placement
from zoo.runs.store import RunStore, open_run_store

SPEC = TrainSpec.binary(num_epochs=3, model_name="points")


def fill(store: RunStore) -> list[str]:
    """Two finished runs with everything a run has, one queued run of alice's, and two people."""
    run_ids = []
    for index in range(2):
        run_id = store.create_run(SPEC, "cpu")
        store.claim_next("cpu", SPEC.backend, 8, Placement("local", "host-a", str(index), "cpu"))
        environment = Environment("tensorflow", (Device("/device:CPU:0", "CPU"),), {"keras": "3"}, "host-a")
        store.set_started(run_id, "moons (400 points)", environment)
        reports = [
            MetricsReport(
                {"batch/loss": 1.0 / step, "batch/accuracy": step / 10},
                Progress(step, 6, 1, 2, 64.0, 1.5, 0.5),
                time.time(),
            )
            for step in range(1, 7)
        ]
        store.log_metrics(run_id, reports)
        store.save_surface(run_id, DecisionSurface([0.0], [1.0], [[0.25]], [[[[0.5]]]], 6, 2))
        store.add_event(run_id, "data", "moons (400 points)")
        store.finish(
            run_id, "completed", final_metrics=Scores(0.9, macro_f1=0.88), model_name=f"points-{index}"
        )
        run_ids.append(run_id)
    run_ids.append(store.create_run(TrainSpec.cnn(num_epochs=2), "gpu", owner=User("alice")))
    store.record_seen(User("alice", "alice@example.org"), at=100.0)
    store.record_seen(User("teacher", is_admin=True), at=150.0)
    return run_ids


def contents(store: RunStore) -> tuple:
    """Everything a store holds, as readers see it."""
    return (
        [
            (run, store.metrics_since(run.id).rows, store.events(run.id), store.surface(run.id))
            for run in store.list_runs()
        ],
        store.people(),
    )


def test_store_copy_moves_everything_from_sqlite_to_postgresql_and_back(zoo_home, postgres_url):
    sqlite = open_run_store(f"sqlite:///{zoo_home / 'runs.sqlite3'}")
    fill(sqlite)
    back = f"sqlite:///{zoo_home / 'back' / 'runs.sqlite3'}"
    there = succeeded(run_zoo(zoo_home, "store", "copy", sqlite.url, postgres_url, timeout=120))
    assert there.stdout == (
        f"copied 3 runs (24 metric rows, 4 events, 2 surfaces) and 2 people: {sqlite.url} -> {postgres_url}\n"
    )
    succeeded(run_zoo(zoo_home, "store", "copy", postgres_url, back, timeout=120))
    assert contents(open_run_store(postgres_url)) == contents(sqlite) == contents(open_run_store(back))
    queued = open_run_store(back).claim_next("gpu", "auto", 1, Placement("local", "host-b", "7", "gpu"))
    assert queued.owner == "alice" and queued.kind == "cnn"  # the queue came along, and still works


def test_store_copy_refuses_a_non_empty_target_without_merge_and_adds_only_what_it_lacks_with_it(
    zoo_home, postgres_url
):
    sqlite = open_run_store(f"sqlite:///{zoo_home / 'runs.sqlite3'}")
    first, second, _ = fill(sqlite)
    postgres = open_run_store(postgres_url)
    kept = postgres.create_run(SPEC, "cpu")
    refused = run_zoo(zoo_home, "store", "copy", sqlite.url, postgres_url, timeout=120)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: the target run store {postgres_url} is not empty: copy into an empty store, or add --merge "
        "to add the runs it lacks (the ones it has are left as they are)."
    ]
    assert [run.id for run in postgres.list_runs()] == [kept]  # nothing written
    succeeded(run_zoo(zoo_home, "store", "copy", sqlite.url, postgres_url, "--merge", timeout=120))
    assert {run.id for run in postgres.list_runs()} == {
        kept,
        first,
        second,
        *[r.id for r in sqlite.list_runs()],
    }
    again = succeeded(run_zoo(zoo_home, "store", "copy", sqlite.url, postgres_url, "--merge", timeout=120))
    assert again.stdout.startswith("copied 0 runs (0 metric rows, 0 events, 0 surfaces) and 2 people; 3 runs")
    assert len(postgres.metrics_since(first).rows) == 12  # not twice


def test_store_copy_into_the_store_it_reads_is_one_line(zoo_home):
    url = f"sqlite:///{zoo_home / 'runs.sqlite3'}"
    result = run_zoo(zoo_home, "store", "copy", url, url, timeout=120)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "the source and the target are the same run store" in result.stderr
