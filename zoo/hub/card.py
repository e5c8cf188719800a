"""The model card of a Zoo Studio repo on the Hub (its ``README.md``): Hub metadata (library, tags,
datasets, the ``model-index`` of metrics) and a generated section between ``CARD_BEGIN`` and
``CARD_END`` (the model, its evaluation, hyperparameters, training data, fine-tuning, training
curves, how to use it); text a person wrote outside that section is kept on every push.

Pure: a ``ModelEntry`` and its history in, a ``huggingface_hub.ModelCard`` out; no network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.core.scores import Scores
from zoo.storage.models import ModelEntry

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

CARD_FILE = "README.md"
ZOO_TAG = "zoo-studio"
TASKS = {"cnn": "image-classification", "binary": "tabular-classification"}
KIND_DESCRIPTIONS = {
    "cnn": "MNIST digit classifier (convolutional network, 28x28x1 image -> 10 digit probabilities)",
    "binary": "2-D binary classifier (dense network, 2 coordinates -> probability of class 1)",
}
# (our metrics.json key, the Hub's metric type, the label shown)
CARD_METRICS = (
    ("accuracy", "accuracy", "Accuracy"),
    ("macro_precision", "precision", "Macro precision"),
    ("macro_recall", "recall", "Macro recall"),
    ("macro_f1", "f1", "Macro F1"),
    ("auc", "roc_auc", "ROC AUC"),
)
CARD_BEGIN = "<!-- zoo-studio:begin (generated: Zoo Studio replaces this section on every push) -->"
CARD_END = "<!-- zoo-studio:end -->"
MAX_CURVE_ROWS = 25


@dataclass(frozen=True)
class CardMetrics:
    """The metrics a model card declares in its ``model-index``, by our names (None: not declared)."""

    accuracy: float | None = None
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None
    auc: float | None = None


def build_model_card(
    entry: ModelEntry,
    repo_id: str,
    existing: ModelCard | None = None,
    *,
    history: list[dict[str, float]],
) -> ModelCard:
    """The card for ``entry`` in ``repo_id``: Hub metadata (library, tags, datasets, model-index)
    and a generated section (with the training curves of ``history``, the model's per-epoch metrics),
    keeping any metadata and text a person added to ``existing``."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    kind, task = entry.kind, TASKS[entry.kind]
    metadata = existing.data.to_dict() if existing is not None else {}
    metadata.pop("model-index", None)
    metadata.pop("model_name", None)
    metadata.pop("eval_results", None)
    dataset_id, dataset_name = _dataset_of(entry)
    datasets = list(metadata.get("datasets") or [])
    metadata.update(
        library_name="keras",
        pipeline_tag=task,
        tags=list(
            dict.fromkeys([*(metadata.get("tags") or []), ZOO_TAG, f"{ZOO_TAG}-{kind}", task, "keras"])
        ),
        datasets=list(dict.fromkeys([*datasets, dataset_id])) if dataset_id == "mnist" else datasets or None,
    )
    eval_results = [
        EvalResult(
            task_type=task,
            dataset_type=dataset_id,
            dataset_name=dataset_name,
            dataset_split="test",
            metric_type=metric_type,
            metric_name=label,
            metric_value=round(float(value), 6),
        )
        for metric_type, label, value in _declared_metrics(entry.metrics)
    ]
    card_data = ModelCardData(
        **{key: value for key, value in metadata.items() if value is not None},
        model_name=repo_id.split("/")[1],
        eval_results=eval_results or None,
    )
    generated = _generated_section(entry, repo_id, dataset_name, history)
    if existing is not None and CARD_BEGIN in existing.text and CARD_END in existing.text:
        before, rest = existing.text.split(CARD_BEGIN, 1)
        body = before + generated + rest.split(CARD_END, 1)[1]
    elif existing is not None and existing.text.strip():
        body = existing.text.rstrip() + "\n\n" + generated + "\n"
    else:
        body = (
            f"# {repo_id.split('/')[1]}\n\nTrained with Zoo Studio ({kind} model).\n\n"
            "_Text you write outside the generated section below is kept when the model is pushed again._\n\n"
            + generated
            + "\n"
        )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def card_metrics(card_data: Any) -> CardMetrics:
    """The metrics a card's ``model-index`` declares (none when it has none)."""
    names = {metric_type: key for key, metric_type, _ in CARD_METRICS}
    results = getattr(card_data, "eval_results", None) or []
    return CardMetrics(
        **{
            names[result.metric_type]: float(result.metric_value)
            for result in results
            if result.metric_type in names and isinstance(result.metric_value, int | float)
        }
    )


def _declared_metrics(scores: Scores | None) -> list[tuple[str, str, float]]:
    """(Hub metric type, label, value) of each card metric ``scores`` holds, in the card's order."""
    if scores is None:
        return []
    declared = [(metric_type, label, getattr(scores, key)) for key, metric_type, label in CARD_METRICS]
    return [(metric_type, label, value) for metric_type, label, value in declared if value is not None]


def _generated_section(
    entry: ModelEntry, repo_id: str, dataset_name: str, history: list[dict[str, float]]
) -> str:
    spec = entry.config.spec.to_dict() if entry.config.spec is not None else {}
    lines = [CARD_BEGIN, "", "## Model", "", f"{KIND_DESCRIPTIONS[entry.kind]}."]
    metric_rows = [f"| {label} | {value:.4f} |" for _, label, value in _declared_metrics(entry.metrics)]
    if entry.metrics is not None and metric_rows:
        examples = entry.metrics.num_examples
        on = f"{dataset_name}" + (f", {examples:,} examples" if isinstance(examples, int) else "")
        lines += [
            "",
            "## Evaluation",
            "",
            f"On the held-out test set ({on}):",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += metric_rows
    if spec:
        lines += ["", "## Hyperparameters", "", "| option | value |", "|---|---|"]
        lines += [
            f"| {key} | {_format_value(value)} |" for key, value in sorted(spec.items()) if value is not None
        ]
    lines += ["", "## Training data", "", str(entry.config.data_source or "not recorded")]
    lines += _fine_tuning_lines(entry)
    if history:
        columns = [column for column in history[0] if column != "epoch"]
        step = max(1, math.ceil(len(history) / MAX_CURVE_ROWS))
        shown = [row for index, row in enumerate(history) if index % step == 0 or index == len(history) - 1]
        lines += ["", "## Training curves", ""]
        lines += ["| epoch | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [
            f"| {int(row.get('epoch', 0))} | "
            + " | ".join(f"{row.get(c, float('nan')):.4f}" for c in columns)
            + " |"
            for row in shown
        ]
    lines += [
        "",
        "## How to use",
        "",
        "With Keras alone:",
        "",
        "```python",
        "import keras",
        "",
        f'model = keras.saving.load_model("hf://{repo_id}")',
        "```",
        "",
        "Into Zoo Studio's local zoo (then pick it on the Draw page):",
        "",
        "```bash",
        f"python -m zoo pull {repo_id}",
        "```",
        "",
        CARD_END,
    ]
    return "\n".join(lines)


def _fine_tuning_lines(entry: ModelEntry) -> list[str]:
    """The card's "Fine-tuning" section: base model, personal digits, and accuracy before and after."""
    lineage = entry.config.lineage
    if lineage is None:
        return []
    lines = ["", "## Fine-tuning", ""]
    if lineage.digits_set:
        counts = ", ".join(f"{digit}: {count}" for digit, count in enumerate(lineage.personal_counts))
        lines.append(
            f"Fine-tuned from `{lineage.base_model}` on "
            f"{lineage.personal_train_digits + lineage.personal_test_digits} personal digits "
            f"(set `{lineage.digits_set}`; per digit {counts}): {lineage.personal_train_digits} "
            f"trained on, each {lineage.personal_copies} times among {lineage.mnist_train_digits:,} "
            f"MNIST training digits, and {lineage.personal_test_digits} held out."
        )
    else:
        lines.append(f"Training continued from `{lineage.base_model}`.")
    report = entry.metrics.fine_tuning if entry.metrics is not None else None
    if report is not None:
        lines += ["", "| accuracy | before | after |", "|---|---|---|"]
        before, after = report.before, report.after
        lines.append(f"| MNIST test digits | {before.mnist_accuracy:.4f} | {after.mnist_accuracy:.4f} |")
        if before.personal_accuracy is not None and after.personal_accuracy is not None:
            personal = f"{before.personal_accuracy:.4f} | {after.personal_accuracy:.4f}"
            lines.append(f"| held-out personal digits | {personal} |")
    return lines


def _dataset_of(entry: ModelEntry) -> tuple[str, str]:
    """(Hub dataset id, name) of the data the model was evaluated on."""
    if entry.kind == "cnn":
        return "mnist", "MNIST"
    dataset = entry.config.spec.dataset if entry.config.spec is not None else "points"
    return f"synthetic-{dataset}", f"{dataset} (synthetic 2-D points)"


def _format_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
