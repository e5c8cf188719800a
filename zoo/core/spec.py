"""What defines a run, and the rules its values keep: ``TrainSpec`` (model kind, data,
hyperparameters, seed), ``Lineage`` (where a fine-tuned model comes from) and the checks they run.

These records cross every layer: a page or the CLI builds a spec, the run store keeps it, a worker
trains it, the local zoo writes it in a model's ``config.json`` and the Hub's model card lists it.
So they live here, at the bottom, with their checks (pure: no numpy, no Keras, no files but
``keras.json``), and every layer reads them downwards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.core.errors import DataError, ZooError
from zoo.core.names import check_model_name, check_set_name
from zoo.core.vocabulary import (
    ACTIVATIONS,
    BACKENDS,
    DEFAULT_BACKEND,
    DEVICES,
    LEARNING_RATE_SCHEDULES,
    MODEL_KINDS,
    OPTIMIZERS,
    POINT_DATASETS,
)

BACKEND_CHOICES = ("auto", *BACKENDS)


@dataclass(frozen=True)
class TrainSpec:
    """Everything that defines a run: model kind, data, hyperparameters and seed.

    Build one with ``TrainSpec.cnn(...)`` or ``TrainSpec.binary(...)``: they start from the
    articles' configurations, take any field as an override and validate the result.

    Raises:
        ZooError: (from the builders and ``from_dict``) an unknown field or a value outside its
            range; the message names the field and the range.

    Example:
        >>> TrainSpec.cnn(num_epochs=3, mnist_source="embedded").batch_size
        128
        >>> TrainSpec.binary(dataset="spiral", hidden_units="8,8").hidden_units
        (8, 8)
    """

    kind: str = "cnn"  # one of vocabulary.MODEL_KINDS, as Run.kind and ModelEntry.kind
    dataset: str = "mnist"
    mnist_source: str = "auto"  # "auto", "embedded" or the path of a Keras mnist.npz
    max_train_samples: int | None = None
    num_samples: int = 400
    noise: float = 0.2
    test_fraction: float = 0.3
    conv_filters: tuple[int, ...] = (32, 64, 64)
    hidden_units: tuple[int, ...] = (64,)
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 0.001
    learning_rate_schedule: str = "constant"  # or "cosine" (see ``scheduled_learning_rate``)
    momentum: float = 0.9
    batch_size: int = 128
    num_epochs: int = 10
    validation_split: float = 0.1
    seed: int = 0
    steps_per_execution: int = 1  # >1 runs that many batches per compiled call: faster, coarser stop
    device: str = "auto"
    backend: str = "auto"  # the Keras backend: "auto" (the host's, KERAS_BACKEND), tensorflow, jax or torch
    mixed_precision: bool = False
    augment: bool = False  # CNN: each epoch sees freshly rotated, scaled, shifted, slanted, re-stroked digits
    printed: bool = (
        False  # CNN: digits typed in this machine's fonts join the training digits (zoo/ml/printed.py)
    )
    base_model: str | None = None  # CNN: continue training this local-zoo model instead of a new one
    digits_set: str | None = None  # with base_model: fine-tune on this personal set mixed with MNIST
    model_name: str | None = None
    # False (Playground runs): the model stays out of the zoo's lists until it is kept (ModelConfig.kept)
    keep_model: bool = True

    @classmethod
    def cnn(cls, **overrides: Any) -> TrainSpec:
        """The article's MNIST CNN: Adam 0.001, batch 128, 10 epochs, validation split 0.1.

        Args:
            **overrides: any field, e.g. ``num_epochs=3`` (``conv_filters`` and ``hidden_units``
                also as text, ``"32,64"``).

        Returns:
            The validated spec.

        Raises:
            ZooError: an unknown field or a value outside its range (see ``validate``).

        Example:
            >>> TrainSpec.cnn(num_epochs=3).num_epochs
            3
        """
        return cls.from_dict({"kind": "cnn", **overrides})

    @classmethod
    def binary(cls, **overrides: Any) -> TrainSpec:
        """The article's 2-3-1 sigmoid classifier: BCE, Adam lr 0.001, batch 32, 100 epochs, on
        400 ``moons`` points.

        Args:
            **overrides: any field, e.g. ``dataset="spiral"`` or ``hidden_units="8,8"``.

        Returns:
            The validated spec.

        Raises:
            ZooError: an unknown field or a value outside its range (see ``validate``).

        Example:
            >>> TrainSpec.binary(dataset="circles").activation
            'sigmoid'
        """
        defaults = {
            "kind": "binary",
            "dataset": "moons",
            "hidden_units": (3,),
            "activation": "sigmoid",
            "batch_size": 32,
            "num_epochs": 100,
            "validation_split": 0.0,
        }
        return cls.from_dict({**defaults, **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainSpec:
        """Build and validate a spec from plain values (JSON, query parameters, CLI options).

        Missing fields take the class defaults (the CNN's), not the article builders'; a record
        written before ``model`` was renamed ``kind`` is read too.

        Args:
            values: field names to values; ``conv_filters`` and ``hidden_units`` may be lists or text.

        Returns:
            The validated spec.

        Raises:
            ZooError: an unknown field or a value outside its range.

        Example:
            >>> TrainSpec.from_dict({"kind": "cnn", "conv_filters": [16, 32]}).conv_filters
            (16, 32)
        """
        if "model" in values and "kind" not in values:  # records written before the field was renamed
            values = {("kind" if key == "model" else key): value for key, value in values.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ZooError(
                f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        cleaned = dict(values)
        for name in ("conv_filters", "hidden_units"):
            if name in cleaned:
                cleaned[name] = _int_tuple(name, cleaned[name])
        spec = cls(**cleaned)
        spec.validate()
        return spec

    def resolved(self) -> TrainSpec:
        """This spec with ``backend`` made concrete.

        Returns:
            The same spec when ``backend`` is already named; else a copy whose ``backend`` is the
            host's configured one (``KERAS_BACKEND``).

        Example:
            >>> TrainSpec.cnn().resolved().backend  # doctest: +SKIP
            'tensorflow'
        """
        if self.backend != "auto":
            return self
        return dataclasses.replace(self, backend=configured_backend())

    def trains_like(self, other: TrainSpec) -> bool:
        """Whether a run of this spec trains as a run of ``other`` does: the same settings with
        ``backend`` made concrete (a run records it so), whatever its model is named or whether it is kept.

        Example:
            >>> TrainSpec.binary(keep_model=False).trains_like(TrainSpec.binary().resolved())
            True
        """
        return dataclasses.replace(self.resolved(), model_name=None, keep_model=True) == dataclasses.replace(
            other.resolved(), model_name=None, keep_model=True
        )

    def describe(self) -> str:
        """The settings in one line for people.

        Example:
            >>> TrainSpec.binary().describe().split(" · ")
            ['moons: 400 points, noise 0.2, 30% for testing, seed 0', 'hidden units 3, sigmoid',
             'adam, learning rate 0.001, batch 32, 100 epochs']
        """
        if self.kind == "binary":
            data = (
                f"{self.dataset}: {self.num_samples} points, noise {self.noise:g}, "
                f"{self.test_fraction:.0%} for testing, seed {self.seed}"
            )
        else:
            data = f"MNIST ({self.mnist_source}), seed {self.seed}"
        network = f"hidden units {','.join(map(str, self.hidden_units))}, {self.activation}"
        if self.kind == "cnn":
            network = f"conv filters {','.join(map(str, self.conv_filters))}, " + network
        training = (
            f"{self.optimizer}, learning rate {self.learning_rate:g}, batch {self.batch_size}, "
            f"{self.num_epochs} epochs"
        )
        return " · ".join((data, network, training))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, the inverse of ``from_dict``.

        Returns:
            Every field by name; tuples become lists.

        Example:
            >>> TrainSpec.binary().to_dict()["hidden_units"]
            [3]
        """
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    def validate(self) -> None:
        """Check every option, the architecture, the 2-D points and the names of models and sets.

        Raises:
            ZooError: naming the first option outside its range and the range (``DataError``,
                ``ModelStoreError`` or ``DigitSetError`` for points, model names and set names).

        Example:
            >>> TrainSpec.cnn().validate()
        """
        checks = [
            (self.kind in MODEL_KINDS, f"kind {self.kind!r}: choose one of {MODEL_KINDS}"),
            (self.activation in ACTIVATIONS, f"activation {self.activation!r}: choose one of {ACTIVATIONS}"),
            (self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r}: choose one of {OPTIMIZERS}"),
            (isinstance(self.keep_model, bool), f"keep_model={self.keep_model!r}: give true or false"),
            (
                self.device in DEVICES,
                f"device {self.device!r}: choose 'auto' (GPU when there is one) or 'cpu'",
            ),
            (
                self.backend in BACKEND_CHOICES,
                f"backend {self.backend!r}: choose one of {', '.join(BACKEND_CHOICES)}",
            ),
            (
                _is_number(self.learning_rate) and 0 < self.learning_rate <= 10,
                f"learning_rate={self.learning_rate!r}: choose a value in (0, 10], e.g. 0.001",
            ),
            (
                self.learning_rate_schedule in LEARNING_RATE_SCHEDULES,
                f"learning_rate_schedule {self.learning_rate_schedule!r}: choose one of "
                f"{', '.join(LEARNING_RATE_SCHEDULES)}",
            ),
            (
                _is_number(self.momentum) and 0 <= self.momentum < 1,
                f"momentum={self.momentum!r}: choose in [0, 1)",
            ),
            (
                _is_int(self.batch_size) and 1 <= self.batch_size <= 8192,
                f"batch_size={self.batch_size!r}: choose an integer from 1 to 8192",
            ),
            (
                _is_int(self.num_epochs) and 1 <= self.num_epochs <= 10_000,
                f"num_epochs={self.num_epochs!r}: choose an integer from 1 to 10000",
            ),
            (
                _is_number(self.validation_split) and 0 <= self.validation_split <= 0.5,
                f"validation_split={self.validation_split!r}: choose a fraction in [0, 0.5]",
            ),
            (
                _is_int(self.seed) and 0 <= self.seed < 2**31,
                f"seed={self.seed!r}: choose an integer from 0 to 2^31-1",
            ),
            (
                self.max_train_samples is None
                or (_is_int(self.max_train_samples) and self.max_train_samples >= 10),
                f"max_train_samples={self.max_train_samples!r}: choose at least 10, or none for all",
            ),
            (
                _is_int(self.steps_per_execution) and 1 <= self.steps_per_execution <= 1000,
                f"steps_per_execution={self.steps_per_execution!r}: choose an integer from 1 to 1000",
            ),
            (
                _is_int(self.num_samples) and _is_number(self.noise) and _is_number(self.test_fraction),
                f"num_samples={self.num_samples!r}, noise={self.noise!r}, test_fraction="
                f"{self.test_fraction!r}: give numbers (a whole number of points)",
            ),
        ]
        if self.kind == "cnn":
            checks.append((self.dataset == "mnist", f"dataset {self.dataset!r}: the CNN trains on 'mnist'"))
        else:
            checks.append(
                (
                    self.dataset in POINT_DATASETS,
                    f"dataset {self.dataset!r}: choose one of {POINT_DATASETS}",
                )
            )
            checks.append((not self.augment, "augment: only the CNN's digits are augmented; turn it off"))
            checks.append((not self.printed, "printed: printed digits are for the CNN; turn it off"))
            checks.append((self.base_model is None, "base_model: only a CNN can be fine-tuned"))
        checks.append(
            (
                self.digits_set is None or self.base_model is not None,
                f"digits_set={self.digits_set!r}: fine-tuning on a digit set continues a trained CNN; "
                "name it with base_model (--base MODEL)",
            )
        )
        for passed, message in checks:
            if not passed:
                raise ZooError(message + ".")
        # The architecture and the points are checked here too, so a bad value fails before a run starts.
        check_hidden_units(self.hidden_units)
        if self.kind == "cnn":
            check_conv_filters(self.conv_filters)
        else:
            check_points_parameters(self.dataset, self.num_samples, self.noise, self.test_fraction)
        for name in (self.model_name, self.base_model):
            if name is not None:
                check_model_name(name)
        if self.digits_set is not None:
            check_set_name(self.digits_set)


@dataclass(frozen=True)
class Lineage:
    """Where a fine-tuned model comes from: the model it continued, the personal set and its counts."""

    base_model: str
    digits_set: str | None
    personal_train_digits: int
    personal_test_digits: int
    personal_counts: tuple[int, ...]  # digits of each class 0-9 in the set
    personal_copies: int  # each personal training digit appears this many times among the MNIST digits
    mnist_train_digits: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what a model's ``config.json`` keeps), the inverse of ``from_dict``."""
        return {**dataclasses.asdict(self), "personal_counts": list(self.personal_counts)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Lineage:
        """The record ``to_dict`` made.

        Raises:
            TypeError: a field is missing or unknown (the reader of the file says which file).
        """
        fields = dict(values)
        if isinstance(fields.get("personal_counts"), list):
            fields["personal_counts"] = tuple(fields["personal_counts"])
        return cls(**fields)


def check_conv_filters(conv_filters: tuple[int, ...]) -> None:
    """Raise ``ZooError`` unless there are 1 to 3 positive filter counts (28x28 allows no more)."""
    if not conv_filters or any(f < 1 for f in conv_filters) or len(conv_filters) > 3:
        raise ZooError(
            f"conv_filters={conv_filters!r}: give 1 to 3 positive filter counts, e.g. (32, 64, 64)."
        )


def check_hidden_units(units: tuple[int, ...]) -> None:
    """Raise ``ZooError`` unless there are 1 to 6 positive hidden layer sizes."""
    if not units or any(u < 1 for u in units) or len(units) > 6:
        raise ZooError(f"hidden units {units!r}: give 1 to 6 positive layer sizes, e.g. (3,).")


def check_points_parameters(name: str, num_samples: int, noise: float, test_fraction: float) -> None:
    """Check what ``make_points`` is asked for, before anything runs.

    Raises:
        DataError: unknown name, or a parameter outside its range (the message gives the range).
    """
    if name not in POINT_DATASETS:
        raise DataError(f"dataset {name!r} is unknown: choose one of {', '.join(POINT_DATASETS)}.")
    if not 20 <= num_samples <= 100_000:
        raise DataError(f"num_samples={num_samples}: choose between 20 and 100,000 points.")
    if not 0 <= noise <= 2:
        raise DataError(f"noise={noise}: choose a value between 0 and 2.")
    if not 0.05 <= test_fraction <= 0.9:
        raise DataError(f"test_fraction={test_fraction}: choose between 0.05 and 0.9.")


def configured_backend() -> str:
    """The backend Keras will use in a new process (``KERAS_BACKEND``, else keras.json), read without
    importing Keras."""
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        config = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "keras.json"
        try:
            name = json.loads(config.read_text()).get("backend")
        except (OSError, ValueError, AttributeError):
            name = None
    return name or DEFAULT_BACKEND


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    parts = value.replace(",", " ").split() if isinstance(value, str) else value
    try:
        given = tuple(int(part) if isinstance(part, str) else part for part in parts)
        if all(_is_int(number) for number in given):  # 64.5 is refused, not truncated
            return tuple(int(number) for number in given)
    except (TypeError, ValueError):
        pass
    raise ZooError(f"{name}={value!r}: give whole numbers such as 32,64,64.")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # numpy's integers too


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
