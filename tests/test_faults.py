"""Fault injection: every fault of issue 12's table, reproduced with real files, real processes (the
CLI as a subprocess, real worker processes) and real signals, and the behaviour a user relies on:
no run left active, nothing deleted, and every CLI error one line on stderr with a non-zero exit.

Read-only directories: chmod does not stop root (these tests may run as root), so for root
``chattr +i`` (immutable) makes a directory and its files unwritable, and chmod does it for other
users. The store's ``-shm`` file is left writable during a run: SQLite maps it into memory, and an
immutable mapped file kills the writer with SIGBUS instead of a write error. A full disk is a
small tmpfs that a test fills (mounting needs root). A store's write lock is held by this process
with ``BEGIN IMMEDIATE``, as any other SQLite client holds it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hub_server import WRITE_TOKEN
from loopback import black_hole, closed_port_url
from PIL import Image
from test_cli import REPOSITORY, run_zoo, succeeded, zoo_environment
from test_data import forged_npz, mnist_arrays, write_npz

from zoo.app.charts.training import metrics_frame
from zoo.core.hosting import LOCAL_USER
from zoo.core.spec import TrainSpec
from zoo.execution.executor import open_executor
from zoo.execution.processes import process_alive
from zoo.runs.postgres import CONNECT_WAIT_SECONDS
from zoo.runs.records import Run
from zoo.runs.sqlite import SqliteRunStore
from zoo.runs.store import RunStore, open_run_store
from zoo.storage.digits import DigitStore
from zoo.storage.models import STARTER_DIRECTORY, ModelConfig, ModelStore, install_starter_models

TINY_SPEC = TrainSpec.binary(num_epochs=1)
LONG_BINARY_RUN = ("train", "binary", "--epochs", "500", "--samples", "2000", "--device", "cpu")


def one_error_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    """Assert the CLI failed with exactly one line on stderr, starting ``error:``, holding ``expected``."""
    lines = result.stderr.splitlines()
    assert result.returncode != 0, result
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def read_only(*paths: Path, recursive: bool = False) -> Iterator[None]:
    """Make ``paths`` unwritable for this process's user, root included, and writable again after."""
    if os.geteuid() == 0:
        flag = ["-R"] if recursive else []
        subprocess.run(["chattr", *flag, "+i", *map(str, paths)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", *flag, "-i", *map(str, paths)], check=True)
        return
    targets = [path for top in paths for path in ([top, *top.rglob("*")] if recursive else [top])]
    modes = {path: path.stat().st_mode for path in targets}
    for path in targets:
        path.chmod(modes[path] & ~0o222)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_zoo(home: Path, *arguments: str, **environment: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", *arguments],
        cwd=REPOSITORY,
        env=zoo_environment(home, **environment),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """CLI processes a test starts; any still running at its end are killed with their workers."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
    with contextlib.suppress(Exception):
        for run in open_run_store().list_runs():
            if worker_pid(run) and process_alive(worker_pid(run)):
                os.killpg(worker_pid(run), signal.SIGKILL)


def store_file(store: RunStore) -> Path:
    """The SQLite file of a run store opened on one."""
    return Path(store.describe().location)


def worker_pid(run: Run) -> int | None:
    """The pid of the local worker a run was claimed by (None while queued)."""
    return int(run.placement.worker) if run.placement and run.placement.worker else None


def running_run(store: RunStore, timeout: float = 180) -> str:
    """The id of the one running run, once its worker reported progress."""
    runs = wait_for(
        lambda: [run for run in store.list_runs() if run.status == "running" and run.progress],
        timeout,
        "a run to train",
    )
    return runs[0].id


def no_runs_and_no_logs(home: Path) -> None:
    assert SqliteRunStore(home / "runs.sqlite3").list_runs() == []
    assert not list((home / "logs").glob("*.log"))


# --- the run store --------------------------------------------------------------------------------


def test_a_store_of_random_bytes_is_moved_aside_with_one_warning_line(zoo_home):
    store = open_run_store()
    garbage = os.urandom(65536)
    store_file(store).write_bytes(garbage)
    result = run_zoo(zoo_home, "runs")
    (moved,) = zoo_home.glob("runs.sqlite3.damaged-*")
    assert result.returncode == 0 and "no runs yet" in result.stdout
    assert result.stderr.splitlines() == [
        f"warning: the run store {store_file(store)} was damaged (file is not a database); it was moved to "
        f"{moved} and a fresh store started (the old runs are in that file)."
    ]
    assert moved.read_bytes() == garbage  # kept, never deleted
    assert run_zoo(zoo_home, "runs").stderr == ""  # the fresh store is sound


def test_a_store_emptied_to_0_bytes_after_runs_is_reported_not_silently_recreated(zoo_home):
    store = open_run_store()
    run_id = store.create_run(TINY_SPEC, "cpu")
    open_executor(store).log_path(run_id).parent.mkdir()
    open_executor(store).log_path(run_id).write_text("the worker's output\n")
    with store_file(store).open("r+b") as handle:
        handle.truncate(0)
    result = run_zoo(zoo_home, "runs")
    assert result.returncode == 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: ") and "emptied to 0 bytes although runs were recorded" in line


def test_a_read_only_zoo_home_is_one_line_for_train_runs_stop_and_doctor(zoo_home):
    open_run_store().create_run(TINY_SPEC, "cpu")
    with read_only(zoo_home, recursive=True):
        for arguments in (("train", "binary"), ("runs",), ("stop", "0123456789ab")):
            one_error_line(run_zoo(zoo_home, *arguments), f"{zoo_home}", "writable")
        doctor = run_zoo(zoo_home, "doctor")
        assert doctor.returncode == 1 and "FAIL  run store:" in doctor.stdout, doctor.stdout
        assert "FAIL  zoo directory:" in doctor.stdout


def test_a_zoo_home_missing_under_a_read_only_parent_is_one_line(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    home = parent / "zoo-home"
    with read_only(parent):
        for arguments in (("train", "binary"), ("runs",), ("stop", "0123456789ab")):
            one_error_line(run_zoo(home, *arguments), f"the directory {home} cannot be created")
    assert not home.exists()


def test_zoo_home_made_read_only_during_a_run_fails_the_run_with_the_reason(zoo_home, processes):
    follower = start_zoo(zoo_home, *LONG_BINARY_RUN)
    processes.append(follower)
    store = open_run_store()
    run_id = running_run(store)
    files = [zoo_home, store_file(store), Path(f"{store_file(store)}-wal")]
    with read_only(*files):
        _, stderr = follower.communicate(timeout=120)
        last = stderr.splitlines()[-1]
        assert follower.returncode == 1 and "Traceback" not in stderr, stderr
        cannot_use = f"error: run {run_id} failed: the run store {store_file(store)} cannot be used"
        assert last.startswith(cannot_use)
        assert "readonly" in last and stderr.count("error:") == 1
        assert store.get(run_id).status == "running"  # recorded once the store takes writes again
    run = wait_for(lambda: (run := store.get(run_id)).status != "running" and run, 60, "the run to close")
    assert run.status == "failed" and "cannot be used (attempt to write a readonly database)" in run.message
    wait_for(lambda: not process_alive(worker_pid(run)), 30, "the worker to end")


@contextlib.contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[Path]:
    """A real file system of ``megabytes`` at ``path`` (tmpfs), that can fill up."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill_up(disk: Path) -> Path:
    """Fill the file system of ``disk`` with one file, until a write fails (ENOSPC); return the file."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_a_disk_that_fills_up_during_a_run_fails_the_run_with_the_reason(tmp_path, processes):
    with small_disk(tmp_path / "disk", 16) as home:
        follower = start_zoo(home, *LONG_BINARY_RUN)
        processes.append(follower)
        store = SqliteRunStore(home / "runs.sqlite3")
        run_id = running_run(store)
        filler = fill_up(home)
        time.sleep(3)  # the worker meets the full disk at its next metric, and keeps trying to close the run
        filler.unlink()
        _, stderr = follower.communicate(timeout=120)
        run = store.get(run_id)
    assert run.status == "failed" and "disk is full" in run.message and "free space" in run.message
    assert follower.returncode == 1 and "Traceback" not in stderr and stderr.count("error:") == 1, stderr
    assert stderr.splitlines()[-1] == f"error: run {run_id} failed: {run.message}"


def test_a_frozen_worker_is_failed_as_hung_and_ended(zoo_home, processes):
    follower = start_zoo(zoo_home, *LONG_BINARY_RUN)
    processes.append(follower)
    store = open_run_store()
    run_id = running_run(store)
    pid = worker_pid(store.get(run_id))
    os.kill(pid, signal.SIGSTOP)
    # Frozen, it cannot beat its heart: the 120 s of silence the store waits for are taken as passed.
    with sqlite3.connect(store_file(store)) as connection:
        connection.execute("UPDATE runs SET heartbeat_at = heartbeat_at - 121 WHERE id = ?", (run_id,))
    _, stderr = follower.communicate(timeout=60)
    assert follower.returncode == 1 and stderr.splitlines()[-1].startswith(f"error: run {run_id} failed: ")
    assert "treated as hung and ended" in stderr
    wait_for(lambda: not process_alive(pid), 10, "the frozen worker to be killed")
    assert store.get(run_id).status == "failed"


def test_a_queued_run_whose_workers_are_killed_ends_in_one_line_never_none_ahead(zoo_home, processes):
    first = start_zoo(zoo_home, *LONG_BINARY_RUN)
    processes.append(first)
    store = open_run_store()
    running = running_run(store)
    second = start_zoo(zoo_home, "train", "binary", "--epochs", "1", "--device", "cpu")
    processes.append(second)
    queued = wait_for(
        lambda: [run for run in store.list_runs() if run.status == "queued"], 60, "the second run to queue"
    )[0]
    pool = wait_for(open_executor(store).pool.workers, 60, "the warm workers that would take it")
    for pid in pool:  # the workers that would take the queued run: killed
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(map(process_alive, pool)), 10, "the pool workers to die")
    # With no worker left, the store waits a minute for one before it fails the run: taken as passed.
    with sqlite3.connect(store_file(store)) as connection:
        connection.execute("UPDATE runs SET created_at = created_at - 61 WHERE id = ?", (queued.id,))
    _, stderr = second.communicate(timeout=60)
    assert "None" not in stderr and "Traceback" not in stderr, stderr
    assert second.returncode == 1
    assert stderr.splitlines()[-1].startswith(f"error: run {queued.id} failed: no worker process took up")
    assert run_zoo(zoo_home, "stop", running).returncode == 0
    first.communicate(timeout=60)
    assert not store.active_runs()


# --- bad data -------------------------------------------------------------------------------------


def test_an_npz_whose_header_claims_a_billion_images_is_one_line_for_train_and_evaluate(zoo_home, tmp_path):
    forged = forged_npz(tmp_path / "forged.npz", 10**9)
    claim = "claims shape (1000000000, 28, 28)"
    one_error_line(run_zoo(zoo_home, "train", "cnn", "--data", str(forged)), claim)
    install_starter_models(ModelStore())
    one_error_line(run_zoo(zoo_home, "evaluate", "mnist-cnn", "--data", str(forged)), claim)
    no_runs_and_no_logs(zoo_home)


def test_an_npz_with_labels_outside_0_9_is_refused_before_a_run_is_queued(zoo_home, tmp_path):
    arrays = mnist_arrays(50, 20)
    arrays["y_train"][3] = 12
    labelled = write_npz(tmp_path / "labels.npz", arrays)
    one_error_line(
        run_zoo(zoo_home, "train", "cnn", "--data", str(labelled)), "y_train holds labels outside 0-9"
    )
    no_runs_and_no_logs(zoo_home)


def test_an_empty_data_argument_is_refused_not_taken_for_auto(zoo_home):
    one_error_line(run_zoo(zoo_home, "train", "cnn", "--data", ""), "empty string")
    no_runs_and_no_logs(zoo_home)


def test_a_directory_or_a_fifo_as_data_is_named_for_what_it_is(zoo_home, tmp_path):
    fifo = tmp_path / "mnist.npz"
    os.mkfifo(fifo)
    one_error_line(run_zoo(zoo_home, "train", "cnn", "--data", str(tmp_path)), "is a directory")
    one_error_line(run_zoo(zoo_home, "train", "cnn", "--data", str(fifo), timeout=60), "named pipe (FIFO)")
    no_runs_and_no_logs(zoo_home)


def test_a_missing_zoo_mnist_is_one_line_and_leaves_no_run_or_log(zoo_home):
    result = run_zoo(zoo_home, "train", "cnn", environment=zoo_environment(zoo_home, ZOO_MNIST="/nope"))
    one_error_line(result, "MNIST file /nope does not exist")
    no_runs_and_no_logs(zoo_home)


def test_evaluate_refuses_data_for_a_binary_model(zoo_home):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    ModelStore().save(model, "points", config=ModelConfig("binary"), metrics=None, history=None)
    one_error_line(
        run_zoo(zoo_home, "evaluate", "points", "--data", "embedded"),
        "points is a binary model",
        "leave it out",
    )


# --- the Hub --------------------------------------------------------------------------------------


def hub_environment(home: Path, **overrides: str) -> dict[str, str]:
    """The CLI's environment with huggingface_hub's progress bars left on: Zoo Studio must quiet them."""
    environment = zoo_environment(home, **overrides)
    environment.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    return environment


def test_hub_list_against_a_hub_that_is_down_or_hung_keeps_to_zoo_hub_timeout_in_total(zoo_home, server):
    with black_hole() as unanswered:
        for endpoint, misbehaviour, reason in (
            (closed_port_url(), {}, "is unreachable (ConnectError)"),
            (unanswered, {}, "is unreachable (no connection within 1 s)"),
            (server.url, {"stall_seconds": 30.0}, "did not answer within 3 s"),
            (server.url, {"trickle_seconds": 5.0}, "did not answer within 3 s"),  # "[]" over 5 s
        ):
            server.reset()
            for name, value in misbehaviour.items():
                setattr(server.state, name, value)
            started = time.monotonic()
            result = run_zoo(
                zoo_home,
                "hub",
                "list",
                environment=hub_environment(zoo_home, HF_ENDPOINT=endpoint, ZOO_HUB_TIMEOUT="3"),
            )
            elapsed = time.monotonic() - started
            one_error_line(result, "cannot list the models on the Hub", reason)
            assert elapsed < 3 + 8, f"{elapsed:.1f} s against {endpoint}"  # 3 s budget, plus Python's start


def pushed_starter(repo_id: str) -> None:
    from zoo.hub import operations as hub

    install_starter_models(ModelStore())
    hub.push("mnist-cnn", repo_id)


def test_a_pull_that_fails_after_downloading_is_one_line(zoo_home, server):
    from huggingface_hub import HfApi

    pushed_starter("alice/broken")
    api = HfApi(endpoint=server.url, token=WRITE_TOKEN)
    api.upload_file(
        path_or_fileobj=b"\x89HDF not weights", path_in_repo="model.weights.h5", repo_id="alice/broken"
    )
    result = run_zoo(
        zoo_home, "pull", "alice/broken", "--name", "broken", environment=hub_environment(zoo_home)
    )
    one_error_line(result, "cannot be loaded as a Keras model")
    assert "broken" not in {entry.name for entry in ModelStore().entries()}


def test_a_hub_that_lists_no_sizes_is_capped_while_the_download_streams(zoo_home, server):
    pushed_starter("alice/sizeless")
    server.state.list_sizes = False
    server.state.requests.clear()
    result = run_zoo(
        zoo_home,
        "pull",
        "alice/sizeless",
        "--name",
        "capped",
        "--max-download-mb",
        "0.001",
        environment=hub_environment(zoo_home),
    )
    one_error_line(result, "the download went over the download limit of 0.0 MB")
    assert [path for _, path in server.state.requests if "/resolve/" in path]  # tried, not skipped
    assert "capped" not in {entry.name for entry in ModelStore().entries()}
    pulled = run_zoo(zoo_home, "pull", "alice/sizeless", "--name", "whole", "--json")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["name"] == "whole"


# --- the app --------------------------------------------------------------------------------------


def open_app_page(page: str):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=90)
    app.run()
    app.switch_page(f"pages/{page}.py")
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def test_the_app_moves_a_damaged_store_aside_and_says_where_it_is(zoo_home):
    from streamlit.testing.v1 import AppTest

    store_file(open_run_store()).write_bytes(os.urandom(65536))
    app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=90)
    app.run()
    (moved,) = zoo_home.glob("runs.sqlite3.damaged-*")
    assert not app.exception and any(str(moved) in warning.value for warning in app.warning)


@pytest.mark.parametrize("page", ["draw", "hub"])
def test_a_store_damaged_while_the_app_runs_does_not_break_draw_or_hub(zoo_home, page):
    app = open_app_page("home")
    store_file(open_run_store()).write_bytes(os.urandom(65536))
    app.switch_page(f"pages/{page}.py")
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    assert app.selectbox or app.text_input  # the page itself rendered


def test_pages_that_need_no_run_store_work_while_it_is_unusable(zoo_home):
    from streamlit.testing.v1 import AppTest

    install_starter_models(ModelStore())
    unusable = f"the run store {zoo_home / 'runs.sqlite3'} cannot be used"
    with read_only(zoo_home):  # no store can be created in it; the local zoo's models stay readable
        app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=90)
        app.run()
        assert not app.exception and unusable in " ".join(error.value for error in app.error)
        for page in ("learn", "draw", "hub"):
            app.switch_page(f"pages/{page}.py")
            app.run()
            assert not app.exception, (page, [exception.message for exception in app.exception])
            assert app.title, page
        assert "mnist-cnn" in app.selectbox[0].options[0]  # Draw offers the local zoo's model
        app.switch_page("pages/runs.py")  # a page that needs the store says why, without a traceback
        app.run()
        assert not app.exception and unusable in " ".join(error.value for error in app.error)


def app_at(page: str):
    """A new session's first view of ``page``: through app.py (its run-store check, its sidebar), as a
    browser opening the page's link; a later ``switch_page`` of AppTest runs the page alone."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=90)
    app.switch_page(f"pages/{page}.py")
    return app.run()


def test_the_database_down_is_one_banner_where_runs_are_needed_and_no_page_waits_for_it(
    postgres_server, app_postgres_url, monkeypatch, zoo_home
):
    """The app server's PostgreSQL run store stops: no page waits the store's 5 s for a connection
    (app.py reads the store on every page, Home and Runs list runs), Learn, Draw, Hub and Home's models
    render, Train, Runs and Playground say it once, naming the database and what to do, and
    ``python -m zoo runs`` says it in one line."""
    monkeypatch.setenv("ZOO_RUN_STORE", app_postgres_url)
    install_starter_models(ModelStore())
    for page in ("home", "learn", "draw", "hub"):  # the server has opened its store; Draw has its model
        assert not app_at(page).exception, page
    database = f"PostgreSQL database {app_postgres_url.rsplit('/', 1)[1]} on 127.0.0.1:{postgres_server.port}"
    down = f"the run store's {database} cannot be used"
    postgres_server.stop()
    try:
        for page in ("learn", "draw", "hub", "home", "train", "runs", "playground"):
            began = time.monotonic()
            app = app_at(page)
            took = time.monotonic() - began
            assert not app.exception, (page, [exception.message for exception in app.exception])
            assert app.title and took < CONNECT_WAIT_SECONDS, (page, f"{took:.1f} s")  # 6-10 s before
            if page == "home":  # the local zoo's models need no run store
                assert "Models in the local zoo" in [header.value for header in app.subheader]
            if page in ("train", "runs", "playground"):
                (banner,) = [error.value for error in app.error if down in error.value]
                assert "start the server or check ZOO_RUN_STORE" in banner, banner
        one_error_line(run_zoo(zoo_home, "runs"), down)
    finally:
        postgres_server.start()


# --- one line, the right cause (issue 21) ---------------------------------------------------------


def symlink_loop(directory: Path) -> Path:
    """Two symbolic links naming each other: opening either fails with ELOOP."""
    first, second = directory / "loop-a.npz", directory / "loop-b.npz"
    first.symlink_to(second)
    second.symlink_to(first)
    return first


def test_a_symlink_loop_as_data_or_zoo_mnist_is_one_line_for_train_evaluate_and_doctor(zoo_home, tmp_path):
    loop = symlink_loop(tmp_path)
    said = f"MNIST file {loop} is a loop of symbolic links"
    looped = zoo_environment(zoo_home, ZOO_MNIST=str(loop))
    one_error_line(run_zoo(zoo_home, "train", "cnn", "--data", str(loop)), said)
    one_error_line(run_zoo(zoo_home, "train", "cnn", environment=looped), said)
    install_starter_models(ModelStore())
    one_error_line(run_zoo(zoo_home, "evaluate", "mnist-cnn", "--data", str(loop)), said)
    doctor = run_zoo(zoo_home, "doctor", environment=looped)
    assert doctor.returncode == 1 and doctor.stderr == "", doctor.stderr
    assert any(line.startswith(f"FAIL  data source: {said}") for line in doctor.stdout.splitlines())
    no_runs_and_no_logs(zoo_home)


def damage_run_record(store: RunStore, run_id: str, column: str, value: str) -> None:
    with sqlite3.connect(store_file(store)) as connection:
        connection.execute(f"UPDATE runs SET {column} = ? WHERE id = ?", (value, run_id))


def test_a_run_record_with_damaged_json_is_listed_as_damaged_among_the_others(zoo_home):
    store = open_run_store()
    sound, bad_spec, bad_progress = (store.create_run(TINY_SPEC, "cpu") for _ in range(3))
    for run_id in (sound, bad_spec, bad_progress):
        store.finish(run_id, "completed")
    damage_run_record(store, bad_spec, "spec", '{"kind": "binary", "num_ep')
    damage_run_record(store, bad_progress, "progress", "[1, 2")
    result = run_zoo(zoo_home, "runs", "--json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows.keys() == {sound, bad_spec, bad_progress} and rows[sound]["status"] == "completed"
    for run_id, column in ((bad_spec, "spec"), (bad_progress, "progress")):
        assert rows[run_id]["status"] == "damaged", rows[run_id]
        assert f"its {column} is not valid" in rows[run_id]["message"], rows[run_id]["message"]
        assert "delete it on the Runs page" in rows[run_id]["message"]
    table = succeeded(run_zoo(zoo_home, "runs")).stdout
    assert any(line.startswith(bad_spec) and " damaged " in line for line in table.splitlines()), table
    doctor = run_zoo(zoo_home, "doctor")
    assert doctor.returncode == 1 and doctor.stderr == "", doctor.stderr
    (line,) = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL  run store:")]
    assert bad_spec in line and bad_progress in line and sound not in line


def drawn_one(directory: Path) -> Path:
    """A PNG of a drawn 1: a white bar on black, as the canvas gives it."""
    import numpy as np

    drawing = np.zeros((280, 280), np.uint8)
    drawing[40:240, 130:150] = 255
    path = directory / "one.png"
    Image.fromarray(drawing).save(path)
    return path


def test_digits_add_relabel_and_delete_on_a_read_only_zoo_home_are_one_line_and_lose_nothing(
    zoo_home, tmp_path
):
    image = drawn_one(tmp_path)
    succeeded(run_zoo(zoo_home, "digits", "add", "mine", "1", str(image)))
    (kept,) = DigitStore().digits("mine", by=LOCAL_USER)
    set_directory = zoo_home / "digits" / "mine"
    with read_only(zoo_home, recursive=True):
        for arguments, directory in (
            (("digits", "add", "mine", "1", str(image)), set_directory),
            (("digits", "add", "other", "2", str(image)), zoo_home / "digits"),
            (("digits", "relabel", "mine", kept.id, "7"), set_directory),
            (("digits", "delete", "mine", kept.id), set_directory),
        ):
            one_error_line(run_zoo(zoo_home, *arguments), f"{directory} cannot be written", "writable")
    assert [(digit.id, digit.label) for digit in DigitStore().digits("mine", by=LOCAL_USER)] == [(kept.id, 1)]
    assert DigitStore().set_names(by=LOCAL_USER) == ["mine"]


def test_pull_into_a_read_only_zoo_home_is_one_line(zoo_home, server):
    pushed_starter("alice/read-only")
    with read_only(zoo_home, recursive=True):
        result = run_zoo(
            zoo_home, "pull", "alice/read-only", "--name", "pulled", environment=hub_environment(zoo_home)
        )
    one_error_line(result, f"{zoo_home / 'models'} cannot be written", "writable")
    assert not (zoo_home / "models" / "pulled").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_digits_add_on_a_full_disk_is_one_line_and_keeps_the_digits_already_there(tmp_path):
    image = drawn_one(tmp_path)
    with small_disk(tmp_path / "disk", 1) as home:
        succeeded(run_zoo(home, "digits", "add", "mine", "1", str(image)))
        fill_up(home)
        result = run_zoo(home, "digits", "add", "mine", "2", str(image))
        one_error_line(result, f"{home / 'digits' / 'mine'} cannot be written", "No space left", "free space")
        assert [digit.label for digit in DigitStore(home / "digits").digits("mine", by=LOCAL_USER)] == [1]
        assert not list((home / "digits" / "mine").glob(".tmp-*"))  # no half-written digit left behind


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_a_backend_that_is_not_installed_is_refused_at_once_before_anything_is_queued(zoo_home):
    started = time.monotonic()
    result = run_zoo(zoo_home, "train", "binary", "--backend", "torch", timeout=120)
    one_error_line(result, "No module named 'torch'", "pip install torch")
    assert time.monotonic() - started < 30
    no_runs_and_no_logs(zoo_home)


def copy_of_the_starter(name: str, **spec: object) -> Path:
    """The shipped starter copied into the local zoo as ``name``, its recorded spec changed by ``spec``."""
    path = ModelStore().storage.root / name
    shutil.copytree(STARTER_DIRECTORY / "mnist-cnn", path)
    config = json.loads((path / "config.json").read_text())
    config["spec"].update(spec)
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_evaluate_a_model_whose_data_file_is_on_another_machine_falls_back_in_the_readme_order(
    zoo_home, mnist_npz_file
):
    elsewhere = "/home/trainer/.keras/datasets/mnist.npz"
    copy_of_the_starter("trained-elsewhere", mnist_source=elsewhere)
    missing = f"{elsewhere}, the file it was trained on, is not on this machine"
    with_zoo_mnist = zoo_environment(zoo_home, ZOO_MNIST=str(mnist_npz_file))
    summary = json.loads(
        succeeded(
            run_zoo(zoo_home, "evaluate", "trained-elsewhere", "--json", environment=with_zoo_mnist)
        ).stdout
    )
    assert (
        summary["data_source"].startswith(f"MNIST from {mnist_npz_file}")
        and missing in summary["data_source"]
    )
    assert summary["num_examples"] == 1000
    text = succeeded(run_zoo(zoo_home, "evaluate", "trained-elsewhere")).stdout.splitlines()[0]
    assert text.startswith("trained-elsewhere on embedded MNIST subset") and missing in text


def test_evaluate_the_starter_on_a_fresh_machine_uses_zoo_mnist_or_the_embedded_digits(
    zoo_home, mnist_npz_file
):
    with_zoo_mnist = zoo_environment(zoo_home, ZOO_MNIST=str(mnist_npz_file))
    summary = json.loads(
        succeeded(run_zoo(zoo_home, "evaluate", "mnist-cnn", "--json", environment=with_zoo_mnist)).stdout
    )
    assert summary["data_source"].startswith(f"MNIST from {mnist_npz_file}"), summary["data_source"]
    assert summary["accuracy"] > 0.98  # the starter reads the embedded test digits (in that file)
    plain = succeeded(run_zoo(zoo_home, "evaluate", "mnist-cnn")).stdout.splitlines()[0]
    assert plain.startswith("mnist-cnn on embedded MNIST subset"), plain


def store_damaged_inside(store: RunStore) -> str:
    """Damage the b-tree pages of a store holding runs, so that quick_check reports problems over
    several lines (not "not a database"); returns what quick_check says."""
    for _ in range(30):
        run_id = store.create_run(TINY_SPEC, "cpu")
        store.add_event(run_id, "note", "x" * 500)
        store.finish(run_id, "completed")
    with sqlite3.connect(store_file(store)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    content = bytearray(store_file(store).read_bytes())
    for page in (3, 10, 20):  # a leaf page header claiming 80 cells at offset 0
        content[page * 4096 : page * 4096 + 12] = bytes.fromhex("0d000000500fff0000000000")
    store_file(store).write_bytes(bytes(content))
    with sqlite3.connect(store_file(store)) as connection:
        return connection.execute("PRAGMA quick_check(3)").fetchone()[0]


def test_a_store_damaged_inside_is_moved_aside_with_a_one_line_warning(zoo_home):
    found = store_damaged_inside(open_run_store())
    assert "\n" in found  # SQLite's own report is several lines
    result = run_zoo(zoo_home, "runs")
    (moved,) = zoo_home.glob("runs.sqlite3.damaged-*")
    assert result.returncode == 0 and "no runs yet" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"warning: the run store {zoo_home / 'runs.sqlite3'} was damaged (")
    assert f"it was moved to {moved}" in line and "On tree page" in line


class LineReader:
    """The lines a process writes to a pipe, with when each arrived, read by a thread as they come."""

    def __init__(self, stream) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, text: str) -> tuple[float, str] | None:
        return next(((at, line) for at, line in self.lines if text in line), None)

    def text(self) -> list[str]:
        self.thread.join(timeout=30)
        return [line for _, line in self.lines]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_a_disk_that_stays_full_during_a_run_is_said_at_once(tmp_path, processes):
    with small_disk(tmp_path / "disk", 16) as home:
        follower = start_zoo(home, *LONG_BINARY_RUN)
        processes.append(follower)
        stderr = LineReader(follower.stderr)
        store = SqliteRunStore(home / "runs.sqlite3")
        run_id = running_run(store)
        # A reader in the middle of a read (a page drawing a chart): SQLite cannot restart its write-ahead
        # log from the top, so every write needs new room on the disk, and the disk stays full for them.
        reader = sqlite3.connect(store_file(store), isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM metrics").fetchone()
        filler = fill_up(home)
        filled = time.monotonic()
        at, line = wait_for(
            lambda: stderr.first("waiting for the run store to accept writes"), 30, "the follower to say why"
        )
        assert at - filled < 10, f"said after {at - filled:.1f} s"
        assert f"the disk under {home} is full" in line
        reader.close()
        filler.unlink()
        follower.wait(timeout=120)
        run = store.get(run_id)
    lines = stderr.text()
    assert run.status == "failed" and "disk is full" in run.message, run.message
    assert follower.returncode == 1 and lines[-1] == f"error: run {run_id} failed: {run.message}"
    assert not any("Traceback" in line for line in lines) and sum("error:" in line for line in lines) == 1


# --- store locks and doctor (issue 21) ------------------------------------------------------------


@contextlib.contextmanager
def write_lock_held(store: RunStore) -> Iterator[None]:
    """Hold the store's write lock from this process, as another SQLite client would."""
    connection = sqlite3.connect(store_file(store), isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def test_a_run_survives_another_process_holding_the_store_write_lock_for_40_s(zoo_home, processes):
    epochs = 60
    follower = start_zoo(zoo_home, "train", "binary", "--epochs", str(epochs), "--samples", "2000")
    processes.append(follower)
    store = open_run_store()
    run_id = running_run(store)
    with write_lock_held(store):
        time.sleep(40)
    _, stderr = follower.communicate(timeout=240)
    run = store.get(run_id)
    assert run.status == "completed" and follower.returncode == 0, (run.message, stderr)
    metrics = metrics_frame(store.metrics_since(run_id).rows)
    epochs_logged = metrics.query("name == 'epoch/loss'")["epoch"].tolist()
    assert epochs_logged == list(range(1, epochs + 1))  # every epoch's metrics, none lost to the lock
    assert store.surface(run_id).epoch == epochs  # and the decision surface as training left it
    assert "Traceback" not in stderr and "error:" not in stderr, stderr


def test_runs_and_doctor_answer_while_another_process_holds_the_store_write_lock(zoo_home):
    store = open_run_store()
    run_id = store.create_run(TINY_SPEC, "cpu")
    store.finish(run_id, "completed")
    with write_lock_held(store):
        started = time.monotonic()
        runs = run_zoo(zoo_home, "runs", "--json", timeout=120)
        listed = time.monotonic() - started
        started = time.monotonic()
        doctor = run_zoo(zoo_home, "doctor", timeout=120)
        checked = time.monotonic() - started
    assert runs.returncode == 0 and runs.stderr == "", runs.stderr
    assert [row["id"] for row in json.loads(runs.stdout)] == [run_id] and listed < 20, listed
    assert doctor.returncode == 1 and checked < 15, (checked, doctor.stdout)  # Docker's health check: 20 s
    (line,) = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL  run store:")]
    assert "another process holds its write lock" in line, line
    checks = doctor.stdout.split("\n\n")[0].splitlines()  # the settings follow, after a blank line
    assert all(line.startswith("ok  ") for line in checks if "run store" not in line)


def test_doctor_fails_an_unreadable_configuration_with_the_words_train_gives(zoo_home):
    zoo_home.mkdir()
    (zoo_home / "config.toml").write_text("mode = hosted\n")  # a bare word: not TOML
    refused = one_error_line(run_zoo(zoo_home, "train", "binary"), "config.toml cannot be read")
    doctor = run_zoo(zoo_home, "doctor")
    assert doctor.returncode == 1 and doctor.stderr == ""
    assert f"FAIL  configuration: {refused.removeprefix('error: ')}" in doctor.stdout.splitlines()


def test_models_and_doctor_list_model_folders_with_a_damaged_config_or_model_file(zoo_home):
    install_starter_models(ModelStore())
    (copy_of_the_starter("bad-config") / "config.json").write_text('{"kind": "cnn", "form')
    model_file = copy_of_the_starter("bad-model") / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:5000])  # cut short, as by a full disk
    listed = succeeded(run_zoo(zoo_home, "models"))
    assert listed.stdout.splitlines()[1].startswith("mnist-cnn ")
    damaged = [line for line in listed.stdout.splitlines() if line.startswith("damaged: ")]
    assert [line.split()[1] for line in damaged] == ["bad-config", "bad-model"], listed.stdout
    assert (
        "config.json is not valid JSON" in damaged[0]
        and "model.keras is not a Keras model file" in damaged[1]
    )
    assert all("delete the folder" in line for line in damaged)
    rows = json.loads(succeeded(run_zoo(zoo_home, "models", "--json")).stdout)
    assert [(row["name"], bool(row["damaged"])) for row in rows] == [
        ("mnist-cnn", False),
        ("bad-config", True),
        ("bad-model", True),
    ]
    doctor = run_zoo(zoo_home, "doctor")
    assert doctor.returncode == 1 and doctor.stderr == ""
    (line,) = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL  local zoo:")]
    assert "bad-config" in line and "bad-model" in line and "delete the folder" in line
