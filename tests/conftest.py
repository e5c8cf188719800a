"""Shared test set-up: every test gets its own Zoo Studio home, and nothing reaches the internet."""

import os
from pathlib import Path

import pytest
from hub_server import start_session_hub

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# huggingface_hub (which Keras imports) reads HF_ENDPOINT, HF_HOME and HF_HUB_DISABLE_XET once, at import:
# point every test process at the loopback Hub of tests/hub_server.py before anything imports them.
start_session_hub()

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist.npz"


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch) -> Path:
    """A fresh ZOO_HOME (run store and local zoo) for each test; no Keras cache or ZOO_MNIST."""
    home = tmp_path / "zoo-home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("ZOO_MNIST", raising=False)
    return home


@pytest.fixture(scope="session")
def full_mnist_path() -> Path:
    """The full MNIST that the project's shared folder provides for tests and benchmarks."""
    if not SHARED_MNIST.is_file():
        pytest.fail(
            f"{SHARED_MNIST} is missing: the shared folder with the full MNIST must sit beside the repo."
        )
    return SHARED_MNIST


@pytest.fixture(scope="session")
def trained_cnn_file(tmp_path_factory, full_mnist_path) -> Path:
    """The article's CNN trained briefly (2 epochs on 20,000 full-MNIST training digits; about 96%
    test accuracy, ~10 s here), saved as a .keras file once per test session."""
    import keras
    import numpy as np

    from zoo.data import load_mnist
    from zoo.training import TrainSpec, build_model, scale_digits

    mnist = load_mnist(full_mnist_path)
    keras.utils.set_random_seed(0)
    model = build_model(TrainSpec.cnn())
    labels = np.eye(10, dtype=np.float32)[mnist.y_train[:20_000]]
    model.fit(scale_digits(mnist.x_train[:20_000]), labels, batch_size=128, epochs=2, verbose=0)
    path = tmp_path_factory.mktemp("trained-cnn") / "model.keras"
    model.save(path)
    return path
