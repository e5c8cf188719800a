"""The two article architectures: exact layer sequences and parameter counts, their configurable
forms, the optimizers, and the errors for values they cannot take."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from zoo.core.errors import ZooError
from zoo.ml.architectures import build_binary_classifier, build_mnist_cnn, compile_classifier, make_optimizer


def layer_table(model: keras.Model) -> list[tuple]:
    """(class, name, units or filters, kernel or pool size, activation, parameters) per layer."""
    rows = []
    for layer in model.layers:
        config = layer.get_config()
        rows.append(
            (
                type(layer).__name__,
                layer.name,
                config.get("filters") or config.get("units"),
                tuple(config.get("kernel_size") or config.get("pool_size") or ()),
                config.get("activation"),
                layer.count_params(),
            )
        )
    return rows


def test_the_article_cnn_has_its_layer_sequence_and_93322_parameters():
    model = build_mnist_cnn()
    assert layer_table(model) == [
        ("Conv2D", "conv1", 32, (3, 3), "relu", 320),
        ("MaxPooling2D", "pool1", None, (2, 2), None, 0),
        ("Conv2D", "conv2", 64, (3, 3), "relu", 18_496),
        ("MaxPooling2D", "pool2", None, (2, 2), None, 0),
        ("Conv2D", "conv3", 64, (3, 3), "relu", 36_928),
        ("Flatten", "flatten", None, (), None, 0),
        ("Dense", "hidden1", 64, (), "relu", 36_928),
        ("Dense", "digit", 10, (), "softmax", 650),
    ]
    assert model.count_params() == 93_322
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert model.get_layer("flatten").output.shape == (None, 576)  # 3 x 3 x 64


def test_the_cnn_outputs_a_float32_probability_per_digit():
    probabilities = np.asarray(
        build_mnist_cnn()(np.random.default_rng(0).random((4, 28, 28, 1)), training=False)
    )
    assert probabilities.shape == (4, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities > 0).all()


def test_the_article_binary_classifier_is_2_3_1_sigmoid_with_13_parameters():
    model = build_binary_classifier()
    assert layer_table(model) == [
        ("Dense", "hidden1", 3, (), "sigmoid", 9),
        ("Dense", "probability", 1, (), "sigmoid", 4),
    ]
    assert model.count_params() == 13
    assert model.input_shape == (None, 2) and model.output_shape == (None, 1)
    outputs = np.asarray(model(np.array([[0.0, 0.0], [5.0, -5.0]], np.float32)))
    assert ((outputs > 0) & (outputs < 1)).all()


def test_a_configured_cnn_follows_its_filters_units_and_activation():
    model = build_mnist_cnn(conv_filters=(16, 32), dense_units=(128, 32), activation="tanh")
    assert layer_table(model) == [
        ("Conv2D", "conv1", 16, (3, 3), "tanh", 160),
        ("MaxPooling2D", "pool1", None, (2, 2), None, 0),
        ("Conv2D", "conv2", 32, (3, 3), "tanh", 4_640),  # no pool after the last convolution
        ("Flatten", "flatten", None, (), None, 0),
        ("Dense", "hidden1", 128, (), "tanh", 11 * 11 * 32 * 128 + 128),
        ("Dense", "hidden2", 32, (), "tanh", 128 * 32 + 32),
        ("Dense", "digit", 10, (), "softmax", 330),
    ]
    single = build_mnist_cnn(conv_filters=(8,), dense_units=(10,), activation="sigmoid")
    assert [layer.name for layer in single.layers] == ["conv1", "flatten", "hidden1", "digit"]
    assert single.count_params() == 80 + (26 * 26 * 8 * 10 + 10) + 110


def test_a_configured_binary_classifier_follows_its_hidden_units_and_activation():
    model = build_binary_classifier(hidden_units=(4, 4), activation="relu")
    assert layer_table(model) == [
        ("Dense", "hidden1", 4, (), "relu", 12),
        ("Dense", "hidden2", 4, (), "relu", 20),
        ("Dense", "probability", 1, (), "sigmoid", 5),  # the output stays a probability
    ]


BAD_ARCHITECTURES = [
    (
        lambda: build_mnist_cnn(activation="elu"),
        "activation 'elu' is unknown: choose one of sigmoid, tanh, relu",
    ),
    (lambda: build_binary_classifier(activation="softmax"), "activation 'softmax' is unknown"),
    (lambda: build_mnist_cnn(conv_filters=()), "conv_filters=(): give 1 to 3 positive filter counts"),
    (lambda: build_mnist_cnn(conv_filters=(32, 0)), "conv_filters=(32, 0)"),
    (lambda: build_mnist_cnn(conv_filters=(8, 8, 8, 8)), "conv_filters=(8, 8, 8, 8)"),
    (lambda: build_mnist_cnn(dense_units=()), "hidden units (): give 1 to 6 positive layer sizes"),
    (lambda: build_binary_classifier(hidden_units=(3, -1)), "hidden units (3, -1)"),
    (lambda: build_binary_classifier(hidden_units=(2,) * 7), "hidden units (2, 2, 2, 2, 2, 2, 2)"),
]


@pytest.mark.parametrize(("build", "message"), BAD_ARCHITECTURES)
def test_an_impossible_architecture_raises_a_zoo_error_saying_what_fits(build, message):
    with pytest.raises(ZooError) as raised:
        build()
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("name", "learning_rate", "momentum", "optimizer_class", "expected_momentum"),
    [
        ("sgd", 0.05, 0.9, keras.optimizers.SGD, 0.0),  # plain gradient descent ignores momentum
        ("momentum", 0.01, 0.8, keras.optimizers.SGD, 0.8),
        ("rmsprop", 0.002, 0.9, keras.optimizers.RMSprop, None),
        ("adam", 0.001, 0.9, keras.optimizers.Adam, None),
    ],
)
def test_each_optimizer_is_the_keras_one_with_its_settings(
    name, learning_rate, momentum, optimizer_class, expected_momentum
):
    optimizer = make_optimizer(name, learning_rate, momentum)
    assert type(optimizer) is optimizer_class
    assert float(optimizer.learning_rate) == pytest.approx(learning_rate)
    if expected_momentum is not None:
        assert optimizer.momentum == pytest.approx(expected_momentum)
    assert make_optimizer(name, learning_rate, momentum) is not optimizer  # a fresh one each time


def test_a_whole_number_learning_rate_is_taken():
    """JSON, query strings and Python callers give 1, not 1.0; Keras itself refuses an int."""
    assert float(make_optimizer("sgd", 1).learning_rate) == 1.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("nadam", 0.001), "optimizer 'nadam' is unknown: choose one of sgd, momentum, rmsprop, adam"),
        (("adam", 0.0), "learning_rate=0.0: it must be a positive number"),
        (("adam", -0.1), "learning_rate=-0.1"),
        (("adam", float("nan")), "learning_rate=nan"),
        (("adam", float("inf")), "learning_rate=inf"),
        (("adam", "fast"), "learning_rate='fast', momentum=0.9: give numbers"),
        (("momentum", 0.01, 1.0), "momentum=1.0: it must be in [0, 1)"),
        (("momentum", 0.01, -0.5), "momentum=-0.5"),
    ],
)
def test_a_bad_optimizer_setting_raises_a_zoo_error(arguments, message):
    with pytest.raises(ZooError) as raised:
        make_optimizer(*arguments)
    assert message in str(raised.value)


def test_compile_uses_the_articles_loss_for_each_output():
    cnn, binary = build_mnist_cnn(), build_binary_classifier()
    compile_classifier(cnn, make_optimizer("adam"))
    compile_classifier(binary, make_optimizer("sgd", 0.1), steps_per_execution=4)
    assert cnn.loss == "categorical_crossentropy" and binary.loss == "binary_crossentropy"
    assert binary.steps_per_execution == 4
    # The compiled models train: one step on two examples lowers their loss.
    points, labels = np.array([[1.0, 1.0], [-1.0, -1.0]], np.float32), np.array([[1.0], [0.0]], np.float32)
    before = binary.evaluate(points, labels, verbose=0)[0]
    binary.fit(points, labels, epochs=20, batch_size=2, verbose=0)
    assert binary.evaluate(points, labels, verbose=0)[0] < before
