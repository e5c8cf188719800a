"""Shared test set-up: every test gets its own Zoo Studio home, and nothing reaches the internet."""

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import WRITE_TOKEN, start_session_hub
from postgres_server import PostgresServer

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# No workers waiting ahead of time: each submitted run starts a worker (tests of the warm pool set it).
os.environ.setdefault("ZOO_WARM_WORKERS", "0")
# huggingface_hub (which Keras imports) reads HF_ENDPOINT, HF_HOME and HF_HUB_DISABLE_XET once, at import:
# point every test process at the loopback Hub of tests/hub_server.py before anything imports them.
start_session_hub()

STARTER_CNN_FILE = Path(__file__).resolve().parents[1] / "zoo" / "starter" / "mnist-cnn" / "model.keras"


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch) -> Iterator[Path]:
    """A fresh ZOO_HOME (run store and local zoo) for each test; no Keras cache or ZOO_MNIST."""
    home = tmp_path / "zoo-home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("ZOO_MNIST", raising=False)
    yield home
    if (home / "pool.sqlite3").exists():  # end the test's waiting workers, as a server's shutdown would
        from zoo.core.errors import StorageError
        from zoo.execution.executor import open_executor

        with contextlib.suppress(StorageError):  # a test left a store this version cannot open
            open_executor().shutdown()


@pytest.fixture(autouse=True)
def library_logging() -> Iterator[None]:
    """After each test the library logs as in a fresh process: the handler that a CLI command (-v) or
    the app (its console) set up in this process does not print the next test's lines."""
    yield
    from zoo.core.logs import LIBRARY_LOGGER

    logger = logging.getLogger(LIBRARY_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def starter_cnn_file() -> Path:
    """A trained MNIST CNN that every clone has: the shipped starter model (the article's recipe on
    the full MNIST; 99% on the embedded test digits)."""
    return STARTER_CNN_FILE


@pytest.fixture(scope="session")
def mnist_test():
    """The embedded MNIST's 1,000 test digits (images uint8 (N, 28, 28), labels)."""
    from zoo.ml.data import load_embedded_mnist

    mnist = load_embedded_mnist()
    return mnist.x_test, mnist.y_test


@pytest.fixture(scope="session")
def a_seven(mnist_test):
    """One handwritten 7 from the embedded test digits (uint8, 28x28, white on black)."""
    images, labels = mnist_test
    return images[labels == 7][0]


@pytest.fixture(scope="session")
def mnist_npz_file(tmp_path_factory) -> Path:
    """A file in Keras' ``mnist.npz`` layout (what ``--data``/``ZOO_MNIST`` name), made from the
    embedded digits: 4,000 train / 1,000 test."""
    import numpy as np

    from zoo.ml.data import MNIST_KEYS, load_embedded_mnist

    mnist = load_embedded_mnist()
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    np.savez(path, **{key: getattr(mnist, key) for key in MNIST_KEYS})
    return path


@pytest.fixture
def server(monkeypatch):
    """The session's loopback Hub, emptied, with alice's write token in HF_TOKEN."""
    hub_server = start_session_hub()
    hub_server.reset()
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.delenv("ZOO_HUB_TIMEOUT", raising=False)
    monkeypatch.delenv("ZOO_HUB_CONNECT_TIMEOUT", raising=False)
    monkeypatch.delenv("ZOO_HUB_MAX_DOWNLOAD_MB", raising=False)
    yield hub_server
    hub_server.reset()
    assert not hub_server.state.unhandled, "the client called endpoints the test server lacks"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL 15 on 127.0.0.1 (tests/postgres_server.py), started on first use and
    stopped at the session's end; a server that cannot start fails the tests that need it."""
    postgres = PostgresServer()
    try:
        postgres.start()
        logging.getLogger(__name__).info("PostgreSQL cold start: %.2f s", postgres.cold_start_seconds)
        yield postgres
    finally:
        postgres.remove()


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL: its run-store URL (dropped after the test)."""
    if not (
        postgres_server.data / "postmaster.pid"
    ).exists():  # a test stopped it and failed before restarting
        postgres_server.start()
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def app_postgres_url(postgres_server) -> str:
    """A database on the session's PostgreSQL for pages run in this process (AppTest), kept until the
    session ends: the app's supervision thread is the process's, as a server's is, and goes on sweeping
    the store its last page used after the test (a dropped database would fail every sweep from then on)."""
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The session's S3-compatible server on 127.0.0.1 (moto's ``ThreadedMotoServer``, on a free port):
    its endpoint URL."""
    from moto.server import ThreadedMotoServer

    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3_server.start()
    host, port = s3_server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        s3_server.stop()


@pytest.fixture
def s3_store_url(s3_endpoint, monkeypatch) -> str:
    """A fresh, empty bucket on the session's S3 server, as ZOO_MODEL_STORE names it
    (``s3://BUCKET/studio``), with the usual AWS variables pointing at that server."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "zoo-tests")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "zoo-tests-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"zoo-{uuid.uuid4().hex}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/studio"
