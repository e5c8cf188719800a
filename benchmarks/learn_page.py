"""Learn page: server time of one render, measured with Streamlit's AppTest through app.py's navigation.

Cold: the first render in a fresh process (imports, the embedded MNIST load behind the convolution
section, every figure). Warm: later renders of the same session (what every slider move costs).
Also: whether rendering imported TensorFlow (it must not), and the two on-demand Keras checks
(the first click pays TensorFlow's import).

    python benchmarks/learn_page.py
    python benchmarks/learn_page.py --repeats 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
TARGET_SECONDS = 2.0
DATASET_TIMER = (
    "import time; started = time.perf_counter(); from zoo.ml.data import load_embedded_mnist; "
    "load_embedded_mnist(); print(time.perf_counter() - started)"
)


def timed_run(app, timeout: float = 120) -> float:
    started = time.perf_counter()
    app.run(timeout=timeout)
    seconds = time.perf_counter() - started
    if app.exception:
        raise SystemExit(f"the Learn page raised: {app.exception[0].message}")
    return seconds


def learn_page():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.switch_page("pages/learn.py")
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="warm renders to time (default 10)")
    parser.add_argument("--preloaded-mnist", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    os.environ.setdefault("ZOO_HOME", tempfile.mkdtemp(prefix="zoo-learn-bench-"))
    if arguments.preloaded_mnist:  # child run: the page's own cold cost, with the dataset already in memory
        from zoo.ml.data import load_embedded_mnist

        load_embedded_mnist()
        print(timed_run(learn_page()))
        return

    app = learn_page()
    cold = timed_run(app)
    tensorflow_after_render = "tensorflow" in sys.modules

    def in_fresh_interpreter(*command: str) -> float:
        return float(
            subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1]
        )

    dataset_seconds = in_fresh_interpreter(sys.executable, "-c", DATASET_TIMER)
    cold_without_dataset = in_fresh_interpreter(sys.executable, __file__, "--preloaded-mnist")

    warm = [timed_run(app) for _ in range(arguments.repeats)]
    moves = []
    for index in range(arguments.repeats):
        app.slider(key="neuron_w1").set_value(round(-2.0 + 0.3 * index, 1))
        app.slider(key="race_steps").set_value(100 + 20 * (index % 10))
        moves.append(timed_run(app))

    check_times, check_messages = [], []
    for key in ("backprop_check", "backprop_check", "conv_check"):
        app.button(key=key).click()
        check_times.append(timed_run(app))
        check_messages += [message.value for message in app.success]
    first_check, second_check, conv_check = check_times

    rows = [
        ("cold render (fresh process: imports + embedded MNIST + all figures)", cold),
        ("embedded MNIST load alone, fresh interpreter (part of the cold render)", dataset_seconds),
        ("cold render with the embedded MNIST already loaded (fresh process)", cold_without_dataset),
        (f"warm render, median of {len(warm)}", statistics.median(warm)),
        (f"warm render, max of {len(warm)}", max(warm)),
        (f"render after moving two sliders, median of {len(moves)}", statistics.median(moves)),
        ("backprop Keras check, first click (imports TensorFlow)", first_check),
        ("backprop Keras check, second click", second_check),
        ("convolution Keras check (TensorFlow already loaded)", conv_check),
    ]
    print(f"{'Learn page (AppTest through app.py)':<72} {'seconds':>8}")
    print("-" * 81)
    for label, seconds in rows:
        print(f"{label:<72} {seconds:>8.3f}")
    print("-" * 81)
    print(f"TensorFlow imported by rendering the page: {'yes' if tensorflow_after_render else 'no'}")
    print(f"warm render / {TARGET_SECONDS:g} s target: {statistics.median(warm) / TARGET_SECONDS:.2f}")
    print(f"cold render / {TARGET_SECONDS:g} s target: {cold / TARGET_SECONDS:.2f}")
    for message in check_messages:
        print(f"check: {message}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
