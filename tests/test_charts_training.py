"""The training and evaluation figures: what each one draws from the run store's data."""

import json

import numpy as np
import pandas as pd
import pytest
from run_helpers import claim

from zoo.app.charts import training as charts
from zoo.app.charts.playground import loss_data, plane_data, unit_maps_data
from zoo.core.scores import ClassScores, Scores
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, surface_grid
from zoo.runs.store import open_run_store


def metrics(rows: list[tuple[int, int, str, float]]) -> pd.DataFrame:
    """A metrics frame as ``RunStore.metrics_frame`` returns it."""
    return pd.DataFrame(
        [(index + 1, step, epoch, name, value, 0.0) for index, (step, epoch, name, value) in enumerate(rows)],
        columns=["id", "step", "epoch", "name", "value", "wall_time"],
    )


def values(array_or_typed) -> np.ndarray:
    """Trace data as numbers, whether Plotly keeps it as an array or a typed-array dict."""
    return np.asarray(array_or_typed)


def test_long_histories_are_thinned_to_evenly_spaced_points_keeping_both_ends():
    frame = metrics([(step, 1, "batch/loss", 1 / step) for step in range(1, 5001)])
    thinned = charts.metric_values(frame, "batch/loss", max_points=100)
    assert len(thinned) == 100
    assert thinned["step"].iloc[0] == 1 and thinned["step"].iloc[-1] == 5000
    assert np.all(np.diff(thinned["step"].to_numpy()) > 0)
    assert len(charts.metric_values(frame, "batch/loss", max_points=10_000)) == 5000


def test_batch_and_epoch_curves_plot_each_metric_on_its_own_axis():
    frame = metrics(
        [
            (1, 1, "batch/loss", 2.0),
            (1, 1, "batch/accuracy", 0.2),
            (2, 1, "batch/loss", 1.5),
            (2, 1, "epoch/loss", 1.4),
            (2, 1, "epoch/val_loss", 1.6),
            (2, 1, "epoch/accuracy", 0.5),
            (2, 1, "epoch/val_accuracy", 0.45),
            (4, 2, "epoch/loss", 0.9),
            (4, 2, "epoch/val_loss", 1.1),
        ]
    )
    batch = charts.batch_curves(frame)
    assert [values(trace.y).tolist() for trace in batch.data] == [[2.0, 1.5], [0.2]]
    assert (batch.data[0].xaxis, batch.data[1].xaxis) == ("x", "x2")
    epochs = charts.epoch_curves(frame)
    named = {(trace.name, trace.xaxis): values(trace.y).tolist() for trace in epochs.data}
    assert named[("train", "x")] == [1.4, 0.9] and named[("validation", "x")] == [1.6, 1.1]
    assert named[("train", "x2")] == [0.5] and named[("validation", "x2")] == [0.45]
    loss = loss_data(frame)
    assert [(series["name"], series["x"], series["y"]) for series in loss["series"]] == [
        ("train loss", [1, 2], [1.4, 0.9]),
        ("test loss", [1, 2], [1.6, 1.1]),
    ]
    assert (loss["kind"], loss["frame"]) == ("loss", 2)


def surface(units_per_layer=(3,), resolution=5):
    grid = np.linspace(0, 1, resolution * resolution).reshape(resolution, resolution)
    return DecisionSurface(
        x=np.linspace(-1, 1, resolution).tolist(),
        y=np.linspace(-2, 2, resolution).tolist(),
        probability=grid.tolist(),
        hidden=[[(grid * (unit + 1)).tolist() for unit in range(units)] for units in units_per_layer],
        step=70,
        epoch=7,
    )


def test_the_plane_draws_the_surface_over_its_cells_with_both_splits_and_stays_put_from_the_start():
    x_train = np.array([[0, 0], [1, 1], [2, 2]], dtype=np.float32)
    y_train = np.array([0, 1, 1])
    x_test, y_test = np.array([[0.5, 0.5]], dtype=np.float32), np.array([0])
    before = plane_data(None, x_train, y_train, x_test, y_test)
    assert (before["surface"], before["frame"], before["title"]) == (None, -1, "Decision boundary")
    assert before["points"] == {"train": [[0, 0, 0], [1, 1, 1], [2, 2, 1]], "test": [[0.5, 0.5, 0]]}
    # Before the first surface, the plane spans the grid the surfaces will have: no jump when it comes.
    grid = surface_grid(x_train)
    first = surface_of_grid(grid)
    assert plane_data(first, x_train, y_train, x_test, y_test)["x"] == pytest.approx(before["x"])
    assert plane_data(first, x_train, y_train, x_test, y_test)["y"] == pytest.approx(before["y"])

    live = plane_data(surface(), x_train, y_train, x_test, y_test)
    # The grid's points are the cells' centres: the plane reaches half a cell beyond the outer ones.
    assert (live["x"], live["y"]) == ([-1.25, 1.25], [-2.5, 2.5])
    assert live["surface"]["probability"] == surface().probability and live["frame"] == 70
    assert live["title"] == "Decision boundary · epoch 7"


def surface_of_grid(grid) -> DecisionSurface:
    size = (len(grid.ys), len(grid.xs))
    return grid.surface([np.full(size, 0.5)], step=1, epoch=1)


def test_every_hidden_unit_gets_its_own_map_one_row_per_layer_on_its_own_range():
    maps = unit_maps_data(surface(units_per_layer=(4, 2)))
    assert (maps["kind"], maps["frame"]) == ("maps", 70)
    assert [len(units) for units in maps["layers"]] == [4, 2]
    # surface()'s unit u is the probability grid (0 to 1 over its 25 points) times u + 1: each map
    # spans the colours from its own lowest to its highest value, whatever its range.
    ramp = np.round(np.linspace(0, 255, 25)).astype(int).reshape(5, 5).tolist()
    assert all(grid == ramp for units in maps["layers"] for grid in units)
    constant = DecisionSurface(
        x=[0, 1], y=[0, 1], probability=[[0, 0], [0, 0]], hidden=[[[[2, 2], [2, 2]]]], step=1, epoch=1
    )
    assert unit_maps_data(constant)["layers"] == [[[[128, 128], [128, 128]]]]


def test_a_diverged_run_s_canvases_get_strict_json_that_the_browser_can_read():
    """The browser's JSON has no NaN or Infinity: a non-finite loss is left out of its curve and a
    non-finite value drawn as the middle of its map's colours."""
    nan, inf = float("nan"), float("inf")
    diverged = DecisionSurface(
        x=[0.0, 1.0], y=[0.0, 1.0], probability=[[0.1, nan], [inf, 0.9]],
        hidden=[[[[0.0, nan], [2.0, 4.0]]]], step=3, epoch=2,
    )  # fmt: skip
    points, labels = np.array([[0.0, 0.0]]), np.array([1])
    plane = plane_data(diverged, points, labels, points, labels)
    assert plane["surface"]["probability"] == [[0.1, 0.5], [0.5, 0.9]]
    assert unit_maps_data(diverged)["layers"] == [[[[0, 128], [128, 255]]]]
    frame = metrics([(1, 1, "epoch/loss", 0.7), (2, 2, "epoch/loss", nan), (2, 2, "epoch/val_loss", inf)])
    loss = loss_data(frame)
    assert [(series["x"], series["y"]) for series in loss["series"]] == [([1], [0.7]), ([], [])]
    for data in (plane, unit_maps_data(diverged), loss):
        json.dumps(data, allow_nan=False)


def test_confusion_matrix_cells_carry_true_and_predicted_labels_for_selection():
    matrix = [[5, 1, 0], [2, 7, 0], [0, 0, 9]]
    figure = charts.confusion_matrix_figure(matrix, [0, 1, 2], selected=(1, 0))
    heatmap, markers = figure.data
    assert values(heatmap.text).tolist() == matrix
    cells = {
        tuple(pair): count
        for pair, count in zip(values(markers.customdata).tolist(), markers.text, strict=True)
    }
    assert cells[(1, 0)] == 2 and cells[(0, 1)] == 1 and len(cells) == 9
    assert list(markers.x[:3]) == ["0", "1", "2"] and list(markers.y[:3]) == ["0", "0", "0"]
    (highlight,) = figure.layout.shapes
    assert (highlight.x0, highlight.y0) == (-0.5, 0.5)


def test_roc_per_class_and_overlay_figures():
    roc = charts.roc_figure([0, 0.2, 1], [0, 0.8, 1], 0.8)
    assert "AUC 0.800" in roc.layout.title.text and values(roc.data[0].y).tolist() == [0, 0.8, 1]
    table = charts.per_class_table((ClassScores(0, 0.9, 0.8, 0.85, 10), ClassScores(1, 0.5, 1.0, 0.67, 3)))
    assert table.to_dict("list") == {
        "class": ["0", "1"],
        "precision": [0.9, 0.5],
        "recall": [0.8, 1.0],
        "F1": [0.85, 0.67],
        "support": [10, 3],
    }
    first = metrics([(5, 1, "epoch/val_accuracy", 0.8), (10, 2, "epoch/val_accuracy", 0.9)])
    second = metrics([(5, 1, "epoch/val_accuracy", 0.7)])
    overlay = charts.overlay_curves({"run a": first, "run b": second}, "epoch/val_accuracy")
    assert [(trace.name, values(trace.x).tolist()) for trace in overlay.data] == [
        ("run a", [1, 2]),
        ("run b", [1]),
    ]
    assert overlay.layout.xaxis.title.text == "epoch"
    assert charts.overlay_curves({"run a": first}, "batch/loss").layout.xaxis.title.text == "step"


def test_runs_table_has_one_row_per_run_with_its_saved_model():
    store = open_run_store()
    run_id = store.create_run(TrainSpec.binary(), "cpu")
    claim(store, run_id)
    store.finish(run_id, "completed", final_metrics=Scores(accuracy=0.91, macro_f1=0.9, auc=0.97))
    table = charts.runs_table(store.list_runs(), {run_id: "my-model"})
    row = table.iloc[0]
    assert (row["run"], row["status"], row["kind"], row["dataset"]) == (
        run_id,
        "completed",
        "binary",
        "moons",
    )
    assert (row["test accuracy"], row["AUC"], row["saved model"]) == (0.91, 0.97, "my-model")
    # What a run was trained with, to compare runs by.
    assert (row["epochs"], row["batch"], row["learning rate"], row["optimizer"]) == (100, 32, 0.001, "adam")
    assert (row["hidden layers"], row["activation"], row["owner"]) == ("3", "sigmoid", "local")
    cnn = store.create_run(TrainSpec.cnn(hidden_units=(32,)), "cpu")
    assert charts.runs_table([store.get(cnn)], {}).iloc[0]["hidden layers"] == "conv 32,64,64 · 32"
    assert row["duration (s)"] >= 0
    assert charts.runs_table([], {}).empty


@pytest.mark.parametrize("factor", [1, 3])
def test_digits_are_enlarged_by_repeating_pixels(factor):
    image = np.array([[0, 255], [128, 64]], dtype=np.uint8)
    enlarged = charts.enlarge_digit(image, factor)
    assert enlarged.shape == (2 * factor, 2 * factor) and enlarged.dtype == np.uint8
    assert (enlarged[:factor, factor:] == 255).all() and (enlarged[factor:, :factor] == 128).all()
