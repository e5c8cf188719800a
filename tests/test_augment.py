"""Augmentation: each change keeps the digit's shape and range, is reproducible from a seed, and changes
the digit the way its name says; an augmented CNN run trains on fresh changes every epoch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_training import RecordingReporter

from zoo.core.errors import ZooError
from zoo.core.spec import TrainSpec
from zoo.ml import augment
from zoo.ml.data import load_embedded_mnist
from zoo.ml.evaluation import evaluate_model
from zoo.ml.inference import centre_of_mass
from zoo.ml.training import fit, load_training_data


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """32 real MNIST digits (the embedded subset), (32, 28, 28) in [0, 1]."""
    return load_embedded_mnist().x_train[:32].astype(np.float32) / 255.0


def bar() -> np.ndarray:
    """One vertical bar, 2 pixels wide, from row 4 to row 23 through the image's centre columns."""
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 4:24, 13:15] = 1.0
    return image


def ink_rows_and_columns(image: np.ndarray, level: float = 0.5) -> np.ndarray:
    return np.argwhere(image > level)


CHANGES = {
    "rotate": lambda images: augment.rotate(images, 10.0),
    "scale": lambda images: augment.scale(images, 0.9),
    "shift": lambda images: augment.shift(images, 1.5, -2.0),
    "shear": lambda images: augment.shear(images, 0.3),
    "thicken": augment.thicken,
    "thin": augment.thin,
    "pixelate": lambda images: augment.pixelate(images, 5, 2),
    "augment": lambda images: augment.augment(images, np.random.default_rng(0)),
}


@pytest.mark.parametrize("name", CHANGES)
def test_each_change_keeps_the_shape_and_the_range_and_changes_the_digit(name, digits):
    changed = CHANGES[name](digits)
    assert changed.shape == digits.shape and changed.dtype == np.float32
    assert changed.min() >= 0.0 and changed.max() <= 1.0
    assert np.abs(changed - digits).mean() > 0.01  # not the digit it was
    with_channel = CHANGES[name](digits[..., np.newaxis])  # the CNN's (N, 28, 28, 1) is taken too
    np.testing.assert_array_equal(with_channel, changed)


def test_the_random_changes_are_reproducible_from_a_seed_and_differ_between_seeds(digits):
    first = augment.augment(digits, np.random.default_rng(7))
    again = augment.augment(digits, np.random.default_rng(7))
    other = augment.augment(digits, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.01


def test_rotation_turns_the_ink_counter_clockwise_about_the_centre():
    turned = augment.rotate(bar(), 30.0)[0]
    ink = ink_rows_and_columns(turned)
    top, bottom = ink[ink[:, 0].argmin()], ink[ink[:, 0].argmax()]
    assert top[1] < 13 and bottom[1] > 14  # the top leans left, the bottom right: counter-clockwise
    # The centre of mass stays at the centre (the bar is symmetric about it), within a tenth of a pixel.
    assert np.allclose(centre_of_mass(turned), (13.5, 13.5), atol=0.1)
    assert abs(turned.sum() - bar().sum()) < 0.05 * bar().sum()  # ink is moved, not made or lost


def test_a_digit_rotated_off_centre_moves_its_centre_of_mass_along_the_circle():
    dot = np.zeros((1, 28, 28), np.float32)
    dot[0, 5:8, 12:16] = 1.0  # above the centre: a quarter turn counter-clockwise moves it to the left
    row, column = centre_of_mass(augment.rotate(dot, 90.0)[0])
    assert abs(row - 13.5) < 0.2 and column < 8


def test_shift_moves_the_centre_of_mass_by_the_pixels_asked(digits):
    before = np.array([centre_of_mass(image) for image in digits[:4]])
    after = np.array([centre_of_mass(image) for image in augment.shift(digits[:4], 2.0, -3.0)])
    np.testing.assert_allclose(after - before, np.tile([2.0, -3.0], (4, 1)), atol=0.05)


def test_scale_changes_the_digits_height_by_its_factor():
    for factor in (0.8, 1.15):
        ink = ink_rows_and_columns(augment.scale(bar(), factor)[0], level=0.25)
        height = ink[:, 0].max() - ink[:, 0].min() + 1
        assert abs(height - 20 * factor) <= 1.5


def test_shear_leans_the_top_to_the_right_for_a_positive_slant():
    ink = ink_rows_and_columns(augment.shear(bar(), 0.3)[0])
    top, bottom = ink[ink[:, 0] == ink[:, 0].min()], ink[ink[:, 0] == ink[:, 0].max()]
    assert top[:, 1].mean() - bottom[:, 1].mean() == pytest.approx(0.3 * 19, abs=1.5)


def test_thickening_adds_ink_and_thinning_removes_it_keeping_the_strongest(digits):
    thick, thin = augment.thicken(digits), augment.thin(digits)
    for original, thicker, thinner in zip(digits, thick, thin, strict=True):
        assert thicker.sum() > 1.3 * original.sum() and thinner.sum() < 0.9 * original.sum()
        assert thinner.max() == pytest.approx(original.max(), abs=0.01)  # the core stays at full ink
    assert np.all(thick >= digits)  # nothing is taken away by thickening
    assert (augment.thicken(bar())[0] > 0.5).sum() == 20 * 4 + 2 * 2  # one pixel each side, and the ends


def test_pixelating_draws_the_digit_in_flat_squares_of_the_mean_ink_under_them(digits):
    # Squares of 2 pixels on the grid at 0: every 2x2 block of pixels is one grey, the digit's mean there.
    squares = augment.pixelate(digits, 4, 0).reshape(-1, 14, 2, 14, 2)
    assert np.ptp(squares, axis=(2, 4)).max() < 1e-6
    means = digits.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(
        squares[:, :, 0, :, 0], means / means.max(axis=(1, 2), keepdims=True), atol=1e-6
    )
    # Squares of 3 pixels over a bar 2 pixels wide: on the grid at 0 one square holds it (3 columns); a
    # grid moved by 1 or 3 half pixels splits it between two squares (7 columns, the half-covered edge
    # columns included), 1 pixel further left for 3 than for 1.
    columns = [np.flatnonzero(augment.pixelate(bar(), 6, offset)[0].max(axis=0) > 0) for offset in (0, 1, 3)]
    assert [found.tolist() for found in columns] == [[12, 13, 14], list(range(11, 18)), list(range(10, 17))]
    # In ``augment``, a share pixelate_probability (10% by default) of the digits is pixelated.
    still = augment.Augmentation(
        rotation_degrees=0,
        scale_range=(1, 1),
        shift_pixels=0,
        shear=0,
        thicken_probability=0,
        thin_probability=0,
        pixelate_probability=0,
    )
    many = np.tile(digits, (10, 1, 1))
    for probability, low, high in ((0.0, 0.0, 0.0), (0.1, 0.05, 0.15), (1.0, 1.0, 1.0)):
        settings = dataclasses.replace(still, pixelate_probability=probability)
        changed = np.abs(augment.augment(many, np.random.default_rng(0), settings) - many).max(axis=(1, 2))
        assert low <= (changed > 1e-6).mean() <= high, probability


def test_bad_digits_or_settings_are_refused_with_the_shape_expected():
    with pytest.raises(ZooError, match=r"expected \(N, 28, 28\)"):
        augment.rotate(np.zeros((28, 28)), 5)
    with pytest.raises(ZooError, match=r"choose a value in \[0, 1\)"):
        augment.thin(bar(), 1.0)
    with pytest.raises(ZooError, match=r"pixelate block 7, offset 0: choose a block of \(4, 5, 6\)"):
        augment.pixelate(bar(), 7)
    with pytest.raises(ZooError, match="0 <= offset < block"):
        augment.pixelate(bar(), 4, 4)


def test_the_batches_are_augmented_afresh_each_epoch_and_reproducible(digits):
    labels = np.arange(len(digits))
    batches = augment.augmented_batches(digits[..., np.newaxis], labels, batch_size=10, seed=3)
    assert len(batches) == 4
    first_images, first_labels = batches[0]
    assert first_images.shape == (10, 28, 28, 1) and len(first_labels) == 10
    np.testing.assert_array_equal(batches[0][0], first_images)  # the same epoch: the same batch
    seen = np.concatenate([batches[index][1] for index in range(len(batches))])
    assert sorted(seen.tolist()) == labels.tolist()  # every digit once per epoch
    batches.on_epoch_end()
    _, second_labels = batches[0]
    assert not np.array_equal(second_labels, first_labels)  # a new order
    again = augment.augmented_batches(digits[..., np.newaxis], labels, batch_size=10, seed=3)
    np.testing.assert_array_equal(again[0][0], first_images)


def test_an_augmented_cnn_run_trains_on_changed_digits_and_validates_on_plain_ones():
    spec = TrainSpec.cnn(
        mnist_source="embedded", max_train_samples=300, num_epochs=2, batch_size=50, augment=True
    )
    reporter = RecordingReporter()
    result = fit(spec, reporter, lambda: False)
    assert result.status == "completed"
    assert int(result.model.optimizer.iterations) == 12  # 270 training digits (30 held out): 6 batches x 2
    assert [step for step, *_ in reporter.epochs] == [6, 12]
    assert {"val_loss", "val_accuracy"} <= set(result.history[-1])
    assert evaluate_model(result.model, load_training_data(spec)).scores().num_examples == 1000


def test_only_the_cnn_can_be_augmented():
    with pytest.raises(ZooError, match="only the CNN's digits are augmented"):
        TrainSpec.binary(augment=True)


def test_the_examples_show_each_digit_as_it_is_and_changed():
    mnist = load_embedded_mnist()
    grid = augment.examples(mnist.x_train, mnist.y_train, variants=4, seed=1)
    assert grid.shape == (10, 5, 28, 28) and grid.min() >= 0 and grid.max() <= 1
    for digit, row in enumerate(grid):
        first = int(np.argmax(mnist.y_train == digit))
        np.testing.assert_allclose(row[0], mnist.x_train[first] / 255.0, atol=1e-6)
        assert all(np.abs(variant - row[0]).mean() > 0.005 for variant in row[1:])
    with pytest.raises(ZooError, match=r"\[9\] are missing"):
        augment.examples(mnist.x_train[mnist.y_train < 9], mnist.y_train[mnist.y_train < 9])
