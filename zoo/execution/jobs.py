"""Where runs execute: a pool of warm worker processes per device, one process per run.

``submit`` records a queued run; it never trains in the caller. Runs are taken up by *pool workers*:
processes started with ``python -m zoo.execution.jobs DEVICE BACKEND STORE`` in a new process session, which
import their Keras backend and load the data first, then join the pool of their device and backend
in the run store and wait there. The first queued run a lane of the device can start goes to one of
them: that worker leaves the pool, starts its own replacement, trains (``training.fit``), evaluates
the model on the test set (``evaluation.evaluate_model``), saves it to the local zoo with its
``ModelConfig``, closes the run and exits. So a run starts in a process that is already warm, yet every run
still has a process of its own: a crash, a kill or an out-of-memory ends that run only, and no
worker is ever reused.

The run store is the only channel, so the app and the CLI share the pools: whoever submits (or
shows the Train page) tops the pool up to ``ZOO_WARM_WORKERS`` waiting workers (default 2; 0 starts a
worker only when a run is queued); they wait while the process that started the pool lives (the server,
the CLI command: ``ZOO_POOL_OWNER``). A queued run holds no process of its own. A device runs up to
``ZOO_RUNS_PER_DEVICE`` runs per lane at once (default 1 on a CPU; on a GPU, one per 16 GB of its
memory, up to 8, each limited to its share of the memory); Playground runs have their own lane.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from zoo.core.errors import RunError, SettingsError, StorageError, StoreLocked, ZooError
from zoo.core.hosting import User, check_may_create, load_config
from zoo.core.logs import chosen_level, configure_logging
from zoo.core.paths import ensure_directory, zoo_home
from zoo.core.scores import Scores
from zoo.core.settings import load_settings, log_level
from zoo.core.spec import TrainSpec, configured_backend
from zoo.ml.backend import check_installed, worker_environment
from zoo.ml.data import check_mnist_source, check_visitor_data_source
from zoo.ml.evaluation import evaluate_model
from zoo.ml.printed import check_fonts, with_printed_digits
from zoo.ml.training import (
    DecisionSurface,
    FitResult,
    PreparedModel,
    Progress,
    TrainingData,
    check_fine_tuning,
    check_limits,
)
from zoo.runs.store import MetricsReport, Run, RunStore, process_alive, say_last_words

POOL_POLL_SECONDS = 0.1  # how often a waiting worker looks for a queued run: part of the start latency
HEARTBEAT_SECONDS = 1.0
STORE_RETRY_SECONDS = 300.0  # how long a worker whose store failed (or stays locked) keeps trying to write
# A report waits this long for another process's write lock (a write takes milliseconds: a lock held
# this long is no passing write), then it is kept in memory and training goes on; while reports are
# kept, writing them is tried again every LOCKED_RETRY_SECONDS.
LOCKED_REPORT_WAIT_SECONDS = 2.0
LOCKED_RETRY_SECONDS = 10.0
# Where the ``zoo`` package lies: workers find it there whatever directory the caller stands in.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
IDLE_SECONDS = 900.0  # a waiting worker beyond the pool's need leaves after this long
# Set on every worker: the process whose pages or command wanted the pool (a server, a CLI command), as
# "pid:start time". Its workers wait only while it lives; a replacement inherits it from its worker.
POOL_OWNER_VARIABLE = "ZOO_POOL_OWNER"
GPU_MEMORY_PER_RUN_MB = 16_000
MAX_RUNS_PER_GPU = 8
# A waiting worker prepares (builds and compiles) these models: a run of the same compiled form
# (the Train and Playground pages' defaults, whatever their data, length and seed) starts at once.
PREPARED_SPECS = (TrainSpec.binary(), TrainSpec.cnn())
GPU_MEMORY_SHARED = 0.9  # of a GPU's memory, split between its concurrent runs (the rest: the driver)


def detect_device() -> str:
    """``gpu`` when this host has an NVIDIA GPU, else ``cpu``.

    Asks ``nvidia-smi`` rather than TensorFlow, so pages can show it without importing TensorFlow.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return "cpu"
    nvidia_smi = shutil.which("nvidia-smi")
    if not nvidia_smi:
        return "cpu"
    try:
        listing = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "cpu"
    return "gpu" if listing.returncode == 0 and "GPU" in listing.stdout else "cpu"


def describe_device() -> str:
    """One line for people: which GPU(s) this host trains on, or that it trains on the CPU."""
    if detect_device() == "gpu":
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5, check=False)
        names = [
            line.split(":", 1)[1].split("(")[0].strip() for line in listing.stdout.splitlines() if ":" in line
        ]
        return f"GPU: {', '.join(names)}"
    return f"CPU ({os.cpu_count()} cores)"


def warm_workers() -> int:
    """How many warm workers each pool keeps waiting (``ZOO_WARM_WORKERS``, default 2).

    Raises:
        SettingsError: a setting is not what it takes (this one: a whole number from 0 to 16).
    """
    return load_settings().warm_workers


def runs_per_device(device: str) -> int:
    """How many runs of one lane a device trains at once (``ZOO_RUNS_PER_DEVICE``, else 1 on a CPU
    and one per 16 GB of memory on a GPU, at most 8).

    Raises:
        SettingsError: a setting is not what it takes (this one: a whole number from 1 to 64).
    """
    chosen = load_settings().runs_per_device
    if chosen is not None:
        return chosen
    by_memory = gpu_memory_mb() // GPU_MEMORY_PER_RUN_MB if device != "cpu" else 1
    return max(1, min(MAX_RUNS_PER_GPU, by_memory))


@functools.cache
def gpu_memory_mb() -> int:
    """The memory of this host's smallest GPU in MB, as ``nvidia-smi`` reports it (0 without one);
    asked once per process."""
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return min(int(float(line)) for line in listing.stdout.split())
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return 0


def memory_fraction(device: str) -> float | None:
    """The share of a GPU's memory one run may take (None on a CPU)."""
    return None if device == "cpu" else GPU_MEMORY_SHARED / runs_per_device(device)


def submit(spec: TrainSpec, store: RunStore | None = None, *, by: User) -> str:
    """Queue a run of ``by`` for ``spec``, make sure a worker pool will take it up, and return its id
    at once.

    Args:
        spec: what to train; validated here (its ``backend`` made concrete with ``resolved``).
        store: the run store (default: ``$ZOO_HOME``'s).
        by: who starts it and will own it (``hosting.LOCAL_USER`` on one's own machine).

    Returns:
        The run id (12 hex digits); the run is ``queued``.

    Raises:
        ZooError: the spec is invalid, its backend is not installed, the MNIST file it names is
            missing or malformed, its base model or digit set cannot be fine-tuned, a ``printed`` run
            finds no fonts, or the hosting configuration is invalid (all checked here, before
            anything starts).
        PermissionDenied: ``by`` is not signed in, the spec asks more than the host's limits, names
            a server file a visitor may not use, or ``by`` already has as many live runs as the
            host allows (nothing is queued then).
        RunError: no worker process could be started for it (the run is then closed as failed).
        StorageError: the run store cannot be opened or written.

    Example:
        >>> run_id = submit(TrainSpec.binary(dataset="spiral", num_epochs=50), by=LOCAL_USER)
        >>> wait(run_id).status  # doctest: +SKIP
        'completed'
    """
    check_may_create(by, "train a model")
    spec = spec.resolved()
    spec.validate()
    check_installed(spec.backend)  # else no worker could start, and the run would wait for one in vain
    config = load_config()
    limits = config.limits
    if config.hosted and not by.is_admin:  # first: nothing of a file a visitor may not name is read
        check_visitor_data_source(spec.mnist_source, by, config)
    # Judged from what the data holds: a bad file (the spec's or ZOO_MNIST) is refused here, from its
    # arrays' headers, before a run exists; and so are labels other than 0-9 (only they are read).
    check_limits(spec, limits)
    if spec.kind == "cnn" and spec.mnist_source != "embedded":
        check_mnist_source(None if spec.mnist_source == "auto" else spec.mnist_source)
    check_fine_tuning(spec, by)  # so is a missing base model, or a digit set unfit or not theirs
    if spec.printed:
        check_fonts()  # and a machine without fonts to type printed digits in
    store = store or RunStore()
    device = "cpu" if spec.device == "cpu" else detect_device()
    run_id = store.create_run(spec, device, owner=by, limits=limits)
    try:
        fill_pool(device, spec.backend, store)
    except OSError as error:
        if not store.pool_size(device, spec.backend):
            message = (
                f"the worker process could not be started ({error.strerror or error}); start the run again."
            )
            store.finish(run_id, "failed", message=message)
            raise RunError(message) from error
    return run_id


def fill_pool(device: str, backend_name: str, store: RunStore) -> int:
    """Start workers until the pool of ``device`` and ``backend_name`` has what it needs: the
    ``warm_workers()`` waiting ones, and at least one while a run waits. Returns how many started.

    Raises:
        OSError: a worker process could not be started.
    """
    started = 0
    while store.pool_size(device, backend_name) < _pool_target(device, backend_name, store):
        process = _start_worker(device, backend_name, store)
        if not store.join_pool(process.pid, device, backend_name, _pool_target(device, backend_name, store)):
            process.terminate()  # another process filled the pool meanwhile
            process.wait()
            break
        started += 1
    return started


def _pool_target(device: str, backend_name: str, store: RunStore, idle: bool = False) -> int:
    """How many workers the pool needs: ``warm_workers()`` waiting ones (none once ``idle``), and one
    per queued run the device could start at once."""
    queued = min(store.queued_count(device, backend_name), runs_per_device(device))
    return max(0 if idle else warm_workers(), queued)


def _start_worker(device: str, backend_name: str, store: RunStore) -> subprocess.Popen:
    environment = {
        **os.environ,
        "ZOO_HOME": str(zoo_home()),
        POOL_OWNER_VARIABLE: os.environ.get(POOL_OWNER_VARIABLE) or process_identity(os.getpid()),
        # This process's zoo package, wherever the caller stands (-P: not one in its working directory).
        "PYTHONPATH": os.pathsep.join(filter(None, (PACKAGE_PARENT, os.environ.get("PYTHONPATH")))),
        **worker_environment(backend_name, memory_fraction(device), gpu_memory_mb()),
    }
    if device == "cpu":
        environment["CUDA_VISIBLE_DEVICES"] = ""
    log_path = ensure_directory(store.log_path("workers").parent) / "workers.log"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-P", "-m", "zoo.execution.jobs", device, backend_name, str(store.path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )


def process_identity(pid: int) -> str:
    """``pid`` with its start time (``pid:ticks since boot``), which a process that reuses the pid
    later does not share; the bare pid where /proc does not say."""
    try:
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return str(pid)
    return f"{pid}:{started}"


def pool_owner_alive() -> bool:
    """Whether the process that wanted this worker's pool (``ZOO_POOL_OWNER``) still runs; True in a
    process that was not started as a pool worker."""
    owner = os.environ.get(POOL_OWNER_VARIABLE)
    if not owner:
        return True
    pid = int(owner.split(":")[0])
    return process_alive(pid) and process_identity(pid) == owner


def keep_pool_warm(device: str, store: RunStore) -> None:
    """Top up the pool of ``device`` and this host's backend with waiting workers, so the next run
    starts warm (nothing when ``ZOO_WARM_WORKERS`` is 0). Pages call it when they are shown.

    Not while a run trains on a CPU: a worker's start-up (its backend's import, the warm-up compiles)
    would take a core from that run and slow every page meanwhile; the run's worker starts its
    replacement when the run ends (``run_pool_worker``).

    Raises:
        OSError: a worker process could not be started.
    """
    if warm_workers() and not (device == "cpu" and store.running_count(device)):
        fill_pool(device, configured_backend(), store)


def stop_pool(store: RunStore) -> None:
    """End every waiting pool worker of ``store`` (running runs are left alone)."""
    for pid in store.pool_workers():
        store.leave_pool(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def wait(run_id: str, timeout: float = 600.0, store: RunStore | None = None, poll: float = 0.2) -> Run:
    """Block until the run has ended (or ``timeout`` seconds pass) and return it.

    Raises:
        RunError: the run is still active after ``timeout`` seconds.
    """
    store = store or RunStore()
    deadline = time.monotonic() + timeout
    while True:
        run = store.get(run_id)
        if not run.is_active:
            return run
        if time.monotonic() > deadline:
            raise RunError(f"run {run_id} is still {run.status} after {timeout:.0f} s.")
        time.sleep(poll)


class StoreReporter:
    """Sends ``training.fit`` progress to the run store (a ``ProgressReporter``).

    Another process holding the store's write lock never holds training up, nor loses a metric: the
    reports are kept in memory and written together once the lock is let go (tried again every
    ``LOCKED_RETRY_SECONDS``, for up to ``STORE_RETRY_SECONDS``); so is the latest decision surface.
    ``flush`` writes what is still kept when the fit ends. ``on_first_report`` is called once, after
    the first metrics are written.
    """

    def __init__(
        self, store: RunStore, run_id: str, on_first_report: Callable[[], None] | None = None
    ) -> None:
        self.store, self.run_id, self.on_first_report = store, run_id, on_first_report
        self.kept: list[MetricsReport] = []
        self.kept_surface: DecisionSurface | None = None
        self.last_try = 0.0

    def batch(self, metrics: dict[str, float], progress: Progress) -> None:
        self._report(_prefixed("batch", metrics), progress)

    def epoch(self, metrics: dict[str, float], progress: Progress) -> None:
        named = _prefixed("epoch", metrics)
        named["epoch/samples_per_second"] = progress.samples_per_second
        self._report(named, progress)

    def _report(self, metrics: dict[str, float], progress: Progress) -> None:
        now = time.time()
        self.kept.append(MetricsReport(metrics, progress, now))
        if len(self.kept) > 1 and now - self.last_try < LOCKED_RETRY_SECONDS:
            return  # the store was locked a moment ago: keep this one too
        self.last_try = now
        try:
            self.store.log_reports(self.run_id, self.kept, wait_seconds=LOCKED_REPORT_WAIT_SECONDS)
        except StoreLocked:
            if now - self.kept[0].wall_time > STORE_RETRY_SECONDS:
                raise
            return
        self.kept = []
        if self.kept_surface is not None:
            self.surface(self.kept_surface)
        if self.on_first_report is not None:
            callback, self.on_first_report = self.on_first_report, None
            callback()

    def surface(self, surface: DecisionSurface) -> None:
        # Only the latest surface counts: while reports are kept (the store is locked), so is it.
        self.kept_surface = surface
        if self.kept:
            return
        with contextlib.suppress(StoreLocked):  # if locked: written with the next reports, or by flush
            self.store.save_surface(self.run_id, surface, wait_seconds=LOCKED_REPORT_WAIT_SECONDS)
            self.kept_surface = None

    def event(self, kind: str, message: str) -> None:
        _patiently(lambda: self.store.add_event(self.run_id, kind, message))

    def flush(self) -> None:
        """Write the reports and the surface still kept, waiting for the store's write lock if need be.

        Raises:
            StoreLocked: the store stayed locked for ``STORE_RETRY_SECONDS``.
            StorageError: the store cannot be written.
        """
        _patiently(lambda: self.store.log_reports(self.run_id, self.kept))
        self.kept = []
        surface = self.kept_surface
        if surface is not None:
            _patiently(lambda: self.store.save_surface(self.run_id, surface))
            self.kept_surface = None


Written = TypeVar("Written")


def _patiently(write: Callable[[], Written]) -> Written:
    """One of a worker's writes, tried again while another process holds the store's write lock (each
    try waits ``BUSY_WAIT_SECONDS``), for up to ``STORE_RETRY_SECONDS``: a lock delays a run, it does
    not fail it.

    Raises:
        StoreLocked: the store stayed locked that long.
    """
    deadline = time.monotonic() + STORE_RETRY_SECONDS
    while True:
        try:
            return write()
        except StoreLocked:
            if time.monotonic() > deadline:
                raise


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{name}": value for name, value in metrics.items()}


def run_pool_worker(device: str, backend_name: str, store: RunStore) -> int:
    """A pool worker: load the backend and the data, wait in the pool, train the first run it is
    handed, and exit. Returns an exit code."""
    from zoo.ml import backend, training

    pid, run = os.getpid(), None
    try:
        implementation = backend.current()  # imports Keras and its backend: the bulk of a cold start
        fraction = os.environ.get(backend.MEMORY_FRACTION_VARIABLE)
        if fraction:
            megabytes = int(os.environ.get(backend.MEMORY_MEGABYTES_VARIABLE) or 0)
            implementation.limit_memory(float(fraction), megabytes)
        prepared = []  # a run waits already (or nobody wants the pool): no models prepared first
        if not store.queued_count(device, backend_name) and pool_owner_alive():
            prepared = training.warm_up(PREPARED_SPECS)
        run = _wait_for_run(pid, device, backend_name, store)
    finally:
        if run is None:
            store.leave_pool(pid)
    if run is None:
        return 0

    def replace_this_worker() -> None:
        if not (pool_owner_alive() or store.queued_count(device, backend_name)):
            return  # the server (or command) that wanted the pool has ended, and no run waits
        try:
            fill_pool(device, backend_name, store)
        except (OSError, StorageError) as error:  # the next submit fills the pool instead
            with contextlib.suppress(StorageError):
                store.add_event(run.id, "pool", f"no replacement worker could be started: {error}")

    _write_output_to(store.log_path(run.id))
    if store.queued_count(device, backend_name):
        replace_this_worker()  # a queued run needs a worker now
    # Else, on a GPU, once the run's first metric is in (not before: its start-up would compete with this
    # run's start for the CPU). On a CPU, only when the run ends: the start-up (backend import, warm-up
    # compiles) takes a whole core for 10-15 s, and the run trained at 0.66x of plain Keras meanwhile
    # (JAX, 2 cores, benchmarks/gpu.py).
    exit_code = train_run(run, store, replace_this_worker if device != "cpu" else None, prepared)
    replace_this_worker()  # and at the end, for the next run and for runs queued meanwhile
    return exit_code


def _wait_for_run(pid: int, device: str, backend_name: str, store: RunStore) -> Run | None:
    """Wait in the pool until a run is handed over; None when this worker is no longer needed: the
    pool has more workers than it needs, counting no waiting ones after IDLE_SECONDS or once the
    process that wanted the pool has ended (its queued runs are still taken up)."""
    if not store.mark_worker_ready(pid):
        return None  # not (or no longer) in the pool
    idle_since = time.monotonic()
    while store.path.exists():
        run = store.claim_next(pid, device, backend_name, runs_per_device(device))
        if run is not None:
            return run
        idle = time.monotonic() - idle_since > IDLE_SECONDS or not pool_owner_alive()
        if store.leave_pool_if_surplus(pid, _pool_target(device, backend_name, store, idle)):
            return None
        time.sleep(POOL_POLL_SECONDS)
    return None


def _write_output_to(path: Path) -> None:
    """Send this process's stdout and stderr (Python's and native libraries') to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor = os.open(ensure_directory(path.parent) / path.name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for stream in (1, 2):
        os.dup2(descriptor, stream)
    os.close(descriptor)


def train_run(
    run: Run,
    store: RunStore,
    on_first_report: Callable[[], None] | None = None,
    prepared: Sequence[PreparedModel] = (),
) -> int:
    """Train a run this process has claimed, save its model and close it. Returns an exit code.

    When the run store fails under it (read-only, disk full, I/O error), the run ends as failed
    with that reason: see ``_fail_when_store_takes_it``."""
    try:
        return _train(run, store, on_first_report, prepared)
    except StorageError as error:
        return _fail_when_store_takes_it(store, run.id, str(error))


def _fail_when_store_takes_it(store: RunStore, run_id: str, reason: str) -> int:
    """Leave the reason as last words in the run's log, then close the run as failed as soon as the
    store takes writes again (retrying for up to STORE_RETRY_SECONDS). If it never does, the reader
    who finds this worker ended fails the run with the same reason, read from the log."""
    say_last_words(reason)
    deadline = time.monotonic() + STORE_RETRY_SECONDS
    while True:
        try:
            store.finish(run_id, "failed", message=reason)
            return 1
        except StorageError:
            if time.monotonic() > deadline:
                return 1
            time.sleep(HEARTBEAT_SECONDS)


def _train(
    run: Run,
    store: RunStore,
    on_first_report: Callable[[], None] | None,
    prepared: Sequence[PreparedModel],
) -> int:
    from zoo.ml import training

    run_id = run.id
    finished = threading.Event()
    threading.Thread(target=_beat_heart, args=(store, run_id, finished), daemon=True).start()
    try:
        data = training.load_training_data(run.spec)
        if run.spec.printed:
            data = with_printed_digits(run.spec, data)
        environment = training.describe_environment()
        _patiently(lambda: store.set_started(run_id, data.source, environment))
        with store.stop_checker(run_id) as stop_requested:
            reporter = StoreReporter(store, run_id, on_first_report)
            result = training.fit(run.spec, reporter, stop_requested, data, prepared)
        reporter.flush()
        if not store.get(run_id).is_active:
            return 1  # failed meanwhile by a reader that found this worker silent: that verdict stands
        if result.status == "diverged":
            _patiently(lambda: store.finish(run_id, "diverged", message=result.message))
            return 0
        # a stopped model is evaluated too, as it stood
        scores = evaluate_model(result.model, data).scores(result.fine_tuning)
        model_name = _save_model(run, result, scores, data)
        message = "stopped on request; the model as it stood is saved" if result.status == "stopped" else None
        _patiently(
            lambda: store.finish(
                run_id, result.status, message=message, final_metrics=scores, model_name=model_name
            )
        )
        return 0
    except ZooError as error:
        reason = str(error)
        _patiently(lambda: store.finish(run_id, "failed", message=reason))
        return 1
    except Exception as error:  # the run fails; the reason is kept for the person who started it
        reason, details = f"{type(error).__name__}: {error}"[:500], traceback.format_exc()
        _patiently(lambda: store.add_event(run_id, "traceback", details))
        _patiently(lambda: store.finish(run_id, "failed", message=reason))
        return 1
    finally:
        finished.set()


def _beat_heart(store: RunStore, run_id: str, finished: threading.Event) -> None:
    """Mark the worker alive off the training thread, also through data loading and long steps."""
    while not finished.is_set():
        with contextlib.suppress(StorageError):  # the training thread meets the same failure and ends the run
            store.heartbeat(run_id)
        finished.wait(HEARTBEAT_SECONDS)


def _save_model(run: Run, result: FitResult, scores: Scores, data: TrainingData) -> str:
    from zoo.storage.models import ModelConfig, ModelStore

    models = ModelStore()
    config = ModelConfig(
        run.kind,
        run.spec,
        data.source,
        run.id,
        result.status,
        lineage=data.lineage,
        owner=run.owner,
        kept=run.spec.keep_model,
    )
    name = run.spec.model_name or f"{run.kind}-{run.id}"
    saved = models.save(
        result.model, name, config=config, metrics=scores, history=result.history, unique=True
    )
    models.remove_unkept()  # Playground models nobody kept for a day
    return saved.name  # the name it really got: another run may have taken the one asked for meanwhile


def main(device: str, backend_name: str, store_path: str) -> int:
    """``python -m zoo.execution.jobs DEVICE BACKEND STORE``: a pool worker's entry point; a store that cannot
    be used is one line in the workers' log, not a traceback."""
    try:
        configure_logging(chosen_level(log_level(), "info"))  # to stderr: the workers' log, then the run's
        return run_pool_worker(device, backend_name, RunStore(store_path))
    except (StorageError, SettingsError) as error:
        print(f"zoo worker {os.getpid()}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
