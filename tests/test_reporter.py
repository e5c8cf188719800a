"""The worker's reporter (zoo/execution/reporter.py) on the SQLite run store: a compiled call's
epochs are written together and readable at once; while another process holds the store they are kept
and written after it lets go."""

from __future__ import annotations

import sqlite3

from run_helpers import claim

from zoo.core.spec import TrainSpec
from zoo.execution.reporter import StoreReporter
from zoo.ml.training import Progress
from zoo.runs.store import open_run_store


def progress(step: int) -> Progress:
    return Progress(step, 90, (step + 8) // 9, 10, 3_000.0, 0.2, 0.1)


def epoch_rows(store, run_id: str) -> list[tuple[int, float]]:
    return [(row.step, row.value) for row in store.metrics_since(run_id).rows if row.name == "epoch/loss"]


def test_the_epochs_a_call_ended_are_written_together_and_readable_at_once():
    store = open_run_store()
    run_id = store.create_run(TrainSpec.binary(num_epochs=10), "cpu")
    assert claim(store, run_id)
    reporter = StoreReporter(store, run_id)
    reporter.batch({"loss": 0.7}, progress(5))
    reporter.epochs_ended(
        [({"loss": loss}, progress(9 * epoch)) for epoch, loss in ((1, 0.5), (2, 0.4), (3, 0.3))]
    )
    assert epoch_rows(store, run_id) == [(9, 0.5), (18, 0.4), (27, 0.3)]  # no flush needed
    reporter.epochs_ended([({"loss": 0.2}, progress(36)), ({"loss": 0.1}, progress(45))])
    assert epoch_rows(store, run_id)[-2:] == [(36, 0.2), (45, 0.1)]


def test_epochs_reported_while_the_store_is_held_are_kept_and_written_after_it_lets_go():
    store = open_run_store()
    run_id = store.create_run(TrainSpec.binary(num_epochs=10), "cpu")
    assert claim(store, run_id)
    reporter = StoreReporter(store, run_id)
    connection = sqlite3.connect(store.describe().location, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        reporter.epochs_ended([({"loss": 0.5}, progress(9)), ({"loss": 0.4}, progress(18))])  # kept
    finally:
        connection.execute("COMMIT")
        connection.close()
    assert epoch_rows(store, run_id) == []
    reporter.flush()
    assert epoch_rows(store, run_id) == [(9, 0.5), (18, 0.4)]
