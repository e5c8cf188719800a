"""The PostgreSQL run store's own behaviour, beyond the contract (tests/test_run_store_contract.py): no
password shown, schema versions, the server down, and a store that outlives a server restart. Against
the real PostgreSQL 15 of tests/postgres_server.py."""

from __future__ import annotations

import os
import signal
import threading
import time

import psycopg
import pytest
from postgres_server import _free_port
from test_cli import REPOSITORY, run_zoo, zoo_environment
from test_execution import steps_done, wait_for_exit, wait_until

from zoo.core.errors import StorageError, StoreLocked
from zoo.core.hosting import LOCAL_USER
from zoo.core.spec import TrainSpec
from zoo.execution.admission import start
from zoo.execution.executor import open_executor, wait
from zoo.execution.local import LocalExecutor
from zoo.execution.reporter import StoreReporter
from zoo.execution.supervisor import Supervisor
from zoo.ml.training import Progress
from zoo.runs.postgres import PostgresRunStore
from zoo.runs.postgres_schema import SCHEMA_VERSION
from zoo.runs.records import MetricsReport, Placement
from zoo.runs.store import open_run_store
from zoo.storage.models import ModelStore

SPEC = TrainSpec.binary(num_epochs=3, model_name="points")
# A run that trains for seconds in compiled calls (56,000 single-point steps), so that its queries are
# cut, or its server restarted, while it trains.
LONG_RUN = TrainSpec.binary(num_samples=4_000, batch_size=1, num_epochs=20)
CUT_SECONDS = 0.5  # a few of LONG_RUN's compiled calls


def with_password(url: str, password: str = "s3cret") -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")


def report(step: int) -> MetricsReport:
    return MetricsReport({"batch/loss": 1.0 / step}, Progress(step, 6, 1, 2, 64.0, 1.5, 0.5), time.time())


def running(store) -> str:
    run_id = store.create_run(SPEC, "cpu")
    assert store.claim_next("cpu", SPEC.backend, 1, Placement("local", "host-a", "1", "cpu")).id == run_id
    return run_id


def schema_version_of(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT version FROM zoo_schema").fetchone()[0]


def test_zoo_run_store_picks_postgresql_and_its_password_is_never_shown(postgres_url, monkeypatch):
    secret = with_password(postgres_url)  # the test server trusts loopback: any password opens it
    monkeypatch.setenv("ZOO_RUN_STORE", secret)
    store = open_run_store()
    assert isinstance(store, PostgresRunStore) and store.url == postgres_url
    described = store.describe()
    assert "s3cret" not in repr(described) and described.schema_version == SCHEMA_VERSION
    assert described.location.startswith("PostgreSQL database zoo_test_")
    assert f"127.0.0.1:{postgres_url.split(':')[2].split('/')[0]}" in described.location
    run_id = store.create_run(SPEC, "cpu")
    assert open_run_store(store.url).get(run_id).spec == SPEC  # a worker opens it by its url


def test_the_server_down_is_one_line_naming_where_and_how_to_fix_it_without_the_password(zoo_home):
    port = _free_port()  # nothing listens there
    began = time.monotonic()
    with pytest.raises(StorageError) as refused:
        open_run_store(f"postgresql://zoo:s3cret@127.0.0.1:{port}/zoo")
    message = str(refused.value)
    assert "\n" not in message and "s3cret" not in message, message
    assert f"PostgreSQL database zoo on 127.0.0.1:{port}" in message and "start the server" in message
    assert "Connection refused" in message
    assert time.monotonic() - began < 5  # said at once, not after the pool's waits


@pytest.mark.parametrize("url", ["postgresql://zoo:s3cret@127.0.0.1", "postgresql://zoo:s3cret@/zoo"])
def test_a_postgresql_url_without_a_host_or_a_database_is_one_line_with_the_form_to_write(url, zoo_home):
    with pytest.raises(StorageError) as refused:
        open_run_store(url)
    message = str(refused.value)
    assert (
        "\n" not in message and "s3cret" not in message and "postgresql://USER@HOST:PORT/DATABASE" in message
    )


def test_a_fresh_database_gets_the_schema_once_even_when_several_open_it_at_once(postgres_url):
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            PostgresRunStore(postgres_url)
        except BaseException as error:  # reported below with the test's assertion
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and schema_version_of(postgres_url) == SCHEMA_VERSION


def test_a_database_left_at_an_older_version_is_migrated_with_what_it_holds(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as connection:  # version 0: the table, no schema yet
        connection.execute("CREATE TABLE zoo_schema (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO zoo_schema (version) VALUES (0)")
    store = open_run_store(postgres_url)
    assert schema_version_of(postgres_url) == SCHEMA_VERSION == store.describe().schema_version
    run_id = store.create_run(SPEC, "cpu")
    assert open_run_store(postgres_url).get(run_id).status == "queued"  # opened again: nothing re-created


def test_a_database_from_a_newer_zoo_studio_is_refused_not_touched(postgres_url):
    run_id = open_run_store(postgres_url).create_run(SPEC, "cpu")
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE zoo_schema SET version = %s", (SCHEMA_VERSION + 1,))
    newer = f"schema version {SCHEMA_VERSION + 1}, newer than this Zoo Studio knows"
    with pytest.raises(StorageError, match=newer):
        open_run_store(postgres_url)
    assert schema_version_of(postgres_url) == SCHEMA_VERSION + 1
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT id FROM runs").fetchall() == [(run_id,)]


def test_a_store_keeps_working_after_the_server_restarts(postgres_server, postgres_url):
    store = open_run_store(postgres_url)
    run_id = running(store)
    store.log_metrics(run_id, [report(1)])
    postgres_server.restart()  # every connection the pool holds is cut
    store.log_metrics(run_id, [report(2)])
    assert [row.step for row in store.metrics_since(run_id).rows] == [1, 2]
    assert store.get(run_id).progress.step == 2


def test_a_write_while_the_server_is_down_fails_in_one_line_and_nothing_is_half_written(
    postgres_server, postgres_url
):
    store = open_run_store(postgres_url)
    run_id = running(store)
    store.log_metrics(run_id, [report(1)])
    postgres_server.stop()
    try:
        with pytest.raises(StoreLocked) as refused:  # a worker keeps the rows and writes them later
            store.log_metrics(run_id, [report(2), report(3)], wait_seconds=0.5)
        message = str(refused.value)
        assert "\n" not in message and "127.0.0.1" in message and "start the server" in message, message
        with pytest.raises(StorageError, match="cannot be used"):
            store.get(run_id)
    finally:
        postgres_server.start()
    assert [row.step for row in store.metrics_since(run_id).rows] == [1]
    assert store.get(run_id).progress.step == 1


def test_a_worker_s_reports_during_an_outage_are_kept_and_written_after_it(postgres_server, postgres_url):
    store = open_run_store(postgres_url)
    run_id = running(store)
    reporter = StoreReporter(store, run_id)
    reporter.batch({"loss": 1.0}, Progress(1, 6, 1, 2, 64.0, 1.5, 0.5))
    postgres_server.stop()
    try:
        reporter.batch({"loss": 0.5}, Progress(2, 6, 1, 2, 64.0, 1.5, 0.5))  # kept, not lost, not raised
    finally:
        postgres_server.start()
    reporter.flush()
    assert [(row.step, row.value) for row in store.metrics_since(run_id).rows] == [(1, 1.0), (2, 0.5)]


def cut_mid_query(url: str, times: int) -> int:
    """Cut the run store's connections in the middle of their queries (``pg_terminate_backend``: what a
    restart or a failover does to a query under way), ``times`` times: the runs table is held locked
    for CUT_SECONDS, so that the worker's next read or write waits inside its query, then every query
    waiting for it is cut. How many were cut."""
    cut = 0
    with psycopg.connect(url, autocommit=True) as admin:
        for _ in range(times):
            with admin.transaction():
                admin.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
                time.sleep(CUT_SECONDS)
                cut += admin.execute(
                    "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()[0]
            time.sleep(CUT_SECONDS)  # it trains on a little
    return cut


def test_a_run_whose_queries_are_cut_midway_again_and_again_completes_and_loses_no_metric(postgres_url):
    """A connection may be cut while a query is under way (the pool's check before use cannot see it
    coming): each of the worker's reads and writes is tried again on a new connection."""
    executor = open_executor(open_run_store(postgres_url))
    store = executor.store
    run_id = start(LONG_RUN, by=LOCAL_USER, executor=executor)
    try:
        wait_until(lambda: steps_done(store.get(run_id)) >= 5, 240, store, run_id)
        cuts = cut_mid_query(postgres_url, 3)
        run = wait(run_id, 240, executor)
    finally:
        executor.shutdown()
    assert run.status == "completed", run.message
    assert cuts >= 3, f"{cuts} queries were cut"
    rows = store.metrics_since(run_id).rows
    steps = [row.step for row in rows if row.name == "batch/loss"]
    assert steps == sorted(set(steps)) and run.progress.step == run.progress.total_steps  # none twice
    assert [row.epoch for row in rows if row.name == "epoch/loss"] == list(range(1, LONG_RUN.num_epochs + 1))


def test_a_run_trained_by_a_worker_rides_out_a_server_restart_and_loses_no_metric(
    postgres_server, postgres_url, monkeypatch
):
    monkeypatch.setenv("ZOO_RUN_STORE", with_password(postgres_url))  # the worker is handed no password
    executor = open_executor()
    store = executor.store
    # 56,000 steps of one point: long enough to be cut mid-run at thousands of steps a second.
    run_id = start(LONG_RUN, by=LOCAL_USER, executor=executor)
    try:
        wait_until(lambda: steps_done(store.get(run_id)) >= 20, 240, store, run_id)
        postgres_server.restart()  # mid-run: every connection of the worker and of this process is cut
        run = wait(run_id, 240, executor)
    finally:
        executor.shutdown()
    assert run.status == "completed", run.message
    rows = store.metrics_since(run_id).rows
    losses = [row.step for row in rows if row.name == "batch/loss"]
    assert losses == sorted(set(losses)) and run.progress.step == run.progress.total_steps  # none twice
    assert [row.epoch for row in rows if row.name == "epoch/loss"] == list(range(1, LONG_RUN.num_epochs + 1))
    assert run.placement.worker and "s3cret" not in " ".join(event.message for event in store.events(run_id))


def ready_pool(executor: LocalExecutor, timeout: float = 240) -> None:
    """Wait until the executor's host has a worker waiting, its backend and data loaded."""
    deadline = time.monotonic() + timeout
    while not executor.pool.ready("cpu"):
        assert time.monotonic() < deadline, f"{executor.host}'s worker never became ready"
        time.sleep(0.1)


def test_two_worker_hosts_share_the_queue_each_run_trains_once_and_a_killed_worker_s_run_is_failed(
    postgres_url, tmp_path, monkeypatch
):
    """Two hosts on this machine (each its own ZOO_HOME and ZOO_HOST, a warm pool of one worker and a
    server's supervision thread) on one PostgreSQL queue: runs submitted on either are each claimed and
    trained by one worker of one host, both hosts take part (one slot per host: while one trains, the
    next run goes to the other), and a worker of host-b killed mid-run has its run failed by host-b's
    supervision (its pid gone), while host-a's, judging host-b's runs by their heartbeat, fails none of
    them."""
    monkeypatch.setenv("ZOO_WARM_WORKERS", "1")
    homes, hosts = {}, {}
    for name in ("host-a", "host-b"):
        homes[name] = tmp_path / name
        monkeypatch.setenv("ZOO_HOME", str(homes[name]))
        # host-a would fail any run of host-b's silent for 10 s (default 120 s): none of them is
        hosts[name] = LocalExecutor(open_run_store(postgres_url), host=name, heartbeat_timeout=10.0)
    host_a, host_b = hosts.values()
    store = host_a.store
    supervisors = [Supervisor(every=0.5) for _ in hosts]
    try:
        for supervisor, executor in zip(supervisors, hosts.values(), strict=True):
            executor.keep_warm()
            supervisor.watch(executor)
        for executor in hosts.values():
            ready_pool(executor)
        spec = TrainSpec.binary(num_epochs=5, num_samples=200)
        run_ids = [start(spec, by=LOCAL_USER, executor=executor) for executor in [host_a, host_b] * 2]
        runs = [wait(run_id, 240, host_a) for run_id in run_ids]
        assert [run.status for run in runs] == ["completed"] * 4, [run.message for run in runs]
        placed = [run.placement.host for run in runs]
        assert set(placed) == {"host-a", "host-b"}, placed
        workers = [int(run.placement.worker) for run in runs]
        assert len(set(workers)) == 4  # each claimed by a worker of its own, which trained it and ended
        for run, host in zip(runs, placed, strict=True):
            # Trained once: started once, its steps each reported once, its log and model on one host only.
            assert [event.kind for event in store.events(run.id)].count("started") == 1
            steps = [row.step for row in store.metrics_since(run.id).rows if row.name == "batch/loss"]
            assert steps == sorted(set(steps)) and run.progress.step == run.progress.total_steps
            assert [name for name in homes if (homes[name] / "logs" / f"{run.id}.log").is_file()] == [host]
        saved = [entry.name for home in homes.values() for entry in ModelStore(home / "models").entries()]
        assert sorted(saved) == sorted(run.model_name for run in runs)
        for pid in workers:
            assert wait_for_exit(pid, 60)  # each started its replacement first: the pools are full again

        host_a.shutdown()  # host-a's waiting worker ends: host-b's takes the next run
        run_id = start(LONG_RUN, by=LOCAL_USER, executor=host_b)
        wait_until(lambda: steps_done(store.get(run_id)) >= 5, 240, store, run_id)
        run = store.get(run_id)
        assert run.placement.host == "host-b"
        pid = int(run.placement.worker)
        os.kill(pid, signal.SIGKILL)
        assert wait_for_exit(pid, 30)
        deadline = time.monotonic() + 10  # within a few sweeps, not host-a's 10 s of silence
        while (run := store.get(run_id)).is_active:
            assert time.monotonic() < deadline, "the killed worker's run was left running"
            time.sleep(0.1)
        assert run.status == "failed" and f"the worker process {pid} ended without finishing" in run.message
        assert store.active_runs() == []
    finally:
        for supervisor in supervisors:
            supervisor.stop()
        for executor in hosts.values():
            executor.shutdown()


def test_doctor_on_a_shared_run_store_in_hosted_mode_wants_one_cookie_secret_for_every_server(
    postgres_url, zoo_home, tmp_path
):
    app_directory, user_home = tmp_path / "app", tmp_path / "user"  # where doctor runs; HOME
    app_directory.mkdir()
    environment = zoo_environment(
        zoo_home,
        ZOO_MODE="hosted",
        ZOO_RUN_STORE=postgres_url,
        HOME=str(user_home),
        PYTHONPATH=str(REPOSITORY),
    )

    def cookie_check(**overrides: str) -> tuple[int, str]:
        doctor = run_zoo(zoo_home, "doctor", environment={**environment, **overrides}, cwd=app_directory)
        assert "Traceback" not in doctor.stderr, doctor.stderr
        (line,) = [line for line in doctor.stdout.splitlines() if "cookie secret:" in line]
        assert "a-shared-secret" not in doctor.stdout + doctor.stderr
        return doctor.returncode, line

    returncode, line = cookie_check()
    assert returncode == 1
    assert line.startswith(
        "FAIL  cookie secret: the app servers share a postgresql:// run store but no sign-in "
    )
    assert "give every server the same random one" in line and "[auth] cookie_secret in .streamlit/" in line
    assert cookie_check(ZOO_AUTH_COOKIE_SECRET="a-shared-secret")[1] == (
        "ok    cookie secret: ZOO_AUTH_COOKIE_SECRET is set; it must be the same on every app server"
    )
    (user_home / ".streamlit").mkdir(parents=True)
    (user_home / ".streamlit" / "secrets.toml").write_text('[auth]\ncookie_secret = "a-shared-secret"\n')
    assert cookie_check()[1].startswith(f"ok    cookie secret: [auth] cookie_secret in {user_home}")
    # the container's own file, with a secret made at each start, is not one secret for every server
    assert cookie_check(ZOO_AUTH_CLIENT_ID="studio", ZOO_AUTH_CLIENT_SECRET="x")[0] == 1
    (app_directory / ".streamlit").mkdir()
    (app_directory / ".streamlit" / "secrets.toml").write_text("[auth\n")
    assert cookie_check()[1].startswith(
        f"FAIL  cookie secret: {app_directory}/.streamlit/secrets.toml cannot be read:"
    )
