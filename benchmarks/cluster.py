"""The same K short CNN runs through the local pool and through the Ray executor: Start -> first
metric, wall time, images/s.

For each K (default 1, 2, 4) and each executor, in a fresh ZOO_HOME: K warm workers wait (the
local pool's processes; Ray's actors, on a local Ray cluster this script starts with K CPUs, or
this host's GPUs), ``ZOO_RUNS_PER_DEVICE=K`` lets the K runs train at once on either, then the K
runs are started together, as K people pressing Start at the same moment would. Measured:

- Start -> first metric: from each run's Start to its first metric row in the run store (median
  and max over the K runs);
- wall time: from the first Start to the last run's end;
- images/s: the training images of all K runs (steps x batch size) per second of wall time.

Target (issue 20): Ray's wall time within 10% of the local pool's, Start -> first metric <= 1 s warm.
On a GPU host the same command runs K on one GPU (add 8: ``--ks 1,2,4,8``); a Ray cluster of its own
is started with the host's GPUs.

    python benchmarks/cluster.py [--ks 1,2,4] [--epochs 2] [--samples 4000] [--mnist PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Round:
    """K runs through one executor."""

    executor: str
    k: int
    first_metric: list[float]  # seconds from each run's Start to its first metric
    wall: float  # first Start to last end
    images: int  # training images of all runs (steps x batch size)


def wait_warm(executor, count: int) -> None:
    """Wait until ``count`` warm workers wait and none is still starting."""
    executor.keep_warm()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while (capacity := executor.capacity()).waiting_workers < count or capacity.starting_workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"{executor.name}: the warm workers did not start: {capacity}")
        executor.supervise()
        time.sleep(0.2)


def one_round(name: str, k: int, spec, warm_expected: int) -> Round:
    from zoo.core.hosting import LOCAL_USER
    from zoo.execution.admission import start
    from zoo.execution.executor import open_executor, wait

    os.environ.update(ZOO_EXECUTOR=name, ZOO_WARM_WORKERS=str(k), ZOO_RUNS_PER_DEVICE=str(k))
    with tempfile.TemporaryDirectory() as home:
        os.environ["ZOO_HOME"] = home
        executor = open_executor()
        wait_warm(executor, warm_expected)
        began = time.time()
        started = {start(spec, by=LOCAL_USER, executor=executor): time.time() for _ in range(k)}
        runs = [wait(run_id, TIMEOUT_SECONDS, executor) for run_id in started]
        failed = [f"{run.id} {run.status}: {run.message}" for run in runs if run.status != "completed"]
        if failed:
            raise SystemExit(f"{name}: " + "; ".join(failed))
        first = [
            min(row.wall_time for row in executor.store.metrics_since(run_id).rows) - at
            for run_id, at in started.items()
        ]
        images = sum(run.progress.total_steps * run.spec.batch_size for run in runs if run.progress)
        wall = max(run.ended_at or 0.0 for run in runs) - began
        executor.shutdown()
    return Round(name, k, first, wall, images)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ks", default="1,2,4", help="how many runs at once, comma-separated")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=4000, help="training images per run (0: all)")
    parser.add_argument("--mnist", default="embedded", help="a Keras mnist.npz (default: embedded digits)")
    parser.add_argument("--backend", default="tensorflow", choices=["tensorflow", "jax", "torch"])
    arguments = parser.parse_args()
    os.environ["KERAS_BACKEND"] = arguments.backend  # the backend warm workers and actors load

    import ray

    from zoo.core.spec import TrainSpec
    from zoo.execution.cluster import NAMESPACE
    from zoo.execution.devices import detect_device

    device = detect_device()
    spec = TrainSpec.cnn(
        backend=arguments.backend,
        mnist_source=arguments.mnist,
        num_epochs=arguments.epochs,
        max_train_samples=arguments.samples,
    )
    rounds = []
    for k in (int(k) for k in arguments.ks.split(",")):
        rounds.append(one_round("local", k, spec, k))
        # Ray: a local cluster with K CPUs (each CPU run asks one) or this host's GPUs; both lanes keep
        # K warm actors (the Playground's too, as the pages ask).
        ray.init(num_cpus=None if device == "gpu" else k, namespace=NAMESPACE, log_to_driver=False)
        rounds.append(one_round("ray", k, spec, 2 * k))
        ray.shutdown()
        for finished in rounds[-2:]:
            print(
                f"  K={k} {finished.executor:<5} wall {finished.wall:6.1f} s, first metric median "
                f"{statistics.median(finished.first_metric):.2f} s",
                flush=True,
            )

    print(
        f"\n{arguments.epochs}-epoch CNN runs of {arguments.samples or 'all'} {arguments.mnist} images, "
        f"Keras on {arguments.backend}, {device}, {platform.node()} ({os.cpu_count()} CPUs)"
    )
    header = f"{'K':>2} {'executor':<8} {'first metric median/max':>24} {'wall':>8} {'images/s':>9}"
    print(f"{header} {'vs local':>9}")
    local_wall = {}
    for measured in rounds:
        if measured.executor == "local":
            local_wall[measured.k] = measured.wall
        ratio = measured.wall / local_wall[measured.k]
        first = f"{statistics.median(measured.first_metric):.2f} / {max(measured.first_metric):.2f} s"
        print(
            f"{measured.k:>2} {measured.executor:<8} {first:>24} {measured.wall:>6.1f} s "
            f"{measured.images / measured.wall:>9.0f} {ratio:>8.2f}x"
        )
    print("target: Ray's wall time within 1.10x of the local pool's; first metric <= 1 s warm")


if __name__ == "__main__":
    main()
