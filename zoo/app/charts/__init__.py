"""Plotly figure builders: pure functions, data in, ``go.Figure`` out.

One module per area of the app: ``training`` (Train, Playground, Runs, evaluation),
``learn`` (the Learn page) and ``draw`` (the Draw page). Pieces used by several areas
live here.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

# The legend in rows along the figure's bottom edge, under the axis titles: Plotly widens the bottom
# margin to hold it, so at any width (a phone's 358 px or a laptop's column) it covers no title,
# subplot title, axis or tick label; its entries wrap onto more rows when the figure is narrow.
LEGEND_BELOW = {
    "orientation": "h",
    "yref": "container",
    "y": 0,
    "yanchor": "bottom",
    "x": 0,
    "xanchor": "left",
}
SUBPLOT_TITLE_SIZE = 13  # px: two or three subplot titles side by side fit a phone's width


def digit_heatmap(
    image: np.ndarray, title: str = "", *, colorscale: str = "gray_r", size: int = 220
) -> go.Figure:
    """Show a 2-D array (e.g. a 28x28 digit, a feature map) as a square heatmap, row 0 at the top."""
    figure = go.Figure(go.Heatmap(z=np.asarray(image), colorscale=colorscale, showscale=False))
    figure.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    figure.update_xaxes(visible=False)
    figure.update_layout(
        title=title or None, width=size, height=size, margin={"l": 4, "r": 4, "t": 28 if title else 4, "b": 4}
    )
    return figure
