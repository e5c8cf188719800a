"""TrainSpec (the articles' defaults, validation), the data a spec names, and ``training.fit`` in this
process: progress, stop after exactly the requested batch, step counting, decision surfaces, and
MirroredStrategy over two logical CPUs (in a subprocess: it must be set up before TensorFlow starts)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from zoo.core.errors import ModelStoreError, ZooError
from zoo.core.spec import TrainSpec
from zoo.ml.backend import Device
from zoo.ml.data import load_embedded_mnist
from zoo.ml.training import (
    DecisionSurface,
    Environment,
    Progress,
    build_model,
    compiled_form,
    decision_surface,
    describe_environment,
    epoch_orders,
    fit,
    load_training_data,
    prepare_model,
    scheduled_learning_rate,
)

REPOSITORY = Path(__file__).resolve().parents[1]


class RecordingReporter:
    """A ProgressReporter that keeps everything ``fit`` reports."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, dict]] = []
        self.epochs: list[tuple[int, int, dict, Progress]] = []
        self.surfaces: list[tuple[int, int, DecisionSurface]] = []
        self.events: list[tuple[str, str]] = []

    def batch(self, metrics, progress):
        self.batches.append((progress.step, progress.epoch, metrics))

    def epoch(self, metrics, progress):
        self.epochs.append((progress.step, progress.epoch, metrics, progress))

    def epochs_ended(self, reports):
        for metrics, progress in reports:
            self.epoch(metrics, progress)

    def surface(self, surface):
        self.surfaces.append((surface.step, surface.epoch, surface))

    def event(self, kind, message):
        self.events.append((kind, message))


# --- the spec ---------------------------------------------------------------------------------------


def test_the_cnn_spec_defaults_are_the_articles():
    spec = TrainSpec.cnn()
    assert spec.to_dict() == {
        "kind": "cnn",
        "dataset": "mnist",
        "mnist_source": "auto",
        "max_train_samples": None,
        "num_samples": 400,
        "noise": 0.2,
        "test_fraction": 0.3,
        "conv_filters": [32, 64, 64],
        "hidden_units": [64],
        "activation": "relu",
        "optimizer": "adam",
        "learning_rate": 0.001,
        "learning_rate_schedule": "constant",
        "momentum": 0.9,
        "batch_size": 128,
        "num_epochs": 10,
        "validation_split": 0.1,
        "seed": 0,
        "steps_per_execution": 1,
        "device": "auto",
        "backend": "auto",
        "mixed_precision": False,
        "augment": False,
        "printed": False,
        "base_model": None,
        "digits_set": None,
        "model_name": None,
        "keep_model": True,
    }
    model = build_model(spec)
    assert model.count_params() == 93_322 and model.loss == "categorical_crossentropy"
    assert type(model.optimizer).__name__ == "Adam" and float(model.optimizer.learning_rate) == pytest.approx(
        1e-3
    )


def test_a_spec_trains_like_its_run_whatever_its_backend_spelling_model_name_or_keeping():
    page = TrainSpec.binary(keep_model=False)  # the Playground's: backend "auto", model not kept
    recorded = TrainSpec.binary(model_name="my-moons").resolved()  # as a run records a CLI spec
    assert page.trains_like(recorded) and recorded.trains_like(page)
    assert not page.trains_like(dataclasses.replace(recorded, noise=0.3))
    assert not page.trains_like(dataclasses.replace(recorded, backend="jax"))  # unless this host runs JAX


def test_the_binary_spec_defaults_are_the_articles():
    spec = TrainSpec.binary()
    assert (spec.kind, spec.dataset, spec.hidden_units, spec.activation) == (
        "binary",
        "moons",
        (3,),
        "sigmoid",
    )
    assert (spec.optimizer, spec.learning_rate, spec.validation_split) == ("adam", 0.001, 0.0)
    model = build_model(spec)
    assert model.count_params() == 13 and model.loss == "binary_crossentropy"
    assert [layer.get_config()["activation"] for layer in model.layers] == ["sigmoid", "sigmoid"]


def test_a_spec_takes_overrides_from_plain_values_and_round_trips_through_json():
    spec = TrainSpec.cnn(conv_filters="16, 32", hidden_units=[32], learning_rate=0.01, optimizer="momentum")
    assert spec.conv_filters == (16, 32) and spec.hidden_units == (32,)
    assert TrainSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    binary = TrainSpec.binary(dataset="spiral", hidden_units="8,8", activation="tanh")
    assert binary.kind == "binary" and binary.hidden_units == (8, 8)
    # Runs, saved models and Hub repos recorded before the field was named ``kind`` still read.
    recorded = {("model" if key == "kind" else key): value for key, value in binary.to_dict().items()}
    assert TrainSpec.from_dict(recorded) == binary


BAD_SPECS = [
    ({"learning_rate": 0}, "learning_rate=0: choose a value in (0, 10]"),
    ({"learning_rate": 11.0}, "learning_rate=11.0"),
    ({"learning_rate": float("nan")}, "learning_rate=nan"),
    ({"learning_rate": "0.1"}, "learning_rate='0.1'"),
    ({"momentum": 1.0}, "momentum=1.0: choose in [0, 1)"),
    ({"batch_size": 0}, "batch_size=0: choose an integer from 1 to 8192"),
    ({"batch_size": 32.5}, "batch_size=32.5"),
    ({"batch_size": True}, "batch_size=True"),
    ({"num_epochs": 0}, "num_epochs=0: choose an integer from 1 to 10000"),
    ({"validation_split": 0.6}, "validation_split=0.6: choose a fraction in [0, 0.5]"),
    ({"seed": -1}, "seed=-1"),
    ({"max_train_samples": 5}, "max_train_samples=5: choose at least 10, or none for all"),
    ({"activation": "elu"}, "activation 'elu': choose one of ('sigmoid', 'tanh', 'relu')"),
    ({"optimizer": "nadam"}, "optimizer 'nadam': choose one of"),
    ({"learning_rate_schedule": "step"}, "learning_rate_schedule 'step': choose one of constant, cosine"),
    ({"device": "tpu"}, "device 'tpu': choose 'auto' (GPU when there is one) or 'cpu'"),
    ({"kind": "rnn"}, "kind 'rnn': choose one of ('cnn', 'binary')"),
    ({"dataset": "moons"}, "dataset 'moons': the CNN trains on 'mnist'"),
    ({"conv_filters": "32,sixty-four"}, "conv_filters='32,sixty-four': give whole numbers such as 32,64,64"),
    ({"conv_filters": [32, 64.5]}, "conv_filters=[32, 64.5]: give whole numbers such as 32,64,64"),
    ({"epochs": 3}, "unknown training option(s) epochs; known: "),
    ({"conv_filters": "32,64,64,64"}, "conv_filters=(32, 64, 64, 64): give 1 to 3 positive filter counts"),
    ({"hidden_units": "64,0"}, "hidden units (64, 0): give 1 to 6 positive layer sizes"),
    ({"steps_per_execution": 0}, "steps_per_execution=0: choose an integer from 1 to 1000"),
]


@pytest.mark.parametrize(("change", "message"), BAD_SPECS)
def test_a_bad_spec_value_raises_a_zoo_error_naming_it_and_the_range(change, message):
    with pytest.raises(ZooError) as raised:
        TrainSpec.cnn(**change)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_samples": 5}, "num_samples=5: choose between 20 and 100,000 points"),
        ({"noise": 9.0}, "noise=9.0: choose a value between 0 and 2"),
        ({"test_fraction": 0.99}, "test_fraction=0.99: choose between 0.05 and 0.9"),
        ({"num_samples": "many"}, "num_samples='many', noise=0.2, test_fraction=0.3: give numbers"),
        ({"hidden_units": ()}, "hidden units (): give 1 to 6 positive layer sizes"),
    ],
)
def test_a_bad_binary_spec_value_is_refused_before_any_run(change, message):
    """The same ranges make_points and the builders enforce, so a run never starts only to fail."""
    with pytest.raises(ZooError) as raised:
        TrainSpec.binary(**change)
    assert message in str(raised.value)


def test_a_binary_spec_needs_a_point_set_and_a_valid_model_name():
    with pytest.raises(ZooError, match="dataset 'mnist': choose one of"):
        TrainSpec.binary(dataset="mnist")
    with pytest.raises(ModelStoreError, match="model name 'my model!' is not allowed"):
        TrainSpec.binary(model_name="my model!")


# --- the data a spec names ----------------------------------------------------------------------


def test_the_cnn_gets_scaled_images_one_hot_labels_and_a_named_source():
    data = load_training_data(TrainSpec.cnn(mnist_source="embedded", max_train_samples=100))
    embedded = load_embedded_mnist()
    assert data.x_train.shape == (100, 28, 28, 1) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_train[..., 0] * 255, embedded.x_train[:100].astype(np.float32))
    assert data.y_train.shape == (100, 10) and (data.y_train.argmax(axis=1) == embedded.y_train[:100]).all()
    assert data.y_train.sum() == 100
    assert data.x_test.shape == (1000, 28, 28, 1) and data.x_test.max() == 1.0
    np.testing.assert_array_equal(data.y_test, embedded.y_test)
    assert data.source == embedded.source + "; first 100 training images"


def test_the_binary_classifier_gets_its_points():
    data = load_training_data(TrainSpec.binary(dataset="xor", num_samples=100, test_fraction=0.2))
    assert data.x_train.shape == (80, 2) and data.x_test.shape == (20, 2)
    assert set(data.y_test.tolist()) == {0, 1} and data.source == "xor (100 points, noise 0.2, seed 0)"


# --- fit ------------------------------------------------------------------------------------------


def test_fit_stops_after_exactly_the_batch_at_which_a_stop_was_requested():
    # The CNN trains with model.fit, which checks for a stop after every batch.
    spec = TrainSpec.cnn(
        mnist_source="embedded", max_train_samples=160, batch_size=4, num_epochs=5, validation_split=0.0,
        conv_filters=[4, 4, 4], hidden_units=[8],
    )  # fmt: skip  # 160 digits: 40 steps/epoch
    checks = []

    def should_stop() -> bool:
        checks.append(len(checks) + 1)
        return len(checks) >= 45  # asked after batch 45, i.e. in the second epoch

    reporter = RecordingReporter()
    result = fit(spec, reporter, should_stop)
    assert result.status == "stopped"
    assert int(result.model.optimizer.iterations) == 45  # the batches really trained
    assert len(checks) == 45  # checked after every batch, none after the stop
    assert reporter.batches[-1][:2] == (45, 2)  # the stop is reported with its step
    assert [(step, epoch) for step, epoch, *_ in reporter.epochs] == [(40, 1), (45, 2)]
    assert reporter.epochs[-1][3].step == 45 and reporter.epochs[-1][3].total_steps == 200
    assert [row["epoch"] for row in result.history] == [1, 2]


def test_a_binary_fit_stops_after_the_compiled_call_in_progress_and_ends_its_epoch_there():
    # The binary classifier trains in compiled calls of many steps; a stop is read after each call.
    # The first call trains FIRST_CALL_STEPS (32) of the 35 steps of the first epoch.
    spec = TrainSpec.binary(num_samples=200, batch_size=4, num_epochs=5)  # 140 points: 35 steps/epoch
    checks = []

    def should_stop() -> bool:
        checks.append(len(checks) + 1)
        return True

    reporter = RecordingReporter()
    result = fit(spec, reporter, should_stop)
    assert result.status == "stopped" and len(checks) == 1
    assert int(result.model.optimizer.iterations) == 32  # the batches really trained
    assert reporter.batches[-1][:2] == (32, 1)
    # The stopped epoch ends where training did, validated, as model.fit ends a stopped epoch.
    assert [(step, epoch) for step, epoch, *_ in reporter.epochs] == [(32, 1)]
    assert reporter.epochs[-1][3].total_steps == 175 and "val_loss" in reporter.epochs[-1][2]
    assert [row["epoch"] for row in result.history] == [1]
    assert reporter.surfaces[-1][:2] == (32, 1)


def test_a_binary_fit_trains_exactly_as_model_fit_on_the_same_batches():
    """Compiled calls of many steps are Keras' own train step on the model's variables and optimizer:
    the same weights and losses as ``model.fit`` given each epoch's points in the same order, here with
    a last batch of 6 points, a cosine schedule and calls that cross epochs."""
    import keras

    spec = TrainSpec.binary(
        num_samples=100, batch_size=8, num_epochs=6, learning_rate=0.05, learning_rate_schedule="cosine"
    )  # 70 points: 9 steps/epoch, the last of 6 points
    reporter = RecordingReporter()
    result = fit(spec, reporter, lambda: False)
    keras.utils.set_random_seed(spec.seed)
    data = load_training_data(spec)
    model = build_model(spec)
    orders = epoch_orders(spec.seed, len(data.x_train))
    expected = []
    for epoch in range(spec.num_epochs):
        model.optimizer.learning_rate = scheduled_learning_rate(spec, epoch)
        order = orders(epoch)
        history = model.fit(
            data.x_train[order], data.y_train[order].astype(np.float32), batch_size=8, epochs=1,
            shuffle=False, verbose=0, validation_data=(data.x_test, data.y_test.astype(np.float32)),
        )  # fmt: skip
        expected.append({name: values[0] for name, values in history.history.items()})
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [row[name] for row in result.history] == pytest.approx(
            [row[name] for row in expected], abs=1e-6
        )
    for ours, theirs in zip(result.model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert int(result.model.optimizer.iterations) == 54
    assert [step for step, *_ in reporter.epochs] == [9, 18, 27, 36, 45, 54]
    # The last surface is the trained model's, computed in the same call as its last step.
    last = reporter.surfaces[-1][2]
    assert (last.step, last.epoch) == (54, 6)
    assert np.array(last.probability) == pytest.approx(
        np.array(decision_surface(result.model, data.x_train, step=54, epoch=6).probability), abs=1e-4
    )


def test_a_binary_fit_whose_loss_explodes_ends_as_diverged_at_that_step():
    spec = TrainSpec.binary(
        num_samples=100, num_epochs=30, optimizer="momentum", learning_rate=10.0, activation="relu",
        hidden_units=(8, 8, 8, 8),
    )  # fmt: skip  # 70 points in batches of 32: 3 steps an epoch
    reporter = RecordingReporter()
    result = fit(spec, reporter, lambda: False)
    assert result.status == "diverged" and "try one 10 times smaller" in result.message
    assert (
        f"at step {result.diverged_step}:" in result.message
        and "over 1,000 times its first value" in result.message
    )
    # Found in the compiled call's per-step losses: only the epochs that ended before it are reported.
    assert [step for step, *_ in reporter.epochs] == list(range(3, result.diverged_step, 3))
    assert [row["epoch"] for row in result.history] == list(range(1, len(reporter.epochs) + 1))


def test_binary_steps_per_epoch_cover_all_training_points_even_with_a_validation_split():
    """The binary classifier validates on its test set, so Keras trains on every training point."""
    spec = TrainSpec.binary(num_samples=100, batch_size=10, num_epochs=2, validation_split=0.2)
    reporter = RecordingReporter()
    result = fit(spec, reporter, lambda: False)
    assert int(result.model.optimizer.iterations) == 14  # 70 points, batches of 10, 2 epochs
    assert [step for step, *_ in reporter.epochs] == [7, 14]
    assert reporter.epochs[-1][3].total_steps == 14
    assert all(step <= 14 for step, *_ in reporter.batches)
    assert "val_loss" in result.history[0]


def test_fit_reports_progress_metrics_surfaces_and_events():
    spec = TrainSpec.binary(num_samples=100, num_epochs=3, mixed_precision=True)
    reporter = RecordingReporter()
    result = fit(spec, reporter, lambda: False)
    assert result.status == "completed" and result.message == ""
    steps = [step for step, *_ in reporter.epochs]
    assert steps == [3, 6, 9]  # 70 points in batches of 32
    final = reporter.epochs[-1]
    assert set(final[2]) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert [metrics["learning_rate"] for _, _, metrics, _ in reporter.epochs] == pytest.approx([0.001] * 3)
    assert final[3].epoch == final[3].num_epochs == 3 and final[3].eta_seconds == 0
    assert final[3].samples_per_second > 0 and final[3].fraction_done == 1.0
    assert [row["loss"] for row in result.history] == [
        metrics["loss"] for _, _, metrics, _ in reporter.epochs
    ]
    # The last epoch's decision surface is always sent.
    assert reporter.surfaces[-1][:2] == (9, 3)
    kinds = [kind for kind, _ in reporter.events]
    assert kinds[0] == "data" and "started" in kinds
    # Mixed precision needs a GPU: on a CPU it is said and the run trains in float32.
    assert ("mixed_precision", "mixed precision needs a GPU; this run trains in float32") in reporter.events
    assert result.model.dtype_policy.name == "float32"


def test_a_cosine_schedule_trains_each_epoch_at_its_lower_rate_also_in_a_prepared_model():
    spec = TrainSpec.binary(
        num_samples=100, num_epochs=4, learning_rate=0.01, learning_rate_schedule="cosine"
    )
    expected = pytest.approx([0.01, 0.0085355, 0.005, 0.0014645], rel=1e-4)  # 0.01(1 + cos(pi e / 4)) / 2
    assert [scheduled_learning_rate(spec, epoch) for epoch in range(4)] == expected
    # The rate is a variable the schedule sets between epochs: the compiled step is the constant one's.
    prepared = prepare_model(TrainSpec.binary(learning_rate=0.01))
    assert prepared.form == compiled_form(spec)
    for ready in ((), [prepared]):
        reporter = RecordingReporter()
        result = fit(spec, reporter, lambda: False, prepared=ready)
        assert [metrics["learning_rate"] for _, _, metrics, _ in reporter.epochs] == expected
        assert float(result.model.optimizer.learning_rate) == pytest.approx(0.0014645, rel=1e-4)
        assert [row["learning_rate"] for row in result.history] == expected


def test_the_decision_surface_is_the_models_probability_and_hidden_units_over_a_grid():
    model = build_model(TrainSpec.binary())
    points = np.array([[-1.0, -2.0], [3.0, 1.0]], np.float32)
    surface = decision_surface(model, points, step=12, epoch=3, resolution=5)
    assert (surface.step, surface.epoch) == (12, 3)
    assert surface.x == pytest.approx(np.linspace(-1.5, 3.5, 5).tolist())
    assert surface.y == pytest.approx(np.linspace(-2.5, 1.5, 5).tolist())
    probability = np.array(surface.probability)
    assert probability.shape == (5, 5)
    corner = np.array([[surface.x[4], surface.y[0]]], np.float32)  # row = y index, column = x index
    assert probability[0, 4] == pytest.approx(float(np.asarray(model(corner))[0, 0]), abs=1e-4)
    assert np.array(surface.hidden).shape == (1, 3, 5, 5)  # one layer of three sigmoid units
    assert ((np.array(surface.hidden) >= 0) & (np.array(surface.hidden) <= 1)).all()
    assert DecisionSurface.from_dict(json.loads(json.dumps(surface.to_dict()))) == surface


def test_a_prepared_model_trains_exactly_like_a_new_one_without_compiling_again():
    spec = TrainSpec.binary(dataset="circles", num_samples=150, num_epochs=3, seed=7, device="cpu")
    new = fit(spec, RecordingReporter(), lambda: False)
    prepared = prepare_model(TrainSpec.binary())  # the Playground's default: other data, length, seed
    assert prepared.form == compiled_form(spec) != compiled_form(TrainSpec.binary(hidden_units=(4,)))
    assert prepared.steps is not None and prepared.steps.compilations() == 1  # traced once, not twice
    again = fit(spec, RecordingReporter(), lambda: False, prepared=[prepared])
    assert again.model is prepared.model and prepared.steps.compilations() == 1
    assert [row["loss"] for row in again.history] == pytest.approx(
        [row["loss"] for row in new.history], abs=1e-6
    )
    for ours, theirs in zip(again.model.get_weights(), new.model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_a_run_on_a_prepared_model_leaves_its_compiled_steps_ready(monkeypatch):
    """Setting TensorFlow's global seed clears its kernel cache: the prepared steps were set up again in
    the run's first call, 0.3 s before its first boundary. A run on them seeds everything else (its
    numbers are a new model's: the test above); a run that compiles its own still sets it."""
    import tensorflow as tf

    spec = TrainSpec.binary(num_samples=100, num_epochs=2, seed=5)
    prepared = prepare_model(TrainSpec.binary())
    seeds: list[int] = []
    set_seed = tf.random.set_seed
    monkeypatch.setattr(tf.random, "set_seed", lambda seed: (seeds.append(seed), set_seed(seed)))
    fit(spec, RecordingReporter(), lambda: False, prepared=[prepared])
    assert seeds == [] and prepared.steps is not None and prepared.steps.compilations() == 1
    fit(spec, RecordingReporter(), lambda: False)
    assert seeds == [5]


def test_the_environment_names_devices_and_versions():
    import keras
    import tensorflow as tf

    environment = describe_environment()
    assert Device("/device:CPU:0", "CPU") in environment.devices
    assert environment.backend == "tensorflow"
    assert environment.versions["tensorflow"] == tf.__version__
    assert environment.versions["keras"] == keras.__version__
    assert environment.versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert Environment.from_dict(json.loads(json.dumps(environment.to_dict()))) == environment
    # a run recorded before other backends, or before devices were kept, reads with what it lacks empty
    older = {"devices": [], "versions": {"keras": "3"}}
    assert Environment.from_dict(older) == Environment(versions={"keras": "3"})


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from zoo.ml.evaluation import evaluate_model
    from zoo.core.spec import TrainSpec
    from zoo.ml.training import fit, load_training_data

    class Reporter:
        def __init__(self):
            self.events, self.losses = [], []
        def batch(self, *args):
            pass
        def epoch(self, metrics, progress):
            self.losses.append([progress.step, metrics["loss"]])
        def surface(self, *args):
            pass
        def event(self, kind, message):
            self.events.append([kind, message])

    spec = TrainSpec.cnn(
        mnist_source="embedded", max_train_samples=256, batch_size=32, num_epochs=2, validation_split=0.0
    )
    results = {}
    for devices in ("", "/cpu:0,/cpu:1"):
        os.environ["ZOO_MIRRORED_DEVICES"] = devices
        reporter = Reporter()
        result = fit(spec, reporter, lambda: False)
        strategy = result.model.distribute_strategy
        kernel = result.model.get_layer("conv1").kernel.value
        replicas = getattr(kernel, "values", (kernel,))
        results[devices or "default"] = {
            "status": result.status,
            "strategy": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync,
            "kernel_devices": sorted(replica.device for replica in replicas),
            "replicas_equal": all((replica.numpy() == replicas[0].numpy()).all() for replica in replicas),
            "losses": reporter.losses,
            "accuracy": evaluate_model(result.model, load_training_data(spec)).accuracy,
            "events": reporter.events,
        }
    print(json.dumps(results))
    """
)


def test_mirrored_strategy_over_two_logical_cpus_trains_the_cnn_like_one_device(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(REPOSITORY)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    single, mirrored = results["default"], results["/cpu:0,/cpu:1"]
    assert single["strategy"] == "_DefaultDistributionStrategy" and single["replicas"] == 1
    assert mirrored["strategy"] == "MirroredStrategy" and mirrored["replicas"] == 2
    assert ["strategy", "MirroredStrategy over 2 devices: /cpu:0, /cpu:1"] in mirrored["events"]
    assert [device.rsplit("/", 1)[-1] for device in mirrored["kernel_devices"]] == [
        "device:CPU:0",
        "device:CPU:1",
    ]
    assert mirrored["replicas_equal"]  # the replicas stay in sync
    assert mirrored["status"] == "completed"
    # Two replicas with half a batch each and summed gradients are the same training as one device.
    assert [step for step, _ in mirrored["losses"]] == [8, 16]
    assert [loss for _, loss in mirrored["losses"]] == pytest.approx(
        [loss for _, loss in single["losses"]], rel=1e-4
    )
    assert mirrored["losses"][1][1] < mirrored["losses"][0][1]
    assert mirrored["accuracy"] == pytest.approx(single["accuracy"], abs=0.01)
