"""The project's vocabulary: one spelling for every choice a person makes and every shape a model has.

The CLI's ``choices=``, the pages' selectboxes, the Learn page, the builders and the checks all read
these names, so a word means the same thing everywhere (a run's ``kind``, a spec's ``kind`` and a
saved model's ``kind`` are the same word). Nothing here imports anything.
"""

from __future__ import annotations

# --- the two models ----------------------------------------------------------------------------

MODEL_KINDS = ("cnn", "binary")
KIND_LABELS = {"cnn": "MNIST CNN", "binary": "2-D binary classifier"}

NUM_DIGITS = 10
MNIST_IMAGE_SHAPE = (28, 28)  # one MNIST digit, uint8 pixels
MNIST_INPUT_SHAPE = (*MNIST_IMAGE_SHAPE, 1)  # what the CNN reads: one grey channel
POINT_INPUT_SHAPE = (2,)  # what the binary classifier reads: one 2-D point
KIND_SHAPES = {"cnn": (MNIST_INPUT_SHAPE, (NUM_DIGITS,)), "binary": (POINT_INPUT_SHAPE, (1,))}

# --- training choices --------------------------------------------------------------------------

ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
OPTIMIZER_LABELS = {
    "sgd": "Gradient descent (SGD)",
    "momentum": "Momentum",
    "rmsprop": "RMSprop",
    "adam": "Adam",
}
LEARNING_RATE_SCHEDULES = ("constant", "cosine")
LEARNING_RATE_SCHEDULE_LABELS = {
    "constant": "Constant",
    "cosine": "Cosine decay (to about 1% by the last epoch)",
}
RACE_OPTIMIZERS = ("sgd", "momentum", "adam")  # the ones the Learn page races in plain numpy
DEVICES = ("auto", "cpu")  # auto: the GPU when the host has one
BACKENDS = ("tensorflow", "jax", "torch")  # Keras 3 backends; a spec may also say "auto" (the host's)
DEFAULT_BACKEND = "tensorflow"  # what Keras runs on when nothing configures it
POINT_DATASETS = ("moons", "circles", "xor", "gaussians", "spiral")
MNIST_SOURCES = ("auto", "embedded")  # besides the path of a Keras mnist.npz

# --- drawing -----------------------------------------------------------------------------------

CANVAS_SIDE = 280  # pixels of the Draw page's square canvas (10x an MNIST digit)
