"""Fault and bad-input cases against the real CLI (issue 21), grouped as the issue groups them.

Each case runs ``python -m zoo ...`` (a few run a short Python script or hold a lock themselves) in
a fresh ZOO_HOME, with a time bound, and **holds** when:

- it exits as expected within its bound: 0, or non-zero for what must be refused;
- a refusal is one line on stderr, ``error: ...``, holding the words the case expects, and no
  traceback (``doctor`` prints its checks on stdout: there the expected ``FAIL`` line);
- nothing is lost: the models, digits and runs the case's ZOO_HOME held before are still there
  after a refusal, plus the case's own check (e.g. both models of a race kept, memory within bound).

It prints one line per case, then per group how many cases were tried and how many held, and exits 1
when one did not hold. Issue 21's items 1-6 are fixed on other branches: until they are merged,
their cases (marked with the item) may not hold, and the table says so.

    python benchmarks/faults.py                  # every case (about 15 minutes on 2 busy cores)
    python benchmarks/faults.py --group hangs    # one group; --list shows the cases and groups
    python benchmarks/faults.py -k symlink       # the cases whose name holds "symlink"

It needs nothing beside the repository: the embedded digits, the shipped starter, a loopback Hub
(tests/hub_server.py) and misbehaving Hubs of its own on 127.0.0.1. A full disk is a small tmpfs
and a read-only ZOO_HOME is ``chattr +i`` (root is not stopped by chmod): those cases need root and
count as not tried without it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "tests"))  # the loopback Hub of the tests

GROUPS = (
    "data loss and limits",
    "hangs",
    "one line, the right cause",
    "store locks and doctor",
    "bad input: names, values, files",
)
HUB_TIMEOUT = 5  # ZOO_HUB_TIMEOUT for the Hub cases
START_SECONDS = 15  # what Python, Keras and TensorFlow take to start here, added to a case's own bound
MEMORY_BOUND_MB = 1_500  # a small model file's load (TensorFlow itself takes ~700 MB here)
TOKEN = "hf_test_alice_write_0123456789"  # tests/hub_server.py's write token (user alice)


@dataclass
class Context:
    """What a case works in: its fresh ZOO_HOME, a scratch directory and the environment of its commands."""

    home: Path
    scratch: Path
    environment: dict[str, str]
    hub_url: str
    notes: list[str] = field(default_factory=list)  # what a case's own check found

    def with_environment(self, **overrides: str) -> dict[str, str]:
        return {**self.environment, **overrides}


@dataclass(frozen=True)
class Outcome:
    """How one command ended: exit status (None: killed at its bound), output, seconds, peak memory."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


@dataclass(frozen=True)
class Case:
    """One fault or bad input. ``expect``: ``ok`` (exit 0), ``refused`` (one error line), ``doctor``
    (exit 1 with the ``FAIL  says[0]:`` line), or ``custom`` (``run`` judges it)."""

    group: str
    name: str
    arguments: tuple[str, ...] = ()
    expect: str = "refused"
    says: tuple[str, ...] = ()
    seconds: float = 30
    item: int | None = None  # issue 21's item the case reproduces
    prepare: Callable[[Context], None] | None = None
    check: Callable[[Context], str | None] | None = None  # what went wrong, or None
    environment: dict[str, str] = field(default_factory=dict)
    run: Callable[[Context], str | None] | None = None  # a custom case: what went wrong, or None
    root: bool = False  # needs root (a tmpfs, chattr)
    read_only: bool = False  # ZOO_HOME made unwritable after ``prepare``
    full_disk_mb: int | None = None  # ZOO_HOME is a tmpfs of this size, filled after ``prepare``
    memory_mb: float | None = None  # the command's peak memory must stay under this


# --- running commands -----------------------------------------------------------------------------


def run_command(
    command: list[str], environment: dict[str, str], seconds: float, cwd: Path = REPOSITORY
) -> Outcome:
    """Run a command in its own process group, killed with its group at ``seconds``; its peak memory is
    the largest resident set of it and the children it waited for (``wait4``)."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=cwd, env=environment, stdout=stdout, stderr=stderr, start_new_session=True
        )
        returncode, usage = None, None
        while time.monotonic() - started < seconds:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        if returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _, _, usage = os.wait4(process.pid, 0)
        process.returncode = returncode if returncode is not None else -9  # reaped here, not by Popen
        stdout.seek(0)
        stderr.seek(0)
        return Outcome(
            returncode,
            stdout.read().decode(errors="replace"),
            stderr.read().decode(errors="replace"),
            elapsed,
            usage.ru_maxrss / 1024 if usage else 0.0,
        )


def zoo(context: Context, *arguments: str, seconds: float = 120, **environment: str) -> Outcome:
    return run_command(
        [sys.executable, "-m", "zoo", *arguments], context.with_environment(**environment), seconds
    )


def base_environment(home: Path, scratch: Path, hub_url: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("ZOO_", "HF_"))}
    return {
        **environment,
        "ZOO_HOME": str(home),
        "KERAS_HOME": str(scratch / "keras"),
        "ZOO_WARM_WORKERS": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "HF_ENDPOINT": hub_url,
        "HF_HOME": str(scratch / "hf"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_TOKEN": TOKEN,
        "ZOO_HUB_TIMEOUT": str(HUB_TIMEOUT),
    }


def judge(case: Case, outcome: Outcome) -> str | None:
    """Why ``outcome`` does not hold for ``case`` (None when it holds)."""
    bound = case.seconds + START_SECONDS
    if outcome.returncode is None:
        return f"did not end within {bound:.0f} s"
    everything = outcome.stdout + outcome.stderr
    if "Traceback" in everything:
        return f"a traceback: {outcome.stderr.strip().splitlines()[-1][:160]}"
    if case.memory_mb is not None and outcome.peak_mb > case.memory_mb:
        return f"peak memory {outcome.peak_mb:,.0f} MB, over {case.memory_mb:,.0f} MB"
    lines = outcome.stderr.splitlines()
    if case.expect == "ok":
        if outcome.returncode != 0:
            return f"exit {outcome.returncode}: {' | '.join(lines)[:200]}"
        missing = [text for text in case.says if text not in everything]
        return f"does not say {missing}" if missing else None
    if case.expect == "doctor":
        check, *words = case.says
        failed = [line for line in outcome.stdout.splitlines() if line.startswith(f"FAIL  {check}:")]
        if outcome.returncode != 1 or outcome.stderr or not failed:
            return f"exit {outcome.returncode}, no 'FAIL  {check}:' line: {everything.strip()[:200]}"
        missing = [text for text in words if text not in failed[0]]
        return f"the FAIL line lacks {missing}: {failed[0][:200]}" if missing else None
    if outcome.returncode == 0:
        return f"accepted (exit 0): {everything.strip()[:200]}"
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return f"{len(lines)} lines on stderr: {' | '.join(lines)[:200]}"
    missing = [text for text in case.says if text not in lines[0]]
    return f"does not say {missing}: {lines[0][:200]}" if missing else None


def holdings(home: Path) -> set[str]:
    """What a ZOO_HOME holds that a refusal must leave: its models, digits and run ids."""
    held = {f"model {path.name}" for path in (home / "models").glob("[!.]*")}
    held |= {f"digit {path.relative_to(home)}" for path in (home / "digits").glob("*/[!.]*.npz")}
    store = home / "runs.sqlite3"
    if store.is_file():
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(store)) as connection:
            held |= {f"run {row[0]}" for row in connection.execute("SELECT id FROM runs")}
    return held


def end_workers(home: Path) -> None:
    """Kill the worker processes a case's runs left (each leads its own process group): the local
    executor's warm workers (its pool file) and the workers that claimed runs (the run store)."""
    pids: set[int] = set()
    for database, query in (
        (home / "pool.sqlite3", "SELECT pid FROM workers"),
        (home / "runs.sqlite3", "SELECT worker FROM runs WHERE executor = 'local' AND worker IS NOT NULL"),
    ):
        if not database.is_file():
            continue
        with (
            contextlib.suppress(sqlite3.Error),
            contextlib.closing(sqlite3.connect(database, timeout=5)) as connection,
        ):
            pids |= {int(row[0]) for row in connection.execute(query)}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` and everything in it unwritable, root included (``chattr +i``), then writable again."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-R", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-R", "-i", str(path)], check=True)
        return
    modes = {each: each.stat().st_mode for each in [path, *path.rglob("*")]}
    for each, mode in modes.items():
        each.chmod(mode & ~0o222)
    try:
        yield
    finally:
        for each, mode in modes.items():
            each.chmod(mode)


@contextlib.contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill_up(directory: Path) -> Path:
    filler = directory / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def run_case(case: Case, scratch_root: Path, hub_url: str) -> tuple[bool, float, str]:
    """Run one case in a fresh ZOO_HOME; (held, seconds, why not or what it measured)."""
    scratch = Path(tempfile.mkdtemp(prefix="case-", dir=scratch_root))
    home = scratch / "zoo-home"
    context = Context(home, scratch, base_environment(home, scratch, hub_url), hub_url)
    context.environment.update(
        {key: value.replace("{scratch}", str(scratch)) for key, value in case.environment.items()}
    )
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if case.full_disk_mb:
            stack.enter_context(small_disk(home, case.full_disk_mb))
        home.mkdir(parents=True, exist_ok=True)
        stack.callback(end_workers, home)
        try:
            if case.prepare:
                case.prepare(context)
            if case.run:
                problem = case.run(context)
                seconds = time.monotonic() - started
                detail = "; ".join(context.notes) or f"{seconds:.1f} s"
            else:
                problem, seconds, detail = run_command_case(expanded(case, context), context, stack)
        except (OSError, subprocess.SubprocessError, sqlite3.Error, ValueError) as error:
            problem = f"the case itself failed: {type(error).__name__}: {error}"
            seconds = time.monotonic() - started
    shutil.rmtree(scratch, ignore_errors=True)
    return problem is None, seconds, problem or detail


def run_command_case(
    case: Case, context: Context, stack: contextlib.ExitStack
) -> tuple[str | None, float, str]:
    """Run a case's one command, judged with what its ZOO_HOME held before (read while the home is
    still full or read-only); (what went wrong or None, seconds, what it measured)."""
    before = holdings(context.home)
    if case.full_disk_mb:
        fill_up(context.home)
    if case.read_only:
        stack.enter_context(unwritable(context.home))
    outcome = zoo(context, *case.arguments, seconds=case.seconds + START_SECONDS)
    problem = judge(case, outcome)
    if problem is None and case.expect != "ok":
        lost = before - holdings(context.home)
        problem = f"lost {sorted(lost)}" if lost else None
    if problem is None and case.check:
        problem = case.check(context)
    measured = f"{outcome.seconds:.1f} s" + (f", {outcome.peak_mb:,.0f} MB" if case.memory_mb else "")
    return problem, outcome.seconds, measured


# --- what cases prepare ----------------------------------------------------------------------------

STARTER = REPOSITORY / "zoo" / "starter" / "mnist-cnn"


def with_starter(context: Context, name: str = "mnist-cnn") -> Path:
    target = context.home / "models" / name
    shutil.copytree(STARTER, target)
    return target


def drawn_one(context: Context) -> Path:
    from PIL import Image

    drawing = np.zeros((280, 280), np.uint8)
    drawing[40:240, 130:150] = 255
    path = context.scratch / "one.png"
    Image.fromarray(drawing).save(path)
    return path


def with_digits(context: Context) -> None:
    """A set 'mine' holding one drawn 1 (the CLI's own ``digits add``), and the image beside it."""
    outcome = zoo(context, "digits", "add", "mine", "1", str(drawn_one(context)))
    assert outcome.returncode == 0, outcome.stderr


def first_digit(context: Context) -> str:
    return next((context.home / "digits" / "mine").glob("[!.]*.npz")).stem


def with_runs(context: Context, count: int = 2) -> list[str]:
    from zoo.core.spec import TrainSpec
    from zoo.runs.sqlite import SqliteRunStore

    store = SqliteRunStore(context.home / "runs.sqlite3")
    ids = [store.create_run(TrainSpec.binary(num_epochs=1), "cpu") for _ in range(count)]
    for run_id in ids:
        store.finish(run_id, "completed")
    return ids


def damaged_run_record(context: Context) -> None:
    _, damaged = with_runs(context)
    with contextlib.closing(sqlite3.connect(context.home / "runs.sqlite3")) as connection, connection:
        connection.execute('UPDATE runs SET spec = \'{"kind": "bin\' WHERE id = ?', (damaged,))


def symlink_loop(context: Context) -> None:
    (context.scratch / "loop-a.npz").symlink_to(context.scratch / "loop-b.npz")
    (context.scratch / "loop-b.npz").symlink_to(context.scratch / "loop-a.npz")


def fifo_image(context: Context) -> None:
    with_starter(context)
    os.mkfifo(context.scratch / "fifo.png")


def npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez(path, **arrays)


def mnist_like(images: int = 50, dtype: type = np.uint8, **replaced: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {
        "x_train": np.zeros((images, 28, 28), dtype),
        "y_train": np.arange(images, dtype=np.uint8) % 10,
        "x_test": np.zeros((20, 28, 28), dtype),
        "y_test": np.arange(20, dtype=np.uint8) % 10,
    }
    return {**arrays, **replaced}


def data_file(kind: str) -> Callable[[Context], None]:
    """Prepare ``{scratch}/data.npz`` of a kind of bad MNIST file."""

    def prepare(context: Context) -> None:
        path = context.scratch / "data.npz"
        if kind == "text":
            path.write_text("not an archive of arrays\n")
        elif kind == "missing keys":
            npz(path, x_train=np.zeros((5, 28, 28), np.uint8))
        elif kind == "float pixels":
            npz(path, **mnist_like(dtype=np.float32))
        elif kind == "wrong shape":
            npz(path, **mnist_like(x_train=np.zeros((50, 32, 32), np.uint8)))
        elif kind == "labels of 12":
            npz(path, **mnist_like(y_train=np.full(50, 12, np.uint8)))
        elif kind == "forged header":
            forged_npz(path, 10**9)

    return prepare


def forged_npz(path: Path, images: int) -> None:
    """An .npz whose x_train header claims ``images`` images but holds a few bytes."""
    header = {"descr": "|u1", "fortran_order": False, "shape": (images, 28, 28)}
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x_train.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(b"\0" * 784)
        for key, array in mnist_like().items():
            if key != "x_train":
                with archive.open(f"{key}.npy", "w") as member:
                    np.lib.format.write_array(member, array)


def many_images(context: Context) -> None:
    """A real mnist.npz of 150,000 blank images (2.5 times the hosted limit of 60,000), compressed to
    little more than 100 KB: written a chunk at a time."""
    images = 150_000
    path = context.scratch / "many.npz"
    header = {"descr": "|u1", "fortran_order": False, "shape": (images, 28, 28)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x_train.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            chunk = bytes(784 * 10_000)
            for _ in range(images // 10_000):
                member.write(chunk)
        for key, array in mnist_like(images, x_train=np.zeros((0,), np.uint8)).items():
            if key != "x_train":
                with archive.open(f"{key}.npy", "w") as member:
                    np.lib.format.write_array(member, array)


def huge_dense_keras(source: Path, target: Path, units: int = 200_000) -> None:
    """The starter's .keras with its Dense(64) turned into Dense(``units``) in the config alone: a small
    file that builds a model of hundreds of millions of weights (which its weights file lacks)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as crafted:
        for item in original.infolist():
            content = original.read(item)
            if item.filename == "config.json":
                config = json.loads(content)
                for layer in config["config"]["layers"]:
                    if layer["class_name"] == "Dense" and layer["config"]["units"] == 64:
                        layer["config"]["units"] = units
                content = json.dumps(config).encode()
            crafted.writestr(item, content)


def huge_model_in_zoo(context: Context) -> None:
    with_starter(context)
    directory = with_starter(context, "huge")
    huge_dense_keras(STARTER / "model.keras", directory / "model.keras")
    drawn_one(context)


def padded_config(context: Context) -> None:
    """A model whose config.json is padded with 300 MB of spaces (still valid JSON)."""
    directory = with_starter(context, "padded")
    config = (directory / "config.json").read_text()
    with (directory / "config.json").open("w") as handle:
        handle.write(config[:-1])
        for _ in range(300):
            handle.write(" " * 1_000_000)
        handle.write(config[-1])


def damaged_model(part: str) -> Callable[[Context], None]:
    def prepare(context: Context) -> None:
        with_starter(context)
        directory = with_starter(context, f"bad-{part}")
        if part == "config":
            (directory / "config.json").write_text('{"kind": "cnn", "form')
        else:
            model = directory / "model.keras"
            model.write_bytes(model.read_bytes()[:5000])

    return prepare


def bad_config(context: Context) -> None:
    (context.home / "config.toml").write_text("mode = hosted\n")  # a bare word: not TOML


def recorded_elsewhere(context: Context) -> None:
    directory = with_starter(context, "trained-elsewhere")
    config = json.loads((directory / "config.json").read_text())
    config["spec"]["mnist_source"] = "/home/trainer/.keras/datasets/mnist.npz"
    (directory / "config.json").write_text(json.dumps(config))


def mnist_file(context: Context) -> None:
    from zoo.ml.data import MNIST_KEYS, load_embedded_mnist

    mnist = load_embedded_mnist()
    npz(context.scratch / "mnist.npz", **{key: getattr(mnist, key) for key in MNIST_KEYS})


def damaged_store(context: Context) -> None:
    """A store whose b-tree pages are damaged: SQLite's quick_check reports it over several lines."""
    from zoo.core.spec import TrainSpec
    from zoo.runs.sqlite import SqliteRunStore

    path = context.home / "runs.sqlite3"
    store = SqliteRunStore(path)
    for _ in range(30):
        run_id = store.create_run(TrainSpec.binary(num_epochs=1), "cpu")
        store.add_event(run_id, "note", "x" * 500)
        store.finish(run_id, "completed")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    content = bytearray(path.read_bytes())
    for page in (3, 10, 20):
        content[page * 4096 : page * 4096 + 12] = bytes.fromhex("0d000000500fff0000000000")
    path.write_bytes(bytes(content))


def random_store(context: Context) -> None:
    (context.home / "runs.sqlite3").write_bytes(os.urandom(65536))


def models_kept(*names: str) -> Callable[[Context], str | None]:
    def check(context: Context) -> str | None:
        missing = [name for name in names if not (context.home / "models" / name / "model.keras").is_file()]
        return f"models gone: {missing}" if missing else None

    return check


# --- custom cases ----------------------------------------------------------------------------------


def same_name_race(context: Context, trials: int = 3) -> str | None:
    """Item 1: two runs that save under one name at the same moment (two warm workers, two runs at
    once): both models must be kept, under two names, and each run must say its own. The warm workers
    take this process as the owner of their pool (ZOO_POOL_OWNER), so they outlive the warming run."""
    from zoo.execution.local import POOL_OWNER_VARIABLE
    from zoo.execution.processes import process_identity

    for trial in range(trials):
        home = context.scratch / f"race-{trial}"
        environment = context.with_environment(
            ZOO_HOME=str(home),
            ZOO_WARM_WORKERS="2",
            ZOO_RUNS_PER_DEVICE="2",
            **{POOL_OWNER_VARIABLE: process_identity(os.getpid())},
        )
        try:
            first = run_command(
                [sys.executable, "-m", "zoo", "train", "binary", "--epochs", "1"], environment, 180
            )
            if first.returncode != 0:
                return f"trial {trial}: the warming run failed: {first.stderr.strip()[-200:]}"
            registry = home / "pool.sqlite3"  # the local executor's warm workers
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # both warm workers ready, so both runs start at once
                with contextlib.closing(sqlite3.connect(registry, timeout=30)) as connection:
                    (ready,) = connection.execute(
                        "SELECT COUNT(*) FROM workers WHERE status = 'ready'"
                    ).fetchone()
                if ready >= 2:
                    break
                time.sleep(0.5)
            command = [
                sys.executable,
                "-m",
                "zoo",
                "train",
                "binary",
                "--epochs",
                "1",
                "--name",
                "same",
                "--json",
            ]
            with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both released at once
                outcomes = list(pool.map(functools.partial(run_command, command, environment), [180, 180]))
            names = [
                json.loads(outcome.stdout)["model_name"] for outcome in outcomes if outcome.returncode == 0
            ]
            kept = sorted(
                path.name for path in (home / "models").glob("same*") if (path / "model.keras").is_file()
            )
            if len(names) != 2 or len(set(names)) != 2 or sorted(names) != kept:
                return f"trial {trial}: the runs said {names}, the zoo holds {kept}"
        finally:
            end_workers(home)
    context.notes.append(f"{trials} trials, both models kept each time")
    return None


def pull_huge(context: Context) -> str | None:
    """Item 3: pulling a small repo whose config builds Dense(200000) is refused before it is built."""
    outcome = zoo(context, "pull", "alice/huge", "--name", "huge", seconds=120)
    problem = judge(Case("", "", expect="refused", seconds=105, memory_mb=MEMORY_BOUND_MB), outcome)
    context.notes.append(f"{outcome.seconds:.1f} s, peak {outcome.peak_mb:,.0f} MB")
    return problem


def survives_lock(context: Context, held_seconds: float = 40) -> str | None:
    """Item 11: a run survives another process holding the store's write lock for 40 s, every epoch kept."""
    epochs = 60
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "train", "binary", "--epochs", str(epochs), "--samples", "2000"],
        cwd=REPOSITORY,
        env=context.environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = context.home / "runs.sqlite3"
        if not wait_until(lambda: running_with_progress(store), 180):
            return "the run never started"
        with write_lock(store):
            time.sleep(held_seconds)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    with contextlib.closing(sqlite3.connect(store)) as connection:
        (status,) = connection.execute("SELECT status FROM runs").fetchone()
        epochs_logged = [
            row[0] for row in connection.execute("SELECT epoch FROM metrics WHERE name = 'epoch/loss'")
        ]
    if status != "completed" or process.returncode != 0:
        return f"the run {status}: {stderr.strip().splitlines()[-1][:200] if stderr.strip() else ''}"
    if epochs_logged != list(range(1, epochs + 1)):
        return f"epochs logged: {len(epochs_logged)} of {epochs}"
    context.notes.append(f"completed after a {held_seconds:.0f} s lock, all {epochs} epochs logged")
    return None


def under_lock(
    *arguments: str, bound: float, expect: str, says: tuple[str, ...]
) -> Callable[[Context], str | None]:
    """Item 11: a command while another process holds the store's write lock answers within ``bound``."""

    def run(context: Context) -> str | None:
        with_runs(context, 1)
        with write_lock(context.home / "runs.sqlite3"):
            outcome = zoo(context, *arguments, seconds=120)
        context.notes.append(f"{outcome.seconds:.1f} s")
        problem = judge(Case("", "", expect=expect, says=says, seconds=120), outcome)
        if problem is None and outcome.seconds > bound:
            problem = f"took {outcome.seconds:.1f} s, over {bound:.0f} s"
        return problem

    return run


def stays_full(context: Context) -> str | None:
    """Item 10: a disk that stays full during a run is said at once, not after 130 s of silence."""
    home = context.home
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "train", "binary", "--epochs", "500", "--samples", "2000"],
        cwd=REPOSITORY,
        env=context.environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(
        target=lambda: lines.extend((time.monotonic(), line) for line in process.stderr), daemon=True
    )
    reader.start()
    try:
        store = home / "runs.sqlite3"
        if not wait_until(lambda: running_with_progress(store), 180):
            return "the run never started"
        snapshot = sqlite3.connect(store, isolation_level=None)  # a reader mid-read: the log cannot restart
        snapshot.execute("BEGIN")
        snapshot.execute("SELECT COUNT(*) FROM metrics").fetchone()
        filler = fill_up(home)
        filled = time.monotonic()
        said = wait_until(lambda: next((at for at, line in list(lines) if "waiting for" in line), None), 60)
        snapshot.close()
        filler.unlink()
        process.wait(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        end_workers(home)
    if said is None:
        return "the follower said nothing for 60 s after the disk filled"
    reader.join(timeout=10)
    last = lines[-1][1].strip() if lines else ""
    context.notes.append(f"said why {said - filled:.1f} s after the disk filled")
    if said - filled > 10:
        return f"said why only after {said - filled:.1f} s"
    if process.returncode != 1 or not last.startswith("error: ") or "disk" not in last:
        return f"ended {process.returncode}: {last[:200]}"
    return None


def from_another_directory(context: Context) -> str | None:
    """Item 8: the library used from another directory (no zoo/ there, no PYTHONPATH): workers find it."""
    script = (
        f"import sys; sys.path.insert(0, {str(REPOSITORY)!r}); "
        "from zoo.execution.admission import start; from zoo.execution.executor import open_executor, wait; "
        "from zoo.core.hosting import LOCAL_USER; from zoo.core.spec import TrainSpec; "
        "executor = open_executor(); "
        "run = wait(start(TrainSpec.binary(num_epochs=1), by=LOCAL_USER, executor=executor), 90, executor); "
        "print(run.status, run.message)"
    )
    environment = {key: value for key, value in context.environment.items() if key != "PYTHONPATH"}
    outcome = run_command([sys.executable, "-c", script], environment, 120, cwd=context.scratch)
    context.notes.append(f"{outcome.seconds:.1f} s")
    if not outcome.stdout.startswith("completed"):
        return f"the run: {(outcome.stdout + outcome.stderr).strip()[-200:]}"
    return None


def running_with_progress(store: Path) -> bool:
    if not store.is_file():
        return False
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(store, timeout=5)) as connection,
    ):
        return bool(
            connection.execute(
                "SELECT 1 FROM runs WHERE status = 'running' AND progress IS NOT NULL"
            ).fetchone()
        )
    return False


def wait_until(condition: Callable[[], object], seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return None


@contextlib.contextmanager
def write_lock(store: Path) -> Iterator[None]:
    connection = sqlite3.connect(store, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


# --- misbehaving Hubs ------------------------------------------------------------------------------


def misbehaving_hub(behaviour: str, real_hub: str) -> str:
    """A Hub on 127.0.0.1 that answers ``behaviour``: ``html`` or ``binary`` (200 to everything),
    ``silent-download`` (the real Hub's API, but file downloads never answered) or ``drip`` (headers,
    then one byte a second). Returns its URL."""
    import urllib.request

    from loopback import LoopbackServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def answer(self) -> None:
            if behaviour in ("html", "binary"):
                body = (
                    b"<!doctype html><html><body>Sign in</body></html>"
                    if behaviour == "html"
                    else os.urandom(512)
                )
                kind = "text/html" if behaviour == "html" else "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            elif behaviour == "drip":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the client gave up: as it should
                    for _ in range(600):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(1)
            elif "/resolve/" in self.path:
                time.sleep(600)  # a download that never answers
            else:
                request = urllib.request.Request(real_hub + self.path, headers=dict(self.headers))
                with urllib.request.urlopen(request, timeout=30) as answer:
                    body = answer.read()
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = answer

    return LoopbackServer(Handler, f"{behaviour}-hub").start().url


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# --- the cases -------------------------------------------------------------------------------------


def cases(hubs: dict[str, str]) -> list[Case]:
    limits, hangs, one_line, locks, bad = GROUPS
    html, binary, silent, drip = hubs["html"], hubs["binary"], hubs["silent-download"], hubs["drip"]
    hub_commands = {
        "hub list": ("hub", "list"),
        "hub revisions": ("hub", "revisions", "alice/starter"),
        "hub compare": ("hub", "compare", "alice/starter", "main", "main"),
        "hub tag": ("hub", "tag", "alice/starter", "v9"),
        "pull": ("pull", "alice/starter", "--name", "pulled"),
        "push": ("push", "mnist-cnn", "alice/pushed"),
    }
    found = [
        # data loss and limits
        Case(
            limits,
            "two runs saving under one name at once keep both models",
            item=1,
            expect="custom",
            run=same_name_race,
            seconds=600,
        ),
        Case(
            limits,
            "hosted: an npz of 150,000 images is judged by what it holds",
            ("train", "cnn", "--data", "{scratch}/many.npz", "--epochs", "1"),
            says=("samples",),
            item=2,
            prepare=many_images,
            environment={"ZOO_MODE": "hosted"},
        ),
        Case(
            limits,
            "predict with a small model file that builds Dense(200000)",
            ("predict", "huge", "{scratch}/one.png"),
            item=3,
            prepare=huge_model_in_zoo,
            memory_mb=MEMORY_BOUND_MB,
            seconds=90,
        ),
        Case(
            limits,
            "evaluate a small model file that builds Dense(200000)",
            ("evaluate", "huge"),
            item=3,
            prepare=huge_model_in_zoo,
            memory_mb=MEMORY_BOUND_MB,
            seconds=90,
        ),
        Case(limits, "pull a small repo that builds Dense(200000)", item=3, expect="custom", run=pull_huge),
        Case(
            limits,
            "models with a config.json padded to 300 MB stays small",
            ("models",),
            expect="ok",
            item=3,
            prepare=padded_config,
            memory_mb=400,
        ),
        Case(
            limits,
            "owners 'alice' and 'alice.' get distinct folders",
            expect="custom",
            item=4,
            run=distinct_owner_folders,
        ),
        Case(
            limits,
            "train --name of an existing model saves beside it",
            ("train", "binary", "--epochs", "1", "--name", "mnist-cnn"),
            expect="ok",
            says=("mnist-cnn-2",),
            prepare=with_starter,
            check=models_kept("mnist-cnn", "mnist-cnn-2"),
            seconds=120,
        ),
        Case(
            limits,
            "pull --name of an existing model is refused",
            ("pull", "alice/starter", "--name", "mnist-cnn"),
            says=("already in the local zoo",),
            prepare=with_starter,
            seconds=60,
        ),
        Case(
            limits,
            "hosted: 501 epochs beyond the limit",
            ("train", "binary", "--epochs", "501"),
            says=("epochs",),
            environment={"ZOO_MODE": "hosted"},
        ),
        Case(
            limits,
            "a billion hidden units",
            ("train", "binary", "--hidden", "1000000000"),
            says=("parameters",),
        ),
        Case(limits, "batch of 100,000", ("train", "cnn", "--batch-size", "100000"), says=("batch",)),
        # hangs
        Case(
            hangs,
            "pull from a Hub that never answers a download",
            ("pull", "alice/starter"),
            environment={"HF_ENDPOINT": silent},
            seconds=HUB_TIMEOUT,
            item=5,
        ),
        Case(
            hangs,
            "hub list from a Hub that drips a byte a second",
            ("hub", "list"),
            environment={"HF_ENDPOINT": drip},
            seconds=HUB_TIMEOUT,
            item=5,
        ),
        Case(
            hangs,
            "hub revisions from a Hub that drips a byte a second",
            ("hub", "revisions", "alice/starter"),
            environment={"HF_ENDPOINT": drip},
            seconds=HUB_TIMEOUT,
            item=5,
        ),
        Case(
            hangs,
            "predict a FIFO named as an image",
            ("predict", "mnist-cnn", "{scratch}/fifo.png"),
            item=6,
            prepare=fifo_image,
            seconds=20,
        ),
        Case(
            hangs,
            "digits add a FIFO named as an image",
            ("digits", "add", "mine", "7", "{scratch}/fifo.png"),
            item=6,
            prepare=fifo_image,
            seconds=20,
        ),
        Case(
            hangs,
            "hub list against a closed port",
            ("hub", "list"),
            says=("unreachable",),
            environment={"HF_ENDPOINT": closed_port()},
            seconds=HUB_TIMEOUT,
        ),
        Case(
            hangs,
            "train --data of a FIFO",
            ("train", "cnn", "--data", "{scratch}/fifo.png"),
            says=("named pipe",),
            prepare=fifo_image,
            seconds=20,
        ),
        Case(
            one_line,
            "a disk that stays full during a run is said at once",
            expect="custom",
            item=10,
            run=stays_full,
            root=True,
            full_disk_mb=16,
        ),
        Case(
            locks,
            "doctor while another process holds the store's write lock",
            expect="custom",
            item=11,
            run=under_lock("doctor", bound=10, expect="doctor", says=("run store", "write lock")),
        ),
        # one line, the right cause
        Case(
            one_line,
            "train --data of a symlink loop",
            ("train", "cnn", "--data", "{scratch}/loop-a.npz"),
            says=("loop of symbolic links",),
            item=7,
            prepare=symlink_loop,
        ),
        Case(
            one_line,
            "train with ZOO_MNIST a symlink loop",
            ("train", "cnn"),
            says=("loop of symbolic links",),
            item=7,
            prepare=symlink_loop,
            environment={"ZOO_MNIST": "{scratch}/loop-a.npz"},
        ),
        Case(
            one_line,
            "evaluate --data of a symlink loop",
            ("evaluate", "mnist-cnn", "--data", "{scratch}/loop-a.npz"),
            says=("loop of symbolic links",),
            item=7,
            prepare=symlink_loop,
        ),
        Case(
            one_line,
            "doctor with ZOO_MNIST a symlink loop",
            ("doctor",),
            expect="doctor",
            says=("data source", "loop of symbolic links"),
            item=7,
            prepare=symlink_loop,
            environment={"ZOO_MNIST": "{scratch}/loop-a.npz"},
        ),
        Case(
            one_line,
            "runs with a damaged run record",
            ("runs",),
            expect="ok",
            says=("damaged",),
            item=7,
            prepare=damaged_run_record,
        ),
        Case(
            one_line,
            "doctor with a damaged run record",
            ("doctor",),
            expect="doctor",
            says=("run store", "damaged"),
            item=7,
            prepare=damaged_run_record,
        ),
        Case(
            one_line,
            "digits add in a read-only ZOO_HOME",
            ("digits", "add", "mine", "1", "{scratch}/one.png"),
            says=("cannot be written",),
            item=7,
            prepare=with_digits,
            read_only=True,
        ),
        Case(
            one_line,
            "digits relabel in a read-only ZOO_HOME",
            ("digits", "relabel", "mine", "{digit}", "7"),
            says=("cannot be written",),
            item=7,
            prepare=with_digits,
            read_only=True,
        ),
        Case(
            one_line,
            "digits delete in a read-only ZOO_HOME",
            ("digits", "delete", "mine", "{digit}"),
            says=("cannot be written",),
            item=7,
            prepare=with_digits,
            read_only=True,
        ),
        Case(
            one_line,
            "pull into a read-only ZOO_HOME",
            ("pull", "alice/starter", "--name", "pulled"),
            says=("cannot be written",),
            item=7,
            prepare=with_starter,
            read_only=True,
            seconds=60,
        ),
        Case(
            one_line,
            "digits add on a full disk",
            ("digits", "add", "mine", "2", "{scratch}/one.png"),
            says=("No space left", "free space"),
            item=7,
            prepare=with_digits,
            root=True,
            full_disk_mb=1,
        ),
        *(
            Case(
                one_line,
                f"{name} against a Hub answering {what}",
                arguments,
                item=7,
                prepare=with_starter,
                environment={"HF_ENDPOINT": endpoint},
                seconds=HUB_TIMEOUT + 30,
            )
            for what, endpoint in (("HTML", html), ("binary", binary))
            for name, arguments in hub_commands.items()
            if what == "HTML" or name in ("hub list", "pull")
        ),
        Case(
            one_line,
            "train --backend torch without torch",
            ("train", "binary", "--backend", "torch"),
            says=("No module named 'torch'", "pip install torch"),
            item=8,
            seconds=20,
        ),
        Case(
            one_line,
            "the library from another directory: workers find zoo",
            expect="custom",
            item=8,
            run=from_another_directory,
        ),
        Case(
            one_line,
            "evaluate the starter on a fresh machine",
            ("evaluate", "mnist-cnn"),
            expect="ok",
            says=("embedded MNIST subset",),
            item=9,
            seconds=90,
        ),
        Case(
            one_line,
            "evaluate the starter with ZOO_MNIST",
            ("evaluate", "mnist-cnn"),
            expect="ok",
            says=("{scratch}/mnist.npz",),
            item=9,
            prepare=mnist_file,
            environment={"ZOO_MNIST": "{scratch}/mnist.npz"},
            seconds=90,
        ),
        Case(
            one_line,
            "evaluate a model whose data file is on another machine",
            ("evaluate", "trained-elsewhere"),
            expect="ok",
            says=("is not on this machine",),
            item=9,
            prepare=recorded_elsewhere,
            seconds=90,
        ),
        Case(
            one_line,
            "a store damaged inside: one warning line",
            ("runs",),
            expect="custom",
            item=10,
            run=lambda context: one_warning_line(context, damaged_store),
        ),
        Case(
            one_line,
            "a store of random bytes: one warning line",
            ("runs",),
            expect="custom",
            run=lambda context: one_warning_line(context, random_store),
        ),
        Case(
            one_line,
            "train --data of a missing file",
            ("train", "cnn", "--data", "/nowhere/mnist.npz"),
            says=("does not exist",),
        ),
        # store locks and doctor
        Case(locks, "a run survives a 40 s write lock", expect="custom", item=11, run=survives_lock),
        Case(
            locks,
            "runs while another process holds the write lock",
            expect="custom",
            item=11,
            run=under_lock("runs", bound=20, expect="ok", says=()),
        ),
        Case(
            locks,
            "doctor with an unreadable config.toml",
            ("doctor",),
            expect="doctor",
            says=("configuration", "cannot be read"),
            item=12,
            prepare=bad_config,
        ),
        Case(
            locks,
            "train with an unreadable config.toml",
            ("train", "binary"),
            says=("cannot be read",),
            prepare=bad_config,
        ),
        Case(
            locks,
            "models lists a folder with a damaged config.json",
            ("models",),
            expect="ok",
            says=("damaged: bad-config", "delete the folder"),
            item=12,
            prepare=damaged_model("config"),
        ),
        Case(
            locks,
            "models lists a folder with a damaged model.keras",
            ("models",),
            expect="ok",
            says=("damaged: bad-model", "delete the folder"),
            item=12,
            prepare=damaged_model("model"),
        ),
        Case(
            locks,
            "doctor fails a damaged model folder",
            ("doctor",),
            expect="doctor",
            says=("local zoo", "bad-config"),
            item=12,
            prepare=damaged_model("config"),
        ),
        Case(
            locks,
            "doctor in a read-only ZOO_HOME",
            ("doctor",),
            expect="doctor",
            says=("zoo directory",),
            prepare=with_digits,
            read_only=True,
        ),
        # bad input: names, values, files
        *(
            Case(bad, name, arguments, says=(says,))
            for name, arguments, says in (
                ("an unknown model kind", ("train", "rnn"), "invalid choice"),
                ("stop an unknown run", ("stop", "0123456789ab"), "there is no run"),
                ("epochs not a number", ("train", "cnn", "--epochs", "many"), "invalid int value"),
                ("zero epochs", ("train", "binary", "--epochs", "0"), "num_epochs=0"),
                ("a learning rate of 50", ("train", "binary", "--learning-rate", "50"), "learning_rate"),
                ("a learning rate of nan", ("train", "binary", "--learning-rate", "nan"), "learning_rate"),
                ("a batch size of 0", ("train", "binary", "--batch-size", "0"), "batch_size"),
                ("hidden units 'abc'", ("train", "binary", "--hidden", "abc"), "hidden"),
                ("four convolutions", ("train", "cnn", "--filters", "8,8,8,8"), "conv_filters"),
                ("five points", ("train", "binary", "--samples", "5"), "num_samples"),
                ("noise of 5", ("train", "binary", "--noise", "5"), "noise"),
                ("a test fraction of 0.99", ("train", "binary", "--test-fraction", "0.99"), "test_fraction"),
                (
                    "a validation split of 1.5",
                    ("train", "cnn", "--validation-split", "1.5"),
                    "validation_split",
                ),
                ("an unknown point set", ("train", "binary", "--dataset", "swirls"), "swirls"),
                ("a model name with a slash", ("train", "binary", "--name", "../evil"), "not allowed"),
                ("a model name with a space", ("train", "binary", "--name", "my model"), "not allowed"),
                ("evaluate an unknown model", ("evaluate", "nosuch"), "no model named"),
                ("evaluate a path as a model name", ("evaluate", "../models"), "not allowed"),
                ("a set name with a space", ("digits", "add", "my set", "1", "x.png"), "not allowed"),
                ("a label of 12", ("digits", "add", "mine", "12", "x.png"), "outside 0-9"),
                ("relabel an unknown digit", ("digits", "relabel", "mine", "0" * 32, "3"), "has no digit"),
                ("export to a .txt", ("digits", "export", "mine", "out.txt"), ".npz"),
                ("push to a repo id that is not one", ("push", "mnist-cnn", "not a repo"), "repo"),
                ("pull a repo id of three parts", ("pull", "a/b/c"), "repo"),
                ("an empty --data", ("train", "cnn", "--data", ""), "empty string"),
                ("--data of a directory", ("train", "cnn", "--data", "/tmp"), "is a directory"),
            )
        ),
        *(
            Case(
                bad,
                f"--data of {kind}",
                ("train", "cnn", "--data", "{scratch}/data.npz"),
                says=(says,),
                prepare=data_file(kind),
            )
            for kind, says in (
                ("text", "not an .npz file"),
                ("missing keys", "missing array"),
                ("float pixels", "dtype float32"),
                ("wrong shape", "(N, 28, 28)"),
                ("labels of 12", "labels outside 0-9"),
                ("forged header", "claims shape (1000000000, 28, 28)"),
            )
        ),
        Case(
            bad,
            "predict an image that is a text file",
            ("predict", "mnist-cnn", "{scratch}/notes.png"),
            prepare=lambda context: (context.scratch / "notes.png").write_text("not an image"),
            seconds=60,
        ),
        Case(
            bad,
            "predict a truncated PNG",
            ("predict", "mnist-cnn", "{scratch}/cut.png"),
            prepare=truncated_png,
            seconds=60,
        ),
        Case(bad, "predict a missing image", ("predict", "mnist-cnn", "/nowhere/seven.png"), seconds=60),
    ]
    return found


def truncated_png(context: Context) -> None:
    image = drawn_one(context)
    (context.scratch / "cut.png").write_bytes(image.read_bytes()[:200])


def distinct_owner_folders(context: Context) -> str | None:
    script = (
        "from zoo.ml.data import uploads_directory; "
        "print(uploads_directory('alice') != uploads_directory('alice.'))"
    )
    outcome = run_command([sys.executable, "-c", script], context.environment, 60)
    return None if outcome.stdout.strip() == "True" else f"one folder for both: {outcome.stdout.strip()}"


def one_warning_line(context: Context, damage: Callable[[Context], None]) -> str | None:
    damage(context)
    outcome = zoo(context, "runs", seconds=60)
    lines = outcome.stderr.splitlines()
    moved = list(context.home.glob("runs.sqlite3.damaged-*"))
    if outcome.returncode != 0 or len(lines) != 1 or not lines[0].startswith("warning: ") or not moved:
        return f"exit {outcome.returncode}, {len(lines)} stderr lines: {' | '.join(lines)[:200]}"
    return None


def expanded(case: Case, context: Context) -> Case:
    """The case with ``{scratch}`` and ``{digit}`` in its arguments and environment filled in."""
    values = {"scratch": str(context.scratch), "home": str(context.home)}
    if "{digit}" in " ".join(case.arguments):
        values["digit"] = first_digit(context)

    def fill(text: str) -> str:
        return text.format(**values) if "{" in text else text

    return dataclasses.replace(
        case, arguments=tuple(map(fill, case.arguments)), says=tuple(map(fill, case.says))
    )


# --- main ------------------------------------------------------------------------------------------


def push_fixtures(scratch: Path, hub_url: str) -> None:
    """alice/starter (the shipped starter, pushed with the CLI) and alice/huge (its files with a Dense(200000)
    config) on the loopback Hub."""
    home = scratch / "pusher"
    environment = base_environment(home, scratch, hub_url)
    pushed = run_command(
        [sys.executable, "-m", "zoo", "push", "mnist-cnn", "alice/starter"], environment, 300
    )
    if pushed.returncode != 0:
        raise SystemExit(f"could not push the starter to the loopback Hub: {pushed.stderr.strip()}")
    from huggingface_hub import HfApi

    folder = scratch / "huge-repo"
    folder.mkdir()
    huge_dense_keras(STARTER / "model.keras", scratch / "huge.keras")
    with zipfile.ZipFile(scratch / "huge.keras") as archive:
        archive.extractall(folder)
    api = HfApi(endpoint=hub_url, token=TOKEN)
    api.create_repo("alice/huge", exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id="alice/huge")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", choices=GROUPS, help="run only this group")
    parser.add_argument("-k", dest="contains", help="run only the cases whose name holds this text")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    arguments = parser.parse_args()

    scratch_root = Path(tempfile.mkdtemp(prefix="zoo-faults-"))
    os.environ.update(HF_HOME=str(scratch_root / "hf"), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
    from hub_server import HubServer

    hub = HubServer().start()
    hubs = {
        behaviour: misbehaving_hub(behaviour, hub.url)
        for behaviour in ("html", "binary", "silent-download", "drip")
    }
    chosen = [
        case
        for case in cases(hubs)
        if (arguments.group in (None, case.group)) and (arguments.contains or "") in case.name
    ]
    if arguments.list:
        for case in chosen:
            print(f"{case.group:32}  {f'item {case.item}' if case.item else '':8}  {case.name}")
        return 0
    if any("alice/" in " ".join(case.arguments) or case.run is pull_huge for case in chosen):
        push_fixtures(scratch_root, hub.url)
    results: list[tuple[Case, bool | None]] = []
    for case in chosen:
        if case.root and os.geteuid() != 0:
            print(f"{'skipped':8}  {case.name} (needs root)")
            results.append((case, None))
            continue
        held, _, detail = run_case(case, scratch_root, hub.url)
        item = f" [issue 21 item {case.item}]" if case.item else ""
        print(f"{'held' if held else 'NOT HELD':8}  {case.name}{item}: {detail}", flush=True)
        results.append((case, held))
    print()
    print(f"{'group':34} {'tried':>5} {'held':>5}")
    for group in GROUPS:
        tried = [held for case, held in results if case.group == group and held is not None]
        if tried:
            print(f"{group:34} {len(tried):>5} {sum(tried):>5}")
    tried = [held for _, held in results if held is not None]
    print(f"{'all':34} {len(tried):>5} {sum(tried):>5}")
    shutil.rmtree(scratch_root, ignore_errors=True)
    return 0 if all(tried) else 1


if __name__ == "__main__":
    sys.exit(main())
