"""Printed digits (zoo/ml/printed.py): the digits 0-9 typed in the machine's fonts, prepared as the Draw page
prepares a drawing, mixed into a --printed run's training digits; no fonts is a clear refusal, a font
without digits is passed over.

The fonts are the system's (Debian's chromium, which the README's set-up line installs, brings
fonts-liberation, and fontconfig brings fonts-dejavu-core)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from zoo.core.errors import DataError, ZooError
from zoo.core.hosting import LOCAL_USER
from zoo.core.spec import TrainSpec
from zoo.execution.admission import start
from zoo.execution.executor import open_executor, wait
from zoo.ml import printed
from zoo.ml.data import load_embedded_mnist
from zoo.ml.inference import centre_of_mass
from zoo.ml.training import TrainingData, scale_digits
from zoo.runs.store import open_run_store


@pytest.fixture(scope="module")
def a_font():
    fonts = printed.digit_fonts()
    if not fonts:
        pytest.fail(f"no fonts under {printed.FONT_FOLDERS}: install chromium (or fonts-dejavu-core) first.")
    return fonts[0]


def test_fonts_are_found_in_nested_folders_by_their_suffix(tmp_path, a_font):
    nested = tmp_path / "truetype" / "family"
    nested.mkdir(parents=True)
    shutil.copy(a_font, nested / "Some.ttf")
    shutil.copy(a_font, tmp_path / "Other.OTF")
    (tmp_path / "notes.txt").write_text("not a font")
    assert printed.font_files((tmp_path, tmp_path / "missing")) == [
        tmp_path / "Other.OTF",
        nested / "Some.ttf",
    ]


def test_every_digit_is_typed_at_every_weight_and_size_and_placed_as_mnist_places_digits(a_font):
    digits, labels = printed.printed_digits([a_font])
    per_digit = len(printed.STROKE_WEIGHTS) * len(printed.FONT_SIZES)
    assert digits.shape == (10 * per_digit, 28, 28) and digits.dtype == np.float32
    assert np.bincount(labels).tolist() == [per_digit] * 10
    assert digits.min() >= 0 and digits.max() == pytest.approx(1.0)
    for digit in digits:
        rows, columns = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
        assert max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1 <= 21  # the 20-pixel box
        assert np.allclose(centre_of_mass(digit), (14, 14), atol=1.0)
    regular, marker = digits[labels == 1][[0, -1]]  # weight 0 first, the heaviest outline last
    assert marker.sum() > regular.sum()  # a heavier stroke is more ink


PER_FONT = 10 * len(printed.STROKE_WEIGHTS) * len(printed.FONT_SIZES)  # digits typed in one font


@pytest.mark.parametrize(
    ("fonts", "mnist_digits", "added", "source"),
    [  # PRINTED_SHARE of 10%: 1,000 MNIST digits want 112 printed ones, 300 want 34
        (1, 1000, 2 * PER_FONT, f"with {PER_FONT} printed digits from 1 font files (2 copies each)"),
        (
            3,
            300,
            34,
            f"with 34 printed digits (drawn at random from {3 * PER_FONT}) from 3 font files (1 copy each)",
        ),
    ],
)
def test_a_printed_run_mixes_a_tenth_of_typed_digits_into_the_training_digits(
    fonts, mnist_digits, added, source, a_font, tmp_path, monkeypatch
):
    for index in range(fonts):
        shutil.copy(a_font, tmp_path / f"Font{index}.ttf")
    monkeypatch.setattr(printed, "FONT_FOLDERS", (tmp_path,))
    mnist = load_embedded_mnist()
    data = TrainingData(
        scale_digits(mnist.x_train[:mnist_digits]),
        np.eye(10, dtype=np.float32)[mnist.y_train[:mnist_digits]],
        scale_digits(mnist.x_test),
        mnist.y_test,
        "embedded",
    )
    mixed = printed.with_printed_digits(TrainSpec.cnn(printed=True), data)
    assert len(mixed.x_train) == mnist_digits + added and mixed.y_train.sum() == len(mixed.x_train)
    assert mixed.source == f"embedded; {source}"
    mnist_rows = {row.tobytes() for row in data.x_train}
    moved = [index for index, row in enumerate(mixed.x_train) if row.tobytes() not in mnist_rows]
    assert min(moved) < len(mixed.x_train) // 2  # shuffled in, not appended
    np.testing.assert_array_equal(mixed.x_test, data.x_test)
    # The digits drawn are the seed's: the same again for the same seed, others for another seed.
    again = printed.with_printed_digits(TrainSpec.cnn(printed=True), data)
    other = printed.with_printed_digits(TrainSpec.cnn(printed=True, seed=1), data)
    np.testing.assert_array_equal(again.x_train, mixed.x_train)
    drawn = {row.tobytes() for row in mixed.x_train} != {row.tobytes() for row in other.x_train}
    assert drawn == (added < fonts * PER_FONT)


def test_a_printed_cnn_run_trains_on_them_and_says_so():
    run = wait(
        start(
            TrainSpec.cnn(mnist_source="embedded", max_train_samples=300, num_epochs=1, printed=True),
            by=LOCAL_USER,
            executor=open_executor(),
        ),
        timeout=300,
    )
    assert run.status == "completed", run.message
    assert run.spec.printed and re.search(r"with [\d,]+ printed digits .*from \d+ font", run.data_source)


def test_fonts_without_the_digits_are_not_typed(tmp_path, a_font, monkeypatch):
    from fontTools import subset

    letters_only = tmp_path / "LettersOnly.ttf"  # a real font that lacks the digits, as a maths font does
    subset.main([str(a_font), "--text=ABCabc", f"--output-file={letters_only}"])
    (tmp_path / "Broken.ttf").write_bytes(b"not a font")
    shutil.copy(a_font, tmp_path / "Whole.ttf")
    assert printed.draws_digits(tmp_path / "Whole.ttf")
    assert not printed.draws_digits(letters_only) and not printed.draws_digits(tmp_path / "Broken.ttf")
    monkeypatch.setattr(printed, "FONT_FOLDERS", (tmp_path,))
    assert printed.check_fonts() == [tmp_path / "Whole.ttf"]


def test_no_fonts_or_a_printed_binary_run_is_refused_before_a_run_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(printed, "FONT_FOLDERS", (tmp_path,))
    with pytest.raises(DataError, match="need TrueType fonts that draw the digits 0-9 and none were found"):
        start(TrainSpec.cnn(mnist_source="embedded", printed=True), by=LOCAL_USER, executor=open_executor())
    with pytest.raises(ZooError, match="printed digits are for the CNN"):
        TrainSpec.binary(printed=True)
    assert open_run_store().list_runs() == []
