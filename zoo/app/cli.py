"""``python -m zoo``: train, evaluate and list models and runs without a browser.

Every command prints for people by default and JSON with ``--json``. Bad input prints one
line on stderr and exits non-zero. Choices come from ``zoo.core.vocabulary``; models come from the
local zoo as ``store.open_local_zoo`` opens it (the starter included), as the pages see it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from zoo.core.errors import RunError, ZooError
from zoo.core.hosting import LOCAL_USER
from zoo.core.logs import chosen_level, configure_logging
from zoo.core.settings import load_settings, log_level
from zoo.core.vocabulary import (
    ACTIVATIONS,
    BACKENDS,
    DEVICES,
    LEARNING_RATE_SCHEDULES,
    MODEL_KINDS,
    OPTIMIZERS,
    POINT_DATASETS,
)

if TYPE_CHECKING:
    from zoo.runs.store import Run

if TYPE_CHECKING:
    from zoo.execution.executor import Executor
    from zoo.runs.records import Run
    from zoo.runs.store import RunStore

EXIT_ERROR = 1
EXIT_USAGE = 2
PROGRESS_WIDTH = 24
# A run whose worker has not said it is alive for this long: the follower says why (a full disk, a
# store another process keeps locked), or that it waits, instead of staying silent until it ends.
STALLED_SECONDS = 3.0
SILENT_SECONDS = 15.0


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2); every command takes
    ``-v``/``-vv`` (before or after its name)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,  # a command's parser keeps what `zoo -v COMMAND` counted
            help="log what the library does on stderr: -v its steps, -vv debugging detail",
        )

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see `python -m zoo {self.prog.split()[-1]} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m zoo`` argument parser with every sub-command."""
    parser = OneLineParser(prog="zoo", description="Zoo Studio on the command line.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = commands.add_parser("train", help="train a model in the background and follow its progress")
    train.add_argument("kind", choices=MODEL_KINDS, help="the MNIST CNN or the 2-D binary classifier")
    train.add_argument("--epochs", type=int, dest="num_epochs")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument(
        "--lr-schedule",
        dest="learning_rate_schedule",
        choices=LEARNING_RATE_SCHEDULES,
        help="constant (default), or cosine: the rate falls each epoch to about 1%% of it by the last",
    )
    train.add_argument("--momentum", type=float)
    train.add_argument("--activation", choices=ACTIVATIONS)
    train.add_argument("--hidden", dest="hidden_units", help="hidden layer sizes, e.g. 3 or 8,8")
    train.add_argument("--filters", dest="conv_filters", help="CNN convolution filters, e.g. 32,64,64")
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--steps-per-execution",
        type=int,
        help="batches per compiled call (faster; a stop lands within N batches)",
    )
    train.add_argument(
        "--data", dest="mnist_source", help="MNIST: auto (default), embedded, or a mnist.npz path"
    )
    train.add_argument("--max-train-samples", type=int, help="train on the first N training images only")
    train.add_argument("--validation-split", type=float)
    train.add_argument("--dataset", help=f"binary: {', '.join(POINT_DATASETS)}")
    train.add_argument("--samples", type=int, dest="num_samples", help="binary: number of points")
    train.add_argument("--noise", type=float, help="binary: noise of the points")
    train.add_argument("--test-fraction", type=float, help="binary: share of points held out for testing")
    train.add_argument("--device", choices=DEVICES)
    train.add_argument(
        "--backend",
        choices=["auto", *BACKENDS],
        help="Keras backend the run trains with (default: auto, KERAS_BACKEND or tensorflow)",
    )
    train.add_argument(
        "--mixed-precision", action="store_true", default=None, help="float16 compute (GPU only)"
    )
    train.add_argument(
        "--augment",
        action="store_true",
        default=None,
        help="CNN: train on digits freshly rotated, scaled, shifted, slanted, thickened or thinned",
    )
    train.add_argument(
        "--printed",
        action="store_true",
        default=None,
        help="CNN: add the digits 0-9 typed in this machine's fonts to the training digits",
    )
    train.add_argument("--base", dest="base_model", help="CNN: continue training this model of the local zoo")
    train.add_argument(
        "--digits",
        dest="digits_set",
        help="with --base: fine-tune on this personal digit set mixed with MNIST",
    )
    train.add_argument("--name", dest="model_name", help="name of the model in the local zoo")
    train.add_argument("--json", action="store_true", help="print the finished run as JSON")
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a model of the local zoo on its test set")
    evaluate.add_argument("model_name", metavar="MODEL")
    evaluate.add_argument("--data", dest="mnist_source", help="CNN: auto, embedded, or a mnist.npz path")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=command_evaluate)

    runs = commands.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=command_runs)

    models = commands.add_parser("models", help="list the models in the local zoo")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=command_models)

    stop = commands.add_parser("stop", help="ask a queued or running run to stop")
    stop.add_argument("run_id", metavar="RUN_ID")
    stop.set_defaults(handler=command_stop)

    store = commands.add_parser("store", help="the run store: copy it to another (SQLite <-> PostgreSQL)")
    store_commands = store.add_subparsers(dest="store_command", required=True, parser_class=OneLineParser)
    copy = store_commands.add_parser(
        "copy", help="copy every run, metric, event, surface and person from one run store to another"
    )
    copy.add_argument("source", metavar="SRC_URL", help="e.g. sqlite:////home/me/.zoo-studio/runs.sqlite3")
    copy.add_argument("target", metavar="DST_URL", help="e.g. postgresql://zoo@db.example.org:5432/zoo")
    copy.add_argument("--merge", action="store_true", help="add the runs a non-empty target lacks")
    copy.set_defaults(handler=command_store_copy)

    predict = commands.add_parser("predict", help="read the digit in image files with a CNN of the local zoo")
    predict.add_argument("model_name", metavar="MODEL", help="a CNN of the local zoo, e.g. mnist-cnn")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="PNG/JPEG files, one digit each")
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=command_predict)
    doctor = commands.add_parser(
        "doctor",
        help="check the run store, the zoo directory, free disk, backend and data (exit 1 if not ok)",
    )
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(handler=command_doctor)
    add_hub_commands(commands)
    add_digits_commands(commands)
    return parser


def add_hub_commands(commands: Any) -> None:
    """``push``, ``pull`` and ``hub list|revisions|compare|tag``. The token comes from HF_TOKEN or
    `hf auth login`, never from an argument (arguments end up in shell history and process lists)."""
    push = commands.add_parser("push", help="push a model of the local zoo to a Hugging Face Hub repo")
    push.add_argument("model_name", metavar="MODEL")
    push.add_argument("repo_id", metavar="REPO_ID", help="namespace/name, e.g. alice/mnist-cnn")
    push.add_argument("--private", action="store_true", help="create the repo as private (when it is new)")
    push.add_argument("--message", help="commit message")
    push.add_argument("--tag", help="tag the new commit, e.g. v1")
    push.add_argument(
        "--include-digits",
        action="store_true",
        help="a fine-tuned model: also push its personal digit set (digits.npz); not pushed otherwise",
    )
    push.add_argument("--json", action="store_true")
    push.set_defaults(handler=command_push)

    pull = commands.add_parser("pull", help="pull a model from the Hub into the local zoo")
    pull.add_argument("repo_id", metavar="REPO_ID")
    pull.add_argument("--revision", help="branch, tag or commit id (default: main)")
    pull.add_argument("--name", help="name in the local zoo (default: the repo's name)")
    pull.add_argument(
        "--max-download-mb", type=float, help="download limit (default: ZOO_HUB_MAX_DOWNLOAD_MB or 500)"
    )
    pull.add_argument("--json", action="store_true")
    pull.set_defaults(handler=command_pull)

    hub = commands.add_parser("hub", help="browse, compare and tag models on the Hub")
    hub_commands = hub.add_subparsers(dest="hub_command", required=True, parser_class=OneLineParser)
    hub_list = hub_commands.add_parser("list", help="models tagged zoo-studio, with their card metrics")
    hub_list.add_argument("--author")
    hub_list.add_argument("--search", help="text the repo id contains")
    hub_list.add_argument("--json", action="store_true")
    hub_list.set_defaults(handler=command_hub_list)

    revisions = hub_commands.add_parser("revisions", help="branches, tags and commits of a repo")
    revisions.add_argument("repo_id", metavar="REPO_ID")
    revisions.add_argument("--json", action="store_true")
    revisions.set_defaults(handler=command_hub_revisions)

    compare = hub_commands.add_parser("compare", help="two revisions' metrics side by side")
    compare.add_argument("repo_id", metavar="REPO_ID")
    compare.add_argument("first", metavar="REVISION")
    compare.add_argument("second", metavar="OTHER_REVISION")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=command_hub_compare)

    tag = hub_commands.add_parser("tag", help="tag a revision, e.g. v1")
    tag.add_argument("repo_id", metavar="REPO_ID")
    tag.add_argument("tag", metavar="TAG")
    tag.add_argument("--revision", default="main", help="branch, tag or commit id (default: main)")
    tag.set_defaults(handler=command_hub_tag)


def add_digits_commands(commands: Any) -> None:
    """``digits add|list|export|relabel|delete|share|unshare``: personal labelled sets for fine-tuning
    (zoo/storage/digits.py)."""
    digits = commands.add_parser("digits", help="personal labelled digit sets ('my digits')")
    digit_commands = digits.add_subparsers(dest="digits_command", required=True, parser_class=OneLineParser)
    add = digit_commands.add_parser("add", help="add images of one digit to a set (preprocessed as on Draw)")
    add.add_argument("set_name", metavar="SET")
    add.add_argument("label", metavar="LABEL", help="the digit the images show, 0-9")
    add.add_argument("images", metavar="IMAGE", nargs="+", help="PNG/JPEG files, one digit each")
    add.set_defaults(handler=command_digits_add)

    listing = digit_commands.add_parser("list", help="the sets, or one set's digits with counts per digit")
    listing.add_argument("set_name", metavar="SET", nargs="?")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=command_digits_list)

    export = digit_commands.add_parser("export", help="write a set to an .npz or a .zip of PNGs")
    export.add_argument("set_name", metavar="SET")
    export.add_argument("path", metavar="PATH", help="ends in .npz or .zip")
    export.set_defaults(handler=command_digits_export)

    relabel = digit_commands.add_parser("relabel", help="give one digit of a set another label")
    relabel.add_argument("set_name", metavar="SET")
    relabel.add_argument("digit_id", metavar="ID")
    relabel.add_argument("label", metavar="LABEL")
    relabel.set_defaults(handler=command_digits_relabel)

    delete = digit_commands.add_parser("delete", help="remove one digit of a set")
    delete.add_argument("set_name", metavar="SET")
    delete.add_argument("digit_id", metavar="ID")
    delete.set_defaults(handler=command_digits_delete)

    for name, shared, what in (
        ("share", True, "let everyone see, download and fine-tune on a set (only its owner changes it)"),
        ("unshare", False, "keep a set to its owner (and admins) again"),
    ):
        sharing = digit_commands.add_parser(name, help=what)
        sharing.add_argument("set_name", metavar="SET")
        sharing.set_defaults(handler=command_digits_share, shared=shared)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    arguments = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = arguments.handler
    try:
        configure_logging(chosen_level(log_level(), "warning", getattr(arguments, "verbose", 0)))
        exit_code = handler(arguments)
        sys.stdout.flush()  # here, not at exit: a reader that has gone is handled below
        return exit_code
    except ZooError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader stopped early (`python -m zoo runs | head -1`): end quietly, as Python's docs advise,
        # with what is left of the output going nowhere instead of into a traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


def command_train(arguments: argparse.Namespace) -> int:
    from zoo.core.spec import TrainSpec
    from zoo.execution.admission import start

    fields = (field.name for field in dataclasses.fields(TrainSpec) if field.name != "kind")
    options = {
        name: getattr(arguments, name) for name in fields if getattr(arguments, name, None) is not None
    }
    spec = TrainSpec.cnn(**options) if arguments.kind == "cnn" else TrainSpec.binary(**options)
    if spec.base_model is not None:
        from zoo.storage.models import open_local_zoo

        open_local_zoo()  # so the shipped starter can be fine-tuned on a fresh machine
    executor = open_executor()
    run_id = start(spec, by=LOCAL_USER, executor=executor)
    queued = executor.store.get(run_id)
    print(f"run {run_id}: {spec.kind} queued on {queued.device} with {queued.spec.backend}", file=sys.stderr)
    run = wait_showing_progress(executor, run_id)
    if arguments.json:
        print(json.dumps(run.to_row(), indent=2))
    else:
        print(describe_finished_run(run))
    report = run.final_metrics.fine_tuning if run.final_metrics is not None else None
    warning = report.warning() if report is not None else None
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if run.status in ("completed", "stopped"):
        return 0
    print(f"error: run {run.id} {run.status}: {run.message}", file=sys.stderr)
    return EXIT_ERROR


def open_run_store() -> RunStore:
    """The run store, with a one-line warning on stderr when opening it moved a damaged store aside."""
    from zoo.runs.store import open_run_store as open_store

    store = open_store()
    notice = store.describe().notice
    if notice:
        print(f"warning: {notice}", file=sys.stderr)
    return store


def open_executor() -> Executor:
    """Where runs execute (``ZOO_EXECUTOR``), over the run store ``open_run_store`` opens."""
    from zoo.execution.executor import open_executor as open_one

    return open_one(open_run_store())


def wait_showing_progress(executor: Executor, run_id: str, poll_seconds: float = 0.25) -> Run:
    """Wait for a run to end, drawing a progress bar on stderr; Ctrl-C asks the run to stop. Each
    poll supervises the executor's runs first (this command's own clock), so a run whose worker died
    or hung ends, and one whose failure the store cannot record is reported at once.

    (The pages follow a run differently: ``ui.follow_run`` puts its id in the URL.)"""
    store = executor.store
    interactive = sys.stderr.isatty()
    last_line = ""
    latest: dict[str, float | None] = {}  # newest value of each metric, read incrementally
    cursor = 0
    stall_told = False
    while True:
        try:
            executor.supervise()
            run = store.get(run_id)
            if not run.is_active:
                break
            verdict = executor.liveness(run)
            if verdict.failed:  # supervision could not record it: the store takes no writes (read-only)
                if interactive and last_line:
                    print(file=sys.stderr)
                raise RunError(f"run {run_id} failed: {verdict.reason}")
            stall = None if stall_told else stalled(store, run)
            if stall:
                print(f"\n{stall}" if interactive and last_line else stall, file=sys.stderr)
                stall_told, last_line = True, ""
            elif stall_told and not silent_for(run, STALLED_SECONDS):
                stall_told = False  # the worker reports again: a later stall is said again
            batch = store.metrics_since(run_id, cursor)
            cursor = batch.cursor
            latest.update((row.name, row.value) for row in batch.rows)
            line = progress_line(run, store, latest)
            if (
                line is not None
                and line != last_line
                and (interactive or line.split(" [")[0] != last_line.split(" [")[0])
            ):
                print(f"\r{line}" if interactive else line, end="" if interactive else "\n", file=sys.stderr)
                last_line = line
            time.sleep(poll_seconds)
        except KeyboardInterrupt:
            print("\nstopping after the current batch...", file=sys.stderr)
            executor.stop(run_id, by=LOCAL_USER)
    if interactive and last_line:
        print(file=sys.stderr)
    return run


def silent_for(run: Run, seconds: float) -> bool:
    """Whether a running run's worker has not said it is alive for ``seconds``."""
    beat = run.heartbeat_at
    return run.status == "running" and beat is not None and time.time() - beat > seconds


def stalled(store: RunStore, run: Run) -> str | None:
    """One line saying why a running run's worker has gone quiet, once it has: the store cannot take
    writes (its disk is full, another process holds its write lock), or, after SILENT_SECONDS, that
    the follower waits for it; None while it reports."""
    if not silent_for(run, STALLED_SECONDS):
        return None
    blocker = store.write_blocker()
    if blocker:
        return f"waiting for the run store to accept writes ({blocker})..."
    if silent_for(run, SILENT_SECONDS):
        return (
            f"no word from the worker of run {run.id} for {SILENT_SECONDS:.0f} s; waiting (a worker silent "
            "for 120 s is ended and its run failed)..."
        )
    return None


def progress_line(run: Run, store: RunStore, latest: dict[str, float | None]) -> str | None:
    """One line: epoch, a bar, step, images/s, ETA and the latest loss/accuracy.

    None when a queued run ended since it was read (e.g. its worker was found dead): the next
    poll reports the end."""
    if run.status == "queued":
        ahead = store.queue_position(run.id)
        return None if ahead is None else f"queued: {ahead} run(s) ahead on {run.device}"
    progress = run.progress
    if progress is None:
        return "starting (loading TensorFlow and the data)..."
    filled = int(progress.fraction_done * PROGRESS_WIDTH)
    bar = "=" * filled + (">" if filled < PROGRESS_WIDTH else "") + " " * (PROGRESS_WIDTH - filled - 1)
    loss = latest.get("batch/loss")
    accuracy = latest.get("batch/accuracy")
    loss = float("nan") if loss is None else loss
    accuracy = float("nan") if accuracy is None else accuracy
    return (
        f"epoch {progress.epoch}/{progress.num_epochs} [{bar}]"
        f" step {progress.step}/{progress.total_steps}"
        f"  {progress.samples_per_second:,.0f} samples/s  ETA {format_clock(progress.eta_seconds)}"
        f"  loss {loss:.4f}  accuracy {accuracy:.4f}"
    )


def format_clock(seconds: float) -> str:
    """Minutes and seconds as a terminal clock shows them, for the progress line: ``75.4`` -> ``1:15``
    (the pages write durations out in words with ``ui.format_duration``)."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def describe_finished_run(run: Run) -> str:
    scores = run.final_metrics
    scored = f", test accuracy {scores.accuracy:.4f}" if scores is not None else ""
    saved = f"; model saved as {run.model_name!r} (python -m zoo models)" if run.model_name else ""
    lines = [f"run {run.id} {run.status}{scored}{saved}", f"data: {run.data_source}"]
    if scores is not None and scores.fine_tuning is not None:
        lines.append(scores.fine_tuning.summary() or "")
    return "\n".join(line for line in lines if line)


def command_evaluate(arguments: argparse.Namespace) -> int:
    from zoo.ml.evaluation import evaluate_saved_model
    from zoo.storage.models import open_local_zoo

    evaluation, source = evaluate_saved_model(
        arguments.model_name, open_local_zoo(), mnist_source=arguments.mnist_source
    )
    if arguments.json:
        summary = {"model_name": arguments.model_name, "data_source": source, **evaluation.scores().to_dict()}
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{arguments.model_name} on {source}")
    print(
        f"accuracy {evaluation.accuracy:.4f}  macro precision {evaluation.macro_precision:.4f}  "
        f"macro recall {evaluation.macro_recall:.4f}  macro F1 {evaluation.macro_f1:.4f}"
        + (f"  AUC {evaluation.auc:.4f}" if evaluation.auc is not None else "")
    )
    print(f"{'class':>5} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for label, precision, recall, f1, support in zip(
        evaluation.labels,
        evaluation.precision,
        evaluation.recall,
        evaluation.f1,
        evaluation.support,
        strict=True,
    ):
        print(f"{label:>5} {precision:>9.4f} {recall:>9.4f} {f1:>9.4f} {support:>8}")
    print(f"misclassified: {len(evaluation.misclassified)} of {len(evaluation.predicted)}")
    return 0


def command_runs(arguments: argparse.Namespace) -> int:
    from zoo.storage.models import open_local_zoo

    names = open_local_zoo().names_by_run()  # the names models have now: a model may be renamed or deleted
    executor = open_executor()
    executor.supervise()  # runs whose worker died or hung are listed failed, as the app would show them
    rows = [{**run.to_row(), "model_name": names.get(run.id)} for run in executor.store.list_runs()]
    print_rows(
        rows,
        arguments.json,
        ["id", "status", "kind", "dataset", "epochs", "test_accuracy", "model_name"],
        empty="no runs yet: start one with `python -m zoo train cnn` or `python -m zoo train binary`",
    )
    return 0


def command_models(arguments: argparse.Namespace) -> int:
    from zoo.storage.models import open_local_zoo

    store = open_local_zoo()
    entries, damaged = store.entries(), store.damaged()
    if arguments.json:
        rows = [{**entry.to_row(), "damaged": None} for entry in entries]
        print(json.dumps([*rows, *(model.to_row() for model in damaged)], indent=2))
        return 0
    print_rows(
        [entry.to_row() for entry in entries],
        False,
        ["name", "kind", "accuracy", "origin", "data_source"],
        empty="no models yet: train one with `python -m zoo train cnn`",
    )
    for model in damaged:
        print(f"damaged: {model.name}  {model.problem}")
    return 0


def command_stop(arguments: argparse.Namespace) -> int:
    run = open_executor().stop(arguments.run_id, by=LOCAL_USER)
    print(f"run {run.id}: {run.status} (stop requested)")
    return 0


def command_store_copy(arguments: argparse.Namespace) -> int:
    from zoo.runs.store import open_run_store as open_store
    from zoo.runs.transfer import copy_runs

    source, target = open_store(arguments.source), open_store(arguments.target)
    report = copy_runs(source, target, merge=arguments.merge)
    print(f"{report.summary()}: {source.url} -> {target.url}")
    return 0


def command_predict(arguments: argparse.Namespace) -> int:
    from zoo.ml.inference import Predictor, load_image, predict_digit
    from zoo.storage.models import open_local_zoo

    store = open_local_zoo()
    entry = store.entry(arguments.model_name)  # a model of the zoo, not any folder of that name
    predictor = Predictor.from_file(store.model_file(entry.name))
    rows, failed = [], False
    for image in arguments.images:
        try:
            prediction = predict_digit(predictor, load_image(image))
        except ZooError as error:
            print(f"error: {error}", file=sys.stderr)
            rows.append({"image": image, "error": str(error)})
            failed = True
            continue
        rows.append({"image": image, **prediction.to_row()})
        if arguments.json:
            continue
        if prediction.digit is not None and prediction.confidence is not None:
            print(f"{image}: {prediction.digit} ({prediction.confidence:.1%})")
        else:
            print(f"{image}: no digit ({prediction.preprocessed.message})")
    if arguments.json:
        print(json.dumps(rows, indent=2))
    return EXIT_ERROR if failed else 0


def command_doctor(arguments: argparse.Namespace) -> int:
    from zoo.app.health import check_health

    checks = check_health()
    try:
        settings = load_settings()
    except ZooError:  # the configuration check says why
        settings = None
    rows = settings.rows() if settings is not None else []
    if arguments.json:
        report = {
            "checks": [dataclasses.asdict(check) for check in checks],
            "settings": [dataclasses.asdict(row) for row in rows],
        }
        print(json.dumps(report, indent=2))
    else:
        for check in checks:
            print(f"{'ok' if check.ok else 'FAIL':<4}  {check.name}: {check.detail}")
        print()
        if settings is None:
            print("settings: not shown until the configuration check passes.")
        else:
            found = "" if settings.config_found else ", not there: the defaults and the environment"
            print(f"settings (config file: {settings.config_file}{found}):")
            labels = [row.variable or f"[{row.name}]" for row in rows]
            label_width, value_width = max(map(len, labels)), max(len(row.value) for row in rows)
            for label, row in zip(labels, rows, strict=True):
                print(f"  {label:<{label_width}}  {row.value:<{value_width}}  {row.source}")
    return 0 if all(check.ok for check in checks) else EXIT_ERROR


def command_push(arguments: argparse.Namespace) -> int:
    from zoo.hub import operations as hub
    from zoo.storage.models import open_local_zoo

    result = hub.push(
        arguments.model_name,
        arguments.repo_id,
        private=arguments.private,
        message=arguments.message,
        tag=arguments.tag,
        include_digits=arguments.include_digits,
        store=open_local_zoo(),
    )
    if arguments.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
        return 0
    tagged = f" (tagged {result.tag})" if result.tag else ""
    print(f"pushed {arguments.model_name} to {result.repo_id}: commit {result.commit}{tagged}")
    print(result.repo_url)
    return 0


def command_pull(arguments: argparse.Namespace) -> int:
    from zoo.hub import operations as hub
    from zoo.storage.models import open_local_zoo

    limit = None if arguments.max_download_mb is None else int(arguments.max_download_mb * 1_000_000)
    result = hub.pull(
        arguments.repo_id,
        revision=arguments.revision,
        name=arguments.name,
        max_download_bytes=limit,
        store=open_local_zoo(),
    )
    if arguments.json:
        print(json.dumps({**result.entry.to_row(), "made_by": result.made_by}, indent=2, default=str))
        return 0
    print(
        f"pulled {result.repo_id} at {result.revision} (commit {result.commit}) into the local zoo as "
        f"{result.entry.name!r} ({result.entry.kind}); the Draw page can use it now"
    )
    return 0


def command_hub_list(arguments: argparse.Namespace) -> int:
    from zoo.hub import operations as hub

    rows = [model.to_row() for model in hub.list_models(author=arguments.author, search=arguments.search)]
    print_rows(
        rows,
        arguments.json,
        ["repo_id", "kind", "accuracy", "macro_f1", "last_modified"],
        empty="no zoo-studio models match on the Hub",
    )
    return 0


def command_hub_revisions(arguments: argparse.Namespace) -> int:
    from zoo.hub import operations as hub

    rows = [revision.to_row() for revision in hub.list_revisions(arguments.repo_id)]
    print_rows(rows, arguments.json, ["ref_type", "name", "commit", "date", "title"], empty="no revisions")
    return 0


def command_hub_compare(arguments: argparse.Namespace) -> int:
    from zoo.hub import operations as hub

    comparison = hub.compare_revisions(arguments.repo_id, arguments.first, arguments.second)
    if not arguments.json:
        print(
            f"first: {comparison.first.revision} ({comparison.first.commit[:8]})  "
            f"second: {comparison.second.revision} ({comparison.second.commit[:8]})"
        )
    print_rows(
        [change.to_row() for change in comparison.changes()],
        arguments.json,
        ["metric", "first", "second", "change"],
        empty="neither revision's model card declares metrics",
    )
    return 0


def command_hub_tag(arguments: argparse.Namespace) -> int:
    from zoo.hub import operations as hub

    commit = hub.tag_revision(arguments.repo_id, arguments.tag, revision=arguments.revision)
    print(f"tagged {arguments.repo_id} commit {commit} as {arguments.tag}")
    return 0


def command_digits_add(arguments: argparse.Namespace) -> int:
    from zoo.core.names import check_set_name
    from zoo.ml.inference import load_image, preprocess
    from zoo.storage.digits import DigitStore, check_label

    check_set_name(arguments.set_name)
    label = check_label(arguments.label)
    read = []
    for image in arguments.images:  # all are read first: one unreadable image adds none of them
        pixels = load_image(image)
        preprocessed = preprocess(pixels)
        if preprocessed.digit is None:  # blank
            raise ZooError(f"{image}: {preprocessed.message}")
        read.append((pixels, preprocessed.digit))
    store = DigitStore()
    for pixels, digit in read:
        store.add(arguments.set_name, label, pixels, digit, by=LOCAL_USER)
    counts = store.counts(arguments.set_name, by=LOCAL_USER)
    print(f"added {len(read)} digit(s) {label} to {arguments.set_name}: {sum(counts)} digits in the set")
    return 0


def command_digits_list(arguments: argparse.Namespace) -> int:
    from zoo.storage.digits import DigitStore

    store = DigitStore()
    if arguments.set_name is None:
        counts = {name: store.counts(name, by=LOCAL_USER) for name in store.set_names(by=LOCAL_USER)}
        rows = [
            {
                "set": name,
                "owner": store.owner(name),
                "shared": store.is_shared(name),
                "digits": sum(each),
                **{str(digit): count for digit, count in enumerate(each)},
            }
            for name, each in counts.items()
        ]
        print_rows(
            rows,
            arguments.json,
            ["set", "owner", "shared", "digits", *map(str, range(10))],
            empty="no digit sets yet: correct a reading on the Draw page, or `python -m zoo digits add`",
        )
        return 0
    rows = [
        {
            "id": digit.id,
            "label": digit.label,
            "added": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(digit.created_at)),
        }
        for digit in store.digits(arguments.set_name, by=LOCAL_USER)
    ]
    print_rows(
        rows,
        arguments.json,
        ["id", "label", "added"],
        empty=f"the set {arguments.set_name!r} holds no digits",
    )
    return 0


def command_digits_export(arguments: argparse.Namespace) -> int:
    from pathlib import Path

    from zoo.storage.digits import DigitStore

    path = Path(arguments.path)
    exporters = {".npz": DigitStore.export_npz, ".zip": DigitStore.export_zip}
    if path.suffix not in exporters:
        raise ZooError(f"{path}: give a path ending in .npz (arrays) or .zip (PNG images).")
    content = exporters[path.suffix](DigitStore(), arguments.set_name, by=LOCAL_USER)
    try:
        path.write_bytes(content)
    except OSError as error:
        raise ZooError(
            f"{path} cannot be written ({error.strerror or error}); choose another path."
        ) from None
    print(f"wrote {arguments.set_name} to {path} ({len(content):,} bytes)")
    return 0


def command_digits_relabel(arguments: argparse.Namespace) -> int:
    from zoo.storage.digits import DigitStore

    digit = DigitStore().relabel(arguments.set_name, arguments.digit_id, arguments.label, by=LOCAL_USER)
    print(f"{arguments.set_name} {digit.id}: now labelled {digit.label}")
    return 0


def command_digits_delete(arguments: argparse.Namespace) -> int:
    from zoo.storage.digits import DigitStore

    DigitStore().delete(arguments.set_name, arguments.digit_id, by=LOCAL_USER)
    print(f"{arguments.set_name} {arguments.digit_id}: deleted")
    return 0


def command_digits_share(arguments: argparse.Namespace) -> int:
    from zoo.storage.digits import DigitStore

    DigitStore().set_shared(arguments.set_name, arguments.shared, by=LOCAL_USER)
    shared = "shared with everyone" if arguments.shared else "kept to its owner and admins"
    print(f"{arguments.set_name}: {shared}")
    return 0


def print_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[str], empty: str) -> None:
    """Print rows as JSON, or as an aligned table of ``columns`` (``empty`` when there are none)."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(empty)
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(columns)]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
