"""Plain numpy reference math for the Learn page: every formula of the articles, computed by hand.

Each formula here is checked against Keras in tests/test_formulas.py (backprop against Keras' autodiff,
the optimizers against ``keras.optimizers``, the convolution against ``keras.layers.Conv2D``). The
``keras_*`` functions are those Keras counterparts; they import Keras lazily, so the rest of this
module (and the Learn page) never pays the import time of Keras' backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace

import numpy as np

from zoo.core.errors import ZooError
from zoo.core.vocabulary import RACE_OPTIMIZERS

ACTIVATION_NAMES = ("sigmoid", "relu", "tanh")
LOSS_NAMES = ("mse", "binary_crossentropy", "categorical_crossentropy")
NUM_CLASSES = 10
PROBABILITY_FLOOR = 1e-7  # Keras' epsilon: probabilities are clipped to [1e-7, 1 - 1e-7] inside log()


# --- 1. The neuron ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeuronOutput:
    """One neuron's computation: the weighted sum ``z`` and the activation ``a = activation(z)``."""

    products: np.ndarray  # w_j * x_j for each input j
    z: float
    a: float


def neuron(inputs, weights, bias: float, activation_name: str = "sigmoid") -> NeuronOutput:
    """Compute z = sum_j w_j x_j + b and a = activation(z) for one neuron.

    Raises:
        ZooError: inputs and weights differ in length, or the activation is unknown.
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if inputs.shape != weights.shape or inputs.ndim != 1:
        raise ZooError(
            f"neuron got {inputs.shape} inputs and {weights.shape} weights: give one weight per input, "
            "as two 1-D lists of the same length."
        )
    products = weights * inputs
    z = float(products.sum() + bias)
    return NeuronOutput(products=products, z=z, a=float(activation(activation_name, np.array(z))))


# --- 2. Activations ---------------------------------------------------------------------------------


def _check_activation_name(name: str) -> None:
    if name not in ACTIVATION_NAMES:
        raise ZooError(f"activation {name!r} is unknown: choose one of {', '.join(ACTIVATION_NAMES)}.")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + e^-z), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    exp_neg_abs = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + exp_neg_abs), exp_neg_abs / (1.0 + exp_neg_abs))


def activation(name: str, z: np.ndarray) -> np.ndarray:
    """Apply ``sigmoid``, ``relu`` or ``tanh`` elementwise."""
    _check_activation_name(name)
    z = np.asarray(z, dtype=np.float64)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    return np.tanh(z)


def activation_derivative(name: str, z: np.ndarray) -> np.ndarray:
    """d activation / dz: sigma (1 - sigma); 1[z > 0] (0 at z = 0, as TensorFlow); 1 - tanh^2."""
    _check_activation_name(name)
    z = np.asarray(z, dtype=np.float64)
    if name == "sigmoid":
        s = sigmoid(z)
        return s * (1.0 - s)
    if name == "relu":
        return (z > 0).astype(np.float64)
    return 1.0 - np.tanh(z) ** 2


def activation_curves(
    z_min: float = -6.0, z_max: float = 6.0, num_points: int = 241
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A z grid and, for each activation, its values and derivative on that grid."""
    z_grid = np.linspace(z_min, z_max, num_points)
    return z_grid, {
        name: (activation(name, z_grid), activation_derivative(name, z_grid)) for name in ACTIVATION_NAMES
    }


def saturation_intervals(
    name: str, z_min: float = -6.0, z_max: float = 6.0, fraction: float = 0.1
) -> list[tuple[float, float]]:
    """Where on [z_min, z_max] the derivative is below ``fraction`` of its peak: the function saturates.

    Returns intervals ``(start, end)``; there the gradient that flows back is (almost) zero.
    """
    grid = np.round(np.linspace(z_min, z_max, 2401), 9)
    flat = activation_derivative(name, grid) < fraction * activation_derivative(name, grid).max()
    intervals = []
    start = None
    for index, is_flat in enumerate(flat):
        if is_flat and start is None:
            start = float(grid[index])
        if start is not None and (not is_flat or index == len(grid) - 1):
            intervals.append((start, float(grid[index if is_flat else index - 1])))
            start = None
    return intervals


# --- 3. Losses --------------------------------------------------------------------------------------


def _check_loss_name(name: str) -> None:
    if name not in LOSS_NAMES:
        raise ZooError(f"loss {name!r} is unknown: choose one of {', '.join(LOSS_NAMES)}.")


def loss(name: str, prediction: np.ndarray, label: np.ndarray) -> float:
    """Mean loss over the last axis (one sample) or over all samples, as Keras computes it.

    ``mse``: mean (y - p)^2. ``binary_crossentropy``: -(y log p + (1 - y) log(1 - p)).
    ``categorical_crossentropy``: -sum_k y_k log p_k per sample (``prediction`` are probabilities).
    """
    _check_loss_name(name)
    prediction = np.asarray(prediction, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    if name == "mse":
        return float(np.mean((label - prediction) ** 2))
    clipped = np.clip(prediction, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    if name == "binary_crossentropy":
        return float(np.mean(-(label * np.log(clipped) + (1 - label) * np.log(1 - clipped))))
    per_sample = -np.sum(label * np.log(clipped), axis=-1)
    return float(np.mean(per_sample))


def loss_gradient(name: str, prediction: np.ndarray, label: np.ndarray) -> np.ndarray:
    """d loss / d prediction, elementwise (same shape as ``prediction``), for unclipped probabilities."""
    _check_loss_name(name)
    prediction = np.asarray(prediction, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    if name == "mse":
        return 2.0 * (prediction - label) / prediction.size
    if name == "binary_crossentropy":
        return (prediction - label) / (prediction * (1 - prediction)) / prediction.size
    num_samples = prediction.size // prediction.shape[-1]
    return -label / prediction / num_samples


def loss_gradient_wrt_logit(name: str, prediction: float, label: float) -> float:
    """d loss / dz for one sigmoid output a = sigma(z): how hard the last layer is pushed.

    MSE: 2 (a - y) a (1 - a), tiny when a is confidently wrong (a near 0 or 1).
    Binary cross-entropy: a - y, the full error. Categorical cross-entropy with softmax: p_k - y_k
    (the same form), here for the true class.
    """
    _check_loss_name(name)
    if name == "mse":
        return 2.0 * (prediction - label) * prediction * (1 - prediction)
    return prediction - label


def loss_curves(label: float, predictions: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each loss and its gradient d loss / d p as a function of the predicted probability p of the label.

    For categorical cross-entropy the label's class is one of ten and gets probability q = p (label 1)
    or 1 - p (label 0), the other nine share the rest evenly; the loss, -log q, depends on q only,
    so it coincides with binary cross-entropy: categorical cross-entropy is its many-class form.
    """
    if label not in (0, 1):
        raise ZooError(f"label={label!r}: the loss curves are drawn for a label of 0 or 1.")
    predictions = np.asarray(predictions, dtype=np.float64)
    curves = {}
    for name in ("mse", "binary_crossentropy"):
        values = np.array([loss(name, np.array([p]), np.array([label])) for p in predictions])
        gradients = np.array([loss_gradient(name, np.array([p]), np.array([label]))[0] for p in predictions])
        curves[name] = (values, gradients)
    # Ten classes; the label's class gets q = p (label 1) or 1 - p (label 0), the nine others share the rest.
    true_class = np.array([1.0] + [0.0] * (NUM_CLASSES - 1))
    dq_dp = 1.0 if label == 1 else -1.0
    categorical_values, categorical_gradients = [], []
    for p in predictions:
        q = p if label == 1 else 1 - p
        probabilities = np.array([q] + [(1 - q) / (NUM_CLASSES - 1)] * (NUM_CLASSES - 1))
        categorical_values.append(loss("categorical_crossentropy", probabilities, true_class))
        categorical_gradients.append(
            loss_gradient("categorical_crossentropy", probabilities, true_class)[0] * dq_dp
        )
    curves["categorical_crossentropy"] = (np.array(categorical_values), np.array(categorical_gradients))
    return curves


# --- 4. Backpropagation on the article's 2-3-1 sigmoid network ----------------------------------------


@dataclass(frozen=True)
class NetworkWeights:
    """Weights of the 2-3-1 network in Keras' layout: kernels are (inputs, units)."""

    hidden_kernel: np.ndarray  # (2, 3)
    hidden_bias: np.ndarray  # (3,)
    output_kernel: np.ndarray  # (3, 1)
    output_bias: np.ndarray  # (1,)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The four arrays in Keras' ``get_weights()`` order."""
        return (self.hidden_kernel, self.hidden_bias, self.output_kernel, self.output_bias)

    def flat(self) -> np.ndarray:
        """All 13 parameters in one vector (for the optimizers)."""
        return np.concatenate([array.ravel() for array in self.arrays()])

    @classmethod
    def from_flat(cls, vector: np.ndarray, hidden_units: int = 3) -> NetworkWeights:
        """Inverse of ``flat()``."""
        vector = np.asarray(vector, dtype=np.float64)
        sizes = np.cumsum([2 * hidden_units, hidden_units, hidden_units])
        return cls(
            vector[: sizes[0]].reshape(2, hidden_units),
            vector[sizes[0] : sizes[1]],
            vector[sizes[1] : sizes[2]].reshape(hidden_units, 1),
            vector[sizes[2] :],
        )


def initial_weights(seed: int = 0, hidden_units: int = 3) -> NetworkWeights:
    """Glorot-uniform kernels (Keras' default initializer) and small random biases, from ``seed``.

    The biases are non-zero on purpose, so every number of the forward pass is visible on the page.
    """
    rng = np.random.default_rng(seed)
    hidden_limit = np.sqrt(6.0 / (2 + hidden_units))
    output_limit = np.sqrt(6.0 / (hidden_units + 1))
    return NetworkWeights(
        hidden_kernel=rng.uniform(-hidden_limit, hidden_limit, size=(2, hidden_units)),
        hidden_bias=rng.uniform(-0.1, 0.1, size=hidden_units),
        output_kernel=rng.uniform(-output_limit, output_limit, size=(hidden_units, 1)),
        output_bias=rng.uniform(-0.1, 0.1, size=1),
    )


BACKPROP_SAMPLES = (
    ((0.5, 0.8), 1),
    ((-0.6, 0.4), 0),
    ((1.2, -0.9), 0),
    ((-1.0, -1.1), 1),
)


@dataclass(frozen=True)
class BackpropTrace:
    """Every number of one forward and backward pass (binary cross-entropy, mean over the samples)."""

    inputs: np.ndarray  # x, (n, 2)
    labels: np.ndarray  # y, (n, 1)
    hidden_z: np.ndarray  # z1 = x W1 + b1, (n, 3)
    hidden_a: np.ndarray  # a1 = sigma(z1)
    output_z: np.ndarray  # z2 = a1 W2 + b2, (n, 1)
    output_a: np.ndarray  # a2 = sigma(z2), the predicted probability
    loss: float
    output_delta: np.ndarray  # delta2 = dL/dz2 = (a2 - y) / n
    hidden_delta: np.ndarray  # delta1 = dL/dz1 = (delta2 W2^T) * a1 (1 - a1)
    gradients: NetworkWeights  # dL/dW1 = x^T delta1, dL/db1 = sum delta1, dL/dW2 = a1^T delta2, dL/db2
    updated: NetworkWeights  # W - learning_rate * dL/dW
    learning_rate: float


def backprop(weights: NetworkWeights, inputs, labels, learning_rate: float = 0.1) -> BackpropTrace:
    """One forward pass, backward pass and gradient-descent step of the 2-3-1 sigmoid network.

    Args:
        inputs: one point (2,) or a batch (n, 2).
        labels: 0/1, one per point.

    Raises:
        ZooError: shapes or labels that do not fit the network.
    """
    x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    y = np.asarray(labels, dtype=np.float64).reshape(-1, 1)
    if x.shape[1] != 2 or len(y) != len(x):
        raise ZooError(
            f"backprop got inputs of shape {x.shape} and {len(y)} label(s): give points of 2 coordinates, "
            "one 0/1 label per point."
        )
    if not np.all((y == 0) | (y == 1)):
        raise ZooError(f"labels {y.ravel().tolist()}: a binary classifier needs labels 0 or 1.")
    w1, b1, w2, b2 = weights.arrays()
    hidden_z = x @ w1 + b1
    hidden_a = sigmoid(hidden_z)
    output_z = hidden_a @ w2 + b2
    output_a = sigmoid(output_z)
    # Cross-entropy on the logit (log-sigmoid), exact even when a2 rounds to 0 or 1.
    loss_value = float(np.mean(np.logaddexp(0.0, output_z) - y * output_z))
    output_delta = (output_a - y) / len(x)
    hidden_delta = (output_delta @ w2.T) * hidden_a * (1.0 - hidden_a)
    gradients = NetworkWeights(
        hidden_kernel=x.T @ hidden_delta,
        hidden_bias=hidden_delta.sum(axis=0),
        output_kernel=hidden_a.T @ output_delta,
        output_bias=output_delta.sum(axis=0),
    )
    updated = NetworkWeights(
        *(w - learning_rate * g for w, g in zip(weights.arrays(), gradients.arrays(), strict=True))
    )
    return BackpropTrace(
        x,
        y,
        hidden_z,
        hidden_a,
        output_z,
        output_a,
        loss_value,
        output_delta,
        hidden_delta,
        gradients,
        updated,
        learning_rate,
    )


def keras_backprop_gradients(weights: NetworkWeights, inputs, labels) -> tuple[float, NetworkWeights]:
    """The loss and gradients that Keras' automatic differentiation computes (on its active backend).

    Uses the app's own ``zoo.ml.architectures.build_binary_classifier`` with ``weights`` set, and Keras'
    ``BinaryCrossentropy`` loss, the one training uses.
    """
    import keras

    from zoo.ml import backend
    from zoo.ml.architectures import build_binary_classifier

    x = np.atleast_2d(np.asarray(inputs, dtype=np.float32))
    y = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
    model = build_binary_classifier((weights.hidden_bias.size,), "sigmoid")
    model.set_weights([np.asarray(array, dtype=np.float32) for array in weights.arrays()])
    result = backend.current().weight_gradients(model, keras.losses.BinaryCrossentropy(), x, y)
    # trainable_variables lists the layers in order, each kernel before its bias
    kernel_1, bias_1, kernel_2, bias_2 = (gradient.astype(np.float64) for gradient in result.gradients)
    return result.loss, NetworkWeights(kernel_1, bias_1, kernel_2, bias_2)


@dataclass(frozen=True)
class KerasCheck:
    """How far a numpy result is from the same computation in Keras, and how long Keras took."""

    max_abs_difference: float
    tolerance: float
    seconds: float

    @property
    def passed(self) -> bool:
        return self.max_abs_difference <= self.tolerance


def check_backprop_against_keras(
    weights: NetworkWeights, inputs, labels, tolerance: float = 1e-6
) -> KerasCheck:
    """Compare ``backprop`` (numpy) with ``keras_backprop_gradients`` on every gradient and the loss."""
    started = time.perf_counter()
    keras_loss, keras_gradients = keras_backprop_gradients(weights, inputs, labels)
    seconds = time.perf_counter() - started
    trace = backprop(weights, inputs, labels)
    differences = [abs(trace.loss - keras_loss)] + [
        float(np.max(np.abs(ours - theirs)))
        for ours, theirs in zip(trace.gradients.arrays(), keras_gradients.arrays(), strict=True)
    ]
    return KerasCheck(max(differences), tolerance, seconds)


# --- 5. Optimizers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerSettings:
    """Hyper-parameters; the defaults are Keras' (``epsilon`` is Adam's epsilon-hat, 1e-7 in Keras)."""

    learning_rate: float = 0.01
    momentum: float = 0.9
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7

    def rounded_to_float32(self) -> OptimizerSettings:
        """These settings as Keras uses them: it turns each hyper-parameter into a float32 tensor first.

        ``keras.optimizers.Adam(beta_2=0.999)`` really uses float32(0.999) = 0.99900001..., which moves
        sqrt(1 - beta_2^t) by ~6e-6 relative at t = 1; comparing with Keras needs the same numbers.
        """
        return OptimizerSettings(*(float(np.float32(value)) for value in astuple(self)))


@dataclass(frozen=True)
class OptimizerState:
    """What an optimizer remembers between steps: the step count t, and m (velocity / first moment), v."""

    step: int
    first_moment: np.ndarray
    second_moment: np.ndarray


def initial_optimizer_state(parameters: np.ndarray) -> OptimizerState:
    """Zero moments at step 0, shaped like ``parameters``."""
    zeros = np.zeros_like(np.asarray(parameters, dtype=np.float64))
    return OptimizerState(0, zeros, zeros.copy())


def _check_optimizer_settings(name: str, settings: OptimizerSettings) -> None:
    if name not in RACE_OPTIMIZERS:
        raise ZooError(f"optimizer {name!r} is unknown: choose one of {', '.join(RACE_OPTIMIZERS)}.")
    if not settings.learning_rate > 0:
        raise ZooError(f"learning_rate={settings.learning_rate!r}: it must be a positive number, e.g. 0.01.")
    for field, value in (
        ("momentum", settings.momentum),
        ("beta_1", settings.beta_1),
        ("beta_2", settings.beta_2),
    ):
        if not 0 <= value < 1:
            raise ZooError(f"{field}={value!r}: it must be in [0, 1), e.g. 0.9.")


def optimizer_step(
    name: str,
    parameters: np.ndarray,
    gradient: np.ndarray,
    state: OptimizerState,
    settings: OptimizerSettings,
) -> tuple[np.ndarray, OptimizerState]:
    """One update of ``sgd``, ``momentum`` or ``adam``, with exactly Keras' formulas.

    sgd:       theta <- theta - eta g
    momentum:  m <- mu m - eta g;  theta <- theta + m          (keras.optimizers.SGD(momentum=mu))
    adam:      m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;
               theta <- theta - eta sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps_hat)
               (Kingma & Ba's bias-corrected update in the paper's "more efficient" order, as Keras does)

    Raises:
        ZooError: unknown optimizer or hyper-parameters out of range.
    """
    _check_optimizer_settings(name, settings)
    parameters = np.asarray(parameters, dtype=np.float64)
    gradient = np.asarray(gradient, dtype=np.float64)
    step = state.step + 1
    eta = settings.learning_rate
    if name == "sgd":
        return parameters - eta * gradient, replace(state, step=step)
    if name == "momentum":
        velocity = settings.momentum * state.first_moment - eta * gradient
        return parameters + velocity, OptimizerState(step, velocity, state.second_moment)
    first = state.first_moment + (gradient - state.first_moment) * (1 - settings.beta_1)
    second = state.second_moment + (gradient**2 - state.second_moment) * (1 - settings.beta_2)
    alpha = eta * np.sqrt(1 - settings.beta_2**step) / (1 - settings.beta_1**step)
    updated = parameters - first * alpha / (np.sqrt(second) + settings.epsilon)
    return updated, OptimizerState(step, first, second)


@dataclass(frozen=True)
class Trajectory:
    """The points an optimizer visits, the loss at each, and whether it blew up (stopped early)."""

    points: np.ndarray  # (steps + 1, dim), or fewer when diverged
    losses: np.ndarray
    diverged: bool


DIVERGENCE_LIMIT = 1e6


def optimize(
    name: str,
    loss_function: Callable[[np.ndarray], float],
    gradient_function: Callable[[np.ndarray], np.ndarray],
    start,
    settings: OptimizerSettings,
    num_steps: int,
) -> Trajectory:
    """Run ``num_steps`` updates from ``start``; stop early if the parameters leave |theta| < 1e6.

    Raises:
        ZooError: num_steps outside 1-10,000, or bad optimizer settings.
    """
    _check_optimizer_settings(name, settings)
    if not 1 <= num_steps <= 10_000:
        raise ZooError(f"num_steps={num_steps}: choose between 1 and 10,000 steps.")
    point = np.asarray(start, dtype=np.float64)
    state = initial_optimizer_state(point)
    points, losses = [point], [loss_function(point)]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(num_steps):
            point, state = optimizer_step(name, point, gradient_function(point), state, settings)
            if not np.all(np.isfinite(point)) or np.max(np.abs(point)) > DIVERGENCE_LIMIT:
                return Trajectory(np.array(points), np.array(losses), diverged=True)
            points.append(point)
            losses.append(loss_function(point))
    return Trajectory(np.array(points), np.array(losses), diverged=False)


@dataclass(frozen=True)
class Surface:
    """A 2-D loss surface for the optimizer race."""

    name: str
    title: str
    latex: str
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    minimum: tuple[float, float]
    learning_rate: float  # a rate at which gradient descent is stable here
    adam_learning_rate: float


SURFACES = {
    "bowl": Surface("bowl", "Bowl", r"f(x, y) = x^2 + y^2", (-1.6, 1.3), (-2, 2), (-2, 2), (0, 0), 0.1, 0.1),
    "valley": Surface(
        "valley",
        "Elongated valley",
        r"f(x, y) = 0.05\,x^2 + 2\,y^2",
        (-3.5, 1.0),
        (-4, 4),
        (-1.5, 1.5),
        (0, 0),
        0.2,
        0.1,
    ),
    "rosenbrock": Surface(
        "rosenbrock",
        "Rosenbrock",
        r"f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2",
        (-1.2, 1.0),
        (-2, 2),
        (-1, 3),
        (1, 1),
        0.001,
        0.05,
    ),
    "saddle": Surface(
        "saddle",
        "Saddle",
        r"f(x, y) = x^2 - y^2 + \tfrac{1}{4}y^4",
        (-1.8, 0.02),
        (-2, 2),
        (-2, 2),
        (0, np.sqrt(2)),
        0.05,
        0.05,
    ),
}


def _surface(name: str) -> Surface:
    if name not in SURFACES:
        raise ZooError(f"surface {name!r} is unknown: choose one of {', '.join(SURFACES)}.")
    return SURFACES[name]


def surface_value(name: str, x, y) -> np.ndarray:
    """f(x, y) of a race surface, elementwise over arrays."""
    _surface(name)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if name == "bowl":
        return x**2 + y**2
    if name == "valley":
        return 0.05 * x**2 + 2 * y**2
    if name == "rosenbrock":
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2
    return x**2 - y**2 + 0.25 * y**4


def surface_gradient(name: str, point) -> np.ndarray:
    """(df/dx, df/dy) of a race surface at ``point``."""
    _surface(name)
    x, y = np.asarray(point, dtype=np.float64)
    if name == "bowl":
        return np.array([2 * x, 2 * y])
    if name == "valley":
        return np.array([0.1 * x, 4 * y])
    if name == "rosenbrock":
        return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])
    return np.array([2 * x, -2 * y + y**3])


def surface_grid(name: str, resolution: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x values, y values and f on their grid (rows follow y) over the surface's plotting range."""
    surface = _surface(name)
    xs = np.linspace(*surface.x_range, resolution)
    ys = np.linspace(*surface.y_range, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    return xs, ys, surface_value(name, grid_x, grid_y)


def optimizer_race(
    surface_name: str, settings: OptimizerSettings, adam_learning_rate: float, num_steps: int
) -> dict[str, Trajectory]:
    """Run gradient descent, momentum and Adam from the surface's start point.

    ``settings.learning_rate`` drives gradient descent and momentum; Adam, whose step is roughly
    its learning rate whatever the gradient's size, gets its own ``adam_learning_rate``.
    """
    surface = _surface(surface_name)

    def loss_function(point: np.ndarray) -> float:
        return float(surface_value(surface_name, *point))

    def gradient_function(point: np.ndarray) -> np.ndarray:
        return surface_gradient(surface_name, point)

    adam_settings = replace(settings, learning_rate=adam_learning_rate)
    return {
        name: optimize(
            name,
            loss_function,
            gradient_function,
            surface.start,
            adam_settings if name == "adam" else settings,
            num_steps,
        )
        for name in RACE_OPTIMIZERS
    }


def keras_optimizer_trajectory(
    name: str,
    gradient_function: Callable[[np.ndarray], np.ndarray],
    start,
    settings: OptimizerSettings,
    num_steps: int,
) -> np.ndarray:
    """The same run as ``optimize`` but with ``keras.optimizers.SGD``/``Adam`` updating a float64 variable.

    Returns the (num_steps + 1, dim) points Keras visits.
    """
    import keras

    _check_optimizer_settings(name, settings)
    if name == "adam":
        optimizer = keras.optimizers.Adam(
            learning_rate=settings.learning_rate,
            beta_1=settings.beta_1,
            beta_2=settings.beta_2,
            epsilon=settings.epsilon,
        )
    else:
        optimizer = keras.optimizers.SGD(
            learning_rate=settings.learning_rate, momentum=settings.momentum if name == "momentum" else 0.0
        )
    variable = keras.Variable(np.asarray(start, dtype=np.float64), dtype="float64")
    points = [np.array(variable.numpy())]
    for _ in range(num_steps):
        gradient = keras.ops.convert_to_tensor(gradient_function(np.array(variable.numpy())), dtype="float64")
        optimizer.apply_gradients([(gradient, variable)])
        points.append(np.array(variable.numpy()))
    return np.array(points)


# --- 6. Convolution and pooling ----------------------------------------------------------------------

KERNELS = {
    "vertical edge": np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]),
    "horizontal edge": np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]),
    "diagonal edge": np.array([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]]),
    "sharpen": np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
    "blur": np.full((3, 3), 1.0 / 9.0),
}


def _check_image_and_kernel(image: np.ndarray, kernel: np.ndarray) -> None:
    if image.ndim != 2 or kernel.ndim != 2:
        raise ZooError(
            f"convolution got an image of shape {image.shape} and a kernel of shape {kernel.shape}: "
            "give two 2-D arrays (e.g. a 28x28 digit and a 3x3 kernel)."
        )
    if kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
        raise ZooError(f"kernel {kernel.shape} is larger than the image {image.shape}: use a smaller kernel.")


def convolve2d(image, kernel, bias: float = 0.0) -> np.ndarray:
    """'Valid' 2-D convolution as CNNs (and Keras' Conv2D) define it: out[i, j] = sum(window * kernel) + b.

    Strictly a cross-correlation: the kernel is not flipped. Output shape: (H - kh + 1, W - kw + 1).
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    _check_image_and_kernel(image, kernel)
    windows = np.lib.stride_tricks.sliding_window_view(image, kernel.shape)
    return np.einsum("ijkl,kl->ij", windows, kernel) + bias


@dataclass(frozen=True)
class ConvolutionStep:
    """The kernel at one position: the window it covers, the products, and the output map so far."""

    step: int  # 1-based: how many outputs are filled
    row: int
    column: int
    window: np.ndarray
    products: np.ndarray
    value: float
    partial_output: np.ndarray  # NaN where the kernel has not been yet


def convolution_step(image, kernel, step: int, bias: float = 0.0) -> ConvolutionStep:
    """The convolution after ``step`` kernel positions (row by row, left to right).

    Raises:
        ZooError: step outside 1..(number of output positions).
    """
    output = convolve2d(image, kernel, bias)
    total = output.size
    if not 1 <= step <= total:
        raise ZooError(f"step={step}: choose a kernel position between 1 and {total}.")
    row, column = divmod(step - 1, output.shape[1])
    kernel = np.asarray(kernel, dtype=np.float64)
    window = np.asarray(image, dtype=np.float64)[
        row : row + kernel.shape[0], column : column + kernel.shape[1]
    ]
    partial = np.full(total, np.nan)
    partial[:step] = output.ravel()[:step]
    return ConvolutionStep(
        step, row, column, window, window * kernel, float(output[row, column]), partial.reshape(output.shape)
    )


def max_pool(feature_map, size: int = 2) -> np.ndarray:
    """Non-overlapping size x size max pooling (Keras' MaxPooling2D, 'valid': a ragged edge is dropped)."""
    feature_map = np.asarray(feature_map, dtype=np.float64)
    if feature_map.ndim != 2 or size < 1 or min(feature_map.shape) < size:
        raise ZooError(
            f"max_pool got a map of shape {feature_map.shape} and size {size}: "
            "give a 2-D map at least size x size, size >= 1."
        )
    rows, columns = feature_map.shape[0] // size, feature_map.shape[1] // size
    trimmed = feature_map[: rows * size, : columns * size]
    return trimmed.reshape(rows, size, columns, size).max(axis=(1, 3))


def keras_conv2d(image, kernel, bias: float = 0.0) -> np.ndarray:
    """The same convolution computed by a ``keras.layers.Conv2D`` (one filter, float64) with ``kernel``."""
    import keras

    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    _check_image_and_kernel(image, kernel)
    layer = keras.layers.Conv2D(1, kernel.shape, padding="valid", dtype="float64")
    layer.build((1, *image.shape, 1))
    layer.set_weights([kernel.reshape(*kernel.shape, 1, 1), np.array([bias])])
    return np.asarray(layer(image[None, :, :, None]))[0, :, :, 0]


def check_convolution_against_keras(image, kernel, bias: float = 0.0, tolerance: float = 1e-6) -> KerasCheck:
    """Compare ``convolve2d`` (numpy) with ``keras_conv2d`` over the whole feature map."""
    started = time.perf_counter()
    theirs = keras_conv2d(image, kernel, bias)
    seconds = time.perf_counter() - started
    difference = float(np.max(np.abs(convolve2d(image, kernel, bias) - theirs)))
    return KerasCheck(difference, tolerance, seconds)
