"""Augmentation: MNIST digits changed the way people's drawings differ from MNIST's writers.

People draw slanted, rotated, bigger or smaller, off-centre, and with a brush thicker or thinner
than MNIST's pen; a small picture blown up to the canvas arrives in square blocks. Each change
here is one function over a batch of digits (N, 28, 28) in [0, 1], vectorised over the batch with
plain numpy/scipy (a batch of 128 takes a few milliseconds on a CPU, and it works the same under
every Keras backend); ``augment`` draws random amounts of all of them. ``augmented_batches`` feeds
``model.fit`` with freshly augmented batches every epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from zoo.core.errors import ZooError

if TYPE_CHECKING:
    import keras

SIDE = 28
PIXEL_BLOCKS = (4, 5, 6)  # sides of ``pixelate``'s squares in half pixels: 2, 2.5 and 3 pixels


@dataclass(frozen=True)
class Augmentation:
    """How far each random change may go (a change of 0 leaves the digit as it is).

    The defaults keep a digit inside MNIST's 20x20 box give or take a pixel or two, as the
    digits people draw are after the Draw page's preprocessing.
    """

    rotation_degrees: float = 10.0  # uniform in [-r, r]
    scale_range: tuple[float, float] = (0.85, 1.1)
    shift_pixels: float = 2.0  # uniform in [-s, s], each axis
    shear: float = 0.3  # slant: horizontal shift per row, uniform in [-s, s] (0.3 is about 17 degrees)
    thicken_probability: float = 0.25
    thin_probability: float = 0.25
    thin_threshold: float = 0.45  # thinning removes the ink below this level (the stroke's soft edge)
    pixelate_probability: float = 0.1  # redrawn in square blocks, as a tiny image blown up looks


def _as_batch(images: np.ndarray) -> np.ndarray:
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1:] != (SIDE, SIDE):
        raise ZooError(
            f"digits of shape {np.shape(images)} were given; expected (N, 28, 28) or (N, 28, 28, 1)."
        )
    return array


def _per_image(value: float | np.ndarray, count: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (count,))


def affine(images: np.ndarray, matrices: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Move every digit's ink by its own 2x2 ``matrices[i]`` about the image centre, then by ``shifts[i]``
    pixels (rows, columns); bilinear, ink moved outside the image is lost, new area is empty.

    Args:
        images: (N, 28, 28) or (N, 28, 28, 1) in [0, 1].
        matrices: (N, 2, 2) in (row, column) coordinates: output = matrix @ (input - centre) + centre + shift.
        shifts: (N, 2).

    Returns:
        (N, 28, 28) float32 in [0, 1].
    """
    from scipy.ndimage import map_coordinates

    batch = _as_batch(images)
    count = len(batch)
    inverse = np.linalg.inv(np.asarray(matrices, dtype=np.float64).reshape(count, 2, 2))
    centre = (SIDE - 1) / 2
    rows, columns = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    output = np.stack([rows, columns]).reshape(2, -1).astype(np.float64) - centre  # (2, 784)
    offset = output[np.newaxis] - np.asarray(shifts, dtype=np.float64).reshape(count, 2, 1)
    source = np.einsum("nij,njk->nik", inverse, offset) + centre  # where each output pixel comes from
    index = np.broadcast_to(np.arange(count, dtype=np.float64)[:, np.newaxis], (count, SIDE * SIDE))
    coordinates = np.stack([index, source[:, 0], source[:, 1]]).reshape(3, count, SIDE, SIDE)
    moved = map_coordinates(batch, coordinates, order=1, mode="constant", cval=0.0)
    return np.clip(moved, 0.0, 1.0).astype(np.float32)


def _rotations(degrees: np.ndarray) -> np.ndarray:
    radians = np.deg2rad(degrees)
    cos, sin = np.cos(radians), np.sin(radians)
    # Rows grow downwards, so a counter-clockwise turn on screen is this matrix in (row, column).
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)


def _slants(slants: np.ndarray) -> np.ndarray:
    matrices = np.broadcast_to(np.eye(2), (len(slants), 2, 2)).copy()
    matrices[:, 1, 0] = -slants  # column -= slant * row: rows above the centre (negative) go right
    return matrices


def rotate(images: np.ndarray, degrees: float | np.ndarray) -> np.ndarray:
    """Rotate each digit about the image centre, counter-clockwise as seen on screen."""
    count = len(_as_batch(images))
    return affine(images, _rotations(_per_image(degrees, count)), np.zeros((count, 2)))


def scale(images: np.ndarray, factors: float | np.ndarray) -> np.ndarray:
    """Grow (>1) or shrink (<1) each digit about the image centre."""
    count = len(_as_batch(images))
    matrices = _per_image(factors, count)[:, np.newaxis, np.newaxis] * np.eye(2)
    return affine(images, matrices, np.zeros((count, 2)))


def shift(images: np.ndarray, rows: float | np.ndarray, columns: float | np.ndarray) -> np.ndarray:
    """Move each digit down by ``rows`` and right by ``columns`` pixels (fractions allowed)."""
    count = len(_as_batch(images))
    shifts = np.stack([_per_image(rows, count), _per_image(columns, count)], -1)
    return affine(images, np.broadcast_to(np.eye(2), (count, 2, 2)), shifts)


def shear(images: np.ndarray, slant: float | np.ndarray) -> np.ndarray:
    """Slant each digit: a positive ``slant`` leans its top to the right (handwriting's forward slant),
    moving each row right by ``slant`` pixels per row above the centre."""
    count = len(_as_batch(images))
    return affine(images, _slants(_per_image(slant, count)), np.zeros((count, 2)))


def thicken(images: np.ndarray) -> np.ndarray:
    """Strokes about one pixel wider: each pixel takes the most ink of its 4-neighbourhood."""
    from scipy.ndimage import grey_dilation

    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)[np.newaxis]
    return grey_dilation(_as_batch(images), footprint=cross).astype(np.float32)


def thin(images: np.ndarray, threshold: float = Augmentation.thin_threshold) -> np.ndarray:
    """Strokes thinner: the soft edge (ink below ``threshold``) is removed and the rest stretched
    back to full strength, so the peak ink stays and the stroke's width shrinks."""
    if not 0 <= threshold < 1:
        raise ZooError(f"thin threshold {threshold!r}: choose a value in [0, 1).")
    batch = _as_batch(images)
    return np.clip((batch - threshold) / (1 - threshold), 0.0, 1.0).astype(np.float32)


def pixelate(images: np.ndarray, block: int, offset: int = 0) -> np.ndarray:
    """Each digit as a tiny image blown up in square blocks looks after the Draw page's preprocessing
    (scikit-learn's 8x8 digits resized to the canvas with nearest neighbour: squares of about 2.5
    pixels): averaged over squares of ``block`` x ``block`` half pixels, the grid moved by ``offset``
    half pixels, each square one flat grey, back at 28x28 (a square edge between two pixels is
    shared by both), the strongest ink back to full.
    """
    if block not in PIXEL_BLOCKS or not 0 <= offset < block:
        raise ZooError(
            f"pixelate block {block!r}, offset {offset!r}: choose a block of {PIXEL_BLOCKS} "
            "and 0 <= offset < block."
        )
    batch = _as_batch(images)
    count, fine = len(batch), 2 * SIDE
    side = -(-(fine + offset) // block) * block  # the half-pixel grid, padded to whole squares
    padded = np.zeros((count, side, side), np.float32)
    padded[:, offset : offset + fine, offset : offset + fine] = batch.repeat(2, axis=1).repeat(2, axis=2)
    squares = padded.reshape(count, side // block, block, side // block, block).mean(axis=(2, 4))
    blown_up = squares.repeat(block, axis=1).repeat(block, axis=2)[
        :, offset : offset + fine, offset : offset + fine
    ]
    coarse = blown_up.reshape(count, SIDE, 2, SIDE, 2).mean(axis=(2, 4))
    peaks = coarse.max(axis=(1, 2), keepdims=True)
    return np.clip(coarse / np.where(peaks > 0, peaks, 1.0), 0.0, 1.0).astype(np.float32)


def augment(
    images: np.ndarray, rng: np.random.Generator, settings: Augmentation = Augmentation()
) -> np.ndarray:
    """Each digit rotated, scaled, shifted and slanted by random amounts within ``settings`` (one affine
    move, so the digit is resampled once), then some thickened and some thinned, and some pixelated
    (in blocks of 2, 2.5 or 3 pixels, the grid placed at random).

    Returns (N, 28, 28) float32 in [0, 1]; the same ``rng`` state gives the same result.
    """
    batch = _as_batch(images)
    count = len(batch)
    rotations = _rotations(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees, count))
    factors = rng.uniform(*settings.scale_range, count)
    slants = _slants(rng.uniform(-settings.shear, settings.shear, count))
    shifts = rng.uniform(-settings.shift_pixels, settings.shift_pixels, (count, 2))
    matrices = factors[:, np.newaxis, np.newaxis] * rotations @ slants
    moved = affine(batch, matrices, shifts)
    stroke = rng.random(count)
    thick = stroke < settings.thicken_probability
    thinned = (stroke >= settings.thicken_probability) & (
        stroke < settings.thicken_probability + settings.thin_probability
    )
    if thick.any():
        moved[thick] = thicken(moved[thick])
    if thinned.any():
        moved[thinned] = thin(moved[thinned], settings.thin_threshold)
    pixelated = np.flatnonzero(rng.random(count) < settings.pixelate_probability)
    for block, chosen in zip(PIXEL_BLOCKS, np.array_split(pixelated, len(PIXEL_BLOCKS)), strict=True):
        if len(chosen):
            moved[chosen] = pixelate(moved[chosen], block, int(rng.integers(block)))
    return moved


def examples(images: np.ndarray, labels: np.ndarray, variants: int = 5, seed: int = 0) -> np.ndarray:
    """One digit of each class as it is, followed by ``variants`` random augmentations of it: what an
    augmented run trains on, for people to see.

    Args:
        images: (N, 28, 28) uint8 or float digits holding every class 0-9; labels: (N,) digits.

    Returns:
        (10, 1 + variants, 28, 28) float32 in [0, 1]; row ``d`` is digit ``d``.
    """
    labels = np.asarray(labels)
    missing = sorted(set(range(10)) - set(labels.tolist()))
    if missing:
        raise ZooError(f"examples need a digit of every class; {missing} are missing.")
    batch = _as_batch(np.asarray(images) / (255.0 if np.asarray(images).dtype == np.uint8 else 1.0))
    originals = batch[[int(np.argmax(labels == digit)) for digit in range(10)]]
    changed = augment(np.repeat(originals, variants, axis=0), np.random.default_rng(seed))
    return np.concatenate([originals[:, np.newaxis], changed.reshape(10, variants, SIDE, SIDE)], axis=1)


def augmented_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    settings: Augmentation = Augmentation(),
) -> keras.utils.PyDataset:
    """A Keras dataset of shuffled batches, freshly augmented each epoch (reproducible from ``seed``).

    Args:
        images: (N, 28, 28, 1) float32 in [0, 1].
        labels: (N, ...) targets, batched alongside.

    Returns:
        A ``keras.utils.PyDataset`` yielding (images (B, 28, 28, 1), labels) for ``model.fit``.
    """
    import keras

    class AugmentedDigits(keras.utils.PyDataset):
        """Epoch ``e`` uses its own random order and changes, drawn from ``(seed, e)``."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self._shuffle()

        def _shuffle(self) -> None:
            self.rng = np.random.default_rng((seed, self.epoch))
            self.order = self.rng.permutation(len(images))

        def __len__(self) -> int:
            return math.ceil(len(images) / batch_size)

        def __getitem__(self, index: int):
            chosen = self.order[index * batch_size : (index + 1) * batch_size]
            batch_rng = np.random.default_rng((seed, self.epoch, index))
            return augment(images[chosen], batch_rng, settings)[..., np.newaxis], labels[chosen]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._shuffle()

    return AugmentedDigits()
