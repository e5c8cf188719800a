"""The Learn page's reference math (zoo.ml.formulas) against Keras and against finite differences."""

from dataclasses import replace

import numpy as np
import pytest

from zoo.core.errors import ZooError
from zoo.ml import formulas
from zoo.ml.data import load_embedded_mnist

TOLERANCE = 1e-6


def central_difference(function, point: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """d function / d point, elementwise, by central differences."""
    point = np.asarray(point, dtype=np.float64)
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shift = np.zeros_like(point)
        shift[index] = step
        gradient[index] = (function(point + shift) - function(point - shift)) / (2 * step)
    return gradient


# --- 1. neuron ---------------------------------------------------------------------------------------


def test_neuron_computes_the_weighted_sum_and_its_activation():
    result = formulas.neuron([1.0, -0.5, 0.8], [0.5, 1.2, -0.7], 0.2, "sigmoid")
    assert result.z == pytest.approx(0.5 - 0.6 - 0.56 + 0.2)
    assert result.a == pytest.approx(1 / (1 + np.exp(-result.z)))
    assert formulas.neuron([2.0], [-1.0], 0.5, "relu").a == 0.0
    assert formulas.neuron([2.0], [1.0], 0.5, "tanh").a == pytest.approx(np.tanh(2.5))


def test_neuron_rejects_mismatched_inputs_and_weights():
    with pytest.raises(ZooError, match="one weight per input"):
        formulas.neuron([1.0, 2.0], [1.0], 0.0)


# --- 2. activations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", formulas.ACTIVATION_NAMES)
def test_activation_derivatives_match_finite_differences(name):
    z = np.array([-7.5, -3.0, -1.2, -0.3, 0.2, 0.9, 2.5, 8.0])  # away from ReLU's kink at 0
    numeric = central_difference(lambda point: formulas.activation(name, point).sum(), z)
    np.testing.assert_allclose(formulas.activation_derivative(name, z), numeric, atol=1e-8)


def test_activations_match_keras():
    import keras

    z = np.linspace(-9, 9, 37)
    for name in formulas.ACTIVATION_NAMES:
        expected = np.asarray(keras.activations.get(name)(keras.ops.convert_to_tensor(z, dtype="float64")))
        np.testing.assert_allclose(formulas.activation(name, z), expected, atol=1e-12)


def test_saturation_intervals_are_where_the_slope_vanishes():
    sigmoid = formulas.saturation_intervals("sigmoid", fraction=0.1)
    assert len(sigmoid) == 2
    (left_start, left_end), (right_start, right_end) = sigmoid
    assert (left_start, right_end) == (-6.0, 6.0)
    # sigma'(z) = 0.025 (a tenth of its peak 0.25) at |z| = ln((1 + sqrt(0.9)) / (1 - sqrt(0.9))) ~ 3.64
    assert left_end == pytest.approx(-3.64, abs=0.01) and right_start == pytest.approx(3.64, abs=0.01)
    assert formulas.saturation_intervals("relu") == [(-6.0, 0.0)]
    _, tanh_right = formulas.saturation_intervals("tanh", fraction=0.1)
    assert tanh_right[0] == pytest.approx(np.arctanh(np.sqrt(0.9)), abs=0.01)


# --- 3. losses -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "prediction", "label"),
    [
        ("mse", [0.2, 0.7, 0.9], [0.0, 1.0, 1.0]),
        ("binary_crossentropy", [0.03, 0.6, 0.95], [1.0, 0.0, 1.0]),
        ("categorical_crossentropy", [0.1, 0.6, 0.3], [0.0, 1.0, 0.0]),
        ("categorical_crossentropy", [[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]], [[0, 0, 1], [1, 0, 0]]),
    ],
)
def test_loss_gradients_match_finite_differences(name, prediction, label):
    prediction = np.array(prediction, dtype=np.float64)
    numeric = central_difference(lambda point: formulas.loss(name, point, label), prediction)
    np.testing.assert_allclose(formulas.loss_gradient(name, prediction, label), numeric, rtol=1e-6, atol=1e-9)


def test_losses_equal_keras_losses():
    import keras

    binary_prediction = np.array([[0.03], [0.6], [0.95]])
    binary_label = np.array([[1.0], [0.0], [1.0]])
    categorical_prediction = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]])
    categorical_label = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    cases = [
        ("mse", keras.losses.MeanSquaredError(), binary_prediction, binary_label),
        ("binary_crossentropy", keras.losses.BinaryCrossentropy(), binary_prediction, binary_label),
        ("categorical_crossentropy", keras.losses.CategoricalCrossentropy(), categorical_prediction,
         categorical_label),
    ]  # fmt: skip
    for name, keras_loss, prediction, label in cases:
        expected = float(keras_loss(label.astype("float32"), prediction.astype("float32")))
        assert formulas.loss(name, prediction, label) == pytest.approx(expected, abs=TOLERANCE), name


@pytest.mark.parametrize("name", ["mse", "binary_crossentropy"])
@pytest.mark.parametrize("label", [0.0, 1.0])
def test_gradient_reaching_the_logit_matches_finite_differences(name, label):
    for z in (-4.0, -0.5, 1.5, 5.0):
        numeric = central_difference(
            lambda point, label=label: formulas.loss(name, formulas.sigmoid(point), [label]), np.array([z])
        )[0]
        assert formulas.loss_gradient_wrt_logit(name, float(formulas.sigmoid(z)), label) == pytest.approx(
            numeric, rel=1e-5, abs=1e-10
        )


def test_cross_entropy_pushes_a_confident_mistake_much_harder_than_mse():
    confident_mistake = 0.01  # label 1, predicted 1 %
    mse = formulas.loss_gradient_wrt_logit("mse", confident_mistake, 1.0)
    cross_entropy = formulas.loss_gradient_wrt_logit("binary_crossentropy", confident_mistake, 1.0)
    assert cross_entropy == pytest.approx(-0.99)
    assert abs(cross_entropy) > 40 * abs(mse)


@pytest.mark.parametrize("label", [0, 1])
def test_loss_curves_categorical_coincides_with_binary_for_the_true_class(label):
    predictions = np.linspace(0.01, 0.99, 50)
    curves = formulas.loss_curves(label, predictions)
    np.testing.assert_allclose(curves["categorical_crossentropy"][0], curves["binary_crossentropy"][0])
    np.testing.assert_allclose(curves["categorical_crossentropy"][1], curves["binary_crossentropy"][1])
    np.testing.assert_allclose(curves["mse"][0], (predictions - label) ** 2)


# --- 4. backpropagation on the 2-3-1 network -----------------------------------------------------------

SAMPLES = [(np.array(point), label) for point, label in formulas.BACKPROP_SAMPLES]
BATCH = (np.array([point for point, _ in SAMPLES]), np.array([label for _, label in SAMPLES]))


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("sample", [*SAMPLES, ((3.5, -4.2), 1), BATCH], ids=lambda s: str(s)[:30])
def test_backprop_equals_keras_gradient_tape(seed, sample):
    inputs, labels = sample
    weights = formulas.initial_weights(seed)
    trace = formulas.backprop(weights, inputs, labels)
    keras_loss, keras_gradients = formulas.keras_backprop_gradients(weights, inputs, labels)
    assert trace.loss == pytest.approx(keras_loss, abs=TOLERANCE)
    for ours, theirs in zip(trace.gradients.arrays(), keras_gradients.arrays(), strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)
    check = formulas.check_backprop_against_keras(weights, inputs, labels)
    assert check.passed and check.max_abs_difference < TOLERANCE


def test_keras_check_notices_wrong_gradients():
    """The page's check compares against what Keras computes, so different weights give a failed check."""
    weights = formulas.initial_weights(0)
    trace = formulas.backprop(weights, SAMPLES[0][0], SAMPLES[0][1])
    _, keras_at_other_weights = formulas.keras_backprop_gradients(formulas.initial_weights(1), *SAMPLES[0])
    difference = np.max(np.abs(trace.gradients.flat() - keras_at_other_weights.flat()))
    assert difference > 1e-3


def test_backprop_gradients_match_finite_differences_and_the_update_lowers_the_loss():
    weights = formulas.initial_weights(3)
    inputs, labels = BATCH
    trace = formulas.backprop(weights, inputs, labels, learning_rate=0.5)

    def loss_of(vector):
        return formulas.backprop(formulas.NetworkWeights.from_flat(vector), inputs, labels).loss

    np.testing.assert_allclose(trace.gradients.flat(), central_difference(loss_of, weights.flat()), atol=1e-9)
    np.testing.assert_allclose(trace.updated.flat(), weights.flat() - 0.5 * trace.gradients.flat())
    assert formulas.backprop(trace.updated, inputs, labels).loss < trace.loss
    # delta2 is (y_hat - y) / n: for binary cross-entropy on a sigmoid the output error is that simple.
    np.testing.assert_allclose(trace.output_delta, (trace.output_a - trace.labels) / len(inputs))


def test_backprop_rejects_bad_samples():
    weights = formulas.initial_weights(0)
    with pytest.raises(ZooError, match="2 coordinates"):
        formulas.backprop(weights, [1.0, 2.0, 3.0], [1])
    with pytest.raises(ZooError, match="labels 0 or 1"):
        formulas.backprop(weights, [1.0, 2.0], [0.5])


# --- 5. optimizers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface_name", list(formulas.SURFACES))
@pytest.mark.parametrize(
    ("name", "rate_factor", "settings"),
    [
        ("sgd", 1.0, formulas.OptimizerSettings()),
        ("momentum", 1.0, formulas.OptimizerSettings(momentum=0.9)),
        ("momentum", 0.3, formulas.OptimizerSettings(momentum=0.5)),
        ("adam", 1.0, formulas.OptimizerSettings()),
        ("adam", 0.5, formulas.OptimizerSettings(beta_1=0.8, beta_2=0.99, epsilon=1e-4)),
    ],
)
def test_numpy_optimizers_match_keras_for_100_steps(surface_name, name, rate_factor, settings):
    surface = formulas.SURFACES[surface_name]
    rate = surface.adam_learning_rate if name == "adam" else surface.learning_rate
    # Keras turns hyper-parameters into float32 tensors: give both sides those same numbers.
    settings = replace(settings, learning_rate=rate * rate_factor).rounded_to_float32()

    def gradient(point):
        return formulas.surface_gradient(surface_name, point)

    start = surface.start
    ours = formulas.optimize(
        name, lambda p: float(formulas.surface_value(surface_name, *p)), gradient, start, settings, 100
    )
    keras_points = formulas.keras_optimizer_trajectory(name, gradient, start, settings, 100)
    assert not ours.diverged and ours.points.shape == keras_points.shape == (101, 2)
    np.testing.assert_allclose(ours.points, keras_points, rtol=0, atol=TOLERANCE)
    assert np.max(np.abs(ours.points[-1] - ours.points[0])) > 0.01  # the runs went somewhere


def test_numpy_optimizers_train_the_network_like_keras_sgd_and_adam():
    """100 full-batch steps on the 2-3-1 network: numpy backprop + numpy update vs Keras' optimizer."""
    import keras

    inputs, labels = BATCH
    for name, settings in (
        ("momentum", formulas.OptimizerSettings(learning_rate=0.5, momentum=0.9)),
        ("adam", formulas.OptimizerSettings(learning_rate=0.05)),
    ):
        settings = settings.rounded_to_float32()
        start = formulas.initial_weights(2).flat()

        def gradient(vector):
            return formulas.backprop(
                formulas.NetworkWeights.from_flat(vector), inputs, labels
            ).gradients.flat()

        ours = formulas.optimize(name, lambda v: 0.0, gradient, start, settings, 100)
        theirs = formulas.keras_optimizer_trajectory(name, gradient, start, settings, 100)
        np.testing.assert_allclose(ours.points, theirs, rtol=0, atol=TOLERANCE)
        final = formulas.backprop(formulas.NetworkWeights.from_flat(ours.points[-1]), inputs, labels).loss
        assert final < formulas.backprop(formulas.initial_weights(2), inputs, labels).loss
    assert keras.backend.backend() == "tensorflow"


def test_keras_adam_is_kingma_and_ba_with_bias_correction():
    """The efficient form Keras runs is Algorithm 1 (exactly so with epsilon = 0; epsilon only guards /0)."""
    rng = np.random.default_rng(0)
    settings = formulas.OptimizerSettings(learning_rate=0.1, epsilon=0.0)
    parameters = rng.normal(size=5)
    state = formulas.initial_optimizer_state(parameters)
    first = second = np.zeros(5)
    algorithm_1 = parameters.copy()
    for step in range(1, 21):
        gradient = rng.normal(size=5)
        parameters, state = formulas.optimizer_step("adam", parameters, gradient, state, settings)
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        corrected_first, corrected_second = first / (1 - 0.9**step), second / (1 - 0.999**step)
        algorithm_1 = algorithm_1 - 0.1 * corrected_first / np.sqrt(corrected_second)
        np.testing.assert_allclose(parameters, algorithm_1, rtol=0, atol=1e-12)


def test_adam_first_step_has_the_size_of_the_learning_rate_thanks_to_bias_correction():
    settings = formulas.OptimizerSettings(learning_rate=0.01)
    start = np.array([3.0, -2.0])
    moved, _ = formulas.optimizer_step(
        "adam", start, np.array([250.0, -0.004]), formulas.initial_optimizer_state(start), settings
    )
    np.testing.assert_allclose(np.abs(moved - start), [0.01, 0.01], rtol=1e-3)


@pytest.mark.parametrize("surface_name", list(formulas.SURFACES))
def test_surface_gradients_match_finite_differences(surface_name):
    for point in ((-1.2, 1.0), (0.3, -0.7), (1.5, 1.9)):
        numeric = central_difference(
            lambda p: float(formulas.surface_value(surface_name, *p)), np.array(point), step=1e-5
        )
        np.testing.assert_allclose(
            formulas.surface_gradient(surface_name, point), numeric, rtol=1e-6, atol=1e-6
        )


def test_optimizer_race_reaches_the_minimum_of_the_bowl_and_flags_divergence():
    race = formulas.optimizer_race("bowl", formulas.OptimizerSettings(learning_rate=0.1), 0.1, 200)
    for trajectory in race.values():
        assert not trajectory.diverged
        assert trajectory.losses[-1] < 1e-3 < trajectory.losses[0]
    too_fast = formulas.optimizer_race("bowl", formulas.OptimizerSettings(learning_rate=1.5), 0.1, 200)
    assert too_fast["sgd"].diverged and len(too_fast["sgd"].points) < 201
    assert not too_fast["adam"].diverged


def test_optimizer_settings_are_checked():
    with pytest.raises(ZooError, match="momentum"):
        formulas.optimize("momentum", float, np.asarray, [0.0], formulas.OptimizerSettings(momentum=1.0), 5)
    with pytest.raises(ZooError, match="unknown"):
        formulas.optimize("rmsprop", float, np.asarray, [0.0], formulas.OptimizerSettings(), 5)


# --- 6. convolution and pooling -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    return load_embedded_mnist().x_test[3] / 255.0


@pytest.mark.parametrize("kernel_name", list(formulas.KERNELS))
def test_convolution_equals_keras_conv2d(digit, kernel_name):
    kernel = formulas.KERNELS[kernel_name]
    ours = formulas.convolve2d(digit, kernel, bias=0.25)
    assert ours.shape == (26, 26)
    np.testing.assert_allclose(ours, formulas.keras_conv2d(digit, kernel, bias=0.25), rtol=0, atol=TOLERANCE)
    assert formulas.check_convolution_against_keras(digit, kernel, bias=0.25).passed


def test_convolution_equals_keras_conv2d_in_float32(digit):
    """The same check against a default (float32) Conv2D layer built here, not by zoo."""
    import keras

    kernel = formulas.KERNELS["vertical edge"]
    layer = keras.layers.Conv2D(1, (3, 3), use_bias=False)
    layer.build((1, 28, 28, 1))
    layer.set_weights([kernel.reshape(3, 3, 1, 1).astype("float32")])
    expected = np.asarray(layer(digit[None, :, :, None].astype("float32")))[0, :, :, 0]
    np.testing.assert_allclose(formulas.convolve2d(digit, kernel), expected, rtol=0, atol=TOLERANCE)


def test_max_pool_equals_keras_max_pooling(digit):
    import keras

    feature_map = formulas.activation("relu", formulas.convolve2d(digit, formulas.KERNELS["sharpen"]))
    expected = np.asarray(keras.layers.MaxPooling2D((2, 2))(feature_map[None, :, :, None]))[0, :, :, 0]
    np.testing.assert_allclose(formulas.max_pool(feature_map), expected, rtol=0, atol=TOLERANCE)
    assert formulas.max_pool(np.arange(25.0).reshape(5, 5)).tolist() == [[6.0, 8.0], [16.0, 18.0]]


def test_convolution_steps_fill_the_feature_map_row_by_row(digit):
    kernel = formulas.KERNELS["horizontal edge"]
    full = formulas.convolve2d(digit, kernel)
    step = formulas.convolution_step(digit, kernel, 30)
    assert (step.row, step.column) == (1, 3)
    assert step.value == pytest.approx(step.products.sum()) == pytest.approx(full[1, 3])
    np.testing.assert_array_equal(step.window, digit[1:4, 3:6])
    assert np.count_nonzero(~np.isnan(step.partial_output)) == 30
    last = formulas.convolution_step(digit, kernel, full.size)
    np.testing.assert_array_equal(last.partial_output, full)
    with pytest.raises(ZooError, match="between 1 and 676"):
        formulas.convolution_step(digit, kernel, 0)
