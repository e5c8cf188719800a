"""Training throughput: the article's plain Keras script against a Zoo Studio run with live metrics.

Both train the article's CNN (Adam, categorical cross-entropy, batch 128, validation split 0.1)
on the same data on this machine, one after the other. Throughput is measured in the steady
state: training images per second from the end of epoch 1 to the end of the last epoch, so
start-up and compilation are left out of both. The zoo run also reports how often its live
metrics reached the run store (the largest gap between two writes).

    python benchmarks/training.py --data ~/.keras/datasets/mnist.npz --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FAST_STEPS_PER_EXECUTION = 8
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def article_model(steps_per_execution: int = 1):
    """The article's CNN, built and compiled as its script does (also used by benchmarks/gpu.py)."""
    import keras
    from keras import layers, models

    model = models.Sequential()
    model.add(keras.Input(shape=(28, 28, 1)))
    model.add(layers.Conv2D(32, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def plain_article_script(data_path: str, epochs: int) -> float:
    """The article's script, written as it is there; returns steady-state images/s."""
    import keras

    with np.load(data_path) as mnist:
        train_images, train_labels = mnist["x_train"], mnist["y_train"]
    train_images = train_images.reshape((60000, 28, 28, 1)).astype("float32") / 255
    train_labels = keras.utils.to_categorical(train_labels)

    model = article_model()

    epoch_ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch_ends.append(time.perf_counter())
    )
    model.fit(
        train_images,
        train_labels,
        epochs=epochs,
        batch_size=128,
        validation_split=0.1,
        verbose=0,
        callbacks=[timer],
    )
    images_per_epoch = int(60000 * 0.9)
    return images_per_epoch * (epochs - 1) / (epoch_ends[-1] - epoch_ends[0])


def zoo_run(data_path: str, epochs: int, steps_per_execution: int) -> tuple[float, float, str]:
    """A Zoo Studio run through the background worker; returns images/s, the largest metrics gap, status."""
    from zoo.app.charts.training import metrics_frame
    from zoo.core.hosting import LOCAL_USER
    from zoo.core.spec import TrainSpec
    from zoo.execution.admission import start
    from zoo.execution.executor import open_executor, wait

    executor = open_executor()
    run_id = start(
        TrainSpec.cnn(mnist_source=data_path, num_epochs=epochs, steps_per_execution=steps_per_execution),
        by=LOCAL_USER,
        executor=executor,
    )
    run = wait(run_id, timeout=3600, executor=executor)
    metrics = metrics_frame(executor.store.metrics_since(run_id).rows)
    epoch_times = metrics[metrics.name == "epoch/loss"].wall_time.to_numpy()
    batch_times = np.unique(metrics[metrics.name.str.startswith("batch/")].wall_time.to_numpy())
    first_epoch_end = epoch_times[0]
    steady = batch_times[batch_times > first_epoch_end]
    largest_gap = float(np.diff(steady).max()) if len(steady) > 1 else float("nan")
    images_per_epoch = int(60000 * 0.9)
    return images_per_epoch * (epochs - 1) / (epoch_times[-1] - epoch_times[0]), largest_gap, run.status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="the full MNIST in Keras' mnist.npz layout")
    parser.add_argument("--epochs", type=int, default=3, help="at least 2 (the first epoch is warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of the three trainers")
    arguments = parser.parse_args()
    if arguments.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is left out as warm-up")
    os.environ.setdefault("ZOO_HOME", tempfile.mkdtemp(prefix="zoo-bench-"))
    # No worker waits ahead of time: a replacement warming up would share the CPU with the run measured.
    os.environ["ZOO_WARM_WORKERS"] = "0"

    # Interleaved repeats: this machine's speed drifts by 20-30% over minutes, so each round
    # runs the article script and both zoo settings back to back, and medians are compared.
    speeds: dict[str, list[float]] = {"article": [], "zoo-1": [], f"zoo-{FAST_STEPS_PER_EXECUTION}": []}
    gaps: dict[str, list[float]] = {key: [] for key in speeds}
    for _ in range(arguments.repeats):
        speeds["article"].append(plain_article_script(arguments.data, arguments.epochs))
        for steps in (1, FAST_STEPS_PER_EXECUTION):
            speed, gap, status = zoo_run(arguments.data, arguments.epochs, steps)
            if status != "completed":
                raise SystemExit(f"the zoo run ended {status}; see $ZOO_HOME/logs")
            speeds[f"zoo-{steps}"].append(speed)
            gaps[f"zoo-{steps}"].append(gap)
    article = statistics.median(speeds["article"])
    print(
        f"machine: {os.cpu_count()} CPU cores; {arguments.epochs} epochs a run, steady state = epochs 2..; "
        f"{arguments.repeats} interleaved rounds"
    )
    print(f"{'trainer':<46} {'median img/s':>12} {'vs article':>10} {'max metrics gap':>16}  each round")
    labels = {"article": "article script (model.fit, verbose=0)"}
    labels |= {
        key: f"zoo run, live metrics, steps_per_execution={key[4:]}" for key in speeds if key != "article"
    }
    for key, label in labels.items():
        median = statistics.median(speeds[key])
        gap = f"{max(gaps[key]):.2f} s" if gaps[key] else "-"
        rounds = ", ".join(f"{speed:,.0f}" for speed in speeds[key])
        print(f"{label:<46} {median:>12,.0f} {median / article:>9.2f}x {gap:>16}  {rounds}")


if __name__ == "__main__":
    main()
