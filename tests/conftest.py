"""Shared test set-up: every test gets its own Zoo Studio home, and nothing reaches the internet."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

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
