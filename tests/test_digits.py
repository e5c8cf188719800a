"""My digits (zoo/storage/digits.py): a personal labelled set that keeps every digit through restarts, crashes
and two sessions adding at once; its gallery counts, relabel, delete and exports; and the checks that
refuse a set unfit for fine-tuning before anything trains."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.core.errors import DigitSetError, StorageError
from zoo.core.hosting import LOCAL_USER
from zoo.storage.digits import DigitStore

REPOSITORY = Path(__file__).resolve().parents[1]


def canvas(seed: int) -> np.ndarray:
    """A 280x280 RGBA canvas with some ink, as the Draw page's canvas returns it."""
    pixels = np.zeros((280, 280, 4), np.uint8)
    pixels[..., :3] = 255
    pixels[60:220, 130 + seed % 20 : 150 + seed % 20, 3] = 255
    return pixels


def digit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((28, 28)).astype(np.float32)


def fill(store: DigitStore, labels: list[int], set_name: str = "mine") -> list[str]:
    return [
        store.add(set_name, label, canvas(index), digit(index), by=LOCAL_USER).id
        for index, label in enumerate(labels)
    ]


def test_a_digit_is_kept_with_its_input_its_28x28_form_and_its_label():
    store = DigitStore()
    added = store.add("mine", 7, canvas(1), digit(1), by=LOCAL_USER)
    assert added.label == 7 and added.set_name == "mine"
    (kept,) = store.digits("mine", by=LOCAL_USER)
    assert kept.id == added.id and kept.label == 7
    np.testing.assert_array_equal(kept.digit, digit(1))
    np.testing.assert_array_equal(store.pixels("mine", added.id, by=LOCAL_USER), canvas(1))
    assert store.counts("mine", by=LOCAL_USER) == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    assert store.set_names(by=LOCAL_USER) == ["mine"] and store.digits("other", by=LOCAL_USER) == []


def test_the_set_survives_a_restart_of_the_process(zoo_home):
    ids = fill(DigitStore(), [3, 3, 5])
    script = (
        "from zoo.storage.digits import DigitStore; from zoo.core.hosting import LOCAL_USER; "
        "print([(d.id, d.label) for d in DigitStore().digits('mine', by=LOCAL_USER)])"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPOSITORY,
        env={**os.environ, "ZOO_HOME": str(zoo_home)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listed.strip() == repr(list(zip(ids, [3, 3, 5], strict=True)))


def test_relabel_and_delete_change_only_the_digit_named():
    store = DigitStore()
    first, second, third = fill(store, [1, 2, 3])
    assert store.relabel("mine", second, "9", by=LOCAL_USER).label == 9
    store.delete("mine", first, by=LOCAL_USER)
    kept = store.digits("mine", by=LOCAL_USER)
    assert [(digit.id, digit.label) for digit in kept] == [(second, 9), (third, 3)]
    relabelled = store.pixels("mine", second, by=LOCAL_USER)
    np.testing.assert_array_equal(relabelled, canvas(1))  # relabelling keeps the drawing
    with pytest.raises(DigitSetError, match="has no digit"):
        store.delete("mine", first, by=LOCAL_USER)
    with pytest.raises(DigitSetError, match="has no digit"):
        store.relabel("mine", "../../etc", 1, by=LOCAL_USER)


def test_a_write_that_fails_keeps_the_digit_as_it_was_and_leaves_no_temporary_file(monkeypatch):
    store = DigitStore()
    (kept,) = fill(store, [4])

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    full = re.escape(f"{store.storage.root / 'mine'} cannot be written (No space left on device): free space")
    with pytest.raises(StorageError, match=full):
        store.relabel("mine", kept, 8, by=LOCAL_USER)
    with pytest.raises(StorageError, match=full):
        store.add("mine", 1, canvas(2), digit(2), by=LOCAL_USER)
    monkeypatch.undo()
    assert [(each.id, each.label) for each in store.digits("mine", by=LOCAL_USER)] == [(kept, 4)]
    assert sorted(path.name for path in (store.storage.root / "mine").iterdir()) == [".owner", f"{kept}.npz"]


def test_two_sessions_adding_at_once_both_keep_every_digit(zoo_home):
    """Two processes (two app sessions, or the app and the CLI) and two threads add to one set at the
    same moment, while a reader lists it: every digit is kept, and no reader sees half of one."""
    script = textwrap.dedent(
        """
        import sys, numpy as np
        from zoo.storage.digits import DigitStore
        from zoo.core.hosting import LOCAL_USER
        store, label = DigitStore(), int(sys.argv[1])
        for index in range(25):
            pixels, digit = np.zeros((280, 280, 4), np.uint8), np.full((28, 28), index / 25, np.float32)
            store.add("shared", label, pixels, digit, by=LOCAL_USER)
        """
    )
    environment = {**os.environ, "ZOO_HOME": str(zoo_home)}
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(label)], cwd=REPOSITORY, env=environment)
        for label in (1, 2)
    ]
    store = DigitStore()
    threads = [
        threading.Thread(target=lambda label=label: fill(store, [label] * 25, "shared")) for label in (3, 4)
    ]
    for thread in threads:
        thread.start()
    seen = []
    while any(process.poll() is None for process in processes) or any(t.is_alive() for t in threads):
        seen.append(len(store.digits("shared", by=LOCAL_USER)))  # never a half-written file
    for thread in threads:
        thread.join()
    assert [process.wait() for process in processes] == [0, 0]
    assert store.counts("shared", by=LOCAL_USER) == [0, 25, 25, 25, 25, 0, 0, 0, 0, 0]
    assert seen == sorted(seen)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (10, "label 10 is outside 0-9"),
        (-1, "label -1 is outside 0-9"),
        ("seven", "label 'seven' is not a digit"),
        (3.5, "label 3.5 is not a digit"),
        (True, "label True is not a digit"),
    ],
)
def test_a_label_outside_0_to_9_is_refused_and_nothing_is_added(label, message):
    store = DigitStore()
    with pytest.raises(DigitSetError, match=message):
        store.add("mine", label, canvas(0), digit(0), by=LOCAL_USER)
    assert store.digits("mine", by=LOCAL_USER) == []


def test_bad_set_names_and_digits_are_refused():
    store = DigitStore()
    with pytest.raises(DigitSetError, match=r"digit set name '\.\./x' is not allowed"):
        store.add("../x", 1, canvas(0), digit(0), by=LOCAL_USER)
    with pytest.raises(DigitSetError, match=r"must be \(28, 28\) in \[0, 1\]"):
        store.add("mine", 1, canvas(0), np.ones((20, 20)), by=LOCAL_USER)
    with pytest.raises(DigitSetError, match=r"must be \(28, 28\) in \[0, 1\]"):
        store.add("mine", 1, canvas(0), np.full((28, 28), 3.0), by=LOCAL_USER)


def test_the_set_exports_as_npz_arrays_and_as_a_zip_of_pngs():
    store = DigitStore()
    ids = fill(store, [0, 6])
    arrays = np.load(io.BytesIO(store.export_npz("mine", by=LOCAL_USER)))
    assert arrays["labels"].tolist() == [0, 6] and arrays["ids"].tolist() == ids
    assert arrays["digits"].shape == (2, 28, 28) and arrays["pixels"].shape == (2, 280, 280, 4)
    with zipfile.ZipFile(io.BytesIO(store.export_zip("mine", by=LOCAL_USER))) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(
            [f"0/{ids[0]}.png", f"0/{ids[0]}-28x28.png", f"6/{ids[1]}.png", f"6/{ids[1]}-28x28.png"]
        )
        small = np.asarray(Image.open(io.BytesIO(archive.read(f"6/{ids[1]}-28x28.png"))))
    assert small.shape == (28, 28) and np.abs(small / 255 - digit(1)).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(DigitSetError, match="holds no digits"):
        store.export_zip("empty", by=LOCAL_USER)


def test_the_fine_tuning_split_holds_out_a_drawing_of_every_digit_drawn_twice_and_is_stable():
    """Ten corrections as a walk made them: "every fifth digit added" held out two plain 5s and tested
    none of the misread 0s, 2s, 6s and 7s. Each digit drawn at least twice gives its 2nd (then 7th,
    12th...) drawing to the test part; a digit drawn once is trained on."""
    store = DigitStore()
    fill(store, [0, 6, 0, 2, 5, 6, 2, 7, 7, 5, 3])
    split = store.fine_tuning_split("mine")
    assert split.held_out.tolist() == [False, False, True, False, False, True, True, False, True, True, False]
    assert split.y_test.tolist() == [0, 6, 2, 7, 5] and split.y_train.tolist() == [0, 6, 2, 5, 7, 3]
    assert split.x_train.shape == (6, 28, 28) and split.counts()[:4] == [2, 0, 2, 1]
    assert np.array_equal(split.x_test[0], digit(2))  # each image stays with its label
    assert split.ids == tuple(digit.id for digit in store.digits("mine", by=LOCAL_USER))
    fill(store, [0, 0, 0, 0, 0, 1])  # adding digits never moves an old one between the parts
    again = store.fine_tuning_split("mine")
    assert again.held_out[:11].tolist() == split.held_out.tolist()
    assert again.held_out[11:].tolist() == [False, False, False, False, True, False]  # the 7th 0; one 1


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([], "holds no digits; add some on the Draw page"),
        ([3] * 12, "holds only 3s (12); fine-tuning needs at least two different digits"),
        ([1, 2, 3], "holds one drawing of each digit (1, 2, 3), so none is left to test on"),
    ],
)
def test_a_set_unfit_for_fine_tuning_is_refused_with_what_to_do(labels, message):
    store = DigitStore()
    fill(store, labels)
    with pytest.raises(DigitSetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        store.fine_tuning_split("mine")
    assert store.counts("mine", by=LOCAL_USER) == np.bincount(labels, minlength=10).tolist()  # nothing lost
