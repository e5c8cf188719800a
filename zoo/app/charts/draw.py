"""Plotly figures for the Draw page: the ten probabilities, preprocessing steps, feature maps, saliency."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from zoo.app.charts import digit_heatmap

if TYPE_CHECKING:
    from zoo.core.scores import FineTuningReport

STEP_DISPLAY_SIDE = 112
PROBABILITY_BARS_HEIGHT = (
    210  # px: low enough that the Draw page's my digits start on a laptop's first screen
)
FEATURE_MAP_COLUMNS = 8


def probability_bars(probabilities: np.ndarray) -> go.Figure:
    """A bar per digit 0-9 with its probability; the predicted digit stands out."""
    values = np.asarray(probabilities, dtype=float)
    predicted = int(np.argmax(values))
    colors = ["#d62728" if digit == predicted else "#9ab7d3" for digit in range(len(values))]
    figure = go.Figure(
        go.Bar(
            x=[str(digit) for digit in range(len(values))],
            y=values,
            marker_color=colors,
            text=[f"{value:.0%}" for value in values],
            textposition="outside",
            hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
        )
    )
    figure.update_layout(
        height=PROBABILITY_BARS_HEIGHT,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        xaxis={"title": "digit", "type": "category"},
        yaxis={"title": "probability", "range": [0, 1.15], "tickformat": ".0%"},
        showlegend=False,
    )
    return figure


def step_figure(image: np.ndarray, title: str, max_side: int = STEP_DISPLAY_SIDE) -> go.Figure:
    """One preprocessing step as a heatmap (ink white on black, 0-1); images larger than ``max_side``
    are averaged down by whole blocks first, so the browser never gets a megapixel heatmap."""
    values = np.asarray(image, dtype=np.float32)
    factor = math.ceil(max(values.shape) / max_side)
    if factor > 1:
        height, width = (math.ceil(side / factor) * factor for side in values.shape)
        padded = np.zeros((height, width), np.float32)
        padded[: values.shape[0], : values.shape[1]] = values
        values = padded.reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))
    figure = digit_heatmap(values, title, colorscale="gray", size=150)
    figure.update_traces(zmin=0, zmax=1)
    # Grey around the image, so a narrow crop (a "1") shows its edges against the page.
    figure.update_layout(plot_bgcolor="#808080", title_font_size=13)
    return figure


def feature_maps_figure(maps: np.ndarray, title: str, columns: int = FEATURE_MAP_COLUMNS) -> go.Figure:
    """Every channel of one convolution layer's output (height, width, channels) as a tile, each
    scaled to its own range, in a grid ``columns`` wide with a gap between tiles."""
    values = np.asarray(maps, dtype=np.float32)
    height, width, channels = values.shape
    rows = math.ceil(channels / columns)
    mosaic = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan, np.float32)
    for channel in range(channels):
        tile = values[..., channel]
        low, high = float(tile.min()), float(tile.max())
        row, column = divmod(channel, columns)
        top, left = row * (height + 1), column * (width + 1)
        mosaic[top : top + height, left : left + width] = (tile - low) / (high - low) if high > low else 0.0
    display_width = 640
    figure = digit_heatmap(mosaic, title, colorscale="Viridis", size=display_width)
    figure.update_layout(height=int(display_width * mosaic.shape[0] / mosaic.shape[1]) + 32)
    return figure


def saliency_figure(digit: np.ndarray, saliency: np.ndarray, title: str = "Saliency") -> go.Figure:
    """The digit in gray with the saliency map (0-1) over it in red: where a small change of a pixel
    moves the predicted class's probability most."""
    figure = digit_heatmap(digit, title, colorscale="gray", size=260)
    figure.update_traces(zmin=0, zmax=1, hoverinfo="skip")
    figure.add_trace(
        go.Heatmap(
            z=np.asarray(saliency),
            zmin=0,
            zmax=1,
            colorscale=[[0.0, "rgba(255,40,40,0)"], [1.0, "rgba(255,40,40,0.9)"]],
            showscale=False,
            hovertemplate="row %{y}, column %{x}: %{z:.2f}<extra></extra>",
        )
    )
    return figure


def fine_tuning_table(report: FineTuningReport) -> pd.DataFrame:
    """Accuracy before and after fine-tuning, side by side: the MNIST test digits and the held-out
    part of the personal set."""
    rows = [("MNIST test digits", report.before.mnist_accuracy, report.after.mnist_accuracy)]
    before, after = report.before.personal_accuracy, report.after.personal_accuracy
    if before is not None and after is not None:  # both or neither: a run with a personal set
        rows.append((f"my held-out digits ({report.after.personal_test_digits})", before, after))
    return pd.DataFrame(
        {
            "test set": [label for label, _, _ in rows],
            "before": [before for _, before, _ in rows],
            "after": [after for _, _, after in rows],
            "change": [after - before for _, before, after in rows],
        }
    )


def fine_tuned_digits_table(report: FineTuningReport) -> pd.DataFrame:
    """Each digit of the personal set as the base model read it and as the fine-tuned model reads it,
    numbered as the set's gallery numbered it when the run started."""
    return pd.DataFrame(
        {
            "digit": [f"#{digit.number}" for digit in report.digits],
            "drawn": [digit.label for digit in report.digits],
            "part": ["held out" if digit.held_out else "trained on" for digit in report.digits],
            "base model read": [
                f"{digit.before} ({digit.before_probability:.0%})" for digit in report.digits
            ],
            "fine-tuned reads": [f"{digit.after} ({digit.after_probability:.0%})" for digit in report.digits],
            "change": [
                "now misread" if digit.regressed else "now right" if digit.fixed else ""
                for digit in report.digits
            ],
        }
    )
