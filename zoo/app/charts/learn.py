"""Plotly figures for the Learn page: pure functions, numbers from ``zoo.ml.formulas`` in,
``go.Figure`` out."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from zoo.app.charts import LEGEND_BELOW, SUBPLOT_TITLE_SIZE, digit_heatmap
from zoo.core.vocabulary import OPTIMIZER_LABELS
from zoo.ml.formulas import BackpropTrace, ConvolutionStep, NetworkWeights, Trajectory

ACTIVATION_TITLES = {"sigmoid": "Sigmoid σ(z)", "relu": "ReLU max(0, z)", "tanh": "tanh(z)"}
LOSS_TITLES = {
    "mse": "MSE",
    "binary_crossentropy": "Binary cross-entropy",
    "categorical_crossentropy": "Categorical cross-entropy",
}
OPTIMIZER_COLORS = {"sgd": "#d62728", "momentum": "#1f77b4", "adam": "#2ca02c"}
SATURATED_COLOR = "rgba(128, 128, 128, 0.15)"
MAX_RACE_FRAMES = 60
PIPELINE_COLUMNS = 3


def neuron_figure(
    z_grid: np.ndarray, curve: np.ndarray, z: float, a: float, activation_name: str
) -> go.Figure:
    """The activation curve with the neuron's current (z, a) marked on it."""
    figure = go.Figure(go.Scatter(x=z_grid, y=curve, mode="lines", name=activation_name))
    figure.add_trace(
        go.Scatter(
            x=[z, z, z_grid[0]],
            y=[float(np.min(curve)), a, a],
            mode="lines",
            line={"dash": "dot", "color": "grey"},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[z],
            y=[a],
            mode="markers+text",
            marker={"size": 14, "color": "#d62728"},
            text=[f"z={z:.3f}, a={a:.3f}"],
            textposition="top left",
            name="this neuron",
        )
    )
    figure.update_layout(
        xaxis_title="z (weighted sum)",
        yaxis_title="a = activation(z)",
        height=340,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        showlegend=False,
    )
    return figure


def activations_figure(
    z_grid: np.ndarray,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    saturation: dict[str, list[tuple[float, float]]],
) -> go.Figure:
    """One panel per activation: the function, its derivative (dashed) and shaded saturated regions."""
    names = list(curves)
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=[ACTIVATION_TITLES[n] for n in names])
    shapes: list[dict] = []
    for column, name in enumerate(names, start=1):
        values, derivative = curves[name]
        figure.add_trace(
            go.Scatter(x=z_grid, y=values, name="f(z)", line={"color": "#1f77b4"}, showlegend=column == 1),
            row=1,
            col=column,
        )
        figure.add_trace(
            go.Scatter(
                x=z_grid,
                y=derivative,
                name="f′(z)",
                line={"color": "#ff7f0e", "dash": "dash"},
                showlegend=column == 1,
            ),
            row=1,
            col=column,
        )
        axis = "x" if column == 1 else f"x{column}"
        for start, end in saturation[name]:
            # The shapes go in as one batch: plotly's add_vrect copies the layout each time.
            shapes.append(
                {
                    "type": "rect",
                    "xref": axis,
                    "yref": f"y{'' if column == 1 else column} domain",
                    "x0": start,
                    "x1": end,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": SATURATED_COLOR,
                    "line": {"width": 0},
                }
            )
    # The shading's legend entry (a word over each shaded region ran into its neighbour on a phone).
    figure.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"symbol": "square", "size": 12, "color": SATURATED_COLOR},
            name="saturated",
        )
    )
    figure.update_annotations(font_size=SUBPLOT_TITLE_SIZE)
    figure.update_layout(shapes=shapes)
    figure.update_xaxes(title_text="z")
    figure.update_layout(height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend=LEGEND_BELOW)
    return figure


def losses_figure(
    predictions: np.ndarray,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    label: float,
    chosen_prediction: float,
) -> go.Figure:
    """Each loss (left) and its gradient dL/dp (right) against the predicted probability p of the label."""
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=(f"Loss for label y = {label:g}", "dL/dp, clipped at ±20")
    )
    colors = ("#1f77b4", "#d62728", "#2ca02c")
    for color, (name, (values, gradients)) in zip(colors, curves.items(), strict=False):
        figure.add_trace(
            go.Scatter(x=predictions, y=values, name=LOSS_TITLES[name], line={"color": color}), row=1, col=1
        )
        figure.add_trace(
            go.Scatter(
                x=predictions,
                y=np.clip(gradients, -20, 20),
                name=LOSS_TITLES[name],
                line={"color": color, "dash": "dash"},
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    for column in (1, 2):
        figure.add_vline(x=chosen_prediction, line={"dash": "dot", "color": "grey"}, row=1, col=column)
    # p: the predicted probability of class 1 (the page's ŷ); short, so that two panels fit a phone
    figure.update_xaxes(title_text="p = P(class 1)", range=[0, 1])
    figure.update_yaxes(range=[0, 8], row=1, col=1)
    figure.update_annotations(font_size=SUBPLOT_TITLE_SIZE)
    figure.update_layout(height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend=LEGEND_BELOW)
    return figure


def backprop_network_figure(weights: NetworkWeights, trace: BackpropTrace) -> go.Figure:
    """The 2-3-1 network: nodes show activations, edges the weights; colour = sign of dL/dw, width = |dL/dw|.

    Hover an edge for its weight, gradient and updated weight.
    """
    inputs = trace.inputs[0]
    hidden = trace.hidden_a[0]
    output = trace.output_a[0, 0]
    positions: dict = {("x", 0): (0.0, 0.75), ("x", 1): (0.0, 0.25)}
    positions |= {("h", j): (1.0, 0.9 - 0.4 * j) for j in range(3)}
    positions[("o", 0)] = (2.0, 0.5)
    edges = [
        (
            ("x", i),
            ("h", j),
            weights.hidden_kernel[i, j],
            trace.gradients.hidden_kernel[i, j],
            trace.updated.hidden_kernel[i, j],
            f"w¹[{i + 1},{j + 1}]",
        )
        for i in range(2)
        for j in range(3)
    ] + [
        (
            ("h", j),
            ("o", 0),
            weights.output_kernel[j, 0],
            trace.gradients.output_kernel[j, 0],
            trace.updated.output_kernel[j, 0],
            f"w²[{j + 1}]",
        )
        for j in range(3)
    ]
    largest = max(abs(edge[3]) for edge in edges) or 1.0
    figure = go.Figure()
    for start, end, weight, gradient, updated, name in edges:
        (x0, y0), (x1, y1) = positions[start], positions[end]
        hover = f"{name} = {weight:.4f}<br>∂L/∂w = {gradient:.6f}<br>after update: {updated:.4f}"
        figure.add_trace(
            go.Scatter(
                x=[x0, (x0 + x1) / 2, x1],
                y=[y0, (y0 + y1) / 2, y1],
                mode="lines",
                line={"width": 1 + 7 * abs(gradient) / largest, "color": _sign_color(gradient)},
                hovertext=[hover] * 3,
                hoverinfo="text",
                showlegend=False,
            )
        )
    node_labels = [f"x{i + 1} = {inputs[i]:.3f}" for i in range(2)]
    node_labels += [f"a¹{j + 1} = {hidden[j]:.3f}<br>z = {trace.hidden_z[0, j]:.3f}" for j in range(3)]
    node_labels.append(f"ŷ = {output:.4f}<br>z = {trace.output_z[0, 0]:.3f}")
    node_positions = list(positions.values())
    figure.add_trace(
        go.Scatter(
            x=[p[0] for p in node_positions],
            y=[p[1] for p in node_positions],
            mode="markers+text",
            marker={"size": 34, "color": "white", "line": {"width": 2, "color": "black"}},
            text=node_labels,
            textposition="bottom center",
            hoverinfo="text",
            showlegend=False,
        )
    )
    figure.update_xaxes(visible=False, range=[-0.4, 2.4])
    figure.update_yaxes(visible=False, range=[-0.15, 1.05])
    figure.update_layout(
        height=400,
        margin={"l": 4, "r": 4, "t": 60, "b": 4},
        title={
            "text": f"Loss L = {trace.loss:.6f}",
            # the key on a line of its own, short enough for a phone
            "subtitle": {"text": "edge: red ∂L/∂w > 0, blue < 0; width ∝ |∂L/∂w|"},
        },
    )
    return figure


def _race_frame_indices(num_points: int) -> list[int]:
    if num_points <= MAX_RACE_FRAMES:
        return list(range(1, num_points + 1))
    return sorted({round(i) for i in np.linspace(1, num_points, MAX_RACE_FRAMES)})


def optimizer_race_figure(
    xs: np.ndarray,
    ys: np.ndarray,
    values: np.ndarray,
    trajectories: dict[str, Trajectory],
    minimum: Sequence[float],
    title: str = "",
) -> go.Figure:
    """Contours of a 2-D loss surface with each optimizer's path, animated (Play) step by step.

    ``values`` is the surface on the grid (rows follow ``ys``); contours use log(1 + f - min f) so
    steep and flat regions both show.
    """
    levels = np.log1p(values - values.min())
    figure = go.Figure(
        go.Contour(
            x=xs,
            y=ys,
            z=levels,
            colorscale="Greys",
            showscale=False,
            ncontours=30,
            opacity=0.6,
            contours={"coloring": "heatmap"},
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[minimum[0]],
            y=[minimum[1]],
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": "gold"},
            name="minimum",
        )
    )
    longest = max(len(t.points) for t in trajectories.values())
    frame_ends = _race_frame_indices(longest)
    for name, trajectory in trajectories.items():
        label = OPTIMIZER_LABELS[name] + (" (diverged)" if trajectory.diverged else "")
        figure.add_trace(
            go.Scatter(
                x=trajectory.points[:, 0],
                y=trajectory.points[:, 1],
                mode="lines+markers",
                name=label,
                line={"color": OPTIMIZER_COLORS[name], "width": 2},
                marker={"size": 4},
            )
        )
    moving = list(range(2, 2 + len(trajectories)))
    # Frames as plain dicts: plotly validates them once, when they join the figure.
    figure.frames = [
        {
            "name": str(end - 1),
            "traces": moving,
            "data": [
                {"type": "scatter", "x": t.points[:end, 0], "y": t.points[:end, 1]}
                for t in trajectories.values()
            ],
        }
        for end in frame_ends
    ]
    frame_names = [str(end - 1) for end in frame_ends]
    play = {"frame": {"duration": 60, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    # Top down, each on rows of its own so that nothing overlaps on a phone: the title with the legend
    # under it (one block, which Plotly makes room for above the plot however many rows its entries
    # take), the plot, Play/Pause, the step slider.
    figure.update_layout(
        height=620,
        margin={"l": 10, "r": 10, "t": 10, "b": 180},
        xaxis={"range": [float(xs[0]), float(xs[-1])], "title": "x"},
        yaxis={"range": [float(ys[0]), float(ys[-1])], "title": "y"},
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 1.02,
            "yanchor": "bottom",
            "title": {"text": title, "side": "top", "font": {"size": 16}},
        },
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 50, "r": 10},
                "showactive": False,
                "buttons": [
                    {"label": "▶ Play", "method": "animate", "args": [frame_names, play]},
                    {
                        "label": "Pause",
                        "method": "animate",
                        "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}],
                    },
                ],
            }
        ],
        sliders=[
            {
                "currentvalue": {"prefix": "step "},
                "x": 0.0,
                "len": 1.0,
                "y": 0.0,
                "yanchor": "top",
                "pad": {"t": 100},
                "active": len(frame_names) - 1,
                "steps": [
                    {
                        "label": name,
                        "method": "animate",
                        "args": [[name], {"mode": "immediate", "frame": {"duration": 0, "redraw": False}}],
                    }
                    for name in frame_names
                ],
            }
        ],
    )
    return figure


def loss_over_steps_figure(trajectories: dict[str, Trajectory]) -> go.Figure:
    """Loss per step for each optimizer of the race (log scale when all losses are positive)."""
    figure = go.Figure()
    for name, trajectory in trajectories.items():
        figure.add_trace(
            go.Scatter(
                y=trajectory.losses,
                mode="lines",
                name=OPTIMIZER_LABELS[name],
                line={"color": OPTIMIZER_COLORS[name]},
            )
        )
    positive = all(np.all(t.losses > 0) for t in trajectories.values())
    figure.update_yaxes(type="log" if positive else "linear", title_text="f(x, y)")
    figure.update_xaxes(title_text="step")
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend=LEGEND_BELOW)
    return figure


def kernel_figure(kernel: np.ndarray, title: str = "kernel") -> go.Figure:
    """A small matrix (kernel, window, products) as a heatmap with each value written in its cell."""
    kernel = np.asarray(kernel, dtype=np.float64)
    figure = digit_heatmap(kernel, title, colorscale="RdBu", size=200)
    bound = float(np.max(np.abs(kernel))) or 1.0
    figure.update_traces(
        zmin=-bound, zmax=bound, text=np.round(kernel, 2), texttemplate="%{text}", textfont={"size": 13}
    )
    return figure


def convolution_figures(
    image: np.ndarray, step: ConvolutionStep, full_output: np.ndarray
) -> tuple[go.Figure, go.Figure]:
    """The digit with the kernel's current window outlined, and the output feature map filled in so far."""
    kernel_rows, kernel_columns = step.window.shape
    digit = digit_heatmap(image, f"input: kernel at row {step.row}, column {step.column}", size=320)
    digit.add_shape(
        type="rect",
        x0=step.column - 0.5,
        x1=step.column + kernel_columns - 0.5,
        y0=step.row - 0.5,
        y1=step.row + kernel_rows - 0.5,
        line={"color": "#d62728", "width": 3},
    )
    bound = float(np.max(np.abs(full_output))) or 1.0
    output = digit_heatmap(
        step.partial_output,
        f"feature map: {step.step} of {full_output.size} filled",
        colorscale="RdBu",
        size=320,
    )
    output.update_traces(zmin=-bound, zmax=bound, zmid=0)
    rows, columns = full_output.shape
    # constrain="domain": the plot area keeps the map's square shape at any width, so the shaded
    # "not reached yet" background is exactly the rest of the map.
    output.update_xaxes(range=[-0.5, columns - 0.5], constrain="domain")
    output.update_yaxes(range=[rows - 0.5, -0.5], autorange=False, constrain="domain")
    output.update_layout(plot_bgcolor="#fdf3d8")  # the positions the kernel has not reached yet
    output.add_shape(
        type="rect",
        x0=step.column - 0.5,
        x1=step.column + 0.5,
        y0=step.row - 0.5,
        y1=step.row + 0.5,
        line={"color": "#d62728", "width": 3},
    )
    return digit, output


def pipeline_figure(steps: Sequence[tuple[str, str, str]]) -> go.Figure:
    """The pipeline as boxes joined by arrows, ``PIPELINE_COLUMNS`` to a row, every other row running
    right to left (so each arrow is short); each box's title links to ``url`` (a page path). Three
    boxes to a row leave each wide enough for its words on a phone (six in a row ran into each other
    there) as on a laptop.

    ``steps``: (title, what happens there, url) per box, in order.
    """
    width, gap, height, row_gap = 1.0, 0.3, 1.0, 0.45
    shapes, annotations = [], []
    previous = None  # the last box's (left, bottom)
    for index, (title, caption, url) in enumerate(steps):
        row, place = divmod(index, PIPELINE_COLUMNS)
        column = place if row % 2 == 0 else PIPELINE_COLUMNS - 1 - place
        left, bottom = column * (width + gap), -row * (height + row_gap)
        shapes.append(
            {
                "type": "rect",
                "x0": left,
                "x1": left + width,
                "y0": bottom,
                "y1": bottom + height,
                "line": {"color": "#1f77b4", "width": 2},
                "fillcolor": "rgba(31,119,180,0.08)",
            }
        )
        annotations.append(
            {
                "x": left + width / 2,
                "y": bottom + 0.7,
                "text": f'<a href="{url}" target="_self"><b>{title}</b></a>',
                "showarrow": False,
                "font": {"size": 12},
            }
        )
        annotations.append(
            {
                "x": left + width / 2,
                "y": bottom + 0.32,
                "text": "<br>".join(textwrap.wrap(caption, 16)),
                "showarrow": False,
                "font": {"size": 10, "color": "grey"},
            }
        )
        if previous is not None:
            before_left, before_bottom = previous
            if before_bottom != bottom:  # down to the next row, in the same column
                tail, head = (left + width / 2, before_bottom), (left + width / 2, bottom + height)
            elif before_left < left:
                tail, head = (before_left + width, bottom + height / 2), (left, bottom + height / 2)
            else:
                tail, head = (before_left, bottom + height / 2), (left + width, bottom + height / 2)
            annotations.append(
                {
                    "x": head[0],
                    "y": head[1],
                    "ax": tail[0],
                    "ay": tail[1],
                    "axref": "x",
                    "ayref": "y",
                    "text": "",
                    "showarrow": True,
                    "arrowhead": 3,
                    "arrowsize": 1.5,
                    "arrowwidth": 2,
                }
            )
        previous = (left, bottom)
    rows = math.ceil(len(steps) / PIPELINE_COLUMNS)
    figure = go.Figure(layout={"shapes": shapes, "annotations": annotations})
    total = PIPELINE_COLUMNS * width + (PIPELINE_COLUMNS - 1) * gap
    figure.update_xaxes(visible=False, range=[-0.05, total + 0.05])
    figure.update_yaxes(visible=False, range=[-(rows - 1) * (height + row_gap) - 0.05, height + 0.05])
    figure.update_layout(height=130 * rows, margin={"l": 4, "r": 4, "t": 4, "b": 4}, plot_bgcolor="white")
    return figure


def _sign_color(value: float) -> str:
    return "#d62728" if value > 0 else "#1f77b4"
