"""The Ray executor (``ZOO_EXECUTOR=ray``): runs train in warm Ray actors that a Ray cluster places
by its resources, on any of its machines.

The cluster is the one ``RAY_ADDRESS`` names (Ray's own setting: ``ray start --head`` prints it; in
Kubernetes, KubeRay's head service); without it the first process that needs it starts a local one
of its own. Ray is an optional install: ``pip install -r requirements-ray.txt``.

An actor (``RunActor``) is the local pool's worker process made a Ray actor: it starts warm (imports
its Keras backend, holds it to its share of GPU memory, loads the data, compiles the default model of
its lane), waits, takes the one run it was given (``RunStore.claim``), trains it as any worker does
(``worker.train_run``: metrics, events and the model go to the run store and the model store) and
exits. So one run's crash or out-of-memory ends that run only, and the next run starts in a fresh
process that never saw its weights, optimizer or memory.

What a run asks of the cluster (Ray places actors by it; a run waits ``queued`` while nothing fits):
a CNN run on a GPU ``1 / ZOO_RUNS_PER_DEVICE`` of one GPU and no CPU, and its framework is held to
that share of the GPU's memory (Ray's fractions are bookkeeping only); a CNN run on a cluster without
GPUs one CPU; a Playground run (its own lane, on a CPU) nothing, so it never waits behind CNN runs.

The process that submits (an app server, the CLI) keeps ``ZOO_WARM_WORKERS`` warm actors per lane
waiting; ``submit`` records the run queued with the actor it hands it to, and starts a replacement.
Actors belong to that process (Ray ends them with it); they are named, so supervision in any process
connected to the cluster judges a run from the cluster itself: the node it trains on has left (the
run fails with that reason), its actor is gone, or its heartbeat has stopped (the actor is killed); a
stop that is not honoured within ``STOP_GRACE_SECONDS`` is enforced by killing the actor.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError

from zoo.core.errors import RunError, StorageError
from zoo.core.hosting import User
from zoo.core.logs import chosen_level, configure_logging
from zoo.core.paths import zoo_home
from zoo.core.settings import log_level, shared_variables
from zoo.core.spec import TrainSpec
from zoo.execution.devices import GPU_MEMORY_SHARED, gpu_memory_mb, runs_per_device
from zoo.execution.local import (
    HEARTBEAT_TIMEOUT_SECONDS,
    PACKAGE_PARENT,
    heartbeat_verdict,
    is_silent,
    log_path,
    warm_workers,
)
from zoo.execution.records import ALIVE, DEAD, HUNG, AdmittedRun, Capacity, ExecutorDescription, Liveness
from zoo.execution.reporter import patiently
from zoo.ml.backend import worker_environment
from zoo.runs.records import Placement, Run, lane_of
from zoo.runs.store import RunStore, open_run_store

EXECUTOR_NAME = "ray"
NAMESPACE = "zoo-studio"  # the actors' names live here, so any process on the cluster finds them
STOP_GRACE_SECONDS = 30.0  # a run asked to stop that still trains this long after is ended by Ray
CONNECT_SECONDS = 3.0  # for the cluster's head to accept a connection
ACTOR_NAMED_SECONDS = 10.0  # a run is recorded with its actor's name just before the actor is made
LANE_SPECS = {"main": TrainSpec.cnn(), "playground": TrainSpec.binary()}  # what a lane's actors compile
NODE_LEFT = (
    "the machine training it left the cluster (Ray node {node}); start the run again: the cluster "
    "places it on a machine that is there."
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActorKind:
    """The actors of one lane of one device and backend: what each asks of the cluster."""

    device: str  # cpu or gpu
    backend: str
    lane: str  # main or playground (zoo.runs.records.LANES)
    gpu_share: float = 0.0  # of one GPU: 1 / ZOO_RUNS_PER_DEVICE as the submitting process reads it

    @classmethod
    def of(cls, device: str, backend: str, lane: str) -> ActorKind:
        """The kind for a lane of a device; a GPU's share as this process counts runs per GPU."""
        return cls(device, backend, lane, 1 / runs_per_device("gpu") if device == "gpu" else 0.0)

    def resources(self) -> dict[str, float]:
        """Ray's ``num_cpus`` and ``num_gpus`` for one actor (one run)."""
        if self.lane == "playground":
            return {"num_cpus": 0, "num_gpus": 0}
        if self.device == "gpu":
            return {"num_cpus": 0, "num_gpus": self.gpu_share}
        return {"num_cpus": 1, "num_gpus": 0}

    def memory_fraction(self) -> float | None:
        """The share of its GPU's memory the actor's framework may take (None on a CPU): the share of
        the GPU it asked, of the memory runs share (the driver keeps the rest)."""
        return GPU_MEMORY_SHARED * self.gpu_share if self.device == "gpu" else None

    def environment(self, home: str) -> dict[str, str]:
        """The actor process's variables: this process's settings (no secrets), its zoo package, and
        on a CPU no GPU (Ray gives a GPU actor its ``CUDA_VISIBLE_DEVICES``)."""
        variables = {
            **shared_variables(),
            "ZOO_HOME": home,
            "PYTHONPATH": os.pathsep.join(filter(None, (PACKAGE_PARENT, os.environ.get("PYTHONPATH")))),
        }
        if self.device == "cpu":
            variables["CUDA_VISIBLE_DEVICES"] = ""
        return variables


@dataclass
class _Waiting:
    """A warm actor of this process: its handle, its name, and the answer of its start-up."""

    handle: ray.actor.ActorHandle
    name: str
    started: ray.ObjectRef  # ready when its backend, data and model are loaded (or its start failed)


class RunActor:
    """A Ray actor that trains one run (see the module's docstring); made remote by ``_actor_class``."""

    def __init__(self, kind: ActorKind, store_url: str) -> None:
        from zoo.execution.worker import load_backend
        from zoo.ml import training

        fraction = kind.memory_fraction()
        os.environ.update(worker_environment(kind.backend, fraction, gpu_memory_mb() if fraction else 0))
        configure_logging(chosen_level(log_level(), "info"))
        self.kind = kind
        self.store = open_run_store(store_url)
        load_backend()
        self.prepared = training.warm_up((LANE_SPECS[kind.lane],))
        context = ray.get_runtime_context()
        self.node = f"{ray.util.get_node_ip_address()}/{context.get_node_id()[:16]}"
        self.name = context.get_actor_name()

    def started(self) -> str:
        """The node this actor waits on, once it is warm."""
        return self.node

    def train(self, run_id: str) -> None:
        """Take the run up, train it, close it; then this actor ends. A run stopped while it waited is
        left as it is."""
        from zoo.execution.worker import train_run, write_output_to

        placement = Placement(EXECUTOR_NAME, self.node, self.name, self.kind.device)
        run = patiently(lambda: self.store.claim(run_id, placement))
        if run is not None:
            logger.info("actor %s on %s trains run %s", self.name, self.node, run_id)
            write_output_to(log_path(zoo_home(), run_id))
            train_run(run, self.store, None, self.prepared)
        ray.actor.exit_actor()


def _check_reachable(address: str | None) -> None:
    """Refuse at once a ``host:port`` where nothing answers (``ray.init`` would wait for it for
    minutes); ``auto``, ``ray://`` and no address are Ray's to resolve.

    Raises:
        OSError: nothing accepts a connection there within ``CONNECT_SECONDS``.
    """
    host, colon, port = (address or "").rpartition(":")
    if colon and port.isdigit() and "://" not in host:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()


def _actor_name(kind: ActorKind) -> str:
    return f"zoo-{kind.lane}-{uuid.uuid4().hex[:12]}"


@functools.cache
def _actor_class() -> Any:
    """``RunActor`` as a Ray actor class: never restarted (a run's actor that died stays dead)."""
    return ray.remote(max_restarts=0)(RunActor)


class RayExecutor:
    """Runs train in warm actors on a Ray cluster (see the module's docstring).

    Args:
        store: the run store its actors claim runs from and report to (PostgreSQL in a cluster).
        heartbeat_timeout: how long a running run's actor may stay silent before it is hung.
        stop_grace: how long a run asked to stop may go on before its actor is killed.
    """

    name = EXECUTOR_NAME

    def __init__(
        self,
        store: RunStore,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT_SECONDS,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.store = store
        self.heartbeat_timeout = heartbeat_timeout
        self.stop_grace = stop_grace
        self.home = str(zoo_home())
        self._waiting: dict[ActorKind, list[_Waiting]] = {}
        self._training: dict[str, ray.ObjectRef] = {}  # this process's runs, until their actor ends
        self._stops_seen: dict[str, float] = {}  # when supervision first saw a run's stop request
        self._lock = threading.RLock()  # an app server's sessions and its supervision thread share it

    # --- the cluster ----------------------------------------------------------------------------------

    @staticmethod
    def address() -> str:
        """The cluster's address in words: ``RAY_ADDRESS``, or a local cluster of this process."""
        return os.environ.get("RAY_ADDRESS") or "a local Ray cluster started by this process"

    def connect(self) -> None:
        """Join the cluster (``RAY_ADDRESS``; else start a local one), once per process.

        Raises:
            RunError: the cluster cannot be reached or started (one line with the fix).
        """
        if ray.is_initialized():
            return
        try:
            _check_reachable(os.environ.get("RAY_ADDRESS"))
            logging.getLogger("ray").setLevel(logging.WARNING)  # not its "connecting to ..." lines
            ray.init(namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
        except (OSError, RuntimeError, ValueError) as error:  # ConnectionError is an OSError
            raise RunError(
                f"the Ray cluster at {self.address()} cannot be reached ({error}); start it "
                "(ray start --head) or set RAY_ADDRESS to its address, host:port."
            ) from error

    def _connected(self) -> bool:
        """Whether this process is on the cluster, joining it when ``RAY_ADDRESS`` names one (without it,
        a process that started no cluster has none to look at).

        Raises:
            RunError: the cluster ``RAY_ADDRESS`` names cannot be reached.
        """
        if not ray.is_initialized() and os.environ.get("RAY_ADDRESS"):
            self.connect()
        return ray.is_initialized()

    def _on_cluster(self) -> bool:
        """``_connected``, with a cluster out of reach taken as none: supervision then judges runs by
        their heartbeats, as another host's."""
        try:
            return self._connected()
        except RunError as error:
            logger.info("supervision without the cluster: %s", error)
            return False

    @staticmethod
    def _alive_nodes() -> set[str]:
        return {node["NodeID"][:16] for node in ray.nodes() if node["Alive"]}

    def cluster_device(self) -> str:
        """``gpu`` when the cluster has GPUs, else ``cpu``: where CNN runs train."""
        self.connect()
        return "gpu" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"

    # --- starting runs ----------------------------------------------------------------------------------

    def kind_of(self, admitted: AdmittedRun) -> ActorKind:
        """The actors a run takes: its lane's, on the cluster's device (a Playground run or a run asked
        for the CPU: the CPU)."""
        lane = lane_of(admitted.spec.kind)
        on_cpu = lane == "playground" or admitted.spec.device == "cpu"
        return ActorKind.of("cpu" if on_cpu else self.cluster_device(), admitted.spec.backend, lane)

    def submit(self, admitted: AdmittedRun) -> str:
        """Hand the run to a warm actor of its kind (a new one when none waits: the run is queued until
        the cluster has room for it), record it queued, and start the actor's replacement.

        Raises:
            RunError: the cluster cannot be reached (nothing is recorded).
            PermissionDenied: the owner or the host has as many live runs as the limits allow.
        """
        self.connect()
        kind = self.kind_of(admitted)
        with self._lock:
            actor = self._take(kind)  # None: none waits, one is started for this run once it is recorded
            name = actor.name if actor else _actor_name(kind)
            try:
                run_id = self.store.create_run(
                    admitted.spec,
                    kind.device,
                    owner=admitted.owner,
                    limits=admitted.limits,
                    placement=Placement(self.name, None, name, kind.device),
                )
            except BaseException:
                if actor:
                    self._waiting[kind].insert(0, actor)  # still warm, and free
                raise
            actor = actor or self._start_actor(kind, name)
            self._training[run_id] = actor.handle.train.remote(run_id)
            self._fill(kind)
        return run_id

    def _take(self, kind: ActorKind) -> _Waiting | None:
        """A waiting actor of ``kind``, a warm one first; None when none waits."""
        waiting = self._waiting.setdefault(kind, [])
        ready, _ = ray.wait([actor.started for actor in waiting], num_returns=len(waiting), timeout=0)
        for actor in waiting:
            if actor.started in ready:
                waiting.remove(actor)
                return actor
        return waiting.pop(0) if waiting else None

    def _start_actor(self, kind: ActorKind, name: str | None = None) -> _Waiting:
        name = name or _actor_name(kind)
        handle = (
            _actor_class()
            .options(
                name=name,
                namespace=NAMESPACE,
                runtime_env={"env_vars": kind.environment(self.home)},
                **kind.resources(),
            )
            .remote(kind, self.store.url)
        )
        logger.info("actor %s started for the %s lane (%s, %s)", name, kind.lane, kind.device, kind.backend)
        return _Waiting(handle, name, handle.started.remote())

    def _fill(self, kind: ActorKind) -> None:
        """Start actors of ``kind`` until ``ZOO_WARM_WORKERS`` wait (Ray starts each one when the
        cluster has room for it)."""
        waiting = self._waiting.setdefault(kind, [])
        while len(waiting) < warm_workers():
            waiting.append(self._start_actor(kind))

    def stop(self, run_id: str, *, by: User) -> Run:
        """Ask a run to stop (its actor stops after its current batch; a queued run stops at once; one
        still training ``stop_grace`` seconds later is ended by supervision).

        Raises:
            RunError: there is no run with that id.
            PermissionDenied: ``by`` is neither the run's owner nor an admin.
        """
        return self.store.request_stop(run_id, by=by)

    def keep_warm(self) -> None:
        """Make sure warm actors wait for the next CNN and Playground run of this process's backend."""
        from zoo.core.spec import configured_backend

        device, backend = self.cluster_device(), configured_backend()
        with self._lock:
            for lane in LANE_SPECS:
                self._fill(ActorKind.of("cpu" if lane == "playground" else device, backend, lane))

    # --- what it has, and how its runs are ---------------------------------------------------------------

    def capacity(self) -> Capacity:
        """The cluster's device, its CNN slots (GPU shares, or CPUs), runs training on it, and this
        process's warm actors."""
        device = self.cluster_device()
        total = ray.cluster_resources()
        slots = total.get("GPU", 0) * runs_per_device("gpu") if device == "gpu" else total.get("CPU", 0)
        with self._lock:
            actors = [actor for waiting in self._waiting.values() for actor in waiting]
            ready, _ = ray.wait([actor.started for actor in actors], num_returns=len(actors), timeout=0)
        return Capacity(
            device=device,
            slots_per_lane=int(slots),
            running=sum(run.status == "running" and self._ours(run) for run in self.store.active_runs()),
            waiting_workers=len(ready),
            starting_workers=len(actors) - len(ready),
        )

    def describe(self) -> ExecutorDescription:
        """The cluster in words: its nodes, GPUs and CPUs, and its CNN slots, how many are free (a
        process without ``RAY_ADDRESS`` that has not started its cluster yet says so, and starts none).

        Raises:
            RunError: the cluster ``RAY_ADDRESS`` names cannot be reached.
        """
        if not self._connected():
            devices = "a local Ray cluster of its own, started by each app server or command that trains"
            return ExecutorDescription(self.name, "no RAY_ADDRESS", devices)
        capacity = self.capacity()
        training = sum(
            run.status == "running" and self._ours(run) and lane_of(run.kind) == "main"
            for run in self.store.active_runs()
        )
        nodes = sum(node["Alive"] for node in ray.nodes())
        total = ray.cluster_resources()
        devices = (
            f"Ray cluster: {nodes} node(s), {total.get('GPU', 0):g} GPU(s), {total.get('CPU', 0):g} CPU(s); "
            f"CNN slots: {max(0, capacity.slots_per_lane - training)} free of {capacity.slots_per_lane}"
        )
        return ExecutorDescription(self.name, self.address(), devices)

    def worker_log(self, run: Run) -> str | None:
        """Where the run's actor writes its output, on the node it trains on."""
        node = run.placement.host if run.placement else None
        return f"{log_path(self.home, run.id)} on Ray node {node}" if node else None

    def liveness(self, run: Run, now: float | None = None, alive_nodes: set[str] | None = None) -> Liveness:
        """Judge an active run from the cluster: its node gone, its actor gone, its heartbeat silent.

        Args:
            alive_nodes: the cluster's live nodes when the caller has just asked (a sweep asks once).
        """
        now = time.time() if now is None else now
        if not self._ours(run):
            return heartbeat_verdict(run, self.heartbeat_timeout, now)
        if not self._on_cluster():  # another process's local cluster, or none reachable: heartbeats tell
            return heartbeat_verdict(run, self.heartbeat_timeout, now)
        placement = run.placement
        assert placement is not None and placement.worker is not None  # _ours
        node = (placement.host or "").rpartition("/")[2]
        if alive_nodes is None:
            alive_nodes = self._alive_nodes()
        if run.status == "running" and node not in alive_nodes:
            return Liveness(DEAD, NODE_LEFT.format(node=placement.host))
        if self._actor(placement.worker) is None:
            if run.status == "queued" and now - run.created_at < ACTOR_NAMED_SECONDS:
                return Liveness(ALIVE)  # recorded, its actor being made this moment
            if run.status == "queued":
                return Liveness(
                    DEAD,
                    f"the Ray actor {placement.worker} meant for it ended before it took the run up (its "
                    "start failed, or the process that submitted it ended); start the run again.",
                )
            return Liveness(
                DEAD,
                f"its Ray actor {placement.worker} on {placement.host} ended without finishing the run "
                "(killed, or out of memory); start the run again, with a smaller batch size if memory "
                "was short.",
            )
        if run.status == "running" and is_silent(run, self.heartbeat_timeout, now):
            return Liveness(
                HUNG,
                f"its Ray actor {placement.worker} stopped reporting for over "
                f"{self.heartbeat_timeout:.0f} s; it was treated as hung and ended. Start the run again.",
            )
        return Liveness(ALIVE)

    def supervise(self) -> list[str]:
        """One sweep: fail the active runs ``liveness`` finds dead or hung (killing a hung actor), end
        those that did not stop within ``stop_grace`` of the request, and refill the warm actors.

        Returns:
            The ids of the runs this sweep ended.

        Raises:
            StorageError: the run store cannot be read.
        """
        ended = []
        now = time.time()
        runs = self.store.active_runs()
        alive_nodes = self._alive_nodes() if runs and self._on_cluster() else set()
        for run in runs:
            verdict = self.liveness(run, now, alive_nodes)
            if verdict.failed:
                if verdict.state == HUNG:
                    self._kill(run)
                if self._close(run, "failed", verdict.reason):
                    ended.append(run.id)
            elif run.stop_requested and run.status == "running" and self._ours(run) and ray.is_initialized():
                asked = self._stops_seen.setdefault(run.id, now)
                if now - asked > self.stop_grace:
                    self._kill(run)
                    reason = (
                        f"it did not stop within {self.stop_grace:.0f} s of the request, so Ray ended its "
                        "actor; no model was saved."
                    )
                    if self._close(run, "stopped", reason):
                        ended.append(run.id)
        if ray.is_initialized():
            self._collect()
        return ended

    def _close(self, run: Run, status: str, reason: str | None) -> bool:
        try:
            closed = self.store.finish(run.id, status, message=reason)
        except StorageError as error:  # the next sweep tries again
            logger.info("run %s could not be closed (%s): %s", run.id, reason, error)
            return False
        if closed:
            logger.info("run %s %s by supervision: %s", run.id, status, reason)
            self._stops_seen.pop(run.id, None)
        return closed

    def _collect(self) -> None:
        """Forget this process's actors that ended (their answers read, so Ray reports no unread error)
        and refill the warm ones of each kind (a node that left took some with it)."""
        with self._lock:
            finished, _ = ray.wait(list(self._training.values()), num_returns=len(self._training), timeout=0)
            for run_id, answer in list(self._training.items()):
                if answer in finished:
                    del self._training[run_id]
                    with contextlib.suppress(RayError):  # the actor exits after its run: that is its end
                        ray.get(answer)
            for kind, waiting in self._waiting.items():
                ended, _ = ray.wait([actor.started for actor in waiting], num_returns=len(waiting), timeout=0)
                for actor in [actor for actor in waiting if actor.started in ended]:
                    try:
                        ray.get(actor.started)
                    except RayError as error:
                        logger.info("waiting actor %s ended: %s", actor.name, str(error).splitlines()[0])
                        waiting.remove(actor)
                self._fill(kind)

    def _ours(self, run: Run) -> bool:
        """Whether this executor placed the run (on any process of any cluster: its actor is named)."""
        return (
            run.placement is not None and run.placement.executor == self.name and bool(run.placement.worker)
        )

    @staticmethod
    def _actor(name: str) -> ray.actor.ActorHandle | None:
        try:
            return ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # no live actor has that name
            return None

    def _kill(self, run: Run) -> None:
        """Kill a run's actor (its process ends; Ray frees its share of the node)."""
        name = run.placement.worker if run.placement else None
        actor = self._actor(name) if name else None
        if actor is not None:
            ray.kill(actor, no_restart=True)
            logger.info("actor %s of run %s killed", name, run.id)

    def shutdown(self) -> None:
        """End this process's waiting actors (actors training runs are left alone)."""
        with self._lock:
            for waiting in self._waiting.values():
                for actor in waiting:
                    ray.kill(actor.handle, no_restart=True)
            self._waiting.clear()
