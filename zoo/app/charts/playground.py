"""The Playground's canvases: the plane (the decision surface, its 0.5 boundary and the points), the
loss curves and the hidden units' maps, drawn by a Streamlit component (``SCRIPT``, from
``playground.js``; mounted by ``ui.playground_canvas``) that stays in the page while a run trains.

Why not a Plotly chart: Streamlit 1.67 gives a ``st.plotly_chart`` an identity made of its figure, so
each new surface remounted the chart (a new Plotly plot from scratch): measured ~200 ms of the
browser's one thread per frame, which held the Playground to ~2 boundaries a second on a 2-core
machine; the first Plotly chart of a page also loads Plotly (~0.8 s of that thread, in the middle of
a run). A keyed component keeps its canvases; a new surface is one redraw (~35 ms with Streamlit's
own work). ``plane_data``, ``loss_data`` and ``unit_maps_data``: data in, the JSON drawn out, strict
JSON even for a run that diverged (the browser cannot read NaN: a value that is not finite is left out
of a curve, and drawn as "no opinion" on a map, the middle of its colours).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.app.charts.training import TEST_COLOR, TRAIN_COLOR, metric_values

if TYPE_CHECKING:
    import pandas as pd

    from zoo.ml.training import DecisionSurface

CLASS_COLORS = ("#d62728", "#1f77b4")  # class 0, class 1
BOUNDARY_COLORS = ("#f4a6a6", "#f7f7f7", "#9ecae1")  # P(1) = 0, 0.5, 1
UNIT_COLORS = ("#2166ac", "#f7f7f7", "#b2182b")  # a unit's lowest, middle and highest activation

SCRIPT = Path(__file__).with_name("playground.js").read_text(encoding="utf-8")
STYLE = """
.zoo-plane { position: relative; font-size: 14px; }
.zoo-title { font-weight: 600; margin-bottom: 4px; }
.zoo-plane-area { position: relative; }
.zoo-plane-hover { position: absolute; pointer-events: none; padding: 2px 6px; font-size: 12px;
  background: rgba(0, 0, 0, 0.75); color: white; border-radius: 4px; white-space: nowrap; }
.zoo-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; }
.zoo-legend i { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 4px; }
.zoo-maps-layer { display: flex; align-items: center; gap: 6px; }
.zoo-maps-name { writing-mode: vertical-rl; transform: rotate(180deg); font-size: 12px; opacity: 0.7; }
.zoo-maps-units { display: grid; gap: 4px; flex: 1; }
.zoo-maps-units figure { margin: 0; min-width: 0; }
.zoo-maps-units figcaption { font-size: 11px; text-align: center; overflow: hidden; white-space: nowrap; }
.zoo-maps-units canvas { display: block; margin: 0 auto; }
"""


def plane_data(
    surface: DecisionSurface | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> dict[str, Any]:
    """What the canvas draws: ``title``; the plane's extent ``x``/``y`` ([low, high]: the surface's
    grid with half a cell around it, or before the first surface the grid it will have);
    ``surface`` (its ``x``, ``y`` and ``probability`` rows, ``probability[i][j]`` at ``(x[j],
    y[i])``) or None; ``points`` by split, ``[x, y, label]`` each; the colours; and ``frame``, the
    surface's step (-1 before one), which the canvas writes on itself when drawn."""
    from zoo.ml.training import surface_grid

    if surface is not None:
        xs, ys = np.asarray(surface.x), np.asarray(surface.y)
    else:
        grid = surface_grid(np.asarray(x_train))  # where the first surface will be
        xs, ys = grid.xs, grid.ys
    half_x, half_y = (xs[-1] - xs[0]) / (len(xs) - 1) / 2, (ys[-1] - ys[0]) / (len(ys) - 1) / 2

    def points(features: np.ndarray, labels: np.ndarray) -> list[list[float]]:
        rounded = np.round(np.asarray(features, dtype=np.float64), 4).tolist()
        classes = np.asarray(labels).astype(int).tolist()
        return [[x, y, label] for (x, y), label in zip(rounded, classes, strict=True)]

    return {
        "kind": "plane",
        "title": "Decision boundary" + (f" · epoch {surface.epoch}" if surface is not None else ""),
        "x": [float(xs[0] - half_x), float(xs[-1] + half_x)],
        "y": [float(ys[0] - half_y), float(ys[-1] + half_y)],
        "surface": None if surface is None else drawn_surface(surface),
        "points": {"train": points(x_train, y_train), "test": points(x_test, y_test)},
        "class_colors": list(CLASS_COLORS),
        "colorscale": list(BOUNDARY_COLORS),
        "frame": surface.step if surface is not None else -1,
    }


def drawn_surface(surface: DecisionSurface) -> dict[str, Any]:
    return {"x": surface.x, "y": surface.y, "probability": finite(surface.probability, middle=0.5).tolist()}


def unit_maps_data(surface: DecisionSurface) -> dict[str, Any]:
    """What the maps' canvas draws: ``layers``, per hidden layer per unit the unit's activation over
    the surface's grid (rows as in ``probability``) scaled to 0-255 from its own lowest to its highest
    value (a unit that is the same everywhere is all 128); the colours; ``frame``, the surface's step."""

    def scaled(grid: list[list[float]]) -> list[list[int]]:
        values = np.asarray(grid, dtype=np.float64)
        known = values[np.isfinite(values)]
        if not known.size or known.max() == known.min():
            return np.full(values.shape, 128, dtype=int).tolist()
        low, high = known.min(), known.max()
        return finite(np.round((values - low) / (high - low) * 255), middle=128).astype(int).tolist()

    return {
        "kind": "maps",
        "layers": [[scaled(grid) for grid in units] for units in surface.hidden],
        "colorscale": list(UNIT_COLORS),
        "frame": surface.step,
    }


def loss_data(frame: pd.DataFrame) -> dict[str, Any]:
    """What the loss canvas draws: the train and test loss per epoch (the binary classifier's
    validation set is its test set) from a run's metrics frame, each thinned as ``metric_values``
    does; ``frame``, the last epoch drawn."""
    series = []
    for metric, name, color in (
        ("epoch/loss", "train loss", TRAIN_COLOR),
        ("epoch/val_loss", "test loss", TEST_COLOR),
    ):
        rows = metric_values(frame, metric)
        rows = rows[np.isfinite(rows["value"].to_numpy(dtype=np.float64))]
        series.append(
            {"name": name, "color": color, "x": rows["epoch"].tolist(), "y": rows["value"].tolist()}
        )
    return {
        "kind": "loss",
        "title": "Loss",
        "x_title": "epoch",
        "series": series,
        "frame": max((points["x"][-1] for points in series if points["x"]), default=0),
    }


def finite(values: Any, *, middle: float) -> np.ndarray:
    """``values`` (nested lists or an array) as an array, every value that is not finite made ``middle``."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(array), array, middle)
