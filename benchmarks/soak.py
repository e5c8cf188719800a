"""Soak: many small runs against one run store, with random stops, kills, freezes and bad submissions.

Real worker processes (``zoo.execution.admission.start`` and the local executor's warm pool) train
tiny binary classifiers on one device, a few submitted at a time. At random moments the soak asks a
run to stop, SIGKILLs its worker, or freezes it (SIGSTOP; the soak's supervisor judges a worker hung
after FROZEN_SECONDS of silence, not the product's 120 s) so supervision ends it; between runs it
submits bad specs that must be refused before any run exists. Afterwards it
checks what a user relies on:

- no run is left "running" or "queued", and no worker process is left alive;
- every model directory in the local zoo is whole (it loads), and every completed or stopped run
  that saved a model has it;
- every run's metrics are complete up to its end: one epoch row per epoch it finished, steps that
  only go forward, and a completed run's last step is its total.

    python benchmarks/soak.py --runs 200 --seed 0

Prints a table and exits 1 when a check fails. Every loop is bounded (``--deadline-minutes``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ACTIONS = ("complete", "stop", "kill", "freeze")
ACTION_WEIGHTS = (50, 20, 22, 8)
BAD_SUBMISSION_RATE = 0.15
ACTIVE_AT_ONCE = 3
FROZEN_SECONDS = 20.0  # a running worker silent this long is hung (it beats every second)


def bad_submissions(home: Path) -> list[tuple[str, dict]]:
    """(what, TrainSpec overrides) pairs that admission must refuse before a run exists."""
    text_file = home / "notes.npz"
    text_file.write_text("not an archive of arrays\n")
    return [
        ("zero epochs", {"kind": "binary", "num_epochs": 0}),
        ("negative learning rate", {"kind": "binary", "learning_rate": -1.0}),
        ("empty data path", {"kind": "cnn", "mnist_source": ""}),
        ("missing data file", {"kind": "cnn", "mnist_source": str(home / "nowhere" / "mnist.npz")}),
        ("text file named .npz", {"kind": "cnn", "mnist_source": str(text_file)}),
        ("data path is a directory", {"kind": "cnn", "mnist_source": str(home)}),
    ]


def submit_bad(executor, what: str, overrides: dict) -> bool:
    """Whether the bad submission was refused with a ZooError and left no run behind."""
    from zoo.core.errors import ZooError
    from zoo.core.hosting import LOCAL_USER
    from zoo.core.spec import TrainSpec
    from zoo.execution.admission import start

    store = executor.store

    before = len(store.list_runs(limit=100_000))
    kind = overrides.pop("kind")
    try:
        spec = (TrainSpec.cnn if kind == "cnn" else TrainSpec.binary)(**overrides)
        start(spec, by=LOCAL_USER, executor=executor)
    except ZooError:
        return len(store.list_runs(limit=100_000)) == before
    finally:
        overrides["kind"] = kind
    print(f"  NOT refused: {what}", file=sys.stderr)
    return False


def disturb(store, run_id: str, action: str) -> bool:
    """Stop, kill or freeze a run's worker; False while a kill or freeze must wait for the run to have
    a worker (a queued run waits for the pool). A run that already ended is left alone."""
    from zoo.core.hosting import LOCAL_USER

    run = store.get(run_id)
    if not run.is_active:
        return True
    if action == "stop":
        store.request_stop(run_id, by=LOCAL_USER)
        return True
    pid = worker_pid(run)
    if run.status != "running" or pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        if action == "kill":
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGSTOP)
    return True


def worker_pid(run) -> int | None:
    """The pid of the local worker that claimed a run (None while queued)."""
    return int(run.placement.worker) if run.placement and run.placement.worker else None


def metrics_problems(store, run) -> list[str]:
    """What is missing or out of order in a finished run's metric stream."""
    from zoo.app.charts.training import metrics_frame

    frame = metrics_frame(store.metrics_since(run.id).rows)
    problems = []
    steps = frame.groupby("id")["step"].first().to_numpy()
    if len(steps) and np.any(np.diff(steps) < 0):
        problems.append("steps go backwards")
    epochs_done = sorted(set(frame.loc[frame["name"] == "epoch/loss", "epoch"]))
    reached = run.progress.epoch if run.progress else 0
    last_step = int(frame["step"].max()) if len(frame) else 0
    if run.status in ("completed", "stopped"):
        expected = list(range(1, reached + 1))
        if epochs_done != expected:
            problems.append(f"{run.status}: epoch rows {epochs_done}, expected {expected}")
        if run.progress and last_step != run.progress.step:
            problems.append(f"last metric step {last_step}, progress says {run.progress.step}")
    if run.status == "completed" and run.progress:
        if last_step != run.progress.total_steps or reached != run.spec.num_epochs:
            problems.append(f"completed at step {last_step} of {run.progress.total_steps}")
        if run.final_metrics is None:
            problems.append("completed without a test accuracy")
    # failed (killed mid-epoch): every epoch before the one it died in has its row
    gapless = epochs_done == list(range(1, len(epochs_done) + 1))
    if run.status == "failed" and (not gapless or (reached and len(epochs_done) < reached - 1)):
        problems.append(f"failed: epoch rows {epochs_done} for {reached} epoch(s) reached")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs to submit (bad submissions come on top)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deadline-minutes", type=float, default=90.0, help="stop submitting after this")
    parser.add_argument("--home", help="ZOO_HOME to use (default: a new temporary directory)")
    options = parser.parse_args()
    home = Path(options.home or tempfile.mkdtemp(prefix="zoo-soak-"))
    os.environ["ZOO_HOME"] = str(home)
    os.environ.pop("ZOO_MNIST", None)

    from zoo.core.hosting import LOCAL_USER
    from zoo.core.spec import TrainSpec
    from zoo.execution.admission import start
    from zoo.execution.local import LocalExecutor
    from zoo.execution.processes import process_alive
    from zoo.execution.supervisor import Supervisor
    from zoo.runs.store import open_run_store
    from zoo.storage.models import ModelStore

    rng = random.Random(options.seed)
    # A frozen worker is judged hung after FROZEN_SECONDS of silence (not the product's 120 s), by this
    # process's supervisor, as the app server's would.
    executor = LocalExecutor(open_run_store(), heartbeat_timeout=FROZEN_SECONDS)
    store = executor.store
    supervisor = Supervisor()
    supervisor.watch(executor)
    bad = bad_submissions(home)
    actions: dict[str, str] = {}
    due: list[tuple[float, str]] = []  # (monotonic time, run id) of disturbances still to come
    refused = collections.Counter()
    started = time.monotonic()
    deadline = started + options.deadline_minutes * 60
    print(f"soak: {options.runs} runs against {store.describe().location} (seed {options.seed})", flush=True)
    while (len(actions) < options.runs or store.active_runs()) and time.monotonic() < deadline:
        now = time.monotonic()
        for moment, run_id in [item for item in due if item[0] <= now]:
            due.remove((moment, run_id))
            if not disturb(store, run_id, actions[run_id]):
                due.append((now + rng.uniform(0.2, 2.0), run_id))  # once it runs, at a random moment
        if len(actions) < options.runs and len(store.active_runs()) < ACTIVE_AT_ONCE:
            if rng.random() < BAD_SUBMISSION_RATE:
                what, overrides = rng.choice(bad)
                refused[what if submit_bad(executor, what, overrides) else f"NOT REFUSED: {what}"] += 1
                continue
            spec = TrainSpec.binary(
                num_epochs=rng.randint(2, 6),
                num_samples=rng.choice([120, 400, 800]),
                seed=len(actions),
                model_name=f"soak-{len(actions)}",
            )
            run_id = start(spec, by=LOCAL_USER, executor=executor)
            actions[run_id] = rng.choices(ACTIONS, ACTION_WEIGHTS)[0]
            if actions[run_id] != "complete":
                due.append((now + rng.uniform(0.2, 6.0), run_id))
            if len(actions) % 20 == 0:
                print(f"  {len(actions)} runs submitted, {time.monotonic() - started:.0f} s", flush=True)
        time.sleep(0.2)
    soak_seconds = time.monotonic() - started

    settle = time.monotonic() + 180  # the last runs end, and the supervisor fails the killed and frozen ones
    while store.active_runs() and time.monotonic() < settle:
        time.sleep(0.5)
    supervisor.stop()
    pool = executor.pool.workers()
    executor.shutdown()  # the warm workers still waiting for a run
    ended = time.monotonic() + 30
    while any(map(process_alive, pool)) and time.monotonic() < ended:
        time.sleep(0.2)
    runs = store.list_runs(limit=100_000)
    workers = [pid for run in runs if (pid := worker_pid(run))]
    while any(map(process_alive, workers)) and time.monotonic() < ended:  # closing a run, then exiting
        time.sleep(0.2)
    failures: list[str] = []
    left_active = [run.id for run in runs if run.is_active]
    if left_active:
        failures.append(f"runs left active: {left_active}")
    alive = [pid for pid in workers if process_alive(pid)]
    if alive:
        failures.append(f"worker processes left alive: {alive}")
    if len(runs) != len(actions):
        failures.append(f"{len(runs)} runs in the store for {len(actions)} submitted")
    if any(key.startswith("NOT REFUSED") for key in refused):
        failures.append(f"bad submissions accepted: {dict(refused)}")

    models = ModelStore()
    names_by_run = models.names_by_run()
    whole = 0
    for entry in models.entries():
        try:
            models.load(entry.name)
            whole += 1
        except Exception as error:  # a half-written model is exactly what this looks for
            failures.append(f"model {entry.name} does not load: {error}")
    for run in runs:
        saved = run.status == "completed" or (run.status == "stopped" and run.started_at is not None)
        if run.model_name and saved and run.id not in names_by_run:
            failures.append(f"run {run.id} ({run.status}) names model {run.model_name} that is not there")
        failures.extend(f"run {run.id}: {problem}" for problem in metrics_problems(store, run))
    debris = [path.name for path in models.storage.root.iterdir() if path.name.startswith(".tmp-")]

    by_action = collections.Counter((actions.get(run.id, "?"), run.status) for run in runs)
    where = store.describe().location
    print(f"\nsoak finished in {soak_seconds:.0f} s ({os.cpu_count()} CPU cores), store {where}")
    print(f"{'disturbance':<12} {'ended as':<10} {'runs':>5}")
    for (action, status), count in sorted(by_action.items()):
        print(f"{action:<12} {status:<10} {count:>5}")
    print(f"bad submissions refused before a run existed: {sum(refused.values())} {dict(refused)}")
    print(
        f"models in the local zoo: {whole} whole; temporary directories left by killed saves: {len(debris)}"
    )
    print(f"runs left running or queued: {len(left_active)}; worker processes left alive: {len(alive)}")
    if time.monotonic() >= deadline:
        failures.append(f"deadline of {options.deadline_minutes} min reached after {len(actions)} runs")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
