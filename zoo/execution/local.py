"""The local executor: a pool of warm worker processes per device on this host, one process per run.

``submit`` makes sure a worker will take the run up, then records it queued; it never trains in the
caller. Runs are taken up by *pool workers*: processes started with ``python -m zoo.execution.worker
DEVICE BACKEND RUN_STORE_URL`` in a new process session, which import their Keras backend and load the
data first, then join the pool of their device and backend (``zoo.execution.pool``) and wait there.
The first queued run a lane of the device can start goes to one of them: that worker leaves the pool,
starts its own replacement, trains, saves the model, closes the run and exits. So a run starts in a
process that is already warm, yet every run still has a process of its own: a crash, a kill or an
out-of-memory ends that run only, and no worker is ever reused.

Whoever submits (or shows the Train page) tops the pool up to ``ZOO_WARM_WORKERS`` waiting workers
(default 2; 0 starts a worker only when a run is queued); they wait while the process that started the
pool lives (the server, the CLI command: ``ZOO_POOL_OWNER``). A device runs up to
``ZOO_RUNS_PER_DEVICE`` runs per lane at once on this host; Playground runs have their own lane.

Supervision (``supervise``) judges the active runs: a run of this host whose worker process is gone,
or silent for ``HEARTBEAT_TIMEOUT_SECONDS`` (then its process group is killed), or a queued run no
worker took up, is failed; a run of another host only by its heartbeat's age, and no process of
another host is ever signalled. It runs on its own clock (``zoo.execution.supervisor``), never when
someone reads a run.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from zoo.core.errors import RunError, StorageError
from zoo.core.hosting import User
from zoo.core.paths import ensure_directory, zoo_home
from zoo.core.settings import load_settings
from zoo.core.spec import configured_backend
from zoo.execution.devices import (
    describe_device,
    detect_device,
    gpu_memory_mb,
    host_name,
    memory_fraction,
    runs_per_device,
)
from zoo.execution.pool import WorkerPool
from zoo.execution.processes import command_line, kill_process_group, process_alive, process_identity
from zoo.execution.records import (
    ALIVE,
    DEAD,
    HUNG,
    UNKNOWN,
    AdmittedRun,
    Capacity,
    ExecutorDescription,
    Liveness,
)
from zoo.ml.backend import worker_environment
from zoo.runs.records import Placement, Run
from zoo.runs.store import RunStore

EXECUTOR_NAME = "local"
WORKER_MODULE = "zoo.execution.worker"
HEARTBEAT_TIMEOUT_SECONDS = 120.0  # a running run's worker silent this long is hung
WORKER_START_TIMEOUT_SECONDS = 60.0  # a queued run no worker of its pool could take this long is failed
LAST_WORDS_PREFIX = "zoo worker: the run failed: "
# Set on every worker: the process whose pages or command wanted the pool (a server, a CLI command), as
# "pid:start time". Its workers wait only while it lives; a replacement inherits it from its worker.
POOL_OWNER_VARIABLE = "ZOO_POOL_OWNER"
# Where the ``zoo`` package lies: workers find it there whatever directory the caller stands in.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])

logger = logging.getLogger(__name__)


def warm_workers() -> int:
    """How many warm workers each pool keeps waiting (``ZOO_WARM_WORKERS``, default 2).

    Raises:
        SettingsError: a setting is not what it takes (this one: a whole number from 0 to 16).
    """
    return load_settings().warm_workers


class LocalExecutor:
    """Runs train in worker processes of this host's warm pools (see the module's docstring).

    Args:
        store: the run store its workers claim runs from and report to.
        host: this host's name (default ``ZOO_HOST``, else the machine's name).
        heartbeat_timeout: how long a running run's worker may stay silent before it is hung.
    """

    name = EXECUTOR_NAME

    def __init__(
        self, store: RunStore, host: str | None = None, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_SECONDS
    ) -> None:
        self.store = store
        self.host = host or host_name()
        self.heartbeat_timeout = heartbeat_timeout
        self.home = zoo_home()
        self.pool = WorkerPool(self.home / "pool.sqlite3", self.host)

    # --- starting runs --------------------------------------------------------------------------

    def submit(self, admitted: AdmittedRun) -> str:
        """Make sure a worker of the run's pool will take it up, then record it queued.

        Returns:
            The run id; the run is ``queued``.

        Raises:
            RunError: no worker process could be started and none waits (nothing is recorded).
            PermissionDenied: the owner or the host has as many live runs as the limits allow.
            StorageError: the run store or the pool cannot be written.
        """
        spec, device = admitted.spec, admitted.device
        try:
            self.fill_pool(device, spec.backend, submitting=True)
        except OSError as error:
            if not self.pool.size(device, spec.backend):
                reason = error.strerror or error
                raise RunError(
                    f"the worker process could not be started ({reason}); start the run again."
                ) from error
        return self.store.create_run(
            spec,
            device,
            owner=admitted.owner,
            limits=admitted.limits,
            placement=Placement(self.name, self.host, None, device),
        )

    def stop(self, run_id: str, *, by: User) -> Run:
        """Ask a run to stop (its worker stops after its current batch; a queued run stops at once).

        Raises:
            RunError: there is no run with that id.
            PermissionDenied: ``by`` is neither the run's owner nor an admin.
        """
        return self.store.request_stop(run_id, by=by)

    def keep_warm(self) -> None:
        """Top up the pool of this host's device and backend with waiting workers, so the next run
        starts warm (nothing when ``ZOO_WARM_WORKERS`` is 0). Pages call it when they are shown.

        Not while a run trains on a CPU: a worker's start-up (its backend's import, the warm-up compiles)
        would take a core from that run and slow every page meanwhile; the run's worker starts its
        replacement when the run ends.

        Raises:
            OSError: a worker process could not be started.
        """
        device = detect_device()
        if warm_workers() and not (device == "cpu" and self._running_here(device)):
            self.fill_pool(device, configured_backend())

    def fill_pool(self, device: str, backend_name: str, submitting: bool = False) -> int:
        """Start workers until the pool of ``device`` and ``backend_name`` has what it needs: the
        ``warm_workers()`` waiting ones, and one per queued run the device could start at once (the
        run being submitted included). Returns how many started.

        Raises:
            OSError: a worker process could not be started.
        """
        started = 0
        while self.pool.size(device, backend_name) < (
            target := self.pool_target(device, backend_name, extra=int(submitting))
        ):
            process = self._start_worker(device, backend_name)
            if not self.pool.join(process.pid, device, backend_name, target):
                process.terminate()  # another process filled the pool meanwhile
                process.wait()
                break
            started += 1
        return started

    def pool_target(self, device: str, backend_name: str, idle: bool = False, extra: int = 0) -> int:
        """How many workers the pool needs: ``warm_workers()`` waiting ones (none once ``idle``), and
        one per queued run (and ``extra`` runs about to be queued) the device could start at once."""
        queued = self.queued_count(device, backend_name) + extra
        return max(0 if idle else warm_workers(), min(queued, runs_per_device(device)))

    def queued_count(self, device: str, backend_name: str) -> int:
        """How many runs wait on ``device`` for a worker of ``backend_name``."""
        return sum(
            run.status == "queued" and run.device == device and run.spec.backend == backend_name
            for run in self.store.active_runs()
        )

    def _running_here(self, device: str) -> int:
        return sum(
            run.status == "running" and run.device == device and self._ours(run)
            for run in self.store.active_runs()
        )

    def _start_worker(self, device: str, backend_name: str) -> subprocess.Popen:
        environment = {
            **os.environ,
            "ZOO_HOME": str(self.home),
            "ZOO_HOST": self.host,
            POOL_OWNER_VARIABLE: os.environ.get(POOL_OWNER_VARIABLE) or process_identity(os.getpid()),
            # This process's zoo package, wherever the caller stands (-P: not one in its working directory).
            "PYTHONPATH": os.pathsep.join(filter(None, (PACKAGE_PARENT, os.environ.get("PYTHONPATH")))),
            **worker_environment(backend_name, memory_fraction(device), gpu_memory_mb()),
        }
        if device == "cpu":
            environment["CUDA_VISIBLE_DEVICES"] = ""
        with (ensure_directory(self.home / "logs") / "workers.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", WORKER_MODULE, device, backend_name, self.store.url],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        logger.info(
            "worker %s started for the %s pool of %s on %s", process.pid, backend_name, device, self.host
        )
        return process

    # --- what it has, and how its runs are ----------------------------------------------------------

    def capacity(self) -> Capacity:
        """This host's device, its slots per lane, the runs training here and the workers waiting."""
        device = detect_device()
        ready = self.pool.ready(device)
        return Capacity(
            device=device,
            slots_per_lane=runs_per_device(device),
            running=self._running_here(device),
            waiting_workers=ready,
            starting_workers=len(self.pool.workers()) - ready,
        )

    def describe(self) -> ExecutorDescription:
        """This executor, its host and the device(s) it trains on, in words (nvidia-smi asked once)."""
        return ExecutorDescription(self.name, self.host, self._devices)

    @functools.cached_property
    def _devices(self) -> str:
        return describe_device()

    def worker_log(self, run: Run) -> str | None:
        """The file the run's worker writes its output to (it may not exist yet)."""
        return str(self.log_path(run.id))

    def log_path(self, run_id: str) -> Path:
        """Where the worker of a run writes its stdout and stderr (``log_path``)."""
        return log_path(self.home, run_id)

    def last_words(self, run_id: str) -> str | None:
        """The reason a run's worker gave for failing when the store could not record it: the last
        ``say_last_words`` line in the last 8 KiB of its log, or None."""
        try:
            with self.log_path(run_id).open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
                tail = log.read().decode(errors="replace")
        except OSError:
            return None
        said = [line for line in tail.splitlines() if line.startswith(LAST_WORDS_PREFIX)]
        return said[-1].removeprefix(LAST_WORDS_PREFIX) if said else None

    def liveness(self, run: Run, now: float | None = None) -> Liveness:
        """Judge an active run, without acting on it: a run of this host by its worker process, its
        last words and its heartbeat; a queued run by whether its pool has a worker for it; a run of
        another host (or another executor) by its heartbeat only."""
        now = time.time() if now is None else now
        if not run.is_active:
            return Liveness(ALIVE)
        if run.status == "queued":
            if not self._ours(run):
                return Liveness(UNKNOWN)
            waited = now - run.created_at > WORKER_START_TIMEOUT_SECONDS
            if waited and not self.pool.size(run.device, run.spec.backend):
                return Liveness(
                    DEAD,
                    f"no worker process took up the run within {WORKER_START_TIMEOUT_SECONDS:.0f} s of its "
                    "submission (the submitting process ended first); start the run again.",
                )
            return Liveness(ALIVE)
        pid = self._worker_pid(run)
        if pid is None:  # another host's, another executor's, or a worker this store did not record
            return heartbeat_verdict(run, self.heartbeat_timeout, now)
        said = self.last_words(run.id)
        if not process_alive(pid):
            return Liveness(
                DEAD,
                said
                or f"the worker process {pid} ended without finishing the run (killed, or out of memory); "
                "start the run again, with a smaller batch size if memory was short.",
            )
        if said:  # alive, and still trying to record its failure in a store that takes no writes
            return Liveness(DEAD, said)
        if is_silent(run, self.heartbeat_timeout, now):
            return Liveness(
                HUNG,
                f"the worker process {pid} stopped reporting for over {self.heartbeat_timeout:.0f} s; "
                "it was treated as hung and ended. Start the run again.",
            )
        return Liveness(ALIVE)

    def supervise(self) -> list[str]:
        """One sweep over the active runs: fail each one ``liveness`` finds dead or hung, after killing
        a hung worker's process group (this host's only). A store that takes no writes now leaves the
        run for the next sweep.

        Returns:
            The ids of the runs this sweep failed.

        Raises:
            StorageError: the run store cannot be read.
        """
        failed = []
        for run in self.store.active_runs():
            verdict = self.liveness(run)
            if not verdict.failed:
                continue
            if verdict.state == HUNG:
                self._end_worker(run)
            try:
                closed = self.store.finish(run.id, "failed", message=verdict.reason)
            except StorageError as error:
                logger.info("run %s could not be failed (%s): %s", run.id, verdict.reason, error)
                continue
            if closed:
                logger.info("run %s failed by supervision: %s", run.id, verdict.reason)
                failed.append(run.id)
        return failed

    def shutdown(self) -> None:
        """End every waiting worker of this host's pools (running runs are left alone)."""
        for pid in self.pool.workers():
            self.pool.leave(pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            logger.info("waiting worker %s ended", pid)

    def _ours(self, run: Run) -> bool:
        """Whether this executor on this host placed the run (a run recorded without a placement, or
        with no host, is taken as this host's: stores from before placements had one host)."""
        placement = run.placement
        return placement is None or (placement.executor == self.name and placement.host in (None, self.host))

    def _worker_pid(self, run: Run) -> int | None:
        """The process id of a running run's worker when it is this host's, else None."""
        worker = run.placement.worker if run.placement else None
        if not (self._ours(run) and worker and worker.isdigit()):
            return None
        return int(worker)

    def _end_worker(self, run: Run) -> None:
        """SIGKILL a hung worker (e.g. frozen by SIGSTOP) with its process group, but only while the pid
        is still a worker of this run store (``python -m zoo.execution.worker ... URL``), never a
        process that reused it, nor another host's."""
        pid = self._worker_pid(run)
        if pid is None:
            return
        arguments = command_line(pid)
        if WORKER_MODULE not in arguments or arguments[-1] != self.store.url:
            return
        kill_process_group(pid)
        logger.info("worker %s of run %s killed: silent for over %.0f s", pid, run.id, self.heartbeat_timeout)


def log_path(home: Path | str, run_id: str) -> Path:
    """``$ZOO_HOME/logs/RUN_ID.log``: where the worker of a run writes its stdout and stderr (on the
    machine it trains on)."""
    return Path(home) / "logs" / f"{run_id}.log"


def is_silent(run: Run, timeout: float, now: float) -> bool:
    """Whether a run's worker has not said it is alive for over ``timeout`` seconds."""
    return run.heartbeat_at is not None and now - run.heartbeat_at > timeout


def heartbeat_verdict(run: Run, timeout: float, now: float) -> Liveness:
    """A run of another host or executor, judged by its heartbeat only: dead once it has been silent for
    ``timeout`` seconds, else not this executor's to judge (no process of another host is signalled)."""
    if not is_silent(run, timeout, now):
        return Liveness(UNKNOWN)
    where = f" on {run.placement.host}" if run.placement and run.placement.host else ""
    return Liveness(
        DEAD, f"its worker{where} stopped reporting for over {timeout:.0f} s; start the run again."
    )


def pool_owner_alive() -> bool:
    """Whether the process that wanted this worker's pool (``ZOO_POOL_OWNER``) still runs; True in a
    process that was not started as a pool worker."""
    owner = os.environ.get(POOL_OWNER_VARIABLE)
    if not owner:
        return True
    pid = int(owner.split(":")[0])
    return process_alive(pid) and process_identity(pid) == owner
