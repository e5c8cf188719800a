"""The Playground's pace in a real browser: Start -> first boundary, epochs/s and boundary frames/s.

For each network (the page's default 2-3-1 at its batch 32, the same at batch 8, the page's nearest
to TensorFlow Playground's 10, and four hidden layers of 8 units at batch 8; 400 moons points,
learning rate 0.01), ``streamlit run app.py`` of the repository under test serves the Playground to
Debian's Chromium (Playwright, the browser tests' launch settings), in a fresh ZOO_HOME with its warm
pool full:

- Start -> first boundary: from the mouse press on **Start training** to the first decision
  boundary drawn in the page (the plane's canvas with a surface on it), timed in the page
  (``performance.now``);
- boundary frames/s: how many different boundaries the page draws per second while the run is
  live (the step of the surface the canvas drew, which it writes on itself, and the plane's title
  with its epoch, sampled every 10 ms);
- epochs/s seen on the page: the epochs of the boundaries drawn, per second;
- the pace the page says (its progress line), when it says one.

The run goes on until it completes or ``--window`` seconds pass (then Stop). Each network is
started ``--repeats`` times (the first start of each is the worker's first run of that network: a
network the pool has not prepared compiles then). Beside them, the CLI's epochs/s for the same
network (``python -m zoo train binary``, a fresh ZOO_HOME, its worker's epoch rows in the run store:
from the run's start in the worker to its last epoch, and between its first and last epoch).

Measure the code before and after a change in the same sitting, one after the other:

    python benchmarks/playground.py --repository /tmp/old-play   # e.g. a git worktree of main
    python benchmarks/playground.py                              # this checkout
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests"))  # the browser tests' conftest imports oidc_server from there
sys.path.insert(0, str(REPOSITORY / "tests" / "browser"))
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the browser tests' launch settings

PAGE_TIMEOUT_MS = 120_000
POOL_TIMEOUT_SECONDS = 300
NETWORKS = {  # name: (the Playground link's settings, the CLI's options)
    "2-3-1, batch 32 (page default)": ("", ["--batch-size", "32"]),
    # 8: the page's batch sizes are powers of two, so a link's 10 (TFP's default) would be ignored
    "2-3-1, batch 8 (nearest to TFP's 10)": ("batch_size=8", ["--batch-size", "8"]),
    "2-8-8-8-8-1, batch 8": (
        "batch_size=8&hidden_layers=4&units_1=8&units_2=8&units_3=8&units_4=8",
        ["--batch-size", "8", "--hidden", "8,8,8,8"],
    ),
}
# In the page: the time of the mouse press on Start, and every boundary drawn (time, title), sampled
# every 10 ms; a boundary is new when the step the canvas drew or the title (with its epoch) changes.
WATCH_BOUNDARY = """() => {
    window.zooStart = null;
    window.zooFrames = [];
    window.zooPace = '';
    document.addEventListener('mousedown', (event) => {
        const button = event.target.closest('button');
        if (button && button.innerText.includes('Start training')) window.zooStart = performance.now();
    }, true);
    let last = null;
    setInterval(() => {
        const bars = document.querySelectorAll('[data-testid="stMain"] [data-testid="stProgress"]');
        if (bars.length) window.zooPace = bars[0].innerText;
        // The plane's canvas writes the step of the surface it drew on itself (-1: the points only).
        const canvas = document.querySelector('.st-key-boundary canvas');
        if (!canvas || !canvas.dataset.frame || canvas.dataset.frame === '-1') return;
        const title = document.querySelector('.st-key-boundary .zoo-title').textContent;
        const signature = canvas.dataset.frame + '|' + title;
        if (signature !== last) {
            last = signature;
            window.zooFrames.push([performance.now(), title]);
        }
    }, 10);
}"""


@dataclass(frozen=True)
class PageRun:
    """One Playground run as the browser showed it."""

    first_boundary_seconds: float
    frames_per_second: float
    epochs_per_second: float
    frames: int
    live_seconds: float
    pace_said: str


def start_server(repository: Path, home: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "ZOO_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with (home / "streamlit.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=repository, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return server, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"streamlit did not start; see {home / 'streamlit.log'}")


def ready_workers(home: Path) -> int:
    database = home / "pool.sqlite3"  # the local executor's registry of warm workers
    if not database.exists():
        return 0
    with sqlite3.connect(database, timeout=30) as connection:
        return connection.execute("SELECT COUNT(*) FROM workers WHERE status = 'ready'").fetchone()[0]


def wait_for_full_pool(home: Path, workers: int = 2) -> None:
    """Wait until the pool's workers have loaded TensorFlow and prepared their models."""
    deadline = time.monotonic() + POOL_TIMEOUT_SECONDS
    while ready_workers(home) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"the warm pool of {home} did not fill in {POOL_TIMEOUT_SECONDS} s")
        time.sleep(0.2)


def page_run(browser, url: str, home: Path, settings: str, epochs: int, window: float) -> PageRun:
    """Open the Playground with ``settings``, press Start, watch the boundary until the run ends or
    ``window`` seconds pass (then press Stop)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/playground?num_epochs={epochs}" + (f"&{settings}" if settings else ""))
    start = page.get_by_role("button", name="Start training")
    start.wait_for(timeout=PAGE_TIMEOUT_MS)
    page.locator(".st-key-boundary canvas").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_for_full_pool(home)
    page.evaluate(WATCH_BOUNDARY)
    start.click()
    ended = page.get_by_text(re.compile(r"Run [0-9a-f]{12} (completed|stopped)"))
    deadline = time.monotonic() + window
    while time.monotonic() < deadline and not ended.count():
        time.sleep(0.1)
    live_until = page.evaluate("performance.now()")
    pace = page.evaluate("window.zooPace")
    if not ended.count():
        # Dispatched, not clicked: the plane's fragment draws the button anew five times a second, and a
        # click waits for it to stay put (under load it never did, and the script ended there).
        page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").dispatch_event("click")
        ended.wait_for(timeout=PAGE_TIMEOUT_MS)
    started, frames = page.evaluate("[window.zooStart, window.zooFrames]")
    context.close()
    live = [(at, title) for at, title in frames if at <= live_until]
    if started is None or not live:
        raise SystemExit(f"no boundary was drawn after Start ({len(frames)} frames)")
    epochs_shown = [int(match.group(1)) for _, title in live if (match := re.search(r"epoch (\d+)", title))]
    span = (live[-1][0] - live[0][0]) / 1000
    return PageRun(
        first_boundary_seconds=(live[0][0] - started) / 1000,
        frames_per_second=(len(live) - 1) / span if span > 0 else 0.0,
        epochs_per_second=(epochs_shown[-1] - epochs_shown[0]) / span if span > 0 else 0.0,
        frames=len(live),
        live_seconds=span,
        pace_said=pace,
    )


def cli_epochs_per_second(repository: Path, options: list[str], epochs: int) -> tuple[float, float, float]:
    """(epochs/s from the run's start in its worker to its last epoch, epochs/s between its first and
    last epoch, wall seconds of the command) of ``python -m zoo train binary``, in a fresh ZOO_HOME."""
    with tempfile.TemporaryDirectory(prefix="zoo-playground-cli-") as home:
        environment = {**os.environ, "ZOO_HOME": home, "ZOO_WARM_WORKERS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, "-m", "zoo", "train", "binary", "--epochs", str(epochs)]
        command += ["--learning-rate", "0.01", *options]
        started = time.perf_counter()
        subprocess.run(command, cwd=repository, env=environment, check=True, capture_output=True)
        wall = time.perf_counter() - started
        with sqlite3.connect(Path(home) / "runs.sqlite3") as connection:
            (run_started,) = connection.execute("SELECT started_at FROM runs").fetchone()
            rows = connection.execute(
                "SELECT epoch, wall_time FROM metrics WHERE name = 'epoch/loss' ORDER BY epoch"
            ).fetchall()
    (first_epoch, first_time), (last_epoch, last_time) = rows[0], rows[-1]
    return (
        last_epoch / (last_time - run_started),
        (last_epoch - first_epoch) / (last_time - first_time),
        wall,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=REPOSITORY, help="the code to measure")
    parser.add_argument("--repeats", type=int, default=2, help="page runs per network (default 2)")
    parser.add_argument("--epochs", type=int, default=1000, help="epochs per run (default 1000)")
    parser.add_argument("--window", type=float, default=20.0, help="seconds a page run is watched")
    parser.add_argument("--cli-epochs", type=int, default=300, help="epochs of the CLI run (default 300)")
    parser.add_argument("--networks", default=",".join(str(i) for i in range(len(NETWORKS))))
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    repository = arguments.repository.resolve()
    commit = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    chosen = [list(NETWORKS)[int(index)] for index in arguments.networks.split(",")]
    loads = [os.getloadavg()[0]]
    results: dict[str, list[PageRun]] = {}
    cli: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="zoo-playground-", ignore_cleanup_errors=True) as directory:
        home = Path(directory)
        server, url = start_server(repository, home)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for name in chosen:
                    settings, _ = NETWORKS[name]
                    results[name] = [
                        page_run(browser, url, home, settings, arguments.epochs, arguments.window)
                        for _ in range(arguments.repeats)
                    ]
                    loads.append(os.getloadavg()[0])
                    print(f"{name}: {results[name]}", flush=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    for name in chosen:
        cli[name] = cli_epochs_per_second(repository, NETWORKS[name][1], arguments.cli_epochs)
        loads.append(os.getloadavg()[0])
        print(f"{name}: CLI {cli[name]}", flush=True)

    print(f"\n{repository} at {commit}; {os.cpu_count()} cores; load average (1 min) during the runs:")
    print(f"{min(loads):.1f}-{max(loads):.1f}; {arguments.epochs} epochs per page run, watched up to")
    print(
        f"{arguments.window:.0f} s; CLI: {arguments.cli_epochs} epochs. "
        f"Page values: median of {arguments.repeats}"
    )
    print("(the first start of each network in brackets).\n")
    print(
        "| network | Start -> first boundary (s) | boundary frames/s | epochs/s on the page "
        "| pace the page says | CLI epochs/s (from start / steady) |"
    )
    print("|---|---|---|---|---|---|")
    for name in chosen:
        runs = results[name]

        def median(values: list[float]) -> str:
            return f"{statistics.median(values):.2f}"

        first = runs[0]
        from_start, steady, _ = cli[name]
        print(
            f"| {name} | {median([run.first_boundary_seconds for run in runs])} "
            f"({first.first_boundary_seconds:.2f}) | {median([run.frames_per_second for run in runs])} "
            f"| {median([run.epochs_per_second for run in runs])} | {runs[-1].pace_said or '-'} "
            f"| {from_start:.1f} / {steady:.1f} |"
        )


if __name__ == "__main__":
    main()
