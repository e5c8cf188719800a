"""Reading a drawn or uploaded digit: MNIST's own preprocessing, a compiled predictor, a look inside.

MNIST was made by size-normalising each bilevel digit into a 20x20 box (aspect ratio kept,
anti-aliased) and placing it in a 28x28 field with its centre of mass at pixel (14, 14).
``preprocess`` repeats exactly that for a canvas drawing or an image file, one testable
function per step, and keeps every intermediate image so the app can show what the model sees.

``Predictor`` wraps a loaded CNN in functions compiled by Keras' backend (``zoo.ml.backend``;
``model.predict`` costs about 50 ms for one digit on a small CPU, a compiled call about 1 ms)
and warms them up, so the first prediction a person asks for pays no tracing delay.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.core.errors import ZooError
from zoo.core.vocabulary import CANVAS_SIDE, MNIST_IMAGE_SHAPE
from zoo.ml.data import require_regular_file

if TYPE_CHECKING:
    import keras

MNIST_SIDE = MNIST_IMAGE_SHAPE[0]
_BATCH_SHAPE = (1, MNIST_SIDE, MNIST_SIDE, 1)  # the predictor's one compiled input shape
DIGIT_BOX_SIDE = 20
MNIST_CENTRE = 14.0  # MNIST digits have their centre of mass at pixel index (14, 14)
# Images are decoded at most this large: JPEGs are decoded at a reduced scale (cheap, by the
# decoder itself), other formats are refused above MAX_IMAGE_PIXELS before their raster is read.
WORKING_SIDE = 1024
MAX_IMAGE_PIXELS = 25_000_000
# Ink within this many standard deviations of the background's spread, or below a tenth of the
# strongest ink, is paper grain, sensor noise or JPEG ringing, not pen.
NOISE_SIGMAS = 6.0
MIN_NOISE_FLOOR = 0.1
# Less ink than this is "nothing drawn": a digit spans at least 8% of the longer image side
# and covers at least 0.2% of the image.
MIN_DIGIT_EXTENT = 0.08
MIN_INK_COVERAGE = 0.002
MIN_CONTRAST = 0.15
EMPTY_MESSAGE = "Draw a digit: there is too little ink to read one."

POLARITIES = ("transparent", "dark-on-light", "light-on-dark")
STEP_TITLES = {
    "grayscale": "1 · grayscale",
    "ink": "2 · ink found",
    "cropped": "3 · cropped",
    "scaled": "4 · scaled to 20 px",
    "centred": "5 · centred, 28×28",
}


@dataclass(frozen=True)
class Preprocessed:
    """Every step of the MNIST pipeline for one image, and the 28x28 digit it ends with.

    ``steps`` maps a step name (see ``STEP_TITLES``) to its image, in pipeline order; a blank
    input stops after ``ink`` with ``digit`` None and ``message`` saying what to do.
    """

    steps: dict[str, np.ndarray]
    polarity: str
    ink_box: tuple[int, int, int, int] | None  # top, left, bottom, right (exclusive)
    digit: np.ndarray | None  # (28, 28) float32 in [0, 1]
    message: str = ""

    @property
    def is_blank(self) -> bool:
        return self.digit is None


@dataclass(frozen=True)
class Prediction:
    """What the model reads in one image: probabilities of the ten digits, or why there are none."""

    preprocessed: Preprocessed
    probabilities: np.ndarray | None  # (10,) float32, None for a blank image

    @property
    def digit(self) -> int | None:
        return None if self.probabilities is None else int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float | None:
        return None if self.probabilities is None else float(np.max(self.probabilities))

    def to_row(self) -> dict[str, Any]:
        """JSON-ready, for ``--json`` at the edge: digit, confidence, the ten probabilities, polarity and
        message."""
        return {
            "digit": self.digit,
            "confidence": self.confidence,
            "probabilities": None if self.probabilities is None else [float(p) for p in self.probabilities],
            "polarity": self.preprocessed.polarity,
            "message": self.preprocessed.message,
        }


@dataclass(frozen=True)
class Inspection:
    """A look inside the CNN for one digit: its output, each convolution's feature maps, saliency."""

    probabilities: np.ndarray  # (10,)
    feature_maps: dict[str, np.ndarray]  # convolution layer name -> (height, width, channels)
    saliency: np.ndarray  # (28, 28) in [0, 1]: |d p(predicted) / d pixel|, scaled to max 1

    @property
    def digit(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))


# --- loading -----------------------------------------------------------------------------------------


def load_image(source: bytes | str | os.PathLike, name: str = "") -> np.ndarray:
    """Decode an image file into pixels that ``to_grayscale`` accepts, refusing what cannot be a digit.

    8-bit images of any mode come back as RGBA uint8 (H, W, 4); 16-bit grayscale as float32
    (H, W) in [0, 1]. Big images are reduced to at most ``WORKING_SIDE`` pixels a side: JPEGs by
    the decoder itself (it never builds the full raster), others after a size check.

    Raises:
        ZooError: a path that is missing or not a regular file (a FIFO is never opened), not an image,
            truncated or corrupt, animated, an unsupported pixel format, or more than
            ``MAX_IMAGE_PIXELS`` pixels to decode.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(source, bytes):
        require_regular_file(source, "image", "a PNG or JPEG file")
    label = name or (str(source) if not isinstance(source, bytes) else "the image")
    stream = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        with Image.open(stream) as image:  # reads the header only
            frames = getattr(image, "n_frames", 1)  # only formats that can animate have it
            if frames > 1:
                raise ZooError(
                    f"{label} is an animated image with {frames} frames; upload a single still "
                    "PNG or JPEG of one digit."
                )
            if image.format == "JPEG":
                image.draft("RGB", (WORKING_SIDE, WORKING_SIDE))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ZooError(
                    f"{label} is {width} x {height} pixels, more than Zoo Studio decodes "
                    f"({MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); crop it around the digit or save it smaller."
                )
            image.load()
            return _pixels_of(image, label)
    except Image.DecompressionBombError:
        raise ZooError(
            f"{label} declares more pixels than any digit photo needs and was refused before decoding; "
            "crop it around the digit or save it smaller."
        ) from None
    except (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error) as error:
        if isinstance(error, ZooError):
            raise
        if isinstance(error, UnidentifiedImageError):
            reason = "its contents are not in an image format Pillow knows"
        else:
            reason = str(error).strip() or type(error).__name__
        raise ZooError(
            f"{label} cannot be read as an image ({reason}); use a complete PNG or JPEG file."
        ) from None


def _pixels_of(image: Any, label: str) -> np.ndarray:
    from PIL import Image

    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale: keep the full range instead of letting a conversion to "L" clip it.
        gray = image.convert("F")
        gray.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
        return np.clip(np.asarray(gray, dtype=np.float32) / 65535.0, 0.0, 1.0)
    if image.mode == "F":
        raise ZooError(f"{label} holds floating-point pixels; save it as an 8- or 16-bit PNG or as a JPEG.")
    rgba = image.convert("RGBA")
    rgba.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return np.asarray(rgba)


# --- the MNIST pipeline, one step per function --------------------------------------------------------


def to_grayscale(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split pixels into luminance and opacity, both float32 (H, W) in [0, 1].

    Accepts (H, W) gray, (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA, as uint8,
    uint16 or floats in [0, 1]. Luminance weights are ITU-R 601 (as PIL's "L" mode).

    Raises:
        ZooError: another shape or dtype.
    """
    array = np.asarray(pixels)
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        values = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        raise ZooError(
            f"pixels of dtype {array.dtype} are not supported; give uint8, uint16 or floats in [0, 1]."
        )
    if values.ndim == 2:
        return values, np.ones_like(values)
    if values.ndim != 3 or values.shape[2] not in (2, 3, 4) or min(values.shape[:2]) < 1:
        raise ZooError(
            f"pixels of shape {array.shape} are not an image; give (H, W), (H, W, 2), (H, W, 3) or (H, W, 4)."
        )
    if values.shape[2] == 2:
        return values[..., 0], values[..., 1]
    gray = values[..., 0] * 0.299 + values[..., 1] * 0.587 + values[..., 2] * 0.114
    alpha = values[..., 3] if values.shape[2] == 4 else np.ones_like(gray)
    return gray.astype(np.float32), alpha.astype(np.float32)


def detect_polarity(gray: np.ndarray, alpha: np.ndarray) -> str:
    """Decide what is ink: ``transparent`` (ink is whatever is opaque, as on the canvas),
    ``dark-on-light`` (pen on paper) or ``light-on-dark`` (MNIST's own look).

    The background is read off the image's border, where a digit rarely is.
    """
    if np.median(_border(alpha)) < 0.5:
        return "transparent"
    return "dark-on-light" if np.median(_border(gray)) >= 0.5 else "light-on-dark"


def extract_ink(gray: np.ndarray, alpha: np.ndarray, polarity: str) -> np.ndarray:
    """Ink amount per pixel in [0, 1]: background 0, the strongest ink 1, as MNIST's scans.

    The background level (the border's median) is subtracted and the rest stretched to full
    contrast; what stays below ``MIN_NOISE_FLOOR`` or within ``NOISE_SIGMAS`` of the border's own
    spread (paper grain, sensor noise, JPEG ringing) becomes 0. An image without enough contrast
    has no ink at all.
    """
    if polarity not in POLARITIES:
        raise ZooError(f"polarity {polarity!r} is unknown; use one of {', '.join(POLARITIES)}.")
    if polarity == "transparent":
        ink = alpha
    else:
        # Ink on a partly transparent opaque image: where it is see-through there is no ink.
        ink = (1.0 - gray if polarity == "dark-on-light" else gray) * alpha
    border = _border(ink)
    background = float(np.median(border))
    noise = 1.4826 * float(np.median(np.abs(border - background)))  # robust standard deviation
    peak = float(ink.max()) - background
    if peak < MIN_CONTRAST:
        return np.zeros_like(ink, dtype=np.float32)
    floor = min(max(NOISE_SIGMAS * noise / peak, MIN_NOISE_FLOOR), 0.5)
    stretched = (ink - background) / peak
    return np.clip((stretched - floor) / (1.0 - floor), 0.0, 1.0).astype(np.float32)


def find_ink_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box (top, left, bottom, right; exclusive) of the ink, or None when there is
    too little to be a digit (an empty canvas or a few stray pixels)."""
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1
    extent = max(bottom - top, right - left)
    if extent < MIN_DIGIT_EXTENT * max(ink.shape) or float(ink.sum()) < MIN_INK_COVERAGE * ink.size:
        return None
    return top, left, bottom, right


def crop_to_box(ink: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of ``ink`` inside ``box`` (top, left, bottom, right; exclusive)."""
    top, left, bottom, right = box
    return ink[top:bottom, left:right]


def scale_to_box(cropped: np.ndarray, side: int = DIGIT_BOX_SIDE) -> np.ndarray:
    """Scale so the longer side is ``side`` pixels, keeping the aspect ratio, anti-aliased.

    The shorter side becomes ``round(short * side / long)``, at least 1 pixel.
    """
    from PIL import Image

    height, width = cropped.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Lanczos with its support widened by the scale factor: every source pixel contributes (anti-aliasing).
    scaled = Image.fromarray(cropped.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted centre of ``image``; its middle when it is all zero."""
    total = float(image.sum())
    if total <= 0:
        return (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
    rows, columns = np.indices(image.shape)
    return float((rows * image).sum() / total), float((columns * image).sum() / total)


def place_by_centre_of_mass(scaled: np.ndarray, side: int = MNIST_SIDE) -> np.ndarray:
    """Paste ``scaled`` into a ``side`` x ``side`` field, shifted by whole pixels so that its centre of
    mass lands on (14, 14) as in MNIST (within half a pixel), unless that would cut the digit off."""
    height, width = scaled.shape
    if height > side or width > side:
        raise ZooError(f"a {height}x{width} image does not fit a {side}x{side} field; scale it first.")
    row, column = centre_of_mass(scaled)
    target = MNIST_CENTRE * side / MNIST_SIDE
    top = min(max(round(target - row), 0), side - height)
    left = min(max(round(target - column), 0), side - width)
    placed = np.zeros((side, side), dtype=np.float32)
    placed[top : top + height, left : left + width] = scaled
    return placed


def preprocess(pixels: np.ndarray) -> Preprocessed:
    """Turn a drawing or image into an MNIST-style 28x28 digit, keeping every step.

    Args:
        pixels: an image as an array: grayscale (H, W), gray+alpha (H, W, 2), RGB or RGBA;
            uint8, uint16 or floats in [0, 1] (what ``load_image`` and the canvas give).

    Returns:
        Every step's image, the polarity found, the ink's box and the digit (float32 28x28 in
        [0, 1]); ``is_blank`` with a message when there is too little ink to read.

    Raises:
        ZooError: ``pixels`` is not an image array (see ``to_grayscale``).

    Example:
        >>> result = preprocess(load_image("seven.png"))  # doctest: +SKIP
        >>> result.digit.shape, list(result.steps)  # doctest: +SKIP
        ((28, 28), ['grayscale', 'ink', 'cropped', 'scaled', 'centred'])
    """
    gray, alpha = to_grayscale(pixels)
    polarity = detect_polarity(gray, alpha)
    ink = extract_ink(gray, alpha, polarity)
    steps = {"grayscale": gray, "ink": ink}
    box = find_ink_box(ink)
    if box is None:
        return Preprocessed(steps, polarity, None, None, EMPTY_MESSAGE)
    steps["cropped"] = crop_to_box(ink, box)
    steps["scaled"] = scale_to_box(steps["cropped"])
    steps["centred"] = place_by_centre_of_mass(steps["scaled"])
    return Preprocessed(steps, polarity, box, steps["centred"])


def naive_resize(pixels: np.ndarray) -> np.ndarray:
    """The baseline the pipeline is measured against: ink polarity fixed, then a plain resize of
    the whole image to 28x28 (no crop, no aspect ratio, no centring)."""
    from PIL import Image

    gray, alpha = to_grayscale(pixels)
    ink = extract_ink(gray, alpha, detect_polarity(gray, alpha))
    resized = Image.fromarray(ink, mode="F").resize((MNIST_SIDE, MNIST_SIDE), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def redraw_on_canvas(digit: np.ndarray, rng: np.random.Generator, side: int = CANVAS_SIDE) -> np.ndarray:
    """Re-draw an MNIST digit (28x28 uint8) the way a person might on the canvas, for measuring
    the pipeline: RGBA (side, side, 4) uint8, the digit 30-90% of the canvas high at a random
    place, with a random polarity (ink on transparent, white on black, black on white) and, for
    a third of them, strokes about one MNIST pixel thicker."""
    from PIL import Image, ImageFilter

    rows = np.flatnonzero(digit.any(axis=1))
    columns = np.flatnonzero(digit.any(axis=0))
    cropped = digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    scale = rng.uniform(0.3, 0.9) * side / cropped.shape[0]
    width = min(side, max(1, round(cropped.shape[1] * scale)))
    height = min(side, round(cropped.shape[0] * scale))
    drawn = Image.fromarray(cropped).resize((width, height), Image.Resampling.BICUBIC)
    if rng.random() < 1 / 3:
        drawn = drawn.filter(ImageFilter.MaxFilter(2 * max(1, round(scale / 2)) + 1))
    ink = np.zeros((side, side), dtype=np.uint8)
    top, left = rng.integers(0, side - height + 1), rng.integers(0, side - width + 1)
    ink[top : top + height, left : left + width] = np.asarray(drawn)
    polarity = POLARITIES[rng.integers(len(POLARITIES))]
    canvas = np.zeros((side, side, 4), dtype=np.uint8)
    if polarity == "transparent":
        canvas[..., :3] = 255 * rng.integers(2)  # black or white ink, only its opacity matters
        canvas[..., 3] = ink
    else:
        canvas[..., :3] = (255 - ink if polarity == "dark-on-light" else ink)[..., np.newaxis]
        canvas[..., 3] = 255
    return canvas


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


# --- the model ------------------------------------------------------------------------------------------


class Predictor:
    """A CNN with compiled, warmed-up functions for one digit: probabilities, and a look inside.

    Built once per loaded model (the app caches it per model file). Thread-safe for calls.
    """

    def __init__(self, model: keras.Model) -> None:
        import keras

        from zoo.ml import backend

        self.model = model
        self.conv_layer_names = [
            layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
        ]
        conv_outputs = [model.get_layer(name).output for name in self.conv_layer_names]
        inspect_model = keras.Model(model.inputs, [*conv_outputs, model.outputs[0]])
        implementation = backend.current()
        self._probabilities = implementation.compile_predictor(model, _BATCH_SHAPE)
        self._inspect = implementation.compile_inspector(inspect_model, _BATCH_SHAPE)
        # Trace both functions now, so that the first digit a person draws answers at full speed.
        warm_up = np.zeros((MNIST_SIDE, MNIST_SIDE), np.float32)
        self.predict(warm_up)
        self.inspect(warm_up)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Predictor:
        """Load a ``.keras`` CNN safely, check it reads 28x28 digits, and build its predictor.

        Raises:
            ModelStoreError: the file is unusable or not an MNIST classifier.
        """
        from zoo.storage.models import check_model_shapes, load_keras_file

        model = load_keras_file(Path(path))
        check_model_shapes(model, "cnn", str(path))
        return cls(model)

    def predict(self, digit: np.ndarray) -> np.ndarray:
        """Probabilities (10,) of the ten digits for one (28, 28) digit in [0, 1]."""
        return self._probabilities(_as_batch(digit))[0]

    def inspect(self, digit: np.ndarray) -> Inspection:
        """Probabilities, the feature maps of every convolution layer and a saliency map for one digit."""
        outputs, gradient = self._inspect(_as_batch(digit))
        saliency = np.abs(gradient[0, :, :, 0])
        peak = float(saliency.max())
        return Inspection(
            probabilities=outputs[-1][0],
            feature_maps={
                name: maps[0] for name, maps in zip(self.conv_layer_names, outputs[:-1], strict=True)
            },
            saliency=saliency / peak if peak > 0 else saliency,
        )


def _as_batch(digit: np.ndarray) -> np.ndarray:
    array = np.asarray(digit, dtype=np.float32)
    if array.shape != (MNIST_SIDE, MNIST_SIDE):
        raise ZooError(f"a digit of shape {array.shape} was given; the model reads (28, 28) in [0, 1].")
    return array.reshape(_BATCH_SHAPE)


def predict_digit(predictor: Predictor, pixels: np.ndarray) -> Prediction:
    """Preprocess a drawing or image and predict its digit (no prediction when it is blank)."""
    preprocessed = preprocess(pixels)
    if preprocessed.digit is None:  # blank
        return Prediction(preprocessed, None)
    return Prediction(preprocessed, predictor.predict(preprocessed.digit))
