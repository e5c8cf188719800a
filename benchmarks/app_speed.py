"""Studio speed: Home's first render, metric-to-browser latency, one live refresh's server time.

The run store is filled with a realistic history first: a 10-epoch run of the article's CNN on
the full MNIST (422 steps an epoch at batch 128; batch loss and accuracy logged at every one of
its 4,220 steps, the most a run can log) plus 20 finished runs. Then:

1. Home's first render: ``streamlit run app.py`` on a loopback port; Chromium (Playwright) opens
   the studio and waits until Home shows its recent runs and local zoo. "cold" is the server's
   first session (its modules are imported then), "warm" a later, new browser session.
2. Metric to browser: the Train page follows the live run; a batch metric is written to the run
   store, and the time until the browser's loss chart holds it is measured.
3. One live refresh's server time: the Train page's live fragment (read the new metric rows,
   build both Plotly figures, hand them to Streamlit) timed inside the script (Streamlit's
   AppTest), with new rows arriving between refreshes as in a live run.

``--run-store postgresql`` keeps the runs on a PostgreSQL 15 started here as tests/postgres_server.py
starts it for the tests (loopback, fsync off), filled with the same history and removed at the end;
the default is the SQLite file in a temporary ``ZOO_HOME``, as shipped.

    python benchmarks/app_speed.py [--repeats 20] [--run-store sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "tests"))  # the browser tests' conftest imports oidc_server from there
sys.path.insert(0, str(REPOSITORY / "tests" / "browser"))
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the browser tests' launch settings
from postgres_server import PostgresServer  # noqa: E402 - the tests' loopback PostgreSQL

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS_PER_EPOCH, NUM_EPOCHS, BATCH_SIZE = 422, 10, 128
LAST_STEP_ON_CHART = """(step) => {
    const graph = document.querySelector('.st-key-batch_curves .js-plotly-plot');
    const steps = graph && graph._fullData && graph._fullData[0] && graph._fullData[0].x;
    return Boolean(steps && steps.length && steps[steps.length - 1] >= step);
}"""
FRAGMENT_TIME_KEY = "zoo.refresh_seconds.train-live"


def progress(step: int, epoch: int):
    from zoo.ml.training import Progress

    total = STEPS_PER_EPOCH * NUM_EPOCHS
    return Progress(step, total, epoch, NUM_EPOCHS, 1500.0, (total - step) / 12, step / 12)


def fill_run_store() -> str:
    """20 finished runs and one live 10-epoch CNN run with a full history; returns the live run's id."""
    from zoo.core.scores import Scores
    from zoo.core.spec import TrainSpec
    from zoo.execution.devices import host_name
    from zoo.ml.training import Environment
    from zoo.runs.records import Placement
    from zoo.runs.store import open_run_store

    store = open_run_store()
    # No worker process: this script claims the runs, and the live one stays "running" while it measures.
    placement = Placement("local", host_name(), str(os.getpid()), "cpu")
    for index in range(20):
        spec = TrainSpec.binary(seed=index)
        run_id = store.create_run(spec, "cpu")
        store.claim_next("cpu", spec.backend, 1, placement)
        store.finish(run_id, "completed", final_metrics=Scores(0.9, macro_f1=0.9, auc=0.95))
    spec = TrainSpec.cnn()
    run_id = store.create_run(spec, "cpu")
    # The spec's backend is its lane's ("auto" by default): claimed as "tensorflow", the run stayed
    # queued, and supervision failed it 60 s later ("no worker process took up the run").
    store.claim_next("cpu", spec.backend, 1, placement)
    store.set_started(run_id, "full MNIST (60,000 train / 10,000 test)", Environment())
    rng = random.Random(0)
    for epoch in range(1, NUM_EPOCHS + 1):
        for batch in range(1, STEPS_PER_EPOCH + 1):
            step = (epoch - 1) * STEPS_PER_EPOCH + batch
            loss = 2.3 / (1 + step / 50) + rng.random() * 0.05
            store.log_metrics(
                run_id, [report({"batch/loss": loss, "batch/accuracy": 1 - loss / 2.4}, step, epoch)]
            )
        epoch_metrics = {"loss": loss, "accuracy": 1 - loss / 2.4, "val_loss": loss * 1.1}
        epoch_metrics["val_accuracy"] = 1 - loss / 2.2
        named = {f"epoch/{name}": value for name, value in epoch_metrics.items()}
        store.log_metrics(run_id, [report({**named, "epoch/samples_per_second": 1500}, step, epoch)])
    return run_id


def report(metrics: dict[str, float], step: int, epoch: int):
    """One report of metric values, as a worker's reporter sends it to the run store."""
    from zoo.runs.records import MetricsReport

    return MetricsReport(metrics, progress(step, epoch), time.time())


def log_one_step(store, run_id: str, step: int) -> None:
    """One batch report, written to ``store`` as the run's worker writes it (its store opened once)."""
    store.log_metrics(run_id, [report({"batch/loss": 0.05, "batch/accuracy": 0.99}, step, NUM_EPOCHS)])


def home_script_seconds(repeats: int) -> list[float]:
    """Home's script (app.py's sidebar and the page), run by AppTest: the server's share of a render."""
    from streamlit.testing.v1 import AppTest

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=120).run()
        times.append(time.perf_counter() - started)
        assert not app.exception, [exception.message for exception in app.exception]
    return times


def live_refresh_server_times(run_id: str, repeats: int) -> tuple[float, list[float], list[float]]:
    """(first refresh, later fragment refreshes, later whole-page reruns) in seconds, via AppTest."""
    from streamlit.testing.v1 import AppTest

    from zoo.runs.store import open_run_store

    store = open_run_store()
    app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=120).run()
    app.query_params["run"] = run_id
    app.switch_page("pages/train.py").run()
    assert not app.exception, [exception.message for exception in app.exception]
    first = app.session_state[FRAGMENT_TIME_KEY]
    step = STEPS_PER_EPOCH * NUM_EPOCHS
    fragment_times, page_times = [], []
    for _ in range(repeats):
        for _ in range(3):  # ~0.5 s of a live run: a few new metric rows between two refreshes
            step += 1
            log_one_step(store, run_id, step)
        started = time.perf_counter()
        app.run()
        page_times.append(time.perf_counter() - started)
        fragment_times.append(app.session_state[FRAGMENT_TIME_KEY])
    return first, fragment_times, page_times


def start_server(
    log_path: Path, env: dict[str, str] | None = None, secrets: Path | None = None
) -> tuple[subprocess.Popen, str, float]:
    """``streamlit run app.py`` on a free loopback port; returns the process, its URL and start time.

    ``env`` is added to this process's environment; ``secrets`` becomes the server's only secrets file."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    secrets_option = ["--secrets.files", str(secrets)] if secrets is not None else []
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", *secrets_option],
            cwd=REPOSITORY, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < 60:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return server, url, time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    server.kill()
    raise SystemExit(f"streamlit did not start; see {log_path}")


def home_render_seconds(browser, url: str) -> float:
    """From opening the studio in a new browser session to Home showing its runs and models."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    page.get_by_text("Recent runs").wait_for(timeout=60_000)
    page.get_by_text("Models in the local zoo").wait_for(timeout=60_000)
    page.get_by_text("All runs").wait_for(timeout=60_000)
    elapsed = time.perf_counter() - started
    context.close()
    return elapsed


def metric_to_browser_seconds(browser, url: str, run_id: str, repeats: int) -> list[float]:
    """Write a metric to the run store, time until the browser's live chart holds it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/train?run={run_id}")
    page.locator(".st-key-batch_curves .js-plotly-plot").wait_for(timeout=60_000)
    from zoo.runs.store import open_run_store

    store = open_run_store()
    step = max(row.step for row in store.metrics_since(run_id).rows)
    page.wait_for_function(LAST_STEP_ON_CHART, arg=step, timeout=60_000, polling=10)
    rng = random.Random(1)
    latencies = []
    for _ in range(repeats):
        time.sleep(rng.uniform(0.1, 0.6))  # land anywhere in the refresh period
        step += 1
        started = time.perf_counter()
        log_one_step(store, run_id, step)
        try:
            page.wait_for_function(LAST_STEP_ON_CHART, arg=step, timeout=10_000, polling=10)
        except PlaywrightTimeout:
            run = store.get(run_id)
            raise SystemExit(
                f"step {step} not on the chart after 10 s (the live run is {run.status}: {run.message})"
            ) from None
        latencies.append(time.perf_counter() - started)
    context.close()
    return latencies


@contextlib.contextmanager
def run_store(backend: str) -> Iterator[None]:
    """For ``postgresql``: a PostgreSQL 15 on loopback (a fresh database) named by ZOO_RUN_STORE while
    the block runs, to this process and the Streamlit server it starts, then removed; for ``sqlite``:
    nothing (the SQLite file in ZOO_HOME)."""
    if backend == "sqlite":
        yield
        return
    server = PostgresServer()
    try:
        server.start()
        print(f"PostgreSQL 15 started here in {server.cold_start_seconds:.2f} s (initdb + start)")
        os.environ["ZOO_RUN_STORE"] = server.create_database()
        yield
    finally:
        os.environ.pop("ZOO_RUN_STORE", None)
        server.remove()


def describe_machine() -> str:
    from zoo.execution.devices import describe_device

    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    system = f"{platform.system()} {platform.machine()}, {model}, {os.cpu_count()} cores"
    return f"{system}; trains on {describe_device()}"


def row(name: str, target: str, values: list[float]) -> str:
    milliseconds = [value * 1000 for value in values]
    p95 = (
        milliseconds[0]
        if len(values) == 1
        else statistics.quantiles(milliseconds, n=20, method="inclusive")[-1]
    )
    return (
        f"| {name:<44} | {target:>9} | {statistics.median(milliseconds):>9.0f} | {p95:>6.0f} | "
        f"{max(milliseconds):>8.0f} | {len(values):>3} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="measurements per latency row (default 20)")
    parser.add_argument(
        "--run-store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="where the runs are kept: the SQLite file in ZOO_HOME (default) or a PostgreSQL 15 started here",
    )
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="zoo-app-speed-") as home, run_store(arguments.run_store):
        os.environ["ZOO_HOME"] = home
        load_at_start = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        started = time.perf_counter()
        run_id = fill_run_store()
        print(f"run store filled in {time.perf_counter() - started:.1f} s: 20 runs + a live 10-epoch CNN run")
        home_script = home_script_seconds(5)
        first_refresh, fragment_times, page_times = live_refresh_server_times(run_id, arguments.repeats)

        server, url, startup = start_server(Path(home) / "streamlit.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                cold_home = home_render_seconds(browser, url)
                warm_home = [home_render_seconds(browser, url) for _ in range(arguments.repeats)]
                latencies = metric_to_browser_seconds(browser, url, run_id, arguments.repeats)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
            from zoo.execution.executor import open_executor

            open_executor().shutdown()  # the warm workers the pages started, before their store goes

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nMachine: {describe_machine()}; run store: {arguments.run_store}")
    print(f"load average at the start {load_at_start}, at the end {load}")
    print(f"Python {platform.python_version()}; `streamlit run` ready after {startup:.1f} s (not counted)\n")
    header = ("measurement", "target", "median ms", "p95 ms", "max ms", "n")
    print("| {:<44} | {:>9} | {:>9} | {:>6} | {:>8} | {:>3} |".format(*header))
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 10}|{'-' * 5}|")
    print(row("Home first render, cold server (browser)", "<= 2000", [cold_home]))
    print(row("Home first render, warm server (browser)", "<= 2000", warm_home))
    print(row("Home script alone, server side (AppTest)", "-", home_script))
    print(row("metric logged -> on the chart in the browser", "<= 1000", latencies))
    print(row("live refresh server time, first (full read)", "-", [first_refresh]))
    print(row("live refresh server time, 10-epoch history", "<= 100", fragment_times))
    print(row("whole Train page rerun (for reference)", "-", page_times))
    ratio = statistics.median(fragment_times) * 1000 / 100
    print(f"\nlive refresh median / budget = {ratio:.2f}; metric latency max / budget = {max(latencies):.2f}")


if __name__ == "__main__":
    main()
