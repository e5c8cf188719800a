"""Listing the local zoo (``ModelStore.entries``, what the Draw page does at every stroke) and fetching a
model file (``model_file``) in a directory and in an S3 bucket: moto's S3 server on 127.0.0.1, as the
tests start it (a Python server on this machine: a real S3 answers each request in tens of ms instead).

    python benchmarks/model_store.py [--models 5] [--repeats 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from zoo.storage.files import open_storage  # noqa: E402
from zoo.storage.models import MODELS_FOLDER, ModelStore, open_local_zoo  # noqa: E402


def measure(store: ModelStore, models: int, repeats: int) -> str:
    """Copies of the starter until the zoo holds ``models``; then ms per listing and per file fetch."""
    for number in range(2, models + 1):
        with store.storage.staging() as staged:
            for file in store.storage.files("mnist-cnn"):
                (staged / file.name).write_bytes(store.storage.read_bytes("mnist-cnn", file.name))
            store.storage.publish(staged, f"copy-{number}")
    listings = []
    for _ in range(repeats):
        started = time.perf_counter()
        assert len(store.entries()) == models
        listings.append(time.perf_counter() - started)
    started = time.perf_counter()
    store.model_file("copy-2")
    first = time.perf_counter() - started
    started = time.perf_counter()
    store.model_file("copy-2")
    again = time.perf_counter() - started
    return (
        f"entries() of {models} models: first {listings[0] * 1000:.1f} ms, then median "
        f"{statistics.median(listings[1:]) * 1000:.1f} ms; model_file: first {first * 1000:.1f} ms, "
        f"cached {again * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    arguments = parser.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    scratch = Path(tempfile.mkdtemp(prefix="zoo-model-store-"))
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        ZOO_HOME=str(scratch / "home"),
    )
    import boto3

    boto3.client("s3").create_bucket(Bucket="zoo-bench")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for url in (str(scratch / "directory"), "s3://zoo-bench/zoo"):
        store = open_local_zoo(open_storage(url).within(MODELS_FOLDER))
        print(f"{url}: {measure(store, arguments.models, arguments.repeats)}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    server.stop()


if __name__ == "__main__":
    main()
