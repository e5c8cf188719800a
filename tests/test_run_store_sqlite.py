"""The SQLite run store's own behaviour, beyond the contract (tests/test_run_store_contract.py): its URL,
schema versions and migrations (a fixture per earlier version), damaged files moved aside, and damaged
run records listed as such."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from run_helpers import claim

from zoo.core.errors import StorageError, ZooError
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.runs.records import Placement
from zoo.runs.sqlite import SqliteRunStore
from zoo.runs.sqlite_schema import SCHEMA_VERSION
from zoo.runs.store import open_run_store

SPEC = TrainSpec.binary(num_epochs=3, model_name="points")


@pytest.fixture
def store(zoo_home) -> SqliteRunStore:
    return SqliteRunStore()


def path_of(store) -> Path:
    return Path(store.describe().location)


def test_zoo_run_store_names_the_store_and_its_default_is_the_file_in_zoo_home(
    zoo_home, tmp_path, monkeypatch
):
    assert open_run_store().url == f"sqlite:///{zoo_home / 'runs.sqlite3'}"
    elsewhere = tmp_path / "elsewhere" / "runs.sqlite3"
    monkeypatch.setenv("ZOO_RUN_STORE", f"sqlite:///{elsewhere}")
    run_id = open_run_store().create_run(SPEC, "cpu")
    assert elsewhere.is_file() and SqliteRunStore(elsewhere).get(run_id).spec == SPEC
    assert open_run_store().describe().location == str(elsewhere)


@pytest.mark.parametrize(
    "url",
    ["postgres://zoo@db/runs", "runs.sqlite3", "sqlite://runs.sqlite3", "sqlite:///"],
)
def test_a_run_store_url_this_zoo_studio_cannot_open_is_one_line_naming_the_known_form(url, monkeypatch):
    monkeypatch.setenv("ZOO_RUN_STORE", url)
    with pytest.raises(ZooError) as refused:  # SettingsError (not a URL) or StorageError (not a store)
        open_run_store()
    message = str(refused.value)
    assert "\n" not in message and "sqlite:////" in message and repr(url) in message, message


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
    store = SqliteRunStore(old)
    assert store.describe().notice is None
    assert user_version(old) == SCHEMA_VERSION
    assert schema_of(old) == schema_of(path_of(SqliteRunStore(tmp_path / "fresh" / "runs.sqlite3")))
    runs = {run.model_name or run.kind: run for run in store.list_runs()}
    assert runs["points-v0"].status == "completed" and runs["points-v0"].final_metrics == Scores(0.9)
    assert runs["cnn"].status == "stopped"
    completed = runs["points-v0"].id
    assert [row.name for row in store.metrics_since(completed).rows] == [
        "batch/loss",
        "batch/accuracy",
        "epoch/loss",
    ]
    assert store.surface(completed).probability == [[0.1]] and store.surface(completed).epoch == 1
    assert [event.kind for event in store.events(completed)] == ["completed"]
    # the worker recorded by its pid: the local executor's process, on a host not recorded
    assert runs["points-v0"].placement == Placement("local", None, "8614", "cpu")
    assert runs["cnn"].placement is None  # never claimed
    store.add_event(completed, "note", "written after the migration")  # and it is writable


def test_a_fresh_store_has_the_newest_schema_version(store):
    assert user_version(path_of(store)) == SCHEMA_VERSION and store.describe().notice is None
    assert store.describe().schema_version == SCHEMA_VERSION


def test_a_store_from_a_newer_zoo_studio_is_refused_not_touched(store):
    path = path_of(store)
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StorageError, match="newer than this Zoo Studio knows"):
        SqliteRunStore(path)
    assert user_version(path) == SCHEMA_VERSION + 1 and not list(path.parent.glob("*.damaged-*"))


def test_a_store_of_random_bytes_is_moved_aside_and_a_fresh_one_started(zoo_home):
    path = path_of(SqliteRunStore())
    garbage = os.urandom(65536)
    path.write_bytes(garbage)
    store = SqliteRunStore()
    (moved,) = path.parent.glob("runs.sqlite3.damaged-*")
    assert moved.read_bytes() == garbage
    notice = store.describe().notice
    assert str(moved) in notice and "file is not a database" in notice
    assert store.list_runs() == [] and store.get(store.create_run(SPEC, "cpu")).status == "queued"
    assert SqliteRunStore().describe().notice is None  # the fresh store is sound: no second move


def test_an_emptied_store_is_reported_when_runs_had_been_recorded(zoo_home):
    store = SqliteRunStore()
    run_id = store.create_run(SPEC, "cpu")
    (zoo_home / "logs").mkdir()
    (zoo_home / "logs" / f"{run_id}.log").write_text("worker output\n")  # its worker's log (the executor's)
    path_of(store).write_bytes(b"")
    reopened = SqliteRunStore()
    assert "emptied to 0 bytes" in reopened.describe().notice
    assert len(list(zoo_home.glob("runs.sqlite3.damaged-*"))) == 1


def test_an_empty_file_without_any_run_history_is_simply_a_new_store(zoo_home):
    path = path_of(SqliteRunStore())
    path.write_bytes(b"")
    assert SqliteRunStore().describe().notice is None and not list(path.parent.glob("*.damaged-*"))


def test_a_store_damaged_while_in_use_is_moved_aside_on_the_next_operation(store):
    store.create_run(SPEC, "cpu")
    path = path_of(store)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StorageError, match=r"moved to .*damaged-"):
        store.list_runs()
    assert store.list_runs() == []  # the next operation works on the fresh store


def test_a_held_write_lock_is_named_with_the_command_that_finds_its_holder(store):
    path = path_of(store)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        blocker = store.write_blocker(wait_seconds=0.1)
    finally:
        connection.close()
    assert blocker == f"another process holds its write lock (`fuser -v {path}` names it)"
    assert store.write_blocker() is None


def test_a_run_ended_without_scores_reads_none_and_keeps_the_record_older_versions_read(store):
    run_id = claim(store, store.create_run(SPEC, "cpu")).id
    store.finish(run_id, "failed", message="out of memory; use a smaller batch size")
    assert store.get(run_id).final_metrics is None
    with sqlite3.connect(path_of(store)) as connection:
        (recorded,) = connection.execute("SELECT final_metrics FROM runs WHERE id = ?", (run_id,)).fetchone()
    assert json.loads(recorded) == {}  # older versions read {} as no scores; null would be damage to them
