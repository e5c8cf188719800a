"""Start to first metric: how long after Start a run's first batch metric is in the run store.

What the Train and Playground pages do when a person presses Start (``zoo.execution.admission.start``),
for the Playground's binary classifier and the article's CNN (embedded MNIST), in two set-ups:

- warm: ``ZOO_WARM_WORKERS`` workers already wait in the pool with their backend and data loaded
  (the pages keep it filled); before each start the benchmark waits until the pool is full again.
- cold: no worker waits (``ZOO_WARM_WORKERS=0``): the run starts its worker, which imports the
  backend first (how every run started before the pool).

Each run is stopped once its first metric is in. The page's chart shows the metric at its next
live refresh (every 0.5 s; ``benchmarks/app_speed.py`` measures metric-to-browser separately).

    python benchmarks/warm_start.py [--repeats 5] [--cold-repeats 2] [--backend tensorflow]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TIMEOUT_SECONDS = 600


def start_to_first_metric(spec, executor) -> float:
    """Start ``spec``, wait for its first metric row, stop the run; seconds from Start to that row."""
    from zoo.core.hosting import LOCAL_USER
    from zoo.execution.admission import start
    from zoo.execution.executor import wait

    store = executor.store
    started = time.time()
    run_id = start(spec, by=LOCAL_USER, executor=executor)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        rows = store.metrics_since(run_id).rows
        if rows:
            first = min(row.wall_time for row in rows) - started
            break
        run = store.get(run_id)
        if not run.is_active:
            raise SystemExit(f"run {run_id} ended before its first metric: {run.status} {run.message}")
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} logged no metric within {TIMEOUT_SECONDS} s")
        time.sleep(0.01)
    executor.stop(run_id, by=LOCAL_USER)
    wait(run_id, TIMEOUT_SECONDS, executor)
    return first


def measure(label: str, warm: int, repeats: int, backend: str) -> dict[str, list[float]]:
    from zoo.core.spec import TrainSpec
    from zoo.execution.executor import open_executor

    os.environ["ZOO_WARM_WORKERS"] = str(warm)
    specs = {
        "Playground binary classifier": TrainSpec.binary(backend=backend, device="cpu"),
        "MNIST CNN (embedded data)": TrainSpec.cnn(backend=backend, device="cpu", mnist_source="embedded"),
    }
    times: dict[str, list[float]] = {name: [] for name in specs}
    executor = open_executor()
    for _ in range(repeats):
        for name, spec in specs.items():
            if warm:
                executor.fill_pool("cpu", backend)
                deadline = time.monotonic() + TIMEOUT_SECONDS
                while executor.pool.ready("cpu", backend) < warm:
                    if time.monotonic() > deadline:
                        raise SystemExit("the warm pool did not fill up")
                    time.sleep(0.1)
            times[name].append(start_to_first_metric(spec, executor))
            print(f"  {label:<5} {name:<30} {times[name][-1]:6.2f} s", flush=True)
    executor.shutdown()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="warm starts per model")
    parser.add_argument("--cold-repeats", type=int, default=2, help="cold starts per model (0 skips them)")
    parser.add_argument("--backend", default="tensorflow", choices=["tensorflow", "jax", "torch"])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["ZOO_HOME"] = home
        warm = measure("warm", 2, arguments.repeats, arguments.backend)
        cold = measure("cold", 0, arguments.cold_repeats, arguments.backend) if arguments.cold_repeats else {}
    print(
        f"\nStart -> first metric in the run store, Keras on {arguments.backend}, {platform.node()} "
        f"({os.cpu_count()} CPUs)"
    )
    print(
        f"{'model':<30} {'warm median':>12} {'warm max':>9} {'cold median':>12}  target: warm median <= 1 s"
    )
    for name, values in warm.items():
        cold_median = f"{statistics.median(cold[name]):.2f} s" if cold.get(name) else "-"
        print(f"{name:<30} {statistics.median(values):>10.2f} s {max(values):>7.2f} s {cold_median:>12}")


if __name__ == "__main__":
    main()
