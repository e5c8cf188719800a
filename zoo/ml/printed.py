"""Printed digits: 0-9 typed in the TrueType/OpenType fonts of this machine, an extra training source.

People often draw digits the way they are printed (a "1" with a flag and a foot, an open "4", a
"7" with a bar), which MNIST's writers rarely did. ``typed_ink`` types one digit as ink on a
canvas-sized field; ``printed_digits`` prepares every digit of every font at several stroke weights
through the Draw page's own preprocessing (``zoo.ml.inference.preprocess``), so they look to the model
exactly as a typed-looking drawing does. A fresh Debian machine with Chromium has the DejaVu and
Liberation families (38 files); the shipped starter was trained with the 57 Debian font packages of
``zoo/starter/training-fonts.txt`` installed as well (522 files that draw digits): the more shapes of
"1", "4" and "7" it sees, the better it reads printed digits in fonts it never saw.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.core.errors import DataError

if TYPE_CHECKING:
    from zoo.core.spec import TrainSpec
    from zoo.ml.training import TrainingData

FONT_FOLDERS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
FONT_SUFFIXES = (".ttf", ".otf")
CANVAS = 280
STROKE_WEIGHTS = (0, 4, 9)  # extra outline around each glyph, in canvas pixels: regular, bold, marker
FONT_SIZES = (120, 200)
MARGIN = 16  # empty pixels around a typed glyph: the preprocessing reads the background off the border
NO_GLYPH = "\U0010fffd"  # a private code point no font draws: every font draws its "missing glyph" for it
PRINTED_SHARE = 0.10  # printed digits make up about this share of a --printed run's training digits


def font_files(folders: tuple[Path, ...] | None = None) -> list[Path]:
    """Every TrueType/OpenType font under ``folders`` (default ``FONT_FOLDERS``), sorted."""
    return sorted(
        path
        for folder in folders or FONT_FOLDERS
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.suffix.lower() in FONT_SUFFIXES
    )


def draws_digits(font: Path) -> bool:
    """Whether ``font`` opens and draws all ten digits: a font without them (a maths or symbol font) draws
    its empty "missing glyph" for each, which must not be learnt as a digit."""
    from PIL import ImageFont

    try:
        typeface = ImageFont.truetype(str(font), size=FONT_SIZES[0])
    except OSError:
        return False
    missing = bytes(typeface.getmask(NO_GLYPH))
    return all(bytes(typeface.getmask(str(digit))) != missing for digit in range(10))


def digit_fonts(folders: tuple[Path, ...] | None = None) -> list[Path]:
    """The fonts of ``font_files(folders)`` that draw the digits (``draws_digits``)."""
    return [font for font in font_files(folders) if draws_digits(font)]


def typed_ink(font: Path, digit: int, size: int, weight: int) -> np.ndarray:
    """One digit typed in ``font`` at ``size`` points with ``weight`` pixels of extra outline: uint8 ink
    (white on black), cropped to the glyph with a margin of ``MARGIN`` empty pixels."""
    from PIL import Image, ImageDraw, ImageFont

    layer = Image.new("L", (CANVAS * 2, CANVAS * 2))
    typeface = ImageFont.truetype(str(font), size=size)
    ImageDraw.Draw(layer).text(
        (CANVAS // 2, CANVAS // 2), str(digit), fill=255, font=typeface, stroke_width=weight, stroke_fill=255
    )
    ink = np.asarray(layer)
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return np.pad(ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1], MARGIN)


def printed_digits(fonts: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Every digit in every font at every stroke weight and size, as the model reads a drawing of it.

    Returns:
        (N, 28, 28) float32 in [0, 1] and (N,) int labels.
    """
    from zoo.ml.inference import preprocess

    digits, labels = [], []
    for font in fonts:
        for digit in range(10):
            for weight in STROKE_WEIGHTS:
                for size in FONT_SIZES:
                    read = preprocess(typed_ink(font, digit, size, weight)).digit
                    if read is not None:
                        digits.append(read)
                        labels.append(digit)
    return np.stack(digits).astype(np.float32), np.asarray(labels)


def check_fonts() -> list[Path]:
    """The fonts a ``printed`` run types its digits in: ``digit_fonts()``.

    Raises:
        DataError: this machine has none in the usual folders.
    """
    fonts = digit_fonts()
    if not fonts:
        folders = ", ".join(str(folder) for folder in FONT_FOLDERS)
        raise DataError(
            f"printed digits need TrueType fonts that draw the digits 0-9 and none were found in {folders}; "
            "install some (e.g. apt-get install fonts-dejavu-core) or train without printed digits."
        )
    return fonts


def with_printed_digits(spec: TrainSpec, data: TrainingData) -> TrainingData:
    """``data`` with printed digits making up about ``PRINTED_SHARE`` of its training digits, shuffled in
    (so a validation split holds some); the test set stays as it is.

    Few fonts type fewer digits than the share needs: each is repeated. Many fonts type more: a random
    part of them goes in, another for each seed, so the share (and the epoch's length) stays the same.
    """
    fonts = check_fonts()
    digits, labels = printed_digits(fonts)
    described = f"{len(digits):,} printed digits"
    wanted = math.ceil(PRINTED_SHARE * len(data.x_train) / (1 - PRINTED_SHARE))
    if len(digits) > wanted:
        chosen = np.random.default_rng(spec.seed + 2).choice(len(digits), wanted, replace=False)
        described = f"{wanted:,} printed digits (drawn at random from {len(digits):,})"
        digits, labels = digits[chosen], labels[chosen]
    from zoo.ml.training import mixed_in

    x_train, y_train, copies = mixed_in(data, digits, labels, PRINTED_SHARE, spec.seed + 1)
    return dataclasses.replace(
        data,
        x_train=x_train,
        y_train=y_train,
        source=f"{data.source}; with {described} from {len(fonts)} font files "
        f"({copies} {'copy' if copies == 1 else 'copies'} each)",
    )
