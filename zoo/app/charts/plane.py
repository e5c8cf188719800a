"""The Playground's plane: the decision surface, its 0.5 boundary and the points, drawn on a canvas
by a Streamlit component (``SCRIPT``, from ``plane.js``; mounted by ``ui.decision_plane``) that stays
in the page while a run trains.

Why not a Plotly chart: Streamlit 1.67 gives a ``st.plotly_chart`` an identity made of its figure, so
each new surface remounted the chart (a new Plotly plot from scratch): measured ~200 ms of the
browser's one thread per frame, which held the Playground to ~2 boundaries a second on a 2-core
machine. A keyed component keeps its canvas; a new surface is one redraw (~35 ms with Streamlit's
own work). ``plane_data``: data in, the JSON the canvas draws out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from zoo.ml.training import DecisionSurface

CLASS_COLORS = ("#d62728", "#1f77b4")  # class 0, class 1
BOUNDARY_COLORS = ("#f4a6a6", "#f7f7f7", "#9ecae1")  # P(1) = 0, 0.5, 1

SCRIPT = Path(__file__).with_name("plane.js").read_text(encoding="utf-8")
STYLE = """
.zoo-plane { position: relative; font-size: 14px; }
.zoo-plane-title { font-weight: 600; margin-bottom: 4px; }
.zoo-plane-area { position: relative; }
.zoo-plane-hover { position: absolute; pointer-events: none; padding: 2px 6px; font-size: 12px;
  background: rgba(0, 0, 0, 0.75); color: white; border-radius: 4px; white-space: nowrap; }
.zoo-plane-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; }
.zoo-plane-legend i { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 4px; }
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
        "title": "Decision boundary" + (f" · epoch {surface.epoch}" if surface is not None else ""),
        "x": [float(xs[0] - half_x), float(xs[-1] + half_x)],
        "y": [float(ys[0] - half_y), float(ys[-1] + half_y)],
        "surface": None
        if surface is None
        else {"x": surface.x, "y": surface.y, "probability": surface.probability},
        "points": {"train": points(x_train, y_train), "test": points(x_test, y_test)},
        "class_colors": list(CLASS_COLORS),
        "colorscale": list(BOUNDARY_COLORS),
        "frame": surface.step if surface is not None else -1,
    }
