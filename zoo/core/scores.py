"""A trained model's scores: the summary of its test-set evaluation and, for a fine-tuning run, what
fine-tuning changed.

``Scores`` is what a run's final metrics and a model's ``metrics.json`` hold, so the run store, the
local zoo, the Hub's model card, the pages and the CLI all read the same record by attribute. JSON
only at the storage boundary: ``to_dict`` writes the layout every Zoo Studio version has written,
``from_dict`` reads it back, and a record written before a field existed reads with that field empty.
``zoo.ml.evaluation`` computes the numbers (``Evaluation.scores``); these records only hold them.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.core.errors import ZooError


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one class on the test set, and how many test examples it had."""

    label: int
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Scores:
    """A model's scores on its test set (per-example lists left out), and a fine-tuning run's report.

    Every field but ``accuracy`` may be empty in a record written by a tool or version that kept less.

    Example:
        >>> Scores.from_dict({"accuracy": 0.9}).macro_f1 is None
        True
    """

    accuracy: float
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None
    per_class: tuple[ClassScores, ...] = ()  # by label
    confusion_matrix: tuple[tuple[int, ...], ...] = ()  # rows: true label, columns: predicted label
    num_examples: int | None = None
    num_misclassified: int | None = None
    auc: float | None = None  # the binary classifier's area under the ROC curve
    fine_tuning: FineTuningReport | None = None  # a fine-tuning run's readings before and after

    def of_class(self, label: int) -> ClassScores | None:
        """The scores of class ``label`` (None when the record has no per-class scores)."""
        return next((scores for scores in self.per_class if scores.label == label), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values in the layout of ``metrics.json`` and of a run's final metrics (the
        empty fields left out), the inverse of ``from_dict``."""
        values: dict[str, Any] = {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "per_class": {
                str(scores.label): {
                    "precision": scores.precision,
                    "recall": scores.recall,
                    "f1": scores.f1,
                    "support": scores.support,
                }
                for scores in self.per_class
            }
            or None,
            "confusion_matrix": [list(row) for row in self.confusion_matrix] or None,
            "num_examples": self.num_examples,
            "num_misclassified": self.num_misclassified,
            "auc": self.auc,
            "fine_tuning": self.fine_tuning.to_dict() if self.fine_tuning is not None else None,
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Scores:
        """The record ``to_dict`` made (or an older, smaller one).

        Raises:
            ZooError: it is not a mapping, has no numeric ``accuracy``, or a field is malformed.
        """
        try:
            if not _is_number(values["accuracy"]):
                raise TypeError(f"accuracy {values['accuracy']!r} is not a number")
            fine_tuning = values.get("fine_tuning")
            return cls(
                accuracy=values["accuracy"],
                macro_precision=values.get("macro_precision"),
                macro_recall=values.get("macro_recall"),
                macro_f1=values.get("macro_f1"),
                per_class=tuple(
                    ClassScores(
                        int(label), scores["precision"], scores["recall"], scores["f1"], scores["support"]
                    )
                    for label, scores in (values.get("per_class") or {}).items()
                ),
                confusion_matrix=tuple(tuple(row) for row in values.get("confusion_matrix") or ()),
                num_examples=values.get("num_examples"),
                num_misclassified=values.get("num_misclassified"),
                auc=values.get("auc"),
                fine_tuning=FineTuningReport.from_dict(fine_tuning) if fine_tuning else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ZooError(f"the scores record is malformed ({type(error).__name__}: {error}).") from None


@dataclass(frozen=True)
class FineTuningScores:
    """One model's accuracy in a fine-tuning run: the base model's before, the fine-tuned one's after."""

    mnist_accuracy: float  # on the MNIST test digits
    personal_accuracy: float | None = None  # on the personal set's held-out digits (None: no set)
    personal_test_digits: int = 0

    def to_dict(self) -> dict[str, float | int]:
        """Plain JSON-ready values (the personal ones only with a set)."""
        values: dict[str, float | int] = {"mnist_accuracy": self.mnist_accuracy}
        if self.personal_accuracy is not None:
            values |= {
                "personal_accuracy": self.personal_accuracy,
                "personal_test_digits": self.personal_test_digits,
            }
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FineTuningScores:
        """The record ``to_dict`` made."""
        return cls(
            values["mnist_accuracy"], values.get("personal_accuracy"), values.get("personal_test_digits", 0)
        )


@dataclass(frozen=True)
class DigitReading:
    """One digit of the personal set as the base model read it and as the fine-tuned model reads it."""

    number: int  # its place in the set when fine-tuned, from 1 (the Draw page's gallery number)
    id: str
    label: int
    held_out: bool  # kept for testing, not trained on
    before: int  # the digit the base model read
    before_probability: float  # the probability the base model gave it
    after: int
    after_probability: float

    @property
    def regressed(self) -> bool:
        """The base model read it right and the fine-tuned model reads another digit."""
        return self.before == self.label != self.after

    @property
    def fixed(self) -> bool:
        """The base model misread it and the fine-tuned model reads it right."""
        return self.before != self.label == self.after


@dataclass(frozen=True)
class Misreading:
    """How many MNIST test digits of one class, read right by the base model, the fine-tuned model
    reads as one other digit."""

    label: int
    read_as: int
    count: int


@dataclass(frozen=True)
class FineTuningReport:
    """What fine-tuning changed: accuracy before and after, every digit of the personal set read by both
    models, and the MNIST test digits the base model read right that the fine-tuned model misreads."""

    before: FineTuningScores
    after: FineTuningScores
    digits: tuple[DigitReading, ...] = ()  # the set's digits, oldest first
    mnist_read_right_before: int = 0  # MNIST test digits the base model read right
    mnist_regressions: tuple[Misreading, ...] = ()  # of those, the ones now misread; most frequent first
    mnist_fixed: int = 0  # MNIST test digits the base model misread and the fine-tuned model reads right

    def warning(self) -> str | None:
        """One paragraph naming what the base model read right and the fine-tuned one misreads (the
        person's digits one by one; MNIST's by how often, when it misreads more of them than it now
        reads right: a few MNIST digits change hands in almost every fine-tuning), or None."""
        regressed = [digit for digit in self.digits if digit.regressed]
        lost = sum(misreading.count for misreading in self.mnist_regressions)
        if lost <= self.mnist_fixed:
            lost = 0
        if not regressed and not lost:
            return None
        parts = []
        if regressed:
            each = "; ".join(
                f"#{digit.number} (a {digit.label} read right at {digit.before_probability:.0%}, now read as "
                f"{digit.after} at {digit.after_probability:.0%})"
                for digit in regressed
            )
            parts.append(
                f"The fine-tuned model misreads {len(regressed)} of your digits that the base model read "
                f"right: {each}."
            )
        if lost:
            named = ", ".join(
                f"{misreading.label} read as {misreading.read_as} ×{misreading.count}"
                for misreading in self.mnist_regressions[:MISREADINGS_NAMED]
            )
            more = ", ..." if len(self.mnist_regressions) > MISREADINGS_NAMED else ""
            parts.append(
                f"{'It' if regressed else 'The fine-tuned model'} misreads {lost} of the "
                f"{self.mnist_read_right_before:,} MNIST test digits that the base model read right "
                f"({named}{more}), and reads right only {self.mnist_fixed} that the base model misread."
            )
        parts.append(
            "Draw more of the digits it now confuses and fine-tune again, or keep drawing with the base "
            "model."
        )
        return " ".join(parts)

    def summary(self) -> str | None:
        """How many of the set's digits each model reads right (None without a set)."""
        if not self.digits:
            return None
        total, held_out = len(self.digits), [digit for digit in self.digits if digit.held_out]

        def right(digits: Sequence[DigitReading], model: str) -> int:
            return sum(getattr(digit, model) == digit.label for digit in digits)

        return (
            f"your digits read right: {right(self.digits, 'before')} of {total} by the base model, "
            f"{right(self.digits, 'after')} of {total} by the fine-tuned one (held out: "
            f"{right(held_out, 'before')} of {len(held_out)} before, {right(held_out, 'after')} after)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, the warning's text among them (kept with the run's metrics)."""
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "digits": [dataclasses.asdict(digit) for digit in self.digits],
            "mnist_read_right_before": self.mnist_read_right_before,
            "mnist_regressions": [dataclasses.asdict(misreading) for misreading in self.mnist_regressions],
            "mnist_fixed": self.mnist_fixed,
            "warning": self.warning(),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FineTuningReport:
        """The record ``to_dict`` made; a run from before the per-digit readings has scores only."""
        return cls(
            FineTuningScores.from_dict(values["before"]),
            FineTuningScores.from_dict(values["after"]),
            tuple(DigitReading(**digit) for digit in values.get("digits", ())),
            values.get("mnist_read_right_before", 0),
            tuple(Misreading(**misreading) for misreading in values.get("mnist_regressions", ())),
            values.get("mnist_fixed", 0),
        )


MISREADINGS_NAMED = 3  # the most frequent MNIST misreadings a warning names


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
