"""The GPU host, measured: the article's recipe through Zoo Studio's own workers, alone and K at once.

One prepared script for a borrowed GPU machine (it works on a CPU too, on small settings):

1. One run of the article's CNN recipe (Adam 0.001, batch 128, validation split 0.1) submitted
   through ``zoo.execution`` like the Train page does, with live metrics. Per epoch: seconds, training
   images/s, and accuracy on the held-out validation images (the run's per-epoch curve); the test
   accuracy at the end; and the training time until validation accuracy first reached --target.
2. K = 1, 2, 4, ... of those runs submitted at once to one device (``ZOO_RUNS_PER_DEVICE=K``, each
   worker limited to its share of the GPU's memory): wall time from submit to the last run's end,
   and aggregate training images/s.
3. The article's plain Keras script on the same data and backend, in this process, for the ratio
   (per epoch: seconds, images/s, validation and test accuracy).

Set-up on the GPU host (see README "Running on a GPU host"): the backend's CUDA build (e.g. JAX
with ``jax[cuda13]``) plus requirements.txt minus tensorflow, then for example:

    KERAS_BACKEND=jax python benchmarks/gpu.py --data ../shared/data/mnist.npz --concurrent 1,2,4,8

On a CPU, with the embedded 5,000 digits:

    python benchmarks/gpu.py --epochs 2 --concurrent 1,2 --concurrent-epochs 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # this process shares the GPU too

TIMEOUT_SECONDS = 3600
BATCH_SIZE = 128


def article_spec(arguments: argparse.Namespace, epochs: int, seed: int = 0):
    from zoo.core.spec import TrainSpec

    return TrainSpec.cnn(
        mnist_source=arguments.data or "embedded",
        num_epochs=epochs,
        backend=arguments.backend,
        steps_per_execution=arguments.steps_per_execution,
        seed=seed,
    )


def epoch_table(executor, run_id: str, started_at: float, train_count: int) -> list[dict[str, float]]:
    """Per-epoch rows of a finished run from its metric stream: seconds, images/s, accuracy.

    Images/s is the epoch's own (``train_count`` images over its seconds, as for the plain script),
    not the run's ``samples_per_second``, which averages over the run so far, compilation included."""
    from zoo.app.charts.training import metrics_frame

    frame = metrics_frame(executor.store.metrics_since(run_id).rows)
    epochs = frame[frame.name.str.startswith("epoch/")].pivot_table(
        index="epoch", columns="name", values="value", aggfunc="last"
    )
    ends = frame[frame.name.str.startswith("epoch/")].groupby("epoch").wall_time.max()
    rows, previous = [], started_at
    for epoch, values in epochs.iterrows():
        rows.append(
            {
                "epoch": int(epoch),
                "seconds": float(ends[epoch] - previous),
                "images_per_second": train_count / float(ends[epoch] - previous),
                "validation_accuracy": float(values.get("epoch/val_accuracy", float("nan"))),
                "elapsed": float(ends[epoch] - started_at),
            }
        )
        previous = ends[epoch]
    return rows


def one_run(arguments: argparse.Namespace, executor, train_count: int) -> float:
    """Train once through the worker, print its epochs; return its steady-state images/s."""
    from zoo.core.hosting import LOCAL_USER
    from zoo.execution.admission import start
    from zoo.execution.executor import wait

    print(f"\n1. One article-recipe run through Zoo Studio's worker ({arguments.epochs} epochs)")
    warm_pool(executor, arguments.backend, 1)
    run = wait(
        start(article_spec(arguments, arguments.epochs), by=LOCAL_USER, executor=executor),
        TIMEOUT_SECONDS,
        executor,
    )
    if run.status != "completed":
        raise SystemExit(f"the run {run.id} {run.status}: {run.message}")
    environment = run.environment
    if environment is not None:
        print(f"   backend {environment.backend}, devices {[device.name for device in environment.devices]}")
    print(f"   data: {run.data_source}")
    rows = epoch_table(executor, run.id, run.started_at, train_count)
    print(f"   {'epoch':>5} {'seconds':>8} {'images/s':>10} {'val. accuracy':>14}")
    for row in rows:
        print(
            f"   {row['epoch']:>5} {row['seconds']:>8.2f} {row['images_per_second']:>10,.0f} "
            f"{row['validation_accuracy']:>14.4f}"
        )
    print(f"   test accuracy after epoch {rows[-1]['epoch']}: {run.final_metrics.accuracy:.4f}")
    reached = next((row for row in rows if row["validation_accuracy"] >= arguments.target), None)
    if reached:
        print(
            f"   validation accuracy >= {arguments.target:.3f} after epoch {reached['epoch']}: "
            f"{reached['elapsed']:.1f} s after the run started"
        )
    else:
        print(f"   validation accuracy never reached {arguments.target:.3f} in {len(rows)} epochs")
    steady = [row["images_per_second"] for row in rows[1:]] or [rows[0]["images_per_second"]]
    return sum(steady) / len(steady)


def concurrent_runs(arguments: argparse.Namespace, executor, train_count: int) -> None:
    from zoo.core.hosting import LOCAL_USER
    from zoo.execution.admission import start
    from zoo.execution.executor import wait

    print(f"\n2. K article-recipe runs at once on one device ({arguments.concurrent_epochs} epoch(s) each)")
    print(f"   {'K':>3} {'wall s':>8} {'aggregate images/s':>19} {'per run images/s':>17}")
    for count in arguments.concurrent:
        os.environ["ZOO_RUNS_PER_DEVICE"] = str(count)
        warm_pool(executor, arguments.backend, count)
        started = time.time()
        run_ids = [
            start(
                article_spec(arguments, arguments.concurrent_epochs, seed), by=LOCAL_USER, executor=executor
            )
            for seed in range(count)
        ]
        runs = [wait(run_id, TIMEOUT_SECONDS, executor) for run_id in run_ids]
        wall = max(run.ended_at for run in runs) - started
        failed = [run for run in runs if run.status != "completed"]
        if failed:
            raise SystemExit(f"run {failed[0].id} {failed[0].status}: {failed[0].message}")
        images = train_count * arguments.concurrent_epochs * count
        print(f"   {count:>3} {wall:>8.1f} {images / wall:>19,.0f} {images / wall / count:>17,.0f}")
        executor.shutdown()


def training_images(arguments: argparse.Namespace) -> int:
    """How many images one epoch trains on: the training set less the 10% validation split."""
    from zoo.ml.data import load_embedded_mnist, load_mnist

    mnist = load_mnist(arguments.data) if arguments.data else load_embedded_mnist()
    return int(len(mnist.x_train) * 0.9)


def warm_pool(executor, backend: str, count: int) -> None:
    """Start ``count`` workers and wait until they have loaded the backend and the data, so that
    the runs' times start at a warm worker (as in the app), not at a backend's import."""
    from zoo.execution.devices import detect_device

    os.environ["ZOO_WARM_WORKERS"] = str(count)
    device = detect_device()
    executor.fill_pool(device, backend)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        ready = executor.pool.ready(device, backend)
        if ready >= count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {ready} of {count} workers became ready")
        time.sleep(0.2)


def plain_article_script(arguments: argparse.Namespace) -> float:
    """The article's script as written there (Sequential, fit with validation_split=0.1)."""
    os.environ.setdefault("KERAS_BACKEND", arguments.backend)
    import keras
    import numpy as np
    from training import article_model  # benchmarks/training.py, beside this script

    from zoo.ml.data import load_embedded_mnist, load_mnist

    mnist = load_mnist(arguments.data) if arguments.data else load_embedded_mnist()
    trained = training_images(arguments)
    train_images = mnist.x_train.reshape((-1, 28, 28, 1)).astype("float32") / 255
    test_images = mnist.x_test.reshape((-1, 28, 28, 1)).astype("float32") / 255
    train_labels = keras.utils.to_categorical(mnist.y_train)
    keras.utils.set_random_seed(0)
    model = article_model(arguments.steps_per_execution)
    print(f"\n3. The article's plain Keras script on {keras.backend.backend()} ({arguments.epochs} epochs)")
    print(f"   {'epoch':>5} {'seconds':>8} {'images/s':>10} {'val. accuracy':>14} {'test accuracy':>14}")
    started = last = time.perf_counter()
    speeds: list[float] = []
    reached: tuple[int, float] | None = None
    for epoch in range(arguments.epochs):
        history = model.fit(
            train_images,
            train_labels,
            epochs=epoch + 1,
            initial_epoch=epoch,
            batch_size=BATCH_SIZE,
            validation_split=0.1,
            verbose=0,
        )
        now = time.perf_counter()
        seconds, last = now - last, now
        test_accuracy = float(
            np.mean(np.argmax(model.predict(test_images, batch_size=1024, verbose=0), axis=1) == mnist.y_test)
        )
        validation_accuracy = history.history["val_accuracy"][-1]
        speeds.append(trained / seconds)
        print(
            f"   {epoch + 1:>5} {seconds:>8.2f} {trained / seconds:>10,.0f} {validation_accuracy:>14.4f} "
            f"{test_accuracy:>14.4f}"
        )
        if reached is None and validation_accuracy >= arguments.target:
            reached = (epoch + 1, now - started)
    if reached:
        print(
            f"   validation accuracy >= {arguments.target:.3f} after epoch {reached[0]}: "
            f"{reached[1]:.1f} s (test accuracy measured outside the timing would add to it)"
        )
    steady = speeds[1:] or speeds
    return sum(steady) / len(steady)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="a Keras mnist.npz (default: the embedded 5,000 digits)")
    parser.add_argument("--backend", default=None, help="tensorflow, jax or torch (default: KERAS_BACKEND)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--concurrent", default="1,2,4,8", help="the K values, e.g. 1,2,4,8")
    parser.add_argument("--concurrent-epochs", type=int, default=2)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.99, help="the accuracy to time (default 0.99)")
    parser.add_argument("--skip-plain", action="store_true", help="leave out the plain Keras script")
    arguments = parser.parse_args()
    arguments.concurrent = [int(value) for value in arguments.concurrent.split(",") if value.strip()]
    if arguments.data:
        arguments.data = str(Path(arguments.data).resolve())

    from zoo.core.spec import configured_backend
    from zoo.execution.devices import describe_device
    from zoo.execution.executor import open_executor

    arguments.backend = arguments.backend or configured_backend()
    print(f"Zoo Studio on {describe_device()} ({platform.node()}), Keras backend {arguments.backend}")
    with tempfile.TemporaryDirectory() as home:
        os.environ["ZOO_HOME"] = home
        executor = open_executor()
        train_count = training_images(arguments)
        zoo_speed = one_run(arguments, executor, train_count)
        if arguments.concurrent:
            concurrent_runs(arguments, executor, train_count)
        executor.shutdown()
    if not arguments.skip_plain:
        plain_speed = plain_article_script(arguments)
        print(
            f"\nSteady-state images/s (epochs 2+): Zoo Studio run {zoo_speed:,.0f}, plain Keras "
            f"{plain_speed:,.0f}: ratio {zoo_speed / plain_speed:.2f}x (target >= 0.9x)"
        )


if __name__ == "__main__":
    main()
