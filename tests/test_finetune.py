"""Fine-tuning a CNN on my digits: a background run that continues a local-zoo CNN on the personal set
mixed with MNIST, reports accuracy before and after (held-out personal digits, MNIST test digits),
saves a new model with its lineage, whose model card says so; a set unfit for it is refused before
anything trains, and nothing is lost."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard
from streamlit.testing.v1 import AppTest
from test_training import RecordingReporter

from zoo.core.errors import DigitSetError, ModelStoreError, ZooError
from zoo.core.hosting import LOCAL_USER
from zoo.core.scores import DigitReading, FineTuningReport, FineTuningScores, Misreading
from zoo.core.spec import Lineage, TrainSpec
from zoo.execution.admission import start
from zoo.execution.executor import open_executor, wait
from zoo.hub import operations as hub
from zoo.hub.card import build_model_card
from zoo.ml.evaluation import evaluate_model
from zoo.ml.training import fit, load_training_data, predict_in_batches
from zoo.runs.store import open_run_store
from zoo.storage.digits import DigitStore
from zoo.storage.models import ModelConfig, ModelStore

REPOSITORY = Path(__file__).resolve().parents[1]


def bars(count: int, horizontal: bool, seed: int) -> np.ndarray:
    """``count`` 28x28 digits unlike any MNIST digit: a thick horizontal or vertical bar, jittered."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.float32)
    for image in images:
        offset = rng.integers(-2, 3)
        if horizontal:
            image[12 + offset : 16 + offset, 5:23] = 1.0
        else:
            image[4:24, 12 + offset : 16 + offset] = 1.0
    return images


def personal_set(name: str = "mine", per_class: int = 10) -> None:
    """A set that says horizontal bars are 4s and vertical bars are 7s (a base model reads neither so)."""
    store = DigitStore()
    for _, label, images in (
        (True, 4, bars(per_class, True, 1)),
        (False, 7, bars(per_class, False, 2)),
    ):
        for image in images:
            store.add(name, label, (image * 255).astype(np.uint8), image, by=LOCAL_USER)


@pytest.fixture
def base_model() -> str:
    """A CNN of the local zoo trained briefly on the embedded digits (saved as a run would save it)."""
    spec = TrainSpec.cnn(mnist_source="embedded", max_train_samples=500, num_epochs=1, batch_size=50)
    result = fit(spec, RecordingReporter(), lambda: False)
    scores = evaluate_model(result.model, load_training_data(spec)).scores()
    ModelStore().save(result.model, "base", config=ModelConfig("cnn", spec=spec), metrics=scores)
    return "base"


def test_the_training_data_mixes_the_personal_training_part_into_mnist_and_keeps_its_test_part(base_model):
    personal_set()
    spec = TrainSpec.cnn(mnist_source="embedded", max_train_samples=900, base_model="base", digits_set="mine")
    data = load_training_data(spec)
    lineage = data.lineage
    assert (lineage.personal_train_digits, lineage.personal_test_digits) == (16, 4)
    assert lineage.personal_copies == 15  # ceil(0.2 * 900 / (0.8 * 16)): about a fifth of the mix
    assert (
        lineage.personal_counts[4] == lineage.personal_counts[7] == 10 and lineage.mnist_train_digits == 900
    )
    assert data.x_train.shape == (900 + 16 * 15, 28, 28, 1) and data.y_train.shape == (1140, 10)
    personal_rows = np.flatnonzero(data.x_train.reshape(1140, -1).max(axis=1) == 1.0)
    assert len(personal_rows) >= 16 * 15 and personal_rows.min() < 500  # shuffled in, not all at the end
    assert data.personal.x_test.shape == (4, 28, 28) and sorted(data.personal.y_test.tolist()) == [4, 4, 7, 7]
    assert (
        len(data.x_test) == 1000
        and "with 16 personal digits of the set 'mine' (15 copies each)" in data.source
    )


def test_a_fine_tuning_run_learns_my_digits_keeps_mnist_and_records_its_lineage(base_model):
    personal_set()
    spec = TrainSpec.cnn(
        mnist_source="embedded",
        max_train_samples=900,
        num_epochs=4,
        batch_size=50,
        base_model="base",
        digits_set="mine",
        model_name="mine-cnn",
    )
    run = wait(start(spec, by=LOCAL_USER, executor=open_executor()), timeout=300)
    assert run.status == "completed", run.message
    report = run.final_metrics.fine_tuning
    before, after = report.before, report.after
    # The held-out vertical bars fight MNIST's 1s, so not every one need be a 7 after four short epochs.
    assert after.personal_accuracy - before.personal_accuracy >= 0.5
    assert after.personal_test_digits == 4
    assert after.mnist_accuracy >= before.mnist_accuracy - 0.05  # MNIST is not forgotten
    assert run.final_metrics.accuracy == pytest.approx(after.mnist_accuracy)
    entry = ModelStore().entry(run.model_name)
    assert entry.metrics == run.final_metrics
    assert entry.name == "mine-cnn" and entry.config.lineage == Lineage(
        base_model="base",
        digits_set="mine",
        personal_train_digits=16,
        personal_test_digits=4,
        personal_counts=(0, 0, 0, 0, 10, 0, 0, 10, 0, 0),
        personal_copies=15,
        mnist_train_digits=900,
    )
    # config.json keeps the lineage in the layout older versions wrote and read
    assert json.loads(ModelStore().storage.read_bytes(entry.name, "config.json"))["lineage"] == {
        "base_model": "base",
        "digits_set": "mine",
        "personal_train_digits": 16,
        "personal_test_digits": 4,
        "personal_counts": [0, 0, 0, 0, 10, 0, 0, 10, 0, 0],
        "personal_copies": 15,
        "mnist_train_digits": 900,
    }
    new_model = ModelStore().load("mine-cnn").model
    assert np.asarray(new_model(bars(3, True, 9)[..., None])).argmax(axis=1).tolist() == [4, 4, 4]
    card = build_model_card(entry, "alice/mine-cnn", history=ModelStore().history("mine-cnn")).text
    assert "## Fine-tuning" in card and "Fine-tuned from `base` on 20 personal digits (set `mine`" in card
    personal = f"{before.personal_accuracy:.4f} | {after.personal_accuracy:.4f}"
    assert f"| held-out personal digits | {personal} |" in card


def test_fine_tuning_reports_each_of_my_digits_and_warns_of_one_the_base_read_right_and_it_now_misreads(
    base_model,
):
    """A flat bar the base model reads as a 4, labelled 4, then ten of the same bar labelled 7: the
    fine-tuned model reads the first as a 7 too. The run's record and the CLI say which digit (as the
    Draw page does); the numbers are the two models' own, on the set's digits and the MNIST test digits."""
    base = ModelStore().load("base").model
    candidates = bars(20, True, 5)
    read_as = predict_in_batches(base, candidates[..., None]).argmax(axis=1).tolist()
    assert 4 in read_as, f"the base model reads no bar as a 4: {read_as}"
    first = candidates[read_as.index(4)]
    store = DigitStore()
    store.add("mine", 4, (first * 255).astype(np.uint8), first, by=LOCAL_USER)
    for _ in range(10):
        store.add("mine", 7, (first * 255).astype(np.uint8), first, by=LOCAL_USER)
    options = ["--data", "embedded", "--max-train-samples", "900", "--epochs", "3", "--batch-size", "50"]
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "cnn", "--base", "base", "--digits", "mine", *options],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (run,) = open_run_store().list_runs()
    report = run.final_metrics.fine_tuning
    tuned = ModelStore().load(run.model_name).model
    digits = np.stack([digit.digit for digit in store.digits("mine", by=LOCAL_USER)])[..., None]
    before, after = predict_in_batches(base, digits), predict_in_batches(tuned, digits)
    assert [reading.label for reading in report.digits] == [4] + [7] * 10
    assert [reading.number for reading in report.digits if reading.held_out] == [3, 8]  # the 2nd and 7th 7
    assert [reading.before for reading in report.digits] == before.argmax(axis=1).tolist()
    assert [reading.after for reading in report.digits] == after.argmax(axis=1).tolist()
    assert report.digits[0].after_probability == pytest.approx(after[0].max(), abs=1e-6)
    assert report.digits[0].regressed and (report.digits[0].before, report.digits[0].after) == (4, 7)

    mnist = load_training_data(TrainSpec.cnn(mnist_source="embedded"))
    right_before = predict_in_batches(base, mnist.x_test).argmax(axis=1) == mnist.y_test
    now_read = predict_in_batches(tuned, mnist.x_test).argmax(axis=1)
    lost = right_before & (now_read != mnist.y_test)
    assert report.mnist_read_right_before == right_before.sum()
    assert sum(misreading.count for misreading in report.mnist_regressions) == lost.sum()
    assert report.mnist_fixed == (~right_before & (now_read == mnist.y_test)).sum()

    warning = report.warning()
    assert warning.startswith(
        "The fine-tuned model misreads 1 of your digits that the base model read right: #1 (a 4"
    )
    assert f"now read as 7 at {after[0].max():.0%}" in warning
    assert run.final_metrics.to_dict()["fine_tuning"]["warning"] == warning  # in the record as plain text
    assert ("warning", warning) in [(event.kind, event.message) for event in open_run_store().events(run.id)]
    assert f"warning: {warning}" in result.stderr.splitlines()  # one line from the CLI
    mine_before, mine_after = (
        sum(getattr(reading, model) == reading.label for reading in report.digits)
        for model in ("before", "after")
    )
    said = (
        f"your digits read right: {mine_before} of 11 by the base model, {mine_after} of 11 by the fine-tuned"
    )
    assert said in result.stdout


def test_a_fine_tuning_report_without_a_regression_warns_of_nothing_and_reads_old_records():
    before, after = FineTuningScores(0.9), FineTuningScores(0.92)
    fixed = DigitReading(
        1, "a" * 32, 3, True, before=5, before_probability=0.7, after=3, after_probability=0.9
    )
    report = FineTuningReport(before, after, (fixed,), mnist_read_right_before=900, mnist_fixed=20)
    assert fixed.fixed and not fixed.regressed and report.warning() is None
    # MNIST digits changing hands without a net loss (2 newly misread, 3 newly read right) are no warning
    swapped = Misreading(label=0, read_as=6, count=2)
    assert dataclasses.replace(report, mnist_regressions=(swapped,), mnist_fixed=3).warning() is None
    net_loss = dataclasses.replace(report, mnist_regressions=(swapped,), mnist_fixed=1).warning()
    assert (
        "misreads 2 of the 900 MNIST test digits that the base model read right (0 read as 6 ×2)" in net_loss
    )
    assert "reads right only 1 that the base model misread" in net_loss
    assert FineTuningReport.from_dict(report.to_dict()) == report
    old = {"before": {"mnist_accuracy": 0.9}, "after": {"mnist_accuracy": 0.91}}  # a run made before readings
    assert FineTuningReport.from_dict(old) == FineTuningReport(before, FineTuningScores(0.91))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([], "the digit set 'mine' holds no digits"),
        ([5] * 8, "holds only 5s (8); fine-tuning needs at least two different digits"),
        ([1, 2], "holds one drawing of each digit (1, 2), so none is left to test on"),
    ],
)
def test_a_set_unfit_for_fine_tuning_starts_no_run_and_loses_nothing(base_model, labels, message):
    store = DigitStore()
    for label in labels:
        store.add("mine", label, np.zeros((280, 280, 4), np.uint8), bars(1, True, label)[0], by=LOCAL_USER)
    spec = TrainSpec.cnn(mnist_source="embedded", base_model="base", digits_set="mine")
    with pytest.raises(DigitSetError) as raised:
        start(spec, by=LOCAL_USER, executor=open_executor())
    assert message in str(raised.value).replace("(", "(").replace(")", ")")
    assert open_run_store().list_runs() == []
    assert store.counts("mine", by=LOCAL_USER) == np.bincount(labels, minlength=10).tolist()
    assert [entry.name for entry in ModelStore().entries()] == ["base"]


def test_a_fine_tuning_spec_needs_an_existing_cnn_and_a_base_for_a_set():
    with pytest.raises(ZooError, match="fine-tuning on a digit set continues a trained CNN"):
        TrainSpec.cnn(digits_set="mine")
    with pytest.raises(ZooError, match="only a CNN can be fine-tuned"):
        TrainSpec.binary(base_model="base")
    with pytest.raises(ModelStoreError, match="no model named 'nosuch'"):
        start(
            TrainSpec.cnn(mnist_source="embedded", base_model="nosuch", digits_set="mine"),
            by=LOCAL_USER,
            executor=open_executor(),
        )
    assert open_run_store().list_runs() == []


def test_personal_digits_go_to_the_hub_only_when_asked(server, base_model):
    personal_set()
    spec = TrainSpec.cnn(
        mnist_source="embedded", max_train_samples=100, num_epochs=1, base_model="base", digits_set="mine"
    )
    run = wait(start(spec, by=LOCAL_USER, executor=open_executor()), timeout=300)
    hub.push(run.model_name, "alice/mine")
    assert "digits.npz" not in server.files("alice/mine")
    hub.push(run.model_name, "alice/mine", include_digits=True)
    pushed = np.load(io.BytesIO(server.files("alice/mine")["digits.npz"]))
    assert sorted(pushed["labels"].tolist()) == [4] * 10 + [7] * 10
    zoo_json = json.loads(server.files("alice/mine")["zoo.json"])
    assert zoo_json["lineage"]["digits_set"] == "mine"
    card = ModelCard(server.files("alice/mine")["README.md"].decode())
    assert "on 20 personal digits" in card.text
    with pytest.raises(hub.HubError, match="was not fine-tuned on personal digits"):
        hub.push("base", "alice/base", include_digits=True)

    # The Hub page: the digits go along only when its box is ticked.
    page = AppTest.from_file(str(REPOSITORY / "pages" / "hub.py"), default_timeout=60)
    page.run()
    page.selectbox(key="hub-push-model").set_value(run.model_name)
    page.text_input(key="hub-push-repo").input("alice/from-the-page")
    page.button(key="hub-push-submit").click().run()
    assert page.success and "digits.npz" not in server.files("alice/from-the-page")
    page.checkbox(key="hub-push-digits").check()
    page.button(key="hub-push-submit").click().run()
    assert not page.error and "digits.npz" in server.files("alice/from-the-page")
