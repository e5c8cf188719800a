"""The two teaching architectures, exactly as the articles build them, and their configurable forms.

Keras 3 API only (no ``tf.*``), so the JAX and PyTorch backends work too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from zoo.core.errors import ZooError
from zoo.core.spec import check_conv_filters, check_hidden_units
from zoo.core.vocabulary import ACTIVATIONS, MNIST_INPUT_SHAPE, NUM_DIGITS, OPTIMIZERS, POINT_INPUT_SHAPE

if TYPE_CHECKING:
    import keras


def build_mnist_cnn(
    conv_filters: tuple[int, ...] = (32, 64, 64),
    dense_units: tuple[int, ...] = (64,),
    activation: str = "relu",
) -> keras.Model:
    """Build the article's MNIST CNN (defaults: 93,322 parameters).

    Conv2D(32,3x3) - MaxPool(2) - Conv2D(64,3x3) - MaxPool(2) - Conv2D(64,3x3) - Flatten -
    Dense(64) - Dense(10, softmax). A max-pool follows every convolution but the last.
    The softmax output stays float32 so the model also trains under mixed precision.
    """
    import keras

    _check_activation(activation)
    check_conv_filters(conv_filters)
    layers: list = [keras.Input(shape=MNIST_INPUT_SHAPE, name="image")]
    for index, filters in enumerate(conv_filters):
        layers.append(keras.layers.Conv2D(filters, (3, 3), activation=activation, name=f"conv{index + 1}"))
        if index < len(conv_filters) - 1:
            layers.append(keras.layers.MaxPooling2D((2, 2), name=f"pool{index + 1}"))
    layers.append(keras.layers.Flatten(name="flatten"))
    layers += _dense_stack(dense_units, activation)
    layers.append(keras.layers.Dense(NUM_DIGITS, activation="softmax", dtype="float32", name="digit"))
    return keras.Sequential(layers, name="mnist_cnn")


def build_binary_classifier(hidden_units: tuple[int, ...] = (3,), activation: str = "sigmoid") -> keras.Model:
    """Build the article's binary classifier: 2 inputs - Dense(3, sigmoid) - Dense(1, sigmoid)."""
    import keras

    _check_activation(activation)
    layers = [keras.Input(shape=POINT_INPUT_SHAPE, name="point"), *_dense_stack(hidden_units, activation)]
    layers.append(keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability"))
    return keras.Sequential(layers, name="binary_classifier")


def make_optimizer(name: str = "adam", learning_rate: float = 0.001, momentum: float = 0.9):
    """Return a fresh Keras optimizer: ``sgd``, ``momentum`` (SGD with momentum), ``rmsprop`` or ``adam``."""
    import keras

    try:  # Keras refuses an int learning rate (e.g. 1 from JSON or a query string)
        learning_rate, momentum = float(learning_rate), float(momentum)
    except (TypeError, ValueError):
        raise ZooError(
            f"learning_rate={learning_rate!r}, momentum={momentum!r}: give numbers, e.g. 0.001 and 0.9."
        ) from None
    if not 0 < learning_rate < math.inf:
        raise ZooError(f"learning_rate={learning_rate!r}: it must be a positive number, e.g. 0.001.")
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if name == "momentum":
        if not 0 <= momentum < 1:
            raise ZooError(f"momentum={momentum!r}: it must be in [0, 1), e.g. 0.9.")
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    raise ZooError(f"optimizer {name!r} is unknown: choose one of {', '.join(OPTIMIZERS)}.")


def compile_classifier(model: keras.Model, optimizer, *, steps_per_execution: int = 1) -> None:
    """Compile with the article's loss for the model's output: softmax -> categorical, sigmoid -> binary."""
    loss = "binary_crossentropy" if model.output_shape[-1] == 1 else "categorical_crossentropy"
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


def layer_sizes(
    kind: str, conv_filters: tuple[int, ...], hidden_units: tuple[int, ...]
) -> list[tuple[int, int]]:
    """(parameters, output values per example) of each layer ``build_mnist_cnn`` or
    ``build_binary_classifier`` would make, computed without building it (so a layer of 10^9 units
    can be refused before any memory is taken). The input counts as a layer without parameters."""
    if kind == "binary":
        sizes, width = [(0, 2)], 2
    else:
        sizes, side, channels = [(0, 28 * 28)], 28, 1
        for index, filters in enumerate(conv_filters):
            side -= 2  # a 3x3 convolution without padding
            sizes.append(((9 * channels + 1) * filters, side * side * filters))
            channels = filters
            if index < len(conv_filters) - 1:
                side //= 2
                sizes.append((0, side * side * filters))
        width = side * side * channels
    for units in (*hidden_units, 1 if kind == "binary" else NUM_DIGITS):
        sizes.append(((width + 1) * units, units))
        width = units
    return sizes


def _dense_stack(units: tuple[int, ...], activation: str) -> list:
    import keras

    check_hidden_units(units)
    return [
        keras.layers.Dense(size, activation=activation, name=f"hidden{index + 1}")
        for index, size in enumerate(units)
    ]


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ZooError(f"activation {activation!r} is unknown: choose one of {', '.join(ACTIVATIONS)}.")
