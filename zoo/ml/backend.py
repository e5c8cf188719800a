"""The one place that imports TensorFlow, JAX or PyTorch: one class per Keras 3 backend, one interface.

Everything else in Zoo Studio speaks Keras 3 (``import keras``, ``keras.ops``). What Keras does not
offer in a backend-neutral form lives here: the compiled one-digit predictor and its input gradient
(Draw's saliency map), the weight gradients of a loss (the Learn page's autodiff check), many
training steps of Keras' own ``train_step`` compiled as one call (the Playground's small networks),
the multi-device scope (TensorFlow ``MirroredStrategy``, JAX ``keras.distribution.DataParallel``),
device listing and per-run memory limits.

Keras fixes its backend when it is first imported (``KERAS_BACKEND``, else ``keras.json``, else
TensorFlow); ``current()`` returns the implementation for the backend Keras runs on.
``worker_environment()`` answers without importing Keras (as ``zoo.core.spec.configured_backend()``
does), so pages and the process that starts workers stay light.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.core.errors import ZooError
from zoo.core.settings import native_logs_kept
from zoo.core.vocabulary import BACKENDS

if TYPE_CHECKING:  # numpy too: the CLI reads BACKENDS from here and starts faster without it
    import keras
    import numpy as np

# Set on a worker that shares a GPU with other runs: the share of the GPU's memory it may take.
MEMORY_FRACTION_VARIABLE = "ZOO_GPU_MEMORY_FRACTION"
MEMORY_MEGABYTES_VARIABLE = "ZOO_GPU_MEMORY_MB"


@dataclass(frozen=True)
class Compiled:
    """A compiled call on numpy batches (or on a ``StepsRequest``), and how many times the backend has
    compiled it so far (one per input shape: more would mean it recompiles for every digit)."""

    call: Callable[[Any], Any]
    compilations: Callable[[], int]

    def __call__(self, batch: Any) -> Any:
        return self.call(batch)


# What ``Backend.compile_steps`` reports of a model compiled with an accuracy metric
# (``architectures.compile_classifier``), in this order.
STEP_METRICS = ("loss", "accuracy")


@dataclass(frozen=True)
class StepsRequest:
    """The training steps one compiled call trains (``Backend.compile_steps``), numpy throughout.

    Steps are counted from the start of the first epoch of ``orders``: step ``s`` trains batch
    ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``, the points ``orders[epoch]`` names there.
    """

    x: np.ndarray  # (N, features) the training inputs
    y: np.ndarray  # (N,) their targets
    x_val: np.ndarray  # the validation inputs, scored at the end of every epoch
    y_val: np.ndarray
    grid: np.ndarray  # (G, features) where the probe is evaluated after the last step
    orders: np.ndarray  # (epochs, N) int32: each epoch's order of the training points
    rates: np.ndarray  # (epochs,) float32: each epoch's learning rate, set as the epoch begins
    first: int  # the first step to train
    last: int  # one past the last step (``first`` when only closing the epoch)
    close: bool = False  # end the epoch of the last step there, though it has batches left (a stop)


@dataclass(frozen=True)
class StepsResult:
    """What one compiled call of training steps did, as numpy."""

    losses: np.ndarray  # (last - first,) the epoch's running loss after each step (Keras' batch "loss")
    epochs: np.ndarray  # (ended, 4) loss, accuracy, val_loss, val_accuracy of every epoch the call ended
    running: np.ndarray  # (2,) loss and accuracy of the epoch so far after the last step
    probes: list[np.ndarray]  # the probe's outputs over the grid after the last step


@dataclass(frozen=True)
class Device:
    """One device a backend can compute on, as that backend names it."""

    name: str
    type: str  # "CPU" or "GPU"


@dataclass(frozen=True)
class WeightGradients:
    """A loss and its gradient for each trainable variable of a model (same order)."""

    loss: float
    gradients: list[np.ndarray]


def check_name(name: str) -> str:
    """Return ``name`` if it is a Keras 3 backend Zoo Studio supports.

    Raises:
        ZooError: any other name.
    """
    if name not in BACKENDS:
        raise ZooError(f"backend {name!r}: choose one of {', '.join(BACKENDS)}.")
    return name


# How to install what a backend needs, for the message that refuses it.
INSTALL_HINTS = {
    "keras": "pip install -r requirements.txt",
    "tensorflow": "pip install -r requirements.txt (on an NVIDIA GPU: requirements-gpu.txt)",
    "jax": 'pip install jax (on an NVIDIA GPU: "jax[cuda13]" or "jax[cuda12]")',
    "torch": "pip install torch (for a GPU, the wheel for your CUDA from pytorch.org)",
}


def check_installed(name: str) -> None:
    """Refuse a backend this Python cannot import, before a run is queued for it: its package and
    Keras are looked up (``importlib.util.find_spec``), not imported, so the check is cheap.

    Raises:
        ZooError: e.g. "No module named 'torch'", with how to install it and the backends that are here.
    """
    for module in ("keras", check_name(name)):
        if importlib.util.find_spec(module) is None:
            here = [other for other in BACKENDS if importlib.util.find_spec(other) is not None]
            instead = f", or train with {' or '.join(here)}" if here and module != "keras" else ""
            raise ZooError(
                f"the {name} backend cannot be used here (No module named {module!r}): "
                f"{INSTALL_HINTS[module]}{instead}."
            )


def quiet_missing_gpu_error() -> None:
    """On a machine without an NVIDIA device, keep TensorFlow's "failed call to cuInit" error line out
    of this process's output (call it before anything imports TensorFlow: the app does, first thing).

    TensorFlow's pip build looks for CUDA when it first lists its devices and, finding no driver,
    logs that line as an error, on every laptop. Its C++ log level (``TF_CPP_MIN_LOG_LEVEL``, read
    once, at import) is set to 3, as the workers' is; a level already set, or ``ZOO_NATIVE_LOGS=1``,
    or an NVIDIA device (``/dev/nvidia0``, ...) leaves it alone.

    Raises:
        SettingsError: ``ZOO_NATIVE_LOGS`` is not 1 or 0.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") or native_logs_kept():
        return
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


def worker_environment(name: str, memory_fraction: float | None, gpu_megabytes: int = 0) -> dict[str, str]:
    """Environment variables a worker process needs before it imports Keras.

    Args:
        name: the backend the worker trains with.
        memory_fraction: on a GPU, the share of its memory one run may take; None on a CPU.
        gpu_megabytes: the GPU's memory (TensorFlow limits a process in megabytes).
    """
    environment = {"KERAS_BACKEND": check_name(name), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Allocate GPU memory as needed, not all of it at start: several processes may share the GPU.
    environment |= {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if memory_fraction is not None:
        environment[MEMORY_FRACTION_VARIABLE] = f"{memory_fraction:.3f}"
        environment["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{memory_fraction:.3f}"
        environment[MEMORY_MEGABYTES_VARIABLE] = str(int(memory_fraction * gpu_megabytes))
    return environment


def current() -> Backend:
    """The implementation for the backend Keras runs on in this process (imports Keras)."""
    import keras

    return _implementation(keras.backend.backend())


@functools.cache
def _implementation(name: str) -> Backend:
    classes = {"tensorflow": TensorFlowBackend, "jax": JaxBackend, "torch": TorchBackend}
    if name not in classes:
        raise ZooError(f"Keras runs on {name!r}, which Zoo Studio does not support: use one of {BACKENDS}.")
    return classes[name]()


class Backend:
    """What Zoo Studio needs from a backend beyond Keras' own API."""

    name = ""
    data_parallel = ""  # what the multi-device scope is called, for the run's event log

    def version(self) -> str:
        """The backend library's version."""
        raise NotImplementedError

    def devices(self) -> list[Device]:
        """Every device this process can compute on."""
        raise NotImplementedError

    def gpus(self) -> list[Device]:
        """The GPUs among ``devices()``."""
        return [device for device in self.devices() if device.type == "GPU"]

    def compile_predictor(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        """Probabilities (numpy) for batches of ``input_shape``, compiled at the first call."""
        raise NotImplementedError

    def compile_inspector(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        """``(outputs, gradient)`` for batches of ``input_shape``: every output of ``model`` and the
        gradient of the first example's top probability (its last output) w.r.t. the input, for
        saliency maps; numpy, compiled at the first call."""
        raise NotImplementedError

    def weight_gradients(
        self, model: keras.Model, loss: Callable, inputs: np.ndarray, targets: np.ndarray
    ) -> WeightGradients:
        """``loss(targets, model(inputs, training=True))`` and its gradient for each trainable variable."""
        raise NotImplementedError

    def compile_steps(self, model: keras.Model, probe: keras.Model, batch_size: int) -> Compiled | None:
        """Many training steps of a compiled ``model`` as one compiled call on a ``StepsRequest``,
        returning a ``StepsResult``; None where this backend has none (``model.fit`` trains then).

        Each step is Keras' own ``model.train_step`` on a batch of ``batch_size`` points (the last
        batch of an epoch holds the rest), on the model's variables and optimizer, so the weights and
        losses are ``model.fit``'s on the same batches. As ``fit`` does, an epoch begins by setting its
        learning rate and resetting the metrics, and ends with the metrics of its training steps and
        then ``model.test_step`` on the validation points (in one batch). After the last step the call
        evaluates ``probe`` (a model over the same layers) on the grid.
        """
        return None

    def distribution_scope(self, device_names: list[str]) -> contextlib.AbstractContextManager:
        """A scope that builds and trains a model data-parallel over ``device_names`` (two or more)."""
        raise NotImplementedError

    def limit_memory(self, fraction: float, megabytes: int) -> None:
        """Keep this process within ``fraction`` (``megabytes``) of each GPU's memory; call it before
        any GPU work. JAX reads its limit from the environment (``worker_environment``)."""


class TensorFlowBackend(Backend):
    """TensorFlow: ``tf.function`` and ``GradientTape``; ``MirroredStrategy`` over several devices."""

    name = "tensorflow"
    data_parallel = "MirroredStrategy"

    def version(self) -> str:
        import tensorflow as tf

        return tf.__version__

    def devices(self) -> list[Device]:
        import tensorflow as tf

        return [Device(device.name, device.device_type) for device in tf.config.list_logical_devices()]

    def compile_predictor(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32)])
        def probabilities(batch):
            return model(batch, training=False)

        return Compiled(
            lambda batch: _as_numpy(probabilities(batch)), probabilities.experimental_get_tracing_count
        )

    def compile_inspector(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32)])
        def inspect(batch):
            with tf.GradientTape() as tape:
                tape.watch(batch)
                outputs = model(batch, training=False)
                top = tf.reduce_max(outputs[-1][0])
            return outputs, tape.gradient(top, batch)

        def call(batch: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
            outputs, gradient = inspect(batch)
            return [_as_numpy(output) for output in outputs], _as_numpy(gradient)

        return Compiled(call, inspect.experimental_get_tracing_count)

    def weight_gradients(
        self, model: keras.Model, loss: Callable, inputs: np.ndarray, targets: np.ndarray
    ) -> WeightGradients:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(targets, model(inputs, training=True))
        gradients = tape.gradient(value, model.trainable_variables)
        return WeightGradients(float(value), [_as_numpy(gradient) for gradient in gradients])

    def compile_steps(self, model: keras.Model, probe: keras.Model, batch_size: int) -> Compiled:
        import numpy as np
        import tensorflow as tf

        # The metrics' and optimizer's variables made now, as model.fit makes them before tracing:
        # made in the first trace, they would make tf.function trace again (1.9 s -> 0.7 s cold).
        features = model.input_shape[-1]
        model._symbolic_build(data_batch=(np.zeros((1, features), np.float32), np.zeros((1,), np.float32)))

        def metric_values() -> Any:
            results = model.get_metrics_result()
            return tf.stack([tf.cast(results[name], tf.float32) for name in STEP_METRICS])

        def end_epoch(x_val, y_val) -> Any:
            trained = metric_values()
            model.reset_metrics()
            model.test_step((x_val, y_val))
            return tf.concat([trained, metric_values()], axis=0)

        matrix, vector = tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.float32)
        scalar = tf.TensorSpec([], tf.int32)
        signature = [
            matrix, vector, matrix, vector, matrix,
            tf.TensorSpec([None, None], tf.int32), vector, scalar, scalar, tf.TensorSpec([], tf.bool),
        ]  # fmt: skip

        # Without jit_compile, as model.fit on a CPU: XLA would compile again for every new shape.
        @tf.function(input_signature=signature)
        def train(x, y, x_val, y_val, grid, orders, rates, first, last, close):
            count = tf.shape(x)[0]
            steps_per_epoch = (count + batch_size - 1) // batch_size
            losses = tf.TensorArray(tf.float32, size=last - first, element_shape=[])
            ended = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[4])
            running = tf.zeros([len(STEP_METRICS)])
            for step in tf.range(first, last):
                epoch, batch = step // steps_per_epoch, step % steps_per_epoch
                if batch == 0:
                    model.optimizer.learning_rate = rates[epoch]
                    model.reset_metrics()
                chosen = orders[epoch, batch * batch_size : tf.minimum((batch + 1) * batch_size, count)]
                logs = model.train_step((tf.gather(x, chosen), tf.gather(y, chosen)))
                running = tf.stack([tf.cast(logs[name], tf.float32) for name in STEP_METRICS])
                losses = losses.write(step - first, running[0])
                if batch == steps_per_epoch - 1:
                    ended = ended.write(ended.size(), end_epoch(x_val, y_val))
            if close and last % steps_per_epoch != 0:
                ended = ended.write(ended.size(), end_epoch(x_val, y_val))
            return losses.stack(), ended.stack(), running, probe(grid, training=False)

        def call(request: StepsRequest) -> StepsResult:
            losses, ended, running, probes = train(
                request.x, request.y, request.x_val, request.y_val, request.grid,
                request.orders, request.rates, request.first, request.last, request.close,
            )  # fmt: skip
            return StepsResult(
                _as_numpy(losses),
                _as_numpy(ended),
                _as_numpy(running),
                [_as_numpy(probe) for probe in probes],
            )

        return Compiled(call, train.experimental_get_tracing_count)

    def distribution_scope(self, device_names: list[str]) -> contextlib.AbstractContextManager:
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(device_names).scope()

    def limit_memory(self, fraction: float, megabytes: int) -> None:
        import tensorflow as tf

        # Growth (set by the environment) keeps small runs small; the cap, in megabytes per logical
        # device, keeps one large run from taking the other runs' share.
        if megabytes:
            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=megabytes)]
                )


class JaxBackend(Backend):
    """JAX: ``jax.jit`` over Keras' stateless calls; ``keras.distribution.DataParallel`` over devices.

    Memory is limited by the environment (``XLA_PYTHON_CLIENT_MEM_FRACTION``), read by JAX at start.
    """

    name = "jax"
    data_parallel = "DataParallel"

    def version(self) -> str:
        import jax

        return jax.__version__

    def devices(self) -> list[Device]:
        import jax

        return [Device(f"{device.platform}:{device.id}", device.platform.upper()) for device in jax.devices()]

    def compile_predictor(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        import jax

        trainable, non_trainable = _variable_values(model)

        @jax.jit
        def probabilities(trainable, non_trainable, batch):
            outputs, _ = model.stateless_call(trainable, non_trainable, batch, training=False)
            return outputs

        return Compiled(
            lambda batch: _as_numpy(probabilities(trainable, non_trainable, batch)),
            probabilities._cache_size,  # type: ignore[attr-defined]  # JAX's private cache size: see Compiled
        )

    def compile_inspector(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        import jax

        trainable, non_trainable = _variable_values(model)

        def top_probability(batch, trainable, non_trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, batch, training=False)
            return outputs[-1][0].max(), outputs

        gradient_and_outputs = jax.jit(jax.grad(top_probability, has_aux=True))

        def call(batch: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
            gradient, outputs = gradient_and_outputs(batch, trainable, non_trainable)
            return [_as_numpy(output) for output in outputs], _as_numpy(gradient)

        return Compiled(call, gradient_and_outputs._cache_size)  # type: ignore[attr-defined]  # as above

    def weight_gradients(
        self, model: keras.Model, loss: Callable, inputs: np.ndarray, targets: np.ndarray
    ) -> WeightGradients:
        import jax

        trainable, non_trainable = _variable_values(model)

        def loss_of(trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=True)
            return loss(targets, outputs)

        value, gradients = jax.value_and_grad(loss_of)(trainable)
        return WeightGradients(float(value), [_as_numpy(gradient) for gradient in gradients])

    def distribution_scope(self, device_names: list[str]) -> contextlib.AbstractContextManager:
        import keras

        return keras.distribution.DataParallel(devices=device_names).scope()


class TorchBackend(Backend):
    """PyTorch: eager calls under ``torch.no_grad`` / ``torch.autograd``; one device per run.

    Eager calls need no compiling: their compilation count stays 0.
    """

    name = "torch"

    def version(self) -> str:
        import torch

        return torch.__version__

    def devices(self) -> list[Device]:
        import torch

        gpus = [Device(f"cuda:{index}", "GPU") for index in range(torch.cuda.device_count())]
        return [Device("cpu", "CPU"), *gpus]

    def compile_predictor(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        import torch

        def probabilities(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return _to_numpy(model(batch, training=False))

        return Compiled(probabilities, _never_compiled)

    def compile_inspector(self, model: keras.Model, input_shape: tuple[int, ...]) -> Compiled:
        import keras
        import torch

        def call(batch: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
            inputs = keras.ops.convert_to_tensor(batch).requires_grad_(True)
            outputs = model(inputs, training=False)
            (gradient,) = torch.autograd.grad(outputs[-1][0].max(), inputs)
            return [_to_numpy(output) for output in outputs], _to_numpy(gradient)

        return Compiled(call, _never_compiled)

    def weight_gradients(
        self, model: keras.Model, loss: Callable, inputs: np.ndarray, targets: np.ndarray
    ) -> WeightGradients:
        import torch

        value = loss(targets, model(inputs, training=True))
        gradients = torch.autograd.grad(value, [variable.value for variable in model.trainable_variables])
        return WeightGradients(float(_to_numpy(value)), [_to_numpy(gradient) for gradient in gradients])

    def distribution_scope(self, device_names: list[str]) -> contextlib.AbstractContextManager:
        raise ZooError(
            f"the PyTorch backend trains on one device; {len(device_names)} were asked for "
            "(unset ZOO_MIRRORED_DEVICES, or use KERAS_BACKEND=jax or tensorflow for several devices)."
        )

    def limit_memory(self, fraction: float, megabytes: int) -> None:
        import torch

        for index in range(torch.cuda.device_count()):
            torch.cuda.set_per_process_memory_fraction(fraction, index)


def _never_compiled() -> int:
    return 0


def _variable_values(model: keras.Model) -> tuple[list[Any], list[Any]]:
    return (
        [variable.value for variable in model.trainable_variables],
        [variable.value for variable in model.non_trainable_variables],
    )


def _as_numpy(value: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(value)


def _to_numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()
