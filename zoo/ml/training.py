"""One training run: the data a spec names, the model it builds, and a fit that reports progress (the
spec itself, ``TrainSpec``, is a record of ``zoo.core.spec``, which every layer reads).

Nothing here knows about processes, storage or evaluation: ``fit`` reports typed records
(``Progress`` after batches and epochs, ``DecisionSurface`` for the binary classifier) through a
``ProgressReporter`` and asks ``should_stop`` whether to stop; ``zoo.execution.worker`` connects both to the
run store, and evaluates the model ``fit`` returns with ``zoo.ml.evaluation``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import platform
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from zoo.core.errors import DataError
from zoo.core.hosting import Limits, User, check_within, describe_limit
from zoo.core.scores import DigitReading, FineTuningReport, FineTuningScores, Misreading
from zoo.core.settings import load_settings
from zoo.core.spec import Lineage, TrainSpec
from zoo.core.vocabulary import NUM_DIGITS
from zoo.ml import data as datasets
from zoo.ml.architectures import layer_sizes
from zoo.ml.backend import STEP_METRICS, Device

if TYPE_CHECKING:
    import keras

    from zoo.ml.backend import Compiled, StepsRequest, StepsResult
    from zoo.storage.digits import FineTuningSplit

REPORT_INTERVAL_SECONDS = 0.25
SURFACE_RESOLUTION = 40
# A loss this many times its first value has exploded: with the loss computed from logits it can grow
# to 1e17 and fall back to chance once the ReLUs die, without ever becoming NaN.
DIVERGENCE_FACTOR = 1000.0
# Training memory, per parameter: float32 weights, their gradients and two optimizer slots (Adam);
# per activation value: the forward value kept for the backward pass and its gradient;
# per digit of the MNIST file: its uint8 pixels and label (the whole file is loaded);
# per digit trained or tested on: its float32 pixels and one-hot label; per point: two floats and a label.
BYTES_PER_PARAMETER = 4 * 4
BYTES_PER_ACTIVATION = 4 * 2
BYTES_PER_SOURCE_DIGIT = 28 * 28 + 1
BYTES_PER_DIGIT = 28 * 28 * 4 + 10 * 4
BYTES_PER_POINT = 3 * 4


@dataclass(frozen=True)
class TrainingCost:
    """What a run asks of the host, estimated from its spec without building anything."""

    parameters: int
    memory_bytes: int
    samples: int  # training images (CNN; all the data holds when not limited) or points (binary)


def estimate_cost(spec: TrainSpec) -> TrainingCost:
    """The parameters of ``spec``'s model and the memory its training takes (weights, optimizer
    state, activations of one batch, the training data), before any of it exists; the digits counted
    are those its MNIST source holds, read from the file's array headers (``data.count_mnist_digits``).

    Raises:
        DataError: the MNIST file the spec (or ``ZOO_MNIST``) names is missing or not an MNIST npz.
    """
    sizes = layer_sizes(spec.kind, spec.conv_filters, spec.hidden_units)
    parameters = sum(layer_parameters for layer_parameters, _ in sizes)
    activations = sum(outputs for _, outputs in sizes)
    if spec.kind == "cnn":
        if spec.mnist_source == "embedded":
            embedded = datasets.load_embedded_mnist()
            held = datasets.MnistCounts(len(embedded.x_train), len(embedded.x_test))
        else:
            held = datasets.count_mnist_digits(None if spec.mnist_source == "auto" else spec.mnist_source)
        samples = min(spec.max_train_samples or held.train, held.train)
        source_bytes = (held.train + held.test) * BYTES_PER_SOURCE_DIGIT
        data_bytes = source_bytes + (samples + held.test) * BYTES_PER_DIGIT
    else:
        samples = spec.num_samples
        data_bytes = samples * BYTES_PER_POINT
    memory = (
        parameters * BYTES_PER_PARAMETER + spec.batch_size * activations * BYTES_PER_ACTIVATION + data_bytes
    )
    return TrainingCost(parameters=parameters, memory_bytes=memory, samples=samples)


def _asked_of_limits(spec: TrainSpec, cost: TrainingCost) -> list[tuple[str, int, str]]:
    """What ``spec`` asks of each limit: (the ``Limits`` field, the value, what it is in words)."""
    return [
        ("epochs", spec.num_epochs, "the number of epochs"),
        ("batch_size", spec.batch_size, "the batch size"),
        ("samples", cost.samples, "the number of training samples"),
        ("parameters", cost.parameters, "the model's parameter count"),
        ("training_memory_mb", math.ceil(cost.memory_bytes / 2**20), "the estimated training memory (MB)"),
    ]


def check_limits(spec: TrainSpec, limits: Limits) -> TrainingCost:
    """Refuse ``spec`` when it asks more than ``limits`` allow (before anything is queued), judged
    from what its data holds (``estimate_cost``).

    Raises:
        PermissionDenied: naming the first value beyond its limit, the limit, and how to change it.
        DataError: the MNIST file the spec names is missing or not an MNIST npz.
    """
    cost = estimate_cost(spec)
    for name, value, what in _asked_of_limits(spec, cost):
        check_within(name, value, getattr(limits, name), what)
    return cost


def limits_exceeded(spec: TrainSpec, limits: Limits) -> list[str]:
    """The ``Limits`` fields of the limits ``spec`` asks more than, in ``check_limits``' order."""
    return [
        name
        for name, value, _ in _asked_of_limits(spec, estimate_cost(spec))
        if getattr(limits, name) is not None and value > getattr(limits, name)
    ]


@dataclass(frozen=True)
class LimitBound:
    """How far one setting may go on this host, the others as they are: its largest value, and the
    limit that stops it there (None when the setting's own range ends first)."""

    maximum: int
    limit: str | None = None  # the Limits field
    limit_value: int | None = None

    @property
    def note(self) -> str | None:
        """The sentence a page shows next to the field when a limit of the host bounds it, else None."""
        if self.limit is None or self.limit_value is None:
            return None
        return (
            f"At most {self.maximum:,} with the other settings as they are: this host allows "
            f"{describe_limit(self.limit, self.limit_value)}."
        )


def largest_within_limits(
    vary: Callable[[int], TrainSpec], low: int, high: int, limits: Limits
) -> LimitBound:
    """The largest value from ``low`` to ``high`` of the one setting that ``vary`` puts into a spec, for
    which that spec stays within ``limits`` (what a page's field may offer).

    Every cost a limit bounds grows with each setting (epochs, batch size, samples, layer sizes), so a
    bisection finds it with ``estimate_cost`` alone, nothing built. A limit the spec is beyond already at
    ``low`` (through another setting) does not stop this one, nor does data that cannot be counted (a
    file gone since): starting the run says so.

    Args:
        vary: the spec with the setting at a given value, e.g. ``lambda n: replace(spec, num_epochs=n)``.
        low: the setting's lowest value.
        high: its highest value, limits aside.

    Returns:
        The bound.

    Example:
        >>> largest_within_limits(lambda n: replace(spec, num_epochs=n), 1, 1000, HOSTED_LIMITS).maximum
        500
    """
    try:
        beyond_already = set(limits_exceeded(vary(low), limits))
    except DataError:  # data that cannot be counted bounds no field: starting the run says what is wrong
        return LimitBound(high)

    def new_limits_exceeded(value: int) -> list[str]:
        return [name for name in limits_exceeded(vary(value), limits) if name not in beyond_already]

    if not new_limits_exceeded(high):
        return LimitBound(high)
    within, beyond = low, high
    while beyond - within > 1:
        middle = (within + beyond) // 2
        if new_limits_exceeded(middle):
            beyond = middle
        else:
            within = middle
    limit = new_limits_exceeded(beyond)[0]
    return LimitBound(within, limit, getattr(limits, limit))


@dataclass(frozen=True)
class TrainingData:
    """Arrays ready for Keras, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray  # integer labels (digits, or 0/1)
    source: str
    lineage: Lineage | None = None  # a fine-tuning run's base model and personal set
    personal: FineTuningSplit | None = None  # a fine-tuning run's personal set, both parts


# Personal digits make up about this share of a fine-tuning run's training digits (repeated as needed),
# enough to learn a person's handwriting, too little to forget MNIST's.
PERSONAL_SHARE = 0.2


def load_training_data(spec: TrainSpec) -> TrainingData:
    """Load the data ``spec`` names, scaled for the model (pixels to [0,1], one-hot digit labels)."""
    if spec.kind == "binary":
        points = datasets.make_points(
            spec.dataset, spec.num_samples, spec.noise, spec.test_fraction, spec.seed
        )
        return TrainingData(
            points.x_train, points.y_train, points.x_test, points.y_test.astype(int), points.source
        )
    if spec.mnist_source == "embedded":
        mnist = datasets.load_embedded_mnist()
    else:
        mnist = datasets.load_mnist(None if spec.mnist_source == "auto" else spec.mnist_source)
    x_train, y_train = mnist.x_train, mnist.y_train
    source = mnist.source
    if spec.max_train_samples is not None and spec.max_train_samples < len(x_train):
        x_train, y_train = x_train[: spec.max_train_samples], y_train[: spec.max_train_samples]
        source += f"; first {spec.max_train_samples:,} training images"
    data = TrainingData(
        scale_digits(x_train),
        np.eye(NUM_DIGITS, dtype=np.float32)[y_train],
        scale_digits(mnist.x_test),
        mnist.y_test.astype(int),
        source,
    )
    if spec.base_model is not None:
        data = with_personal_digits(spec, spec.base_model, data)
    return data


def with_personal_digits(spec: TrainSpec, base_model: str, data: TrainingData) -> TrainingData:
    """A fine-tuning run's data: the personal set's training part repeated to about ``PERSONAL_SHARE``
    of the digits and shuffled in among MNIST's (a validation split then holds both), the whole set
    kept aside to read before and after (``FineTuningReport``); the MNIST test set stays the test set.

    Raises:
        DigitSetError: the set is empty, holds one class, or is too small to hold out a test part.
    """
    from zoo.storage.digits import DigitStore

    mnist_count = len(data.x_train)
    if spec.digits_set is None:
        lineage = Lineage(base_model, None, 0, 0, (0,) * 10, 0, mnist_count)
        return dataclasses.replace(data, lineage=lineage)
    split = DigitStore().fine_tuning_split(spec.digits_set)
    x_train, y_train, copies = mixed_in(data, split.x_train, split.y_train, PERSONAL_SHARE, spec.seed)
    lineage = Lineage(
        base_model,
        spec.digits_set,
        len(split.x_train),
        len(split.x_test),
        tuple(split.counts()),
        copies,
        mnist_count,
    )
    return dataclasses.replace(
        data,
        x_train=x_train,
        y_train=y_train,
        source=f"{data.source}; with {len(split.x_train)} personal digits of the set "
        f"{spec.digits_set!r} ({copies} copies each)",
        lineage=lineage,
        personal=split,
    )


def mixed_in(
    data: TrainingData, digits: np.ndarray, labels: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """``data``'s training digits with ``digits`` (N, 28, 28) repeated to about ``share`` of them all and
    shuffled in (so a validation split holds some of them too).

    Returns:
        The images (M, 28, 28, 1), their one-hot labels, and how many copies of each digit went in.
    """
    copies = max(1, math.ceil(share * len(data.x_train) / ((1 - share) * len(digits))))
    x_extra = np.repeat(digits[..., np.newaxis], copies, axis=0)
    y_extra = np.eye(10, dtype=np.float32)[np.repeat(labels, copies)]
    order = np.random.default_rng(seed).permutation(len(data.x_train) + len(x_extra))
    return (
        np.concatenate([data.x_train, x_extra])[order],
        np.concatenate([data.y_train, y_extra])[order],
        copies,
    )


def check_fine_tuning(spec: TrainSpec, by: User) -> None:
    """Refuse a fine-tuning spec whose base model or digit set cannot be used by ``by``, before a run
    starts.

    Raises:
        ModelStoreError: no such model in the local zoo, or it is not a CNN.
        PermissionDenied: the digit set is someone else's and not shared (``DigitStore.check_may_read``).
        DigitSetError: the set is unfit for fine-tuning (see ``DigitStore.fine_tuning_split``).
    """
    from zoo.core.errors import ModelStoreError
    from zoo.storage.digits import DigitStore
    from zoo.storage.models import ModelStore

    if spec.base_model is None:
        return
    entry = ModelStore().entry(spec.base_model)
    if entry.kind != "cnn":
        raise ModelStoreError(f"base model {entry.name!r} is a {entry.kind} model; fine-tune a CNN.")
    if spec.digits_set is not None:
        digit_store = DigitStore()
        digit_store.check_may_read(spec.digits_set, by)
        digit_store.fine_tuning_split(spec.digits_set)


# Fields that change a run's data, length or placement but not its compiled training step (the
# device and backend are the worker's own).
_NOT_COMPILED = (
    "dataset", "mnist_source", "max_train_samples", "num_samples", "noise", "test_fraction",
    "num_epochs", "seed", "model_name", "keep_model", "device", "backend",
    # the optimizer's rate is a variable set as each epoch begins (its schedule's value)
    "learning_rate", "learning_rate_schedule",
)  # fmt: skip


def compiled_form(spec: TrainSpec) -> TrainSpec:
    """What fixes the compiled training step of a run: ``spec`` without its data, length and seed."""
    return dataclasses.replace(spec, **{name: getattr(TrainSpec, name) for name in _NOT_COMPILED})


@dataclass
class PreparedModel:
    """A compiled model whose training and test steps a warm worker has already traced, kept for
    the next run with the same ``compiled_form``: tracing is most of a run's start (seconds).

    ``steps``: the binary classifier's training steps compiled as one call (``compile_steps``), where
    the backend has them."""

    form: TrainSpec
    model: keras.Model
    optimizer_state: list[np.ndarray]
    steps: Compiled | None = None

    def restart_from(self, fresh: keras.Model) -> keras.Model:
        """This model with ``fresh``'s initial weights and an untouched optimizer: the same start
        as ``fresh``, with its steps already compiled."""
        self.model.set_weights(fresh.get_weights())
        for variable, value in zip(self.model.optimizer.variables, self.optimizer_state, strict=True):
            variable.assign(value)
        return self.model


def warm_up(specs: tuple[TrainSpec, ...]) -> list[PreparedModel]:
    """Make this process ready to start a run at once: load the MNIST a run would read by default
    (the full set when one is configured; the embedded digits) and prepare a model per spec."""
    if datasets.describe_mnist_source().kind != "embedded":
        datasets.load_mnist(allow_download=False)
    return [prepare_model(spec) for spec in specs]


def prepare_model(spec: TrainSpec) -> PreparedModel:
    """Build the model ``spec`` describes and trace its steps on a few examples (full batches, a
    partial one, validation), keeping the optimizer's state from before that training."""
    import keras

    # Two full batches and a partial one after the validation split, as in a real epoch.
    sample = dataclasses.replace(spec, max_train_samples=3 * spec.batch_size + 7, num_epochs=1)
    if spec.kind == "cnn":
        sample = dataclasses.replace(sample, mnist_source="embedded")
    data = load_training_data(sample)
    model = build_model(spec)
    model.optimizer.build(model.trainable_variables)
    state = [keras.ops.convert_to_numpy(variable) for variable in model.optimizer.variables]
    steps = compile_steps(spec, model)
    if steps is not None:
        orders = np.arange(len(data.x_train))[np.newaxis]
        steps_per_epoch = math.ceil(len(data.x_train) / spec.batch_size)
        steps(
            steps_request(data, surface_grid(data.x_train), orders, [spec.learning_rate], 0, steps_per_epoch)
        )
    else:
        arguments = fit_arguments(sample, data)
        model.fit(**arguments.inputs, epochs=1, verbose=0, **arguments.validation)
    predict_in_batches(model, data.x_test[: spec.batch_size])
    return PreparedModel(compiled_form(spec), model, state, steps)


def scale_digits(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], as the article feeds the CNN."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def scheduled_learning_rate(spec: TrainSpec, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (from 0): ``spec.learning_rate`` throughout for a constant
    schedule; for a cosine one, the rate times (1 + cos(pi * epoch / epochs)) / 2, falling from the
    full rate in the first epoch to about 1% of it in the last of 15 (small steps at the end settle the
    weights instead of leaving them wherever the last big steps threw them).

    Example:
        >>> spec = TrainSpec.cnn(num_epochs=4, learning_rate_schedule="cosine")
        >>> [round(scheduled_learning_rate(spec, epoch), 6) for epoch in range(4)]
        [0.001, 0.000854, 0.0005, 0.000146]
    """
    if spec.learning_rate_schedule == "constant":
        return spec.learning_rate
    return spec.learning_rate * (1 + math.cos(math.pi * epoch / spec.num_epochs)) / 2


def build_model(spec: TrainSpec) -> keras.Model:
    """Build and compile the model ``spec`` describes."""
    from zoo.ml import architectures as models

    if spec.base_model is not None:
        from zoo.storage.models import ModelStore

        model = ModelStore().load(spec.base_model).model
    elif spec.kind == "cnn":
        model = models.build_mnist_cnn(spec.conv_filters, spec.hidden_units, spec.activation)
    else:
        model = models.build_binary_classifier(spec.hidden_units, spec.activation)
    optimizer = models.make_optimizer(spec.optimizer, spec.learning_rate, spec.momentum)
    models.compile_classifier(model, optimizer, steps_per_execution=spec.steps_per_execution)
    return model


@dataclass(frozen=True)
class Progress:
    """Where a fit stands: sent by ``fit``, kept by the run store (``Run.progress``), shown by the
    pages and the CLI."""

    step: int  # batches done so far, over all epochs
    total_steps: int
    epoch: int  # the current epoch, from 1
    num_epochs: int
    samples_per_second: float
    eta_seconds: float
    elapsed_seconds: float

    @property
    def fraction_done(self) -> float:
        """Steps done as a fraction of all steps, in [0, 1]."""
        return min(self.step / max(self.total_steps, 1), 1.0)

    @property
    def epochs_per_second(self) -> float:
        """The run's pace so far: epochs (whole and in part) trained per second since it started."""
        epochs_done = self.step / max(self.total_steps, 1) * self.num_epochs
        return epochs_done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Progress:
        """The record ``to_dict`` made."""
        return cls(**values)


@dataclass(frozen=True)
class DecisionSurface:
    """A binary classifier's probability and every hidden unit's activation over a grid of points,
    as it stood at ``step``/``epoch``: sent by ``fit``, kept by the run store, drawn by the charts.

    Lists (not arrays), so the record is JSON-ready; ``probability[i][j]`` is at ``(x[j], y[i])``.
    """

    x: list[float]  # grid coordinates along x
    y: list[float]  # grid coordinates along y
    probability: list[list[float]]  # resolution x resolution
    hidden: list[list[list[list[float]]]]  # per hidden layer, per unit, a resolution x resolution grid
    step: int
    epoch: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the record's own lists, not copies: ``dataclasses.asdict`` deep-copied
        every value of a 4x8 network's maps, most of the worker's time per surface)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DecisionSurface:
        """The record ``to_dict`` made."""
        return cls(**values)


class ProgressReporter(Protocol):
    """Where ``fit`` sends progress; ``zoo.execution.reporter`` writes it to the run store."""

    def batch(self, metrics: dict[str, float], progress: Progress) -> None: ...

    def epoch(self, metrics: dict[str, float], progress: Progress) -> None: ...

    def epochs_ended(self, reports: Sequence[tuple[dict[str, float], Progress]]) -> None:
        """Several epochs' ``epoch`` reports at once (a compiled call of many steps ends dozens)."""
        ...

    def surface(self, surface: DecisionSurface) -> None: ...

    def event(self, kind: str, message: str) -> None: ...


@dataclass(frozen=True)
class FitResult:
    """How a fit ended, with the model as it stands at that point (evaluate it with
    ``zoo.ml.evaluation.evaluate_model`` unless it diverged)."""

    model: keras.Model
    status: str  # completed, stopped or diverged
    history: list[dict[str, float]] = field(default_factory=list)
    diverged_step: int | None = None
    message: str = ""
    fine_tuning: FineTuningReport | None = None  # a fine-tuning run's readings before and after


def fit(
    spec: TrainSpec,
    reporter: ProgressReporter,
    should_stop: Callable[[], bool],
    data: TrainingData | None = None,
    prepared: Sequence[PreparedModel] = (),
) -> FitResult:
    """Train the model ``spec`` describes, reporting progress and honouring stop requests.

    ``data`` is what ``load_training_data(spec)`` returns, for a caller that loaded it already.
    ``prepared`` models (``warm_up``) of the same compiled form start training without compiling.

    The binary classifier on one device trains in compiled calls of many steps where the backend has
    them (``fit_in_calls``); everything else with ``model.fit``. A stop request ends training after
    the current batch (the current call); a loss that is NaN, infinite or ``DIVERGENCE_FACTOR``
    times its first value ends it as diverged.
    """
    import keras

    data = data or load_training_data(spec)
    reporter.event("data", data.source)
    arguments = fit_arguments(spec, data)
    steps_per_epoch = max(1, math.ceil(math.floor(arguments.train_size) / spec.batch_size))
    callback = make_progress_callback(
        reporter,
        should_stop,
        steps_per_epoch=steps_per_epoch,
        num_epochs=spec.num_epochs,
        batch_size=spec.batch_size,
        surface_points=data.x_train if spec.kind == "binary" else None,
    )
    # JAX shards the data at fit time, so the scope spans the fit, not only the building.
    scope = distribution_scope(spec, reporter)
    with scope:
        ready = next((candidate for candidate in prepared if candidate.form == compiled_form(spec)), None)
        one_device = isinstance(scope, contextlib.nullcontext)
        prepared_steps = ready is not None and ready.steps is not None and one_device
        seed_random_numbers(spec.seed, keep_compiled=prepared_steps)
        model = build_model(spec)
        if ready is not None and one_device:  # compiled for one device
            model = ready.restart_from(model)
        steps = ready.steps if ready is not None and one_device else None
        if steps is None and one_device:
            steps = compile_steps(spec, model)
        if steps is not None:
            return fit_in_calls(spec, model, steps, data, reporter, should_stop)
        before = read_for_fine_tuning(model, data) if spec.base_model is not None else None
        # The schedule first, so the epoch's learning rate is among the metrics the progress callback reports.
        schedule = keras.callbacks.LearningRateScheduler(lambda epoch: scheduled_learning_rate(spec, epoch))
        history = model.fit(
            **arguments.inputs,
            epochs=spec.num_epochs,
            verbose=0,
            shuffle=True,
            callbacks=[schedule, callback],
            **arguments.validation,
        )
    rows = [
        {"epoch": index + 1, **{name: float(values[index]) for name, values in history.history.items()}}
        for index in range(len(history.epoch))
    ]
    if callback.diverged_step is not None:
        return diverged(spec, model, rows, callback.diverged_step, callback.diverged_loss)
    fine_tuning = (
        None if before is None else fine_tuning_report(data, before, read_for_fine_tuning(model, data))
    )
    warning = fine_tuning.warning() if fine_tuning is not None else None
    if warning:
        reporter.event("warning", warning)
    return FitResult(model, "stopped" if callback.stopped else "completed", rows, fine_tuning=fine_tuning)


def seed_random_numbers(seed: int, *, keep_compiled: bool = False) -> None:
    """Seed Python's, NumPy's, Keras' and the backend's random numbers (``keras.utils.set_random_seed``).

    With ``keep_compiled``, on TensorFlow, its global seed is left as it is: setting it clears
    TensorFlow's kernel cache, so a warm worker's prepared steps (``PreparedModel.steps``) were set up
    again in the run's first call, 0.28-0.33 s before its first decision boundary (measured on 2
    cores). Only for those compiled steps: they draw no TensorFlow random numbers (they shuffle with
    NumPy, ``epoch_orders``), while ``model.fit`` shuffles its data with TensorFlow's seed."""
    import keras

    if not keep_compiled or keras.backend.backend() != "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    # keras.utils.set_random_seed less its tf.random.set_seed: Keras' own seed, Python's and NumPy's.
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def diverged(
    spec: TrainSpec, model: keras.Model, rows: list[dict[str, float]], step: int, loss: str
) -> FitResult:
    """The end of a fit whose loss became ``loss`` at ``step``, with what to try."""
    return FitResult(
        model,
        "diverged",
        rows,
        diverged_step=step,
        message=(
            f"the loss became {loss} at step {step}: the learning rate {spec.learning_rate:g} is too "
            "large for this model; try one 10 times smaller."
        ),
    )


def divergence(loss: float, first_loss: float) -> str | None:
    """How a step's loss says the fit diverged (not finite, or ``DIVERGENCE_FACTOR`` times the first
    step's), in words for the run's message; None while it has not."""
    if not math.isfinite(loss):
        return str(loss)
    if first_loss > 0 and loss > DIVERGENCE_FACTOR * first_loss:
        return f"{loss:.3g}, over {DIVERGENCE_FACTOR:,.0f} times its first value {first_loss:.3g},"
    return None


def compile_steps(spec: TrainSpec, model: keras.Model) -> Compiled | None:
    """The binary classifier's training steps and decision surface compiled as one call
    (``Backend.compile_steps``), or None: for the CNN, and where the backend has none."""
    if spec.kind != "binary" or spec.base_model is not None or spec.augment:
        return None
    from zoo.ml import backend

    return backend.current().compile_steps(model, surface_probe(model), spec.batch_size)


def steps_request(
    data: TrainingData,
    grid: SurfaceGrid,
    orders: np.ndarray,
    rates: Sequence[float],
    first: int,
    last: int,
    close: bool = False,
) -> StepsRequest:
    """A compiled call's work on the binary classifier's points (``compile_steps``): steps ``first``
    to ``last`` of the epochs ``orders`` and ``rates`` describe, validated on the test points."""
    from zoo.ml.backend import StepsRequest

    return StepsRequest(
        x=data.x_train,
        y=data.y_train.astype(np.float32),
        x_val=data.x_test,
        y_val=data.y_test.astype(np.float32),
        grid=grid.points,
        orders=orders.astype(np.int32),
        rates=np.asarray(rates, np.float32),
        first=first,
        last=last,
        close=close,
    )


# A compiled call of the binary classifier's steps trains for about this long, so that its decision
# surface, computed in the same call, follows the weights about six times a second (the Playground
# draws the newest one five times a second; a 4x8 network's surface takes ~0.1 s to write, most of it
# JSON). The first call trains at most FIRST_CALL_STEPS, in one epoch, so the first boundary comes at
# once; later calls are sized by the time a step took.
CALL_SECONDS = 0.15
FIRST_CALL_STEPS = 32


def fit_in_calls(
    spec: TrainSpec,
    model: keras.Model,
    steps: Compiled,
    data: TrainingData,
    reporter: ProgressReporter,
    should_stop: Callable[[], bool],
) -> FitResult:
    """Train the binary classifier in compiled calls of many steps (``compile_steps``), reporting
    after each call the epochs it ended, its last batch metrics and the decision surface it computed.

    The weights and losses are ``model.fit``'s on the same batches: Keras' own train step on the
    model's variables and optimizer. Epoch ``e`` trains on the points in the ``e``-th order a
    generator seeded with the spec's seed draws (``epoch_orders``), at ``scheduled_learning_rate``.
    A stop request is read after every call and ends the current epoch there (validated and reported,
    as ``model.fit`` ends a stopped epoch); a diverged loss is found in the call's per-step losses.
    """
    count = len(data.x_train)
    steps_per_epoch = math.ceil(count / spec.batch_size)
    total_steps = steps_per_epoch * spec.num_epochs
    orders = epoch_orders(spec.seed, count)
    rates = [scheduled_learning_rate(spec, epoch) for epoch in range(spec.num_epochs)]
    grid = surface_grid(data.x_train)
    reporter.event("started", f"{spec.num_epochs} epochs x {steps_per_epoch} steps")
    started = time.perf_counter()
    rows: list[dict[str, float]] = []
    step, budget, first_loss, stopped = 0, min(FIRST_CALL_STEPS, steps_per_epoch), None, False

    def progress(at_step: int) -> Progress:
        return fit_progress(
            at_step,
            min(max(1, math.ceil(at_step / steps_per_epoch)), spec.num_epochs),
            steps_per_epoch,
            spec.num_epochs,
            spec.batch_size,
            time.perf_counter() - started,
        )

    def run(first: int, last: int, close: bool = False) -> StepsResult:
        # Only the epochs these steps touch, counted from the first of them.
        epoch = first // steps_per_epoch
        touched = range(epoch, max(first, last - 1) // steps_per_epoch + 1)
        offset = epoch * steps_per_epoch
        request = steps_request(
            data, grid, np.stack([orders(index) for index in touched]), [rates[index] for index in touched],
            first - offset, last - offset, close,
        )  # fmt: skip
        return steps(request)

    while step < total_steps and not stopped:
        end = min(step + budget, total_steps)
        call_started = time.perf_counter()
        result = run(step, end)
        budget = max(1, round(CALL_SECONDS * (end - step) / max(time.perf_counter() - call_started, 1e-6)))
        first_loss = float(result.losses[0]) if first_loss is None else first_loss
        for index, loss in enumerate(result.losses.tolist()):
            problem = divergence(loss, first_loss)
            if problem is not None:
                diverged_at = step + index + 1
                rows += report_epochs(
                    reporter, result, step, diverged_at - 1, steps_per_epoch, rates, progress
                )
                return diverged(spec, model, rows, diverged_at, problem)
        stopped = should_stop()
        closes = stopped and end % steps_per_epoch != 0 and end < total_steps  # the stopped epoch ends here
        if closes:
            result = dataclasses.replace(
                result, epochs=np.concatenate([result.epochs, run(end, end, True).epochs])
            )
        reporter.batch(
            {name: float(value) for name, value in zip(STEP_METRICS, result.running, strict=True)},
            progress(end),
        )
        rows += report_epochs(reporter, result, step, end, steps_per_epoch, rates, progress, closes=closes)
        reporter.surface(grid.surface(result.probes, step=end, epoch=progress(end).epoch))
        step = end
    return FitResult(model, "stopped" if stopped and step < total_steps else "completed", rows)


# What a compiled call of steps reports of each epoch (``StepsResult.epochs``), in this order.
EPOCH_METRICS = (*STEP_METRICS, *(f"val_{name}" for name in STEP_METRICS))


def report_epochs(
    reporter: ProgressReporter,
    result: StepsResult,
    first: int,
    last: int,
    steps_per_epoch: int,
    rates: Sequence[float],
    progress: Callable[[int], Progress],
    closes: bool = False,
) -> list[dict[str, float]]:
    """Report the epochs that ended in steps ``first`` to ``last`` (and the one a stop ``closes`` at
    ``last``) with the metrics of ``result``, all in one report; return them as ``model.fit``'s
    history rows."""
    ends = [end for end in range(first + 1, last + 1) if end % steps_per_epoch == 0]
    ends += [last] if closes else []
    rows, reports = [], []
    for end, values in zip(ends, result.epochs.tolist(), strict=False):
        epoch = math.ceil(end / steps_per_epoch)
        metrics = {**dict(zip(EPOCH_METRICS, values, strict=True)), "learning_rate": rates[epoch - 1]}
        reports.append((metrics, progress(end)))
        rows.append({"epoch": epoch, **metrics})
    if reports:
        reporter.epochs_ended(reports)
    return rows


def epoch_orders(seed: int, count: int) -> Callable[[int], np.ndarray]:
    """The order of ``count`` training points in each epoch: ``orders(e)`` is the ``e``-th permutation
    a generator seeded with ``seed`` draws (drawn as asked for, epochs in increasing order)."""
    generator = np.random.default_rng(seed)
    drawn: list[np.ndarray] = []

    def orders(epoch: int) -> np.ndarray:
        while len(drawn) <= epoch:
            drawn.append(generator.permutation(count))
        return drawn[epoch]

    return orders


@dataclass(frozen=True)
class FitArguments:
    """What ``model.fit`` is given for a spec and its data."""

    inputs: dict[str, Any]  # x, y and batch_size, or an augmenting batch generator
    validation: dict[str, Any]  # validation_split, or validation_data
    train_size: float  # training examples per epoch


def fit_arguments(spec: TrainSpec, data: TrainingData) -> FitArguments:
    """``model.fit``'s inputs and validation for ``spec`` (the binary classifier validates on its
    test points)."""
    validation: dict[str, Any] = {"validation_split": spec.validation_split} if spec.validation_split else {}
    if spec.kind == "binary":
        validation = {"validation_data": (data.x_test, data.y_test.astype(np.float32))}
    split = spec.validation_split if "validation_split" in validation else 0.0  # binary: the test set
    inputs: dict[str, Any] = {"x": data.x_train, "y": data.y_train, "batch_size": spec.batch_size}
    if spec.augment:
        inputs, validation = augmented_inputs(spec, data)
    return FitArguments(inputs, validation, len(data.x_train) * (1 - split))


@dataclass(frozen=True)
class FineTuningReadings:
    """One model's probabilities for the MNIST test digits and for every digit of the personal set."""

    mnist: np.ndarray  # (M, 10)
    personal: np.ndarray  # (N, 10); N = 0 without a set


def read_for_fine_tuning(model: keras.Model, data: TrainingData) -> FineTuningReadings:
    """What ``model`` reads in a fine-tuning run's test digits and personal set (before or after)."""
    images = data.personal.images[..., np.newaxis] if data.personal is not None else data.x_test[:0]
    return FineTuningReadings(predict_in_batches(model, data.x_test), predict_in_batches(model, images))


def fine_tuning_report(
    data: TrainingData, before: FineTuningReadings, after: FineTuningReadings
) -> FineTuningReport:
    """Compare the base model's readings with the fine-tuned model's (``read_for_fine_tuning``)."""
    read_before, read_after = before.mnist.argmax(axis=1), after.mnist.argmax(axis=1)
    right_before = read_before == data.y_test
    lost = right_before & (read_after != data.y_test)
    pairs, counts = np.unique(np.stack([data.y_test[lost], read_after[lost]]), axis=1, return_counts=True)
    regressions = sorted(
        (
            Misreading(int(label), int(read_as), int(count))
            for (label, read_as), count in zip(pairs.T, counts, strict=True)
        ),
        key=lambda misreading: (-misreading.count, misreading.label, misreading.read_as),
    )
    split = data.personal
    if split is None:
        before_scores, after_scores = (
            FineTuningScores(float((read == data.y_test).mean())) for read in (read_before, read_after)
        )
        digits: tuple[DigitReading, ...] = ()
    else:
        before_scores, after_scores = (
            FineTuningScores(
                float((read == data.y_test).mean()),
                float((personal.argmax(axis=1)[split.held_out] == split.y_test).mean()),
                int(split.held_out.sum()),
            )
            for read, personal in ((read_before, before.personal), (read_after, after.personal))
        )
        digits = tuple(
            DigitReading(
                index + 1,
                split.ids[index],
                int(split.labels[index]),
                bool(split.held_out[index]),
                int(before.personal[index].argmax()),
                float(before.personal[index].max()),
                int(after.personal[index].argmax()),
                float(after.personal[index].max()),
            )
            for index in range(len(split.labels))
        )
    return FineTuningReport(
        before_scores,
        after_scores,
        digits,
        int(right_before.sum()),
        tuple(regressions),
        int((~right_before & (read_after == data.y_test)).sum()),
    )


def augmented_inputs(spec: TrainSpec, data: TrainingData) -> tuple[dict[str, Any], dict[str, Any]]:
    """``model.fit``'s inputs and validation for an augmented run: the validation part is split off as
    Keras' ``validation_split`` would (the last part, unaugmented); the rest is augmented afresh
    each epoch."""
    from zoo.ml.augment import augmented_batches

    held_out = math.floor(len(data.x_train) * spec.validation_split)
    kept = len(data.x_train) - held_out
    batches = augmented_batches(data.x_train[:kept], data.y_train[:kept], spec.batch_size, spec.seed)
    validation = {"validation_data": (data.x_train[kept:], data.y_train[kept:])} if held_out else {}
    return {"x": batches}, validation


def predict_in_batches(model: keras.Model, inputs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for many inputs, one compiled call per batch (faster than ``predict`` here)."""
    import keras

    outputs = [  # convert_to_numpy: a PyTorch output still holds its autograd graph
        keras.ops.convert_to_numpy(model(inputs[start : start + batch_size], training=False))
        for start in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, *model.output_shape[1:]), np.float32)


def make_progress_callback(
    reporter: ProgressReporter,
    should_stop: Callable[[], bool],
    *,
    steps_per_epoch: int,
    num_epochs: int,
    batch_size: int,
    surface_points: np.ndarray | None,
) -> keras.callbacks.Callback:
    """A Keras callback that reports progress, checks for stop requests after every batch and
    ends the fit as diverged when the loss is not finite or has exploded. (Defined here so that importing this
    module does not import Keras.)"""
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        """Reports batch metrics at most every ``REPORT_INTERVAL_SECONDS``, and every epoch."""

        def __init__(self):
            super().__init__()
            self.reporter, self.should_stop = reporter, should_stop
            self.steps_per_epoch, self.num_epochs, self.batch_size = steps_per_epoch, num_epochs, batch_size
            self.surface_points = surface_points
            self.stopped = False
            self.diverged_step: int | None = None
            self.diverged_loss = ""
            self.first_loss: float | None = None
            self.epoch_index = 0
            self.step = 0  # batches done so far, over all epochs
            self.last_report = 0.0
            self.last_surface = 0.0

        def on_train_begin(self, logs=None):
            self.start_time = time.perf_counter()
            self.reporter.event("started", f"{self.num_epochs} epochs x {self.steps_per_epoch} steps")

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_index = epoch

        def on_train_batch_end(self, batch, logs=None):
            step = self.step = self.epoch_index * self.steps_per_epoch + batch + 1
            logs = logs or {}
            loss = float(logs.get("loss", 0.0))  # every batch: a diverging loss stops the run at once
            if self.first_loss is None:
                self.first_loss = loss
            exploded = self.first_loss > 0 and loss > DIVERGENCE_FACTOR * self.first_loss
            if not math.isfinite(loss) or exploded:
                self.diverged_step = step
                self.diverged_loss = (
                    f"{loss:.3g}, over {DIVERGENCE_FACTOR:,.0f} times its first value {self.first_loss:.3g},"
                    if exploded
                    else str(loss)
                )
                self.model.stop_training = True
                return
            if self.should_stop():
                self.stopped = True
                self.model.stop_training = True
            now = time.perf_counter()
            if now - self.last_report >= REPORT_INTERVAL_SECONDS or self.stopped:
                self.last_report = now
                metrics = {name: float(value) for name, value in logs.items()}  # only when reported
                self.reporter.batch(metrics, self._progress(step, now))

        def on_epoch_end(self, epoch, logs=None):
            step = self.step  # after a stop, the epoch ends early: not at (epoch + 1) * steps_per_epoch
            metrics = {name: float(value) for name, value in (logs or {}).items()}
            if self.diverged_step is None:
                self.reporter.epoch(metrics, self._progress(step, time.perf_counter()))
            now = time.perf_counter()
            last_epoch = epoch + 1 == self.num_epochs or self.model.stop_training
            if self.surface_points is not None and (
                now - self.last_surface >= REPORT_INTERVAL_SECONDS or last_epoch
            ):
                self.last_surface = now
                surface = decision_surface(self.model, self.surface_points, step=step, epoch=epoch + 1)
                self.reporter.surface(surface)

        def _progress(self, step: int, now: float) -> Progress:
            return fit_progress(
                step,
                self.epoch_index + 1,
                self.steps_per_epoch,
                self.num_epochs,
                self.batch_size,
                now - self.start_time,
            )

    return ProgressCallback()


def fit_progress(
    step: int, epoch: int, steps_per_epoch: int, num_epochs: int, batch_size: int, elapsed: float
) -> Progress:
    """Where a fit stands after ``step`` batches (in ``epoch``, from 1), ``elapsed`` seconds in."""
    elapsed = max(elapsed, 1e-9)
    total_steps = steps_per_epoch * num_epochs
    steps_per_second = step / elapsed
    return Progress(
        step=step,
        total_steps=total_steps,
        epoch=epoch,
        num_epochs=num_epochs,
        samples_per_second=steps_per_second * batch_size,
        eta_seconds=max(total_steps - step, 0) / steps_per_second if steps_per_second else 0.0,
        elapsed_seconds=elapsed,
    )


def surface_grid(points: np.ndarray, resolution: int = SURFACE_RESOLUTION) -> SurfaceGrid:
    """A ``resolution`` x ``resolution`` grid over ``points`` and half a unit around them."""
    low, high = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
    xs, ys = np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)
    return SurfaceGrid(xs, ys, np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32))


@dataclass(frozen=True)
class SurfaceGrid:
    """Where a decision surface is evaluated: the grid's coordinates and its points, row by row."""

    xs: np.ndarray  # (resolution,)
    ys: np.ndarray  # (resolution,)
    points: np.ndarray  # (resolution * resolution, 2) float32; point i is (xs[i % r], ys[i // r])

    def surface(self, outputs: Sequence[np.ndarray], *, step: int, epoch: int) -> DecisionSurface:
        """The surface of ``surface_probe``'s outputs over these points, at ``step`` (in ``epoch``)."""
        *hidden_outputs, probability = outputs
        shape = (len(self.ys), len(self.xs))
        return DecisionSurface(
            x=np.round(self.xs, 4).tolist(),
            y=np.round(self.ys, 4).tolist(),
            probability=np.round(np.asarray(probability).reshape(shape), 4).tolist(),
            hidden=[
                [
                    np.round(np.asarray(output[:, unit]).reshape(shape), 4).tolist()
                    for unit in range(output.shape[1])
                ]
                for output in hidden_outputs
            ],
            step=step,
            epoch=epoch,
        )


def surface_probe(model: keras.Model) -> keras.Model:
    """A model over ``model``'s layers whose outputs are every hidden layer's and the probability."""
    import keras

    hidden_layers = [layer for layer in model.layers if layer.name.startswith("hidden")]
    return keras.Model(model.inputs[0], [layer.output for layer in hidden_layers] + [model.outputs[0]])


def decision_surface(
    model: keras.Model, points: np.ndarray, *, step: int, epoch: int, resolution: int = SURFACE_RESOLUTION
) -> DecisionSurface:
    """The classifier's probability and every hidden unit's activation over a grid around ``points``,
    as the model stands at ``step`` (in ``epoch``)."""
    import keras

    grid = surface_grid(points, resolution)
    outputs = surface_probe(model)(grid.points, training=False)
    return grid.surface([keras.ops.convert_to_numpy(output) for output in outputs], step=step, epoch=epoch)


def distribution_scope(spec: TrainSpec, reporter: ProgressReporter) -> contextlib.AbstractContextManager:
    """The scope to build and train the model in: data-parallel over several GPUs, plain otherwise.

    ``ZOO_MIRRORED_DEVICES`` (comma-separated device names of the backend, e.g. ``/gpu:0,/gpu:2`` on
    TensorFlow, ``gpu:0,gpu:1`` on JAX) picks the devices instead: a subset of the GPUs, or logical
    CPUs to exercise data parallelism on a machine without GPUs.

    Mixed precision is turned on only on a GPU; asked for on a CPU, it is reported and skipped.
    """
    import keras

    from zoo.ml import backend

    implementation = backend.current()
    gpus = implementation.gpus()
    if spec.mixed_precision:
        if gpus:
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            reporter.event("mixed_precision", "mixed precision needs a GPU; this run trains in float32")
    devices = list(load_settings().mirrored_devices) or [gpu.name for gpu in gpus]
    if len(devices) > 1:
        reporter.event(
            "strategy", f"{implementation.data_parallel} over {len(devices)} devices: {', '.join(devices)}"
        )
        return implementation.distribution_scope(devices)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Environment:
    """What a run trained with: the Keras backend, the devices it saw, the library versions, the host.

    Records written before a field existed (runs from before other backends have no ``backend``) read
    with it empty.
    """

    backend: str | None = None
    devices: tuple[Device, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)  # by library: python, keras, numpy, ...
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the run record's layout), the inverse of ``from_dict``."""
        return {
            "backend": self.backend,
            "devices": [dataclasses.asdict(device) for device in self.devices],
            "versions": dict(self.versions),
            "host": self.host,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Environment:
        """The record ``to_dict`` made, or an older one (what it lacks reads empty).

        Raises:
            TypeError: a device or the versions are malformed.
        """
        return cls(
            values.get("backend"),
            tuple(Device(**device) for device in values.get("devices") or ()),
            dict(values.get("versions") or {}),
            values.get("host"),
        )


def describe_environment() -> Environment:
    """The backend, the devices it sees and the library versions, recorded with every run."""
    import keras

    from zoo.ml import backend

    implementation = backend.current()
    return Environment(
        backend=implementation.name,
        devices=tuple(implementation.devices()),
        versions={
            "python": platform.python_version(),
            implementation.name: implementation.version(),
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        host=platform.node(),
    )
