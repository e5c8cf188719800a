"""Evaluation of a classifier's predictions: accuracy, per-class and macro precision/recall/F1,
confusion matrix, ROC/AUC for the binary classifier, and the misclassified examples.

The arithmetic is scikit-learn's (well tested, and the reference users compare against);
this module fixes the conventions: every class is reported even when absent, a zero
division counts as 0, a binary prediction is "1" at probability >= 0.5. It sits above
``training`` (whose data loading and batched prediction it uses), never below it. What runs and
model directories keep of an evaluation is its summary, ``Evaluation.scores()`` (``zoo.core.scores``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from zoo.core.errors import DataError, ZooError
from zoo.core.scores import ClassScores, FineTuningReport, Scores
from zoo.core.spec import TrainSpec
from zoo.ml.data import check_mnist_source, mnist_source_here
from zoo.ml.training import TrainingData, load_training_data, predict_in_batches
from zoo.storage.models import ModelStore

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class RocCurve:
    """The binary classifier's ROC curve: the rates at each threshold, highest threshold first."""

    false_positive_rate: list[float]
    true_positive_rate: list[float]
    thresholds: list[float]  # clipped to [0, 1] (scikit-learn's first is infinite)


@dataclass(frozen=True)
class Evaluation:
    """All the numbers the Evaluate views show, for one set of predictions."""

    accuracy: float
    labels: list[int]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion_matrix: list[list[int]]  # rows: true label, columns: predicted label
    predicted: list[int]
    confidence: list[float]  # the probability of the predicted class
    misclassified: list[int]  # indices into the evaluated examples
    roc: RocCurve | None = None  # binary only
    auc: float | None = None

    def scores(self, fine_tuning: FineTuningReport | None = None) -> Scores:
        """The summary a run's final metrics and a model's ``metrics.json`` keep (per-example lists left
        out), with a fine-tuning run's report."""
        return Scores(
            accuracy=self.accuracy,
            macro_precision=self.macro_precision,
            macro_recall=self.macro_recall,
            macro_f1=self.macro_f1,
            per_class=tuple(
                ClassScores(label, p, r, f, s)
                for label, p, r, f, s in zip(
                    self.labels, self.precision, self.recall, self.f1, self.support, strict=True
                )
            ),
            confusion_matrix=tuple(tuple(row) for row in self.confusion_matrix),
            num_examples=len(self.predicted),
            num_misclassified=len(self.misclassified),
            auc=self.auc,
            fine_tuning=fine_tuning,
        )


def evaluate_predictions(y_true: np.ndarray, probabilities: np.ndarray) -> Evaluation:
    """Evaluate class probabilities against integer labels.

    Args:
        y_true: (N,) integer labels (digits 0-9, or 0/1).
        probabilities: (N, 10) softmax outputs, or (N,) / (N, 1) probabilities of class 1.

    Raises:
        ZooError: the shapes do not match, or there is nothing to evaluate.
    """
    from sklearn import metrics

    y_true = np.asarray(y_true).astype(int).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    binary = probabilities.ndim == 1 or probabilities.shape[-1] == 1
    if len(y_true) == 0 or len(probabilities) != len(y_true):
        raise ZooError(
            f"cannot evaluate {len(probabilities)} predictions against {len(y_true)} labels: "
            "give one prediction per label, at least one."
        )
    if binary:
        positive = probabilities.reshape(-1)
        predicted = (positive >= 0.5).astype(int)
        confidence = np.where(predicted == 1, positive, 1 - positive)
        labels = [0, 1]
    else:
        predicted = probabilities.argmax(axis=1)
        confidence = probabilities.max(axis=1)
        labels = list(range(probabilities.shape[1]))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0
    )
    roc: RocCurve | None = None
    auc: float | None = None
    if binary and len(np.unique(y_true)) == 2:
        fpr, tpr, thresholds = metrics.roc_curve(y_true, positive)
        roc = RocCurve(fpr.tolist(), tpr.tolist(), np.clip(thresholds, 0, 1).tolist())
        auc = float(metrics.roc_auc_score(y_true, positive))
    return Evaluation(
        accuracy=float(metrics.accuracy_score(y_true, predicted)),
        labels=labels,
        precision=precision.tolist(),
        recall=recall.tolist(),
        f1=f1.tolist(),
        support=support.astype(int).tolist(),
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        confusion_matrix=metrics.confusion_matrix(y_true, predicted, labels=labels).tolist(),
        predicted=predicted.tolist(),
        confidence=confidence.tolist(),
        misclassified=np.flatnonzero(predicted != y_true).tolist(),
        roc=roc,
        auc=auc,
    )


def evaluate_model(model: keras.Model, data: TrainingData) -> Evaluation:
    """Evaluate a trained model on the test set of ``data`` (what ``load_training_data`` returns)."""
    return evaluate_predictions(data.y_test, predict_in_batches(model, data.x_test))


def evaluate_saved_model(
    name: str, store: ModelStore | None = None, mnist_source: str | None = None
) -> tuple[Evaluation, str]:
    """Evaluate a model of the local zoo on the test set of the data it was trained on.

    Returns the evaluation and a sentence naming the data source. A model without a
    training spec (e.g. pulled from the Hub) is evaluated on the default data for its kind;
    ``mnist_source`` ("auto", "embedded" or a file) overrides where a CNN's MNIST comes from. A
    recorded file that is not on this machine (the model was trained elsewhere) gives way to the
    README's order (ZOO_MNIST, Keras' cache, embedded), and the sentence says so.

    Raises:
        ModelStoreError: no such model, or it cannot be loaded.
        DataError: an MNIST source given for a binary model, or an unusable MNIST source.
    """
    store = store or ModelStore()
    if mnist_source is not None:  # refused before the model is loaded (seconds of TensorFlow)
        kind = store.entry(name).kind
        if kind != "cnn":
            raise DataError(
                f"{name} is a {kind} model, evaluated on the points it was trained on; an MNIST "
                f"source ({mnist_source!r}) applies to CNN models only: leave it out."
            )
        if mnist_source not in ("auto", "embedded"):
            check_mnist_source(mnist_source)
    loaded = store.load(name)
    spec = loaded.entry.config.spec
    if spec is None:
        spec = TrainSpec.cnn() if loaded.entry.kind == "cnn" else TrainSpec.binary()
    if mnist_source is not None:
        spec = dataclasses.replace(spec, mnist_source=mnist_source)
    here, missing = mnist_source_here(spec.mnist_source)
    data = load_training_data(dataclasses.replace(spec, mnist_source=here))
    return evaluate_model(loaded.model, data), data.source if missing is None else f"{data.source}; {missing}"
