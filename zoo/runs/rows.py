"""What every run-store backend shares about rows: how a run, a surface and a metric batch are kept in
columns and read back, which queued runs may start, the caps on live runs and a run's place in its
queue. The SQL dialects stay in the backends (``sqlite.py``, ``postgres.py``); these take the rows
their queries return (anything read by column name: ``sqlite3.Row``, a dict).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from zoo.core.errors import RunError
from zoo.core.hosting import PermissionDenied
from zoo.core.scores import Scores
from zoo.core.settings import Limits
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, Environment, Progress
from zoo.runs.records import (
    DAMAGED_STATUS,
    LANES,
    MetricRow,
    MetricsReport,
    Placement,
    Run,
    RunEvent,
    lane_of,
)

# The columns of the runs table, as every backend names them (the order of ``Run``'s record).
RUN_COLUMNS = (
    "id",
    "kind",
    "status",
    "spec",
    "device",
    "created_at",
    "started_at",
    "ended_at",
    "heartbeat_at",
    "stop_requested",
    "data_source",
    "environment",
    "progress",
    "final_metrics",
    "model_name",
    "message",
    "owner",
    "executor",
    "host",
    "worker",
)
METRIC_COLUMNS = ("run_id", "step", "epoch", "name", "value", "wall_time")
EVENT_COLUMNS = ("run_id", "time", "kind", "message")

logger = logging.getLogger(__name__)


class Row(Protocol):
    """A row read by column name."""

    def __getitem__(self, column: str, /) -> Any: ...


def no_such_run(run_id: str) -> RunError:
    """The one message for a run id the store does not hold."""
    return RunError(f"there is no run {run_id!r}; `python -m zoo runs` lists the run ids.")


@contextlib.contextmanager
def of_a_known_run(run_id: str, integrity_error: type[Exception]) -> Iterator[None]:
    """Rows written for ``run_id``: a run the store does not hold (the row's foreign key fails, the
    backend's ``integrity_error``) is a ``RunError`` naming it, not the database's bare error."""
    try:
        yield
    except integrity_error as error:
        raise no_such_run(run_id) from error


def metric_rows(run_id: str, reports: Sequence[MetricsReport]) -> list[tuple[Any, ...]]:
    """The metrics table's rows of a batch of reports (``METRIC_COLUMNS``), in the order reported."""
    return [
        (run_id, report.progress.step, report.progress.epoch, name, value, report.wall_time)
        for report in reports
        for name, value in report.metrics.items()
    ]


def run_columns(run: Run) -> tuple[Any, ...]:
    """A run as the runs table keeps it (``RUN_COLUMNS``): what a store copied from another writes."""
    placement = run.placement
    return (
        run.id,
        run.kind,
        run.status,
        json.dumps(run.spec.to_dict()),
        run.device,
        run.created_at,
        run.started_at,
        run.ended_at,
        run.heartbeat_at,
        run.stop_requested,
        run.data_source,
        json.dumps(run.environment.to_dict()) if run.environment is not None else None,
        json.dumps(run.progress.to_dict()) if run.progress is not None else None,
        scores_column(run.final_metrics),
        run.model_name,
        run.message,
        run.owner,
        placement.executor if placement else None,
        placement.host if placement else None,
        placement.worker if placement else None,
    )


def copied_metric_rows(run_id: str, rows: Sequence[MetricRow]) -> list[tuple[Any, ...]]:
    """The metrics table's rows (``METRIC_COLUMNS``) of another store's metric rows, in their order."""
    return [(run_id, row.step, row.epoch, row.name, row.value, row.wall_time) for row in rows]


def event_rows(run_id: str, events: Sequence[RunEvent]) -> list[tuple[Any, ...]]:
    """The events table's rows (``EVENT_COLUMNS``) of a run's event log, oldest first."""
    return [(run_id, event.time, event.kind, event.message) for event in events]


def progress_column(reports: Sequence[MetricsReport]) -> str:
    """The run's progress column after a batch: the last report's."""
    return json.dumps(reports[-1].progress.to_dict())


def scores_column(final_metrics: Scores | None) -> str:
    """A run's final_metrics column. No scores are kept as {}: what older versions read as none
    (null would be damage to them)."""
    return json.dumps(final_metrics.to_dict() if final_metrics is not None else {})


def surface_columns(surface: DecisionSurface) -> tuple[int, int, str]:
    """A surface as its columns: step, epoch and the rest as JSON."""
    payload = surface.to_dict()
    step, epoch = payload.pop("step"), payload.pop("epoch")  # they have columns of their own
    return step, epoch, json.dumps(payload)


def surface_from_row(row: Row) -> DecisionSurface:
    """The surface a surfaces row keeps."""
    payload = json.loads(row["payload"])
    return DecisionSurface.from_dict({**payload, "step": row["step"], "epoch": row["epoch"]})


def startable(rows: Sequence[Row], slots: int, host: str | None) -> dict[str, str]:
    """The queued runs that may start on ``host`` now, with their backends: the first of each lane
    (``rows``: a device's queued and running runs, oldest first; the queue is shared by every host)
    whose runs running on ``host`` leave one of its ``slots`` free."""
    running = dict.fromkeys(LANES, 0)
    for row in rows:
        if row["status"] == "running" and row["host"] == host:
            running[lane_of(row["kind"])] += 1
    chosen, seen = {}, set()
    for row in rows:
        lane = lane_of(row["kind"])
        if row["status"] == "queued" and lane not in seen:
            seen.add(lane)  # only the first of a lane may start: each lane keeps its order
            if running[lane] < slots:
                chosen[row["id"]] = backend_of(row["spec"])
    return chosen


def claim_statement(run_id: str, placement: Placement, marker: str) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE that marks a queued run running at ``placement`` (it changes no row when the run is
    not queued), with its values, in a backend's parameter marker (``?`` or ``%s``)."""
    now = time.time()
    statement = (
        f"UPDATE runs SET status = 'running', started_at = {marker}, heartbeat_at = {marker}, "
        f"executor = {marker}, host = {marker}, worker = {marker} WHERE id = {marker} AND status = 'queued'"
    )
    return statement, (now, now, placement.executor, placement.host, placement.worker, run_id)


def claimed(get: Callable[[str], Run], run_id: str, placement: Placement) -> Run:
    """The run a worker has just claimed, as the store now has it (``get``), said in the log."""
    logger.info("run %s claimed by worker %s on %s", run_id, placement.worker, placement.host)
    return get(run_id)


def backend_of(spec_json: str) -> str:
    """The backend a run's spec names; ``auto`` (no pool's) for a damaged spec."""
    try:
        return json.loads(spec_json).get("backend", "auto")
    except (ValueError, AttributeError):
        return "auto"


def check_active_caps(mine: int, everyone: int, limits: Limits) -> None:
    """Refuse a new run when its owner has ``mine`` live runs, or the host ``everyone``, at a cap.

    Raises:
        PermissionDenied: a cap is reached.
    """
    if limits.active_runs_per_owner is not None and mine >= limits.active_runs_per_owner:
        raise PermissionDenied(
            f"you have {mine} runs queued or running, this host's limit per person; wait for one to end "
            "or stop one, then start this run again."
        )
    if limits.active_runs is not None and everyone >= limits.active_runs:
        raise PermissionDenied(
            f"this host has {everyone} runs queued or running, its limit; start this run again when one ends."
        )


def queue_position(rows: Sequence[Row], run: Run) -> int:
    """How many runs are ahead of the queued ``run`` in its lane (``rows``: its device's queued and
    running runs, oldest first), the running ones included."""
    lane = [row for row in rows if lane_of(row["kind"]) == lane_of(run.kind)]
    position = [row["id"] for row in lane].index(run.id)
    return sum(row["status"] == "running" for row in lane) + sum(
        row["status"] == "queued" for row in lane[:position]
    )


def run_from_row(row: Row) -> Run:
    """The run a row records; a row with a column that cannot be read back is a run with status
    ``damaged`` whose message says which column and how to get rid of it (one bad row never hides
    the others)."""
    problems: list[str] = []

    def read(column: str, parse: Callable[[Any], Any], default: Any) -> Any:
        try:
            return default if row[column] is None else parse(json.loads(row[column]))
        except (ValueError, TypeError, AttributeError) as error:  # ZooError is a ValueError too
            problems.append(f"its {column} is not valid ({error})")
            return default

    stand_in = TrainSpec.binary() if row["kind"] == "binary" else TrainSpec.cnn()
    spec = read("spec", TrainSpec.from_dict, stand_in)
    environment = read("environment", lambda values: Environment.from_dict(values) if values else None, None)
    progress = read("progress", lambda values: Progress.from_dict(values) if values else None, None)
    final_metrics = read("final_metrics", lambda values: Scores.from_dict(values) if values else None, None)
    status, message = row["status"], row["message"]
    if problems:
        status = DAMAGED_STATUS
        message = (
            f"the record of run {row['id']} in the run store is damaged: {'; '.join(problems)}; the "
            "other runs are unaffected: delete it on the Runs page."
        )
    placement = (
        Placement(row["executor"], row["host"], row["worker"], row["device"]) if row["executor"] else None
    )
    return Run(
        id=row["id"],
        kind=row["kind"],
        status=status,
        spec=spec,
        device=row["device"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        placement=placement,
        data_source=row["data_source"],
        environment=environment,
        progress=progress,
        final_metrics=final_metrics,
        model_name=row["model_name"],
        message=message,
        owner=row["owner"],
        stop_requested=bool(row["stop_requested"]),
        heartbeat_at=row["heartbeat_at"],
    )
