"""Plotly figures (and table data) for training and evaluation: live curves (the Playground's live
views are ``playground``'s canvases), confusion matrix, ROC, per-class scores and runs side by side.

Pure functions: data in (metric frames made by ``metrics_frame`` from the rows of
``RunStore.metrics_since``, surfaces from ``RunStore.surface``, evaluation summaries), figures out.
Arrays are passed to Plotly as numpy arrays so they travel to the browser base64-encoded, which keeps
a live refresh cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from zoo.app.charts import LEGEND_BELOW, SUBPLOT_TITLE_SIZE

if TYPE_CHECKING:
    import pandas as pd

    from zoo.core.scores import ClassScores
    from zoo.core.spec import TrainSpec
    from zoo.runs.records import MetricRow, Run

TRAIN_COLOR, TEST_COLOR = "#1f77b4", "#ff7f0e"
MAX_CURVE_POINTS = 1500
CHART_MARGIN = {"l": 50, "r": 20, "t": 40, "b": 40}
METRIC_COLUMNS = ("step", "epoch", "name", "value", "wall_time")


def metrics_frame(rows: Sequence[MetricRow]) -> pd.DataFrame:
    """A run's metric rows (``RunStore.metrics_since``) as the frame the figures draw from: one row
    per value, with the columns ``METRIC_COLUMNS``, in the order reported."""
    import pandas as pd

    return pd.DataFrame.from_records(
        [(row.step, row.epoch, row.name, row.value, row.wall_time) for row in rows], columns=METRIC_COLUMNS
    )


def metric_values(frame: pd.DataFrame, name: str, max_points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """The rows of one metric (step, epoch, value), thinned to at most ``max_points`` evenly
    spaced rows (the last row always kept), so long histories stay cheap to draw."""
    rows = frame[frame["name"] == name]
    if len(rows) > max_points:
        keep = np.unique(np.linspace(0, len(rows) - 1, max_points).round().astype(int))
        rows = rows.iloc[keep]
    return rows


def _line(rows: pd.DataFrame, x: str, label: str, color: str | None, **options: Any) -> go.Scatter:
    return go.Scatter(
        x=rows[x].to_numpy(),
        y=rows["value"].to_numpy(),
        mode=options.pop("mode", "lines"),
        name=label,
        line={"color": color, **options.pop("line", {})},
        **options,
    )


def batch_curves(frame: pd.DataFrame) -> go.Figure:
    """Batch loss and batch accuracy against the training step, side by side."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Batch loss", "Batch accuracy"))
    figure.add_trace(_line(metric_values(frame, "batch/loss"), "step", "loss", TRAIN_COLOR), 1, 1)
    figure.add_trace(_line(metric_values(frame, "batch/accuracy"), "step", "accuracy", TRAIN_COLOR), 1, 2)
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    figure.update_annotations(font_size=SUBPLOT_TITLE_SIZE)
    figure.update_layout(height=300, showlegend=False, margin=CHART_MARGIN)
    return figure


def epoch_curves(frame: pd.DataFrame) -> go.Figure:
    """Training and validation loss and accuracy per epoch, side by side."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss per epoch", "Accuracy per epoch"))
    for column, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, label, color in (
            ("epoch/", "train", TRAIN_COLOR),
            ("epoch/val_", "validation", TEST_COLOR),
        ):
            rows = metric_values(frame, f"{prefix}{metric}")
            figure.add_trace(
                _line(
                    rows,
                    "epoch",
                    label,
                    color,
                    mode="lines+markers",
                    showlegend=column == 1,
                    legendgroup=label,
                ),
                1,
                column,
            )
    figure.update_xaxes(title_text="epoch", rangemode="tozero")
    figure.update_annotations(font_size=SUBPLOT_TITLE_SIZE)
    figure.update_layout(height=320, margin=CHART_MARGIN, legend=LEGEND_BELOW)
    return figure


def confusion_matrix_figure(
    matrix: Sequence[Sequence[int]], labels: Sequence[Any], selected: tuple[int, int] | None = None
) -> go.Figure:
    """Counts of (true, predicted) pairs as a heatmap, rows = true label, columns = predicted.

    Each cell carries a transparent marker whose ``customdata`` is ``[true, predicted]``, so a
    click on the cell selects it (``st.plotly_chart(on_select=...)`` reports the marker).
    """
    counts = np.asarray(matrix, dtype=int)
    names = [str(label) for label in labels]
    true_index, predicted_index = np.meshgrid(range(len(names)), range(len(names)), indexing="ij")
    figure = go.Figure(
        [
            go.Heatmap(
                x=names,
                y=names,
                z=np.log1p(counts),
                text=counts,
                texttemplate="%{text}",
                colorscale="Blues",
                showscale=False,
                hoverinfo="skip",
            ),
            go.Scatter(
                x=[names[j] for j in predicted_index.ravel()],
                y=[names[i] for i in true_index.ravel()],
                customdata=np.stack([true_index.ravel(), predicted_index.ravel()], axis=1),
                mode="markers",
                marker={"size": 28, "symbol": "square", "opacity": 0.01, "color": "black"},
                hovertemplate="true %{y}, predicted %{x}: %{text}<extra>click to show these</extra>",
                text=counts.ravel(),
                showlegend=False,
            ),
        ]
    )
    if selected is not None:
        figure.add_shape(
            type="rect",
            x0=selected[1] - 0.5,
            x1=selected[1] + 0.5,
            y0=selected[0] - 0.5,
            y1=selected[0] + 0.5,
            line={"color": "#ff7f0e", "width": 3},
        )
    figure.update_xaxes(title_text="predicted", type="category", side="top")
    figure.update_yaxes(title_text="true", type="category", autorange="reversed", scaleanchor="x")
    figure.update_layout(title="Confusion matrix", height=460, margin={"l": 50, "r": 10, "t": 80, "b": 10})
    return figure


def roc_figure(
    false_positive_rate: Sequence[float], true_positive_rate: Sequence[float], auc: float
) -> go.Figure:
    """The ROC curve with its area, and the diagonal of a classifier that guesses."""
    figure = go.Figure(
        [
            go.Scatter(
                x=np.asarray(false_positive_rate),
                y=np.asarray(true_positive_rate),
                mode="lines",
                name=f"ROC (AUC {auc:.3f})",
                line={"color": TRAIN_COLOR, "width": 2},
            ),
            go.Scatter(
                x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": "gray", "dash": "dash"}
            ),
        ]
    )
    figure.update_layout(
        title=f"ROC curve · AUC {auc:.3f}",
        height=360,
        margin=CHART_MARGIN,
        xaxis={"title": "false positive rate", "range": [0, 1]},
        yaxis={"title": "true positive rate", "range": [0, 1.02], "scaleanchor": "x"},
        legend=LEGEND_BELOW,
    )
    return figure


def per_class_table(per_class: Sequence[ClassScores]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, one row each (``Scores.per_class``)."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "class": str(scores.label),
                "precision": scores.precision,
                "recall": scores.recall,
                "F1": scores.f1,
                "support": int(scores.support),
            }
            for scores in per_class
        ]
    )


def overlay_curves(frames: Mapping[str, pd.DataFrame], metric: str) -> go.Figure:
    """One metric of several runs on one chart, one line per run (x: epoch or step)."""
    x = "epoch" if metric.startswith("epoch/") else "step"
    figure = go.Figure()
    for label, frame in frames.items():
        figure.add_trace(
            _line(
                metric_values(frame, metric),
                x,
                label,
                None,
                mode="lines+markers" if x == "epoch" else "lines",
            )
        )
    figure.update_layout(title=metric, height=380, margin=CHART_MARGIN, xaxis_title=x, legend=LEGEND_BELOW)
    return figure


def runs_table(runs: Sequence[Run], model_names: Mapping[str, str]) -> pd.DataFrame:
    """One row per run: status, kind, data source, device, duration and final metrics.

    ``model_names`` maps run ids to their model's current name in the local zoo.
    """
    import pandas as pd

    rows = []
    for run in runs:
        scores = run.final_metrics
        rows.append(
            {
                "run": run.id,
                "status": run.status,
                "kind": run.kind,
                "saved model": model_names.get(run.id, ""),
                "dataset": run.spec.dataset,
                "epochs": run.spec.num_epochs,
                "batch": run.spec.batch_size,
                "learning rate": run.spec.learning_rate,
                "optimizer": run.spec.optimizer,
                "hidden layers": layers_of(run.spec),
                "activation": run.spec.activation,
                "test accuracy": scores.accuracy if scores is not None else None,
                "macro F1": scores.macro_f1 if scores is not None else None,
                "AUC": scores.auc if scores is not None else None,
                "data source": run.data_source or "",
                "device": run.device,
                "owner": run.owner,
                "started": pd.Timestamp(run.created_at, unit="s").floor("s"),
                "duration (s)": round(run.duration_seconds, 1) if run.duration_seconds is not None else None,
                "message": run.message or "",
            }
        )
    return pd.DataFrame(rows, columns=None if rows else ["run", "status", "kind"])


def layers_of(spec: TrainSpec) -> str:
    """A run's hidden layers in a few characters: units per dense layer (``8,8``), after the
    convolutions' filters for the CNN (``conv 32,64,64 · 64``)."""
    dense = ",".join(map(str, spec.hidden_units))
    return f"conv {','.join(map(str, spec.conv_filters))} · {dense}" if spec.kind == "cnn" else dense


def enlarge_digit(image: np.ndarray, factor: int = 3) -> np.ndarray:
    """Scale a small image up by repeating pixels, so the browser shows crisp squares, not a blur."""
    return np.kron(np.asarray(image), np.ones((factor, factor), dtype=np.asarray(image).dtype))
