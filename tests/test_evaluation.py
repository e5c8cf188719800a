"""Evaluation numbers against scikit-learn on the same predictions, the conventions on top of it
(absent classes, the 0.5 threshold, misclassified indices), and evaluating a saved model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from zoo.core.errors import ZooError
from zoo.core.scores import ClassScores
from zoo.core.spec import TrainSpec
from zoo.ml.evaluation import evaluate_predictions, evaluate_saved_model
from zoo.ml.training import build_model, load_training_data, predict_in_batches
from zoo.storage.models import ModelConfig, ModelStore


@pytest.fixture(scope="module")
def digit_predictions() -> tuple[np.ndarray, np.ndarray]:
    """300 softmax-like rows and labels in which digit 7 never occurs and digit 3 is never predicted."""
    generator = np.random.default_rng(42)
    labels = generator.choice([0, 1, 2, 3, 4, 5, 6, 8, 9], size=300)
    logits = generator.normal(size=(300, 10))
    logits[np.arange(300), labels] += generator.choice([0.0, 3.0], size=300, p=[0.3, 0.7])  # mostly right
    logits[:, 3] -= 100.0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities


def test_digit_metrics_equal_scikit_learns(digit_predictions):
    labels, probabilities = digit_predictions
    predicted = probabilities.argmax(axis=1)
    evaluation = evaluate_predictions(labels, probabilities)
    everything = list(range(10))
    assert evaluation.labels == everything
    assert evaluation.accuracy == metrics.accuracy_score(labels, predicted)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        labels, predicted, labels=everything, zero_division=0
    )
    np.testing.assert_array_equal(evaluation.precision, precision)
    np.testing.assert_array_equal(evaluation.recall, recall)
    np.testing.assert_array_equal(evaluation.f1, f1)
    assert evaluation.support == support.tolist()
    for ours, average in [
        (evaluation.macro_precision, metrics.precision_score),
        (evaluation.macro_recall, metrics.recall_score),
        (evaluation.macro_f1, metrics.f1_score),
    ]:
        assert ours == pytest.approx(
            average(labels, predicted, labels=everything, average="macro", zero_division=0)
        )
    assert (
        evaluation.confusion_matrix == metrics.confusion_matrix(labels, predicted, labels=everything).tolist()
    )
    assert evaluation.roc is None and evaluation.auc is None


def test_an_absent_class_is_reported_with_zeros_not_dropped(digit_predictions):
    labels, probabilities = digit_predictions
    evaluation = evaluate_predictions(labels, probabilities)
    assert evaluation.support[7] == 0 and evaluation.recall[7] == 0.0  # digit 7 never occurs
    assert evaluation.precision[3] == 0.0 and evaluation.f1[3] == 0.0  # digit 3 is never predicted
    assert sum(row[3] for row in evaluation.confusion_matrix) == 0
    assert len(evaluation.confusion_matrix) == 10 and all(
        len(row) == 10 for row in evaluation.confusion_matrix
    )
    assert sum(map(sum, evaluation.confusion_matrix)) == 300
    scores = evaluation.scores()
    assert [each.label for each in scores.per_class] == list(range(10))
    assert scores.of_class(7) == ClassScores(7, evaluation.precision[7], recall=0.0, f1=0.0, support=0)


def test_misclassified_indices_and_confidences_are_right(digit_predictions):
    labels, probabilities = digit_predictions
    evaluation = evaluate_predictions(labels, probabilities)
    expected = [index for index in range(300) if probabilities[index].argmax() != labels[index]]
    assert evaluation.misclassified == expected and 0 < len(expected) < 300
    assert evaluation.predicted == probabilities.argmax(axis=1).tolist()
    np.testing.assert_allclose(evaluation.confidence, probabilities.max(axis=1))
    summary = evaluation.scores().to_dict()
    assert (summary["num_examples"], summary["num_misclassified"]) == (300, len(expected))
    assert "misclassified" not in summary and "predicted" not in summary  # per-example lists stay out


def test_a_tiny_hand_checked_case():
    probabilities = np.eye(3)[[0, 1, 2, 2]] * 0.9 + 0.05  # predicts 0, 1, 2, 2
    evaluation = evaluate_predictions(np.array([0, 1, 1, 2]), probabilities)
    assert evaluation.accuracy == 0.75 and evaluation.misclassified == [2]
    assert evaluation.confusion_matrix == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert evaluation.precision == [1.0, 1.0, 0.5] and evaluation.recall == [1.0, 0.5, 1.0]


@pytest.mark.parametrize("shape", ["column", "flat"])
def test_binary_metrics_roc_and_auc_equal_scikit_learns(shape):
    generator = np.random.default_rng(7)
    labels = generator.integers(0, 2, 200)
    positive = np.clip(labels * 0.35 + generator.random(200) * 0.65, 0, 1)
    positive[:3] = 0.5  # exactly the threshold counts as class 1
    evaluation = evaluate_predictions(labels, positive[:, None] if shape == "column" else positive)
    predicted = (positive >= 0.5).astype(int)
    assert evaluation.labels == [0, 1] and evaluation.predicted == predicted.tolist()
    assert evaluation.predicted[:3] == [1, 1, 1]
    assert evaluation.accuracy == metrics.accuracy_score(labels, predicted)
    assert evaluation.f1 == metrics.f1_score(labels, predicted, average=None).tolist()
    assert evaluation.confusion_matrix == metrics.confusion_matrix(labels, predicted).tolist()
    np.testing.assert_allclose(evaluation.confidence, np.where(predicted == 1, positive, 1 - positive))
    fpr, tpr, thresholds = metrics.roc_curve(labels, positive)
    assert (
        evaluation.roc.false_positive_rate == fpr.tolist()
        and evaluation.roc.true_positive_rate == tpr.tolist()
    )
    assert evaluation.roc.thresholds == np.clip(thresholds, 0, 1).tolist()  # no infinity for JSON/plots
    assert evaluation.auc == metrics.roc_auc_score(labels, positive)
    assert evaluation.scores().auc == evaluation.auc
    assert evaluation.misclassified == np.flatnonzero(predicted != labels).tolist()


def test_a_binary_evaluation_with_one_class_present_has_no_roc():
    evaluation = evaluate_predictions(np.ones(5, int), np.array([0.9, 0.8, 0.3, 0.7, 0.6]))
    assert evaluation.roc is None and evaluation.auc is None and "auc" not in evaluation.scores().to_dict()
    assert evaluation.accuracy == 0.8 and evaluation.misclassified == [2]


@pytest.mark.parametrize(
    ("labels", "probabilities"),
    [(np.zeros(3, int), np.full((2, 10), 0.1)), (np.zeros(0, int), np.zeros((0, 10)))],
)
def test_mismatched_or_empty_predictions_are_a_zoo_error(labels, probabilities):
    with pytest.raises(
        ZooError, match=f"cannot evaluate {len(probabilities)} predictions against {len(labels)}"
    ):
        evaluate_predictions(labels, probabilities)


def test_a_saved_model_is_evaluated_on_the_test_set_it_was_trained_for():
    spec = TrainSpec.binary(dataset="circles", num_samples=120, seed=3)
    model = build_model(spec)
    ModelStore().save(model, "circles", config=ModelConfig("binary", spec=spec))
    evaluation, source = evaluate_saved_model("circles")
    data = load_training_data(spec)
    assert source == "circles (120 points, noise 0.2, seed 3)"
    expected = evaluate_predictions(data.y_test, predict_in_batches(model, data.x_test))
    assert evaluation == expected and len(evaluation.predicted) == 36


def test_a_model_without_a_spec_can_be_evaluated_on_a_chosen_mnist_source():
    """A CNN pulled from the Hub has no training spec: ``mnist_source`` picks its test digits."""
    ModelStore().save(build_model(TrainSpec.cnn()), "pulled", config=ModelConfig("cnn"))
    evaluation, source = evaluate_saved_model("pulled", mnist_source="embedded")
    assert source.startswith("embedded MNIST subset") and len(evaluation.predicted) == 1000
