"""A model's scores as one typed record: computed from an evaluation, kept as the JSON every Zoo Studio
version wrote (a run's final metrics, a model's metrics.json), read back by attribute, old and partial
records included, and a malformed record refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zoo.core.errors import ZooError
from zoo.core.scores import ClassScores, FineTuningReport, FineTuningScores, Scores
from zoo.ml.evaluation import evaluate_predictions
from zoo.storage.models import METRICS_FILE, STARTER_DIRECTORY


def test_an_evaluations_scores_are_kept_in_the_layout_older_versions_read():
    # predicts 0, 1, 0, 0 for 0, 1, 1, 0: class 0 has precision 2/3 and recall 1, class 1 the reverse halves
    scores = evaluate_predictions(np.array([0, 1, 1, 0]), np.array([0.2, 0.8, 0.4, 0.1])).scores()
    assert scores.accuracy == 0.75 and scores.auc == 1.0
    assert scores.of_class(1) == ClassScores(1, precision=1.0, recall=0.5, f1=pytest.approx(2 / 3), support=2)
    assert scores.confusion_matrix == ((2, 0), (1, 1))
    assert (scores.num_examples, scores.num_misclassified, scores.fine_tuning) == (4, 1, None)
    assert scores.to_dict() == {
        "accuracy": 0.75,
        "macro_precision": pytest.approx(5 / 6),
        "macro_recall": 0.75,
        "macro_f1": pytest.approx(11 / 15),
        "per_class": {
            "0": {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": 0.8, "support": 2},
            "1": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
        },
        "confusion_matrix": [[2, 0], [1, 1]],
        "num_examples": 4,
        "num_misclassified": 1,
        "auc": 1.0,
    }
    assert Scores.from_dict(json.loads(json.dumps(scores.to_dict()))) == scores


def test_the_shipped_starters_metrics_json_reads_as_scores_and_writes_back_unchanged():
    recorded = json.loads((STARTER_DIRECTORY / "mnist-cnn" / METRICS_FILE).read_text())
    scores = Scores.from_dict(recorded)
    assert scores.accuracy == recorded["accuracy"] > 0.99
    assert [each.label for each in scores.per_class] == list(range(10))
    assert sum(map(sum, scores.confusion_matrix)) == scores.num_examples == 10_000
    assert scores.to_dict() == recorded


def test_old_and_partial_records_read_with_the_missing_fields_empty():
    assert Scores.from_dict({"accuracy": 0.9}) == Scores(accuracy=0.9)
    assert Scores(accuracy=0.9).to_dict() == {"accuracy": 0.9}  # nothing invented on the way back
    old_fine_tuning = {"before": {"mnist_accuracy": 0.9}, "after": {"mnist_accuracy": 0.91}}
    scores = Scores.from_dict({"accuracy": 0.91, "fine_tuning": old_fine_tuning})
    assert scores.fine_tuning == FineTuningReport(FineTuningScores(0.9), FineTuningScores(0.91))
    assert scores.fine_tuning.warning() is None


@pytest.mark.parametrize(
    "recorded",
    [
        {"macro_f1": 0.5},  # no accuracy
        {"accuracy": "high"},
        {"accuracy": True},
        {"accuracy": 0.9, "per_class": {"one": {"precision": 1, "recall": 1, "f1": 1, "support": 1}}},
        {"accuracy": 0.9, "fine_tuning": {"before": {}}},
        ["accuracy", 0.9],
    ],
)
def test_a_malformed_record_is_refused_in_one_line(recorded):
    with pytest.raises(ZooError, match=r"^the scores record is malformed \(") as raised:
        Scores.from_dict(recorded)
    assert "\n" not in str(raised.value)
