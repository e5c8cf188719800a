"""Draw page: speed of reading one drawn digit, and accuracy of the MNIST pipeline on canvas-like digits.

Speed: a drawn digit arrives as the canvas's PNG (280x280 RGBA). Timed, warm, one digit at a
time over many different drawings: PNG decode + preprocessing + prediction, against the ways
of calling Keras for one sample (``model.predict``, eager ``model(x)``, ``predict_on_batch``),
plus loading a model and the first prediction after loading.

Quality: every MNIST test digit re-drawn on a 280x280 RGBA canvas (random size 30-90% of the
height, random place and polarity, a third with thicker strokes), read through the pipeline,
against the raw test digits and against a plain resize to 28x28.

    python benchmarks/inference.py --data ~/.keras/datasets/mnist.npz
    python benchmarks/inference.py --data ~/.keras/datasets/mnist.npz --model path/to/model.keras
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STARTER_MODEL = Path(__file__).resolve().parents[1] / "zoo" / "starter" / "mnist-cnn" / "model.keras"


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    p50, p95 = np.percentile(np.asarray(samples) * 1000, [50, 95])
    return float(p50), float(p95)


def time_each(function: Callable[[int], object], count: int) -> list[float]:
    """Seconds per call of ``function(index)`` for index 0..count-1 (after 5 warm-up calls)."""
    for index in range(5):
        function(index)
    seconds = []
    for index in range(count):
        start = time.perf_counter()
        function(index)
        seconds.append(time.perf_counter() - start)
    return seconds


def canvas_png(canvas: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """What ``CanvasResult.image_data`` does with the canvas's PNG."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def speed(model_path: Path, images: np.ndarray, repeats: int) -> list[tuple[str, float, float]]:
    import tensorflow  # noqa: F401  (imported once per process, before the model load is timed)

    from zoo.ml import inference

    rng = np.random.default_rng(1)
    drawings = [canvas_png(inference.redraw_on_canvas(digit, rng)) for digit in images[:repeats]]
    digits = [inference.preprocess(decode_png(png)).digit for png in drawings]
    batches = [digit.reshape(1, 28, 28, 1) for digit in digits]

    start = time.perf_counter()
    predictor = inference.Predictor.from_file(model_path)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predictor.predict(digits[0])
    first_seconds = time.perf_counter() - start
    model = predictor.model

    def row(name: str, function: Callable[[int], object], count: int = repeats) -> tuple[str, float, float]:
        return (name, *percentiles(time_each(function, count)))

    return [
        ("load model + compile + warm-up (once per model file)", load_seconds * 1000, float("nan")),
        ("first prediction after loading", first_seconds * 1000, float("nan")),
        row("model.predict, one digit", lambda i: model.predict(batches[i], verbose=0), count=50),
        row("eager model(x), one digit", lambda i: model(batches[i], training=False)),
        row("model.predict_on_batch, one digit", lambda i: model.predict_on_batch(batches[i])),
        row("Predictor.predict (compiled), one digit", lambda i: predictor.predict(digits[i])),
        row("decode canvas PNG", lambda i: decode_png(drawings[i])),
        row("decode + preprocess (5 steps)", lambda i: inference.preprocess(decode_png(drawings[i]))),
        row(
            "decode + preprocess + predict (target p50 <= 10, p95 <= 25)",
            lambda i: inference.predict_digit(predictor, decode_png(drawings[i])),
        ),
        row("Predictor.inspect: feature maps + saliency", lambda i: predictor.inspect(digits[i])),
    ]


def quality(model_path: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from zoo.ml import inference
    from zoo.ml.training import predict_in_batches, scale_digits
    from zoo.storage.models import load_keras_file

    model = load_keras_file(model_path)
    rng = np.random.default_rng(0)
    piped, naive = [], []
    for digit in images:
        canvas = inference.redraw_on_canvas(digit, rng)
        read = inference.preprocess(canvas).digit
        piped.append(read if read is not None else np.zeros((28, 28), np.float32))
        naive.append(inference.naive_resize(canvas))

    def accuracy(inputs: np.ndarray) -> float:
        return float((predict_in_batches(model, inputs).argmax(axis=1) == labels).mean())

    raw = accuracy(scale_digits(images))
    pipeline = accuracy(np.stack(piped)[..., np.newaxis])
    return {
        "raw MNIST test digits": raw,
        "canvas-like digits through the pipeline": pipeline,
        "canvas-like digits, plain resize to 28x28": accuracy(np.stack(naive)[..., np.newaxis]),
        "pipeline / raw (target >= 0.985)": pipeline / raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the full MNIST in Keras' mnist.npz layout")
    parser.add_argument("--model", type=Path, default=STARTER_MODEL, help="a .keras CNN (default: starter)")
    parser.add_argument("--samples", type=int, default=10_000, help="test digits for the accuracy part")
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per speed row")
    arguments = parser.parse_args()

    from zoo.ml.data import load_mnist

    mnist = load_mnist(arguments.data)
    print(f"model: {arguments.model}")
    print(f"machine: {os.cpu_count()} CPU cores, TensorFlow on CPU\n")
    print(f"{'one drawn digit, warm':<62} {'p50 ms':>8} {'p95 ms':>8}")
    for name, p50, p95 in speed(arguments.model, mnist.x_test, arguments.repeats):
        print(f"{name:<62} {p50:>8.2f} {p95:>8.2f}")
    samples = min(arguments.samples, len(mnist.x_test))
    print(f"\n{f'accuracy on {samples:,} MNIST test digits':<62} {'value':>8}")
    for name, value in quality(arguments.model, mnist.x_test[:samples], mnist.y_test[:samples]).items():
        print(f"{name:<62} {value:>8.4f}")


if __name__ == "__main__":
    main()
