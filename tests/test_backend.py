"""zoo.ml.backend on TensorFlow (this process) and JAX (a subprocess: Keras fixes its backend at import).

The same starter model, the same digits, the same network for the autodiff check: the backends must
agree on probabilities, saliency and gradients, and a model saved under one loads under the other.
PyTorch is not a development requirement (PyPI's torch wheel brings gigabytes of CUDA libraries).
With its CPU wheel on the path, ``run_under("torch", ...)`` runs the same probe under PyTorch; that
is how the README's PyTorch numbers were checked.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from zoo.core.spec import configured_backend
from zoo.ml import backend, formulas
from zoo.ml.data import load_embedded_mnist
from zoo.ml.inference import Predictor
from zoo.storage.models import STARTER_DIRECTORY

REPOSITORY = Path(__file__).resolve().parents[1]
STARTER_MODEL = STARTER_DIRECTORY / "mnist-cnn" / "model.keras"
DIGITS = 8

# Runs under the backend named by KERAS_BACKEND; prints one JSON object.
PROBE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras
    import numpy as np
    from zoo.ml import backend, formulas
    from zoo.ml.data import load_embedded_mnist
    from zoo.ml.inference import Predictor
    from zoo.core.spec import TrainSpec
    from zoo.ml.training import describe_environment, fit

    starter, saved_here = sys.argv[1], sys.argv[2]
    digits = load_embedded_mnist().x_test[: int(sys.argv[3])].astype(np.float32) / 255
    predictor = Predictor.from_file(starter)
    inspection = predictor.inspect(digits[0])
    weights = formulas.initial_weights(0)
    points, labels = zip(*formulas.BACKPROP_SAMPLES)
    loss, gradients = formulas.keras_backprop_gradients(weights, np.array(points), np.array(labels))

    keras.utils.set_random_seed(1)  # a model made and saved on this backend, for the other to load
    fresh = keras.models.load_model(starter, safe_mode=True)
    fresh.set_weights([np.random.default_rng(1).normal(0, 0.05, w.shape) for w in fresh.get_weights()])
    fresh.save(saved_here)

    class Events:
        events = []
        def batch(self, *args): pass
        def epoch(self, *args): pass
        def epochs_ended(self, *args): pass
        def surface(self, *args): pass
        def event(self, kind, message): self.events.append([kind, message])

    reporter = Events()
    result = fit(TrainSpec.binary(num_samples=64, num_epochs=2), reporter, lambda: False)
    print(json.dumps({
        "backend": backend.current().name,
        "environment": describe_environment().to_dict(),
        "probabilities": [predictor.predict(digit).tolist() for digit in digits],
        "saliency": inspection.saliency.tolist(),
        "compilations": [predictor._probabilities.compilations(), predictor._inspect.compilations()],
        "feature_map_sum": float(sum(maps.sum() for maps in inspection.feature_maps.values())),
        "loss": loss,
        "gradients": [array.tolist() for array in gradients.arrays()],
        "saved_probabilities": keras.ops.convert_to_numpy(fresh(digits[..., None], training=False)).tolist(),
        "fit_status": result.status,
        "events": reporter.events,
    }))
    """
)


def run_under(name: str, tmp_path: Path, environment: dict[str, str] | None = None) -> dict:
    """Run PROBE_SCRIPT in a fresh Python whose Keras uses backend ``name``; return its JSON."""
    saved = tmp_path / f"saved-under-{name}.keras"
    completed = subprocess.run(
        [sys.executable, "-c", PROBE_SCRIPT, str(STARTER_MODEL), str(saved), str(DIGITS)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPOSITORY,
        env={**os.environ, "KERAS_BACKEND": name, **(environment or {})},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "saved": saved}


@pytest.fixture(scope="module")
def under_jax(tmp_path_factory) -> dict:
    # Two logical CPUs, so that the data-parallel scope has devices to spread over.
    environment = {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "ZOO_MIRRORED_DEVICES": "cpu:0,cpu:1",
    }
    return run_under("jax", tmp_path_factory.mktemp("jax"), environment)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_embedded_mnist().x_test[:DIGITS].astype(np.float32) / 255


def test_the_jax_run_uses_jax_and_records_it(under_jax):
    assert under_jax["backend"] == "jax"
    environment = under_jax["environment"]
    assert environment["backend"] == "jax"
    assert "jax" in environment["versions"]
    assert {"name": "cpu:0", "type": "CPU"} in environment["devices"]


def test_the_starter_model_predicts_the_same_digits_on_tensorflow_and_jax(under_jax, digits):
    predictor = Predictor.from_file(STARTER_MODEL)
    on_tensorflow = np.array([predictor.predict(digit) for digit in digits])
    on_jax = np.array(under_jax["probabilities"])
    np.testing.assert_allclose(on_jax, on_tensorflow, atol=1e-5)
    assert under_jax["compilations"] == [1, 1]  # compiled once while loading, not once per digit
    labels = load_embedded_mnist().y_test[:DIGITS]
    assert (on_tensorflow.argmax(axis=1) == labels).mean() >= 0.75  # a real classifier, not noise


def test_saliency_and_feature_maps_agree_across_backends(under_jax, digits):
    inspection = Predictor.from_file(STARTER_MODEL).inspect(digits[0])
    np.testing.assert_allclose(np.array(under_jax["saliency"]), inspection.saliency, atol=1e-4)
    assert inspection.saliency.max() == pytest.approx(1.0)
    total = float(sum(maps.sum() for maps in inspection.feature_maps.values()))
    assert under_jax["feature_map_sum"] == pytest.approx(total, rel=1e-4)


def test_weight_gradients_agree_with_the_hand_computed_backprop_on_both_backends(under_jax):
    weights = formulas.initial_weights(0)
    points, labels = zip(*formulas.BACKPROP_SAMPLES, strict=True)
    by_hand = formulas.backprop(weights, np.array(points), np.array(labels))
    loss, on_tensorflow = formulas.keras_backprop_gradients(weights, np.array(points), np.array(labels))
    assert loss == pytest.approx(by_hand.loss, abs=1e-6)
    assert under_jax["loss"] == pytest.approx(by_hand.loss, abs=1e-6)
    for ours, tensorflow, jax in zip(
        by_hand.gradients.arrays(), on_tensorflow.arrays(), under_jax["gradients"], strict=True
    ):
        np.testing.assert_allclose(tensorflow, ours, atol=1e-6)
        np.testing.assert_allclose(np.array(jax), ours, atol=1e-6)


def test_a_model_saved_under_jax_loads_and_predicts_the_same_under_tensorflow(under_jax, digits):
    predictor = Predictor.from_file(under_jax["saved"])
    on_tensorflow = np.array([predictor.predict(digit) for digit in digits])
    np.testing.assert_allclose(on_tensorflow, np.array(under_jax["saved_probabilities"]), atol=1e-5)


def test_jax_trains_data_parallel_over_two_devices(under_jax):
    assert under_jax["fit_status"] == "completed"
    assert ["strategy", "DataParallel over 2 devices: cpu:0, cpu:1"] in under_jax["events"]


def test_the_backend_is_read_from_the_environment_without_importing_keras(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert configured_backend() == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert configured_backend() == "tensorflow"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert configured_backend() == "torch"


def test_an_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"backend 'theano': choose one of tensorflow, jax, torch"):
        backend.check_name("theano")


def test_a_worker_sharing_a_gpu_gets_its_memory_share_before_its_backend_starts():
    environment = backend.worker_environment("jax", 0.25, 141_000)
    assert environment["KERAS_BACKEND"] == "jax"
    assert environment["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert environment["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.250"
    assert environment["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert environment["ZOO_GPU_MEMORY_MB"] == "35250"  # TensorFlow's cap, in megabytes
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in backend.worker_environment("tensorflow", None)


def test_a_run_started_with_backend_jax_trains_on_jax_and_records_it(zoo_home):
    from zoo.runs.store import open_run_store

    completed = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "binary", "--backend", "jax", "--epochs", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPOSITORY,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout)
    assert completed.stderr.splitlines()[0] == f"run {summary['id']}: binary queued on cpu with jax"
    run = open_run_store().get(summary["id"])
    assert run.status == "completed" and run.spec.backend == "jax"
    assert run.environment.backend == "jax" and "jax" in run.environment.versions
