"""Run store write speed: metric rows/s appended through ``RunStore.log_metrics`` (the worker's path: a
batch of reports, 4 metric values each, in one call) on SQLite and on PostgreSQL, for several batch
sizes, and the rows/s a page reads back with ``metrics_since``. Through the API only.

PostgreSQL: the server ``--postgresql URL`` names (a fresh, empty database), else a PostgreSQL 15
started here as tests/postgres_server.py starts it for the tests (fsync off: an upper bound for a
durable server). SQLite: a fresh file in a temporary directory (WAL, as shipped).

    python benchmarks/run_store.py [--rows 40000] [--batches 1,10,100] [--postgresql URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "tests"))
from postgres_server import PostgresServer  # noqa: E402 - the tests' loopback PostgreSQL

from zoo.core.spec import TrainSpec  # noqa: E402
from zoo.ml.training import Progress  # noqa: E402
from zoo.runs.records import MetricsReport, Placement  # noqa: E402
from zoo.runs.store import RunStore, open_run_store  # noqa: E402

METRICS_PER_REPORT = 4  # batch loss and accuracy, as a CNN run logs, plus two more


def measure(store: RunStore, rows: int, batch: int) -> tuple[float, float]:
    """Rows/s written in batches of ``batch`` reports into one running run, and rows/s read back."""
    spec = TrainSpec.binary(num_epochs=1)
    run_id = store.create_run(spec, "cpu")
    store.claim_next("cpu", spec.backend, 1000, Placement("local", "bench", "1", "cpu"))
    reports = [
        MetricsReport(
            {f"batch/m{index}": 1.0 / (step + index) for index in range(METRICS_PER_REPORT)},
            Progress(step, rows, 1, 1, 64.0, 1.0, 0.5),
            time.time(),
        )
        for step in range(1, rows // METRICS_PER_REPORT + 1)
    ]
    began = time.perf_counter()
    for start in range(0, len(reports), batch):
        store.log_metrics(run_id, reports[start : start + batch])
    written = time.perf_counter() - began
    began = time.perf_counter()
    read = store.metrics_since(run_id).rows
    reading = time.perf_counter() - began
    assert len(read) == len(reports) * METRICS_PER_REPORT
    store.finish(run_id, "completed")
    return len(read) / written, len(read) / reading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000, help="metric rows per measurement")
    parser.add_argument("--batches", default="1,10,100", help="reports per log_metrics call")
    parser.add_argument("--postgresql", help="a fresh database's URL (default: start a server here)")
    arguments = parser.parse_args()
    batches = [int(size) for size in arguments.batches.split(",")]
    server = None
    url = arguments.postgresql
    if url is None:
        server = PostgresServer()
        server.start()
        print(f"PostgreSQL 15 started here in {server.cold_start_seconds:.2f} s (initdb + start)")
        url = server.create_database()
    try:
        with tempfile.TemporaryDirectory() as directory:
            stores = {
                "sqlite": open_run_store(f"sqlite:///{directory}/runs.sqlite3"),
                "postgresql": open_run_store(url),
            }
            print(f"load average before: {os.getloadavg()[0]:.1f}; {arguments.rows} rows a measurement")
            print("backend     reports/call  rows/s written  rows/s read")
            for batch in batches:
                for name, store in stores.items():
                    written, read = measure(store, arguments.rows, batch)
                    print(f"{name:<11} {batch:>12} {written:>15,.0f} {read:>12,.0f}")
            print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        if server is not None:
            server.remove()


if __name__ == "__main__":
    main()
