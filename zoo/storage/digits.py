"""My digits: personal labelled sets of drawn digits, kept in the local zoo, never mixed into MNIST silently.

A set is a folder ``digits/SET/`` of the storage ``ZOO_MODEL_STORE`` names (default
``$ZOO_HOME/digits/SET/``; see ``zoo.storage.files``); each digit is one ``.npz`` file holding the input
as it was drawn or uploaded (e.g. the 280x280 RGBA canvas), its 28x28 preprocessed form and its label.
Every file is written whole or not at all (``Storage.write_bytes``), so a reader never sees half a
digit, a crash loses nothing already kept, and two sessions adding at the same time each add their own
file (names are random): both are kept.

The split for fine-tuning is stratified and stable: of each digit drawn at least twice, its 2nd, 7th,
12th... drawing (by the time added) is held out for testing, so every digit the set can test is tested,
and adding a digit never moves an old one between the two parts.

A set is its owner's: only they and an admin see, download or fine-tune on its digits, unless the owner
shares it (``set_shared``); a shared set is read by everyone and still changed only by its owner or an
admin. Reading asks who reads (``by``), and refuses others with ``PermissionDenied``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.core.errors import DigitSetError
from zoo.core.hosting import (
    LOCAL_OWNER,
    PermissionDenied,
    User,
    check_may_create,
    check_may_manage,
    former_owner_slug,
    may_read,
    owner_slug,
)
from zoo.core.names import DEFAULT_SET, SET_NAME_PATTERN, check_set_name
from zoo.core.paths import unwritable
from zoo.core.vocabulary import MNIST_IMAGE_SHAPE, NUM_DIGITS
from zoo.storage.files import FolderTaken, Storage, storage_for

DIGITS_FOLDER = "digits"  # of the storage ZOO_MODEL_STORE names: the digit sets
HOLD_OUT_EVERY = 5  # of each digit's drawings (by time added), the 2nd, 7th, 12th... are held out
SUFFIX = ".npz"
OWNER_FILE = ".owner"  # in a set's folder: who made the set (a set made before owners is the local owner's)
SHARED_FILE = ".shared"  # in a set's folder: its owner shares it with everyone, read-only
DIGIT_ID_PATTERN = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class PersonalDigit:
    """One labelled digit of a personal set (its full-size input is read on demand: ``DigitStore.pixels``)."""

    set_name: str
    id: str
    label: int
    digit: np.ndarray  # (28, 28) float32 in [0, 1], as the model reads it
    created_at: float


@dataclass(frozen=True)
class FineTuningSplit:
    """A personal set split for fine-tuning: all its digits, oldest first, and which are held out."""

    set_name: str
    ids: tuple[str, ...]
    images: np.ndarray  # (N, 28, 28) float32
    labels: np.ndarray  # (N,) int
    held_out: np.ndarray  # (N,) bool: kept for testing (see ``held_out_mask``)

    @property
    def x_train(self) -> np.ndarray:
        return self.images[~self.held_out]

    @property
    def y_train(self) -> np.ndarray:
        return self.labels[~self.held_out]

    @property
    def x_test(self) -> np.ndarray:
        return self.images[self.held_out]

    @property
    def y_test(self) -> np.ndarray:
        return self.labels[self.held_out]

    def counts(self) -> list[int]:
        """How many digits of each class the set holds (both parts)."""
        return np.bincount(self.labels, minlength=NUM_DIGITS).tolist()


def _no_digit(set_name: str, digit_id: object) -> DigitSetError:
    return DigitSetError(f"the set {set_name!r} has no digit {digit_id!r}; list it to see its digits.")


def _is_digit_file(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")


def held_out_mask(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Which digits of a set to hold out for testing: of each class, its 2nd, 7th, 12th... digit.

    Every class drawn at least twice is tested and still trained on; a class drawn once is trained
    on only. The mask depends only on each digit's place among the earlier ones of its class, so
    adding digits never moves an old one between the parts.

    Args:
        labels: the set's labels, oldest digit first.

    Returns:
        A bool array, True where the digit is held out.

    Example:
        >>> held_out_mask([5, 0, 5, 0, 5, 7]).tolist()
        [False, False, True, True, False, False]
    """
    seen = np.zeros(NUM_DIGITS, int)
    mask = np.zeros(len(labels), bool)
    for index, label in enumerate(labels):
        mask[index] = seen[label] % HOLD_OUT_EVERY == 1
        seen[label] += 1
    return mask


def personal_set_name(user: User, store: DigitStore | None = None) -> str:
    """The set a person's corrected drawings go to, so that each starts with a set of their own.

    Args:
        user: the person.
        store: where the sets are (default: ``$ZOO_HOME``'s).

    Returns:
        ``my-digits`` for the local owner (one's own machine); ``NAME-digits`` for anyone else,
        ``NAME`` being their name made safe and distinct (``hosting.owner_slug``), or the set they made
        under the slug of their name that older versions gave (recorded as theirs), which stays theirs.

    Example:
        >>> personal_set_name(User("ada@example.org"))  # doctest: +SKIP
        'ada-example.org-cfe00dde46ef-digits'
    """
    if user.name == LOCAL_OWNER:
        return DEFAULT_SET
    name, former = f"{owner_slug(user.name)}-digits", f"{former_owner_slug(user.name)}-digits"
    store = store or DigitStore()
    if former != name and store.owner(former) == user.name:
        return former
    return name


def check_label(label: object) -> int:
    """Return ``label`` as an int if it is a digit 0-9.

    Args:
        label: an int, numpy integer or text such as ``"7"``.

    Returns:
        The digit as an int.

    Raises:
        DigitSetError: anything else (a bool, a float, 10, -1, other text).

    Example:
        >>> check_label("7")
        7
    """
    if isinstance(label, bool) or not isinstance(label, int | np.integer | str):
        raise DigitSetError(f"label {label!r} is not a digit: give a whole number from 0 to 9.")
    try:
        value = int(label)
    except ValueError:
        raise DigitSetError(f"label {label!r} is not a digit: give a whole number from 0 to 9.") from None
    if not 0 <= value < NUM_DIGITS:
        raise DigitSetError(f"label {label!r} is outside 0-9: give the digit that was drawn, 0 to 9.")
    return value


def _check_digit(digit: np.ndarray) -> np.ndarray:
    array = np.asarray(digit, dtype=np.float32)
    if (
        array.shape != MNIST_IMAGE_SHAPE
        or not np.all(np.isfinite(array))
        or array.min() < 0
        or array.max() > 1
    ):
        raise DigitSetError(
            f"a preprocessed digit of shape {np.shape(digit)} was given; it must be (28, 28) in [0, 1] "
            "(what zoo.ml.inference.preprocess returns)."
        )
    return array


class DigitStore:
    """Personal digit sets: one folder per set in ``storage`` (default: the ``digits`` folder of
    ``ZOO_MODEL_STORE``, else ``$ZOO_HOME/digits``), read and written through the storage seam
    (``zoo.storage.files``) alone.

    Args:
        storage: the storage of the sets, or a directory that holds them. Nothing is created before
            the first digit: a read-only ``ZOO_HOME`` still lets the Draw page read digits.
    """

    def __init__(self, storage: Storage | str | os.PathLike | None = None) -> None:
        self.storage: Storage = storage_for(storage, DIGITS_FOLDER)

    @staticmethod
    def _digit_file(set_name: str, digit_id: str) -> str:
        """The name of a digit's file in its set's folder.

        Raises:
            DigitSetError: a bad set name, or an id no digit has.
        """
        check_set_name(set_name)
        if not isinstance(digit_id, str) or not DIGIT_ID_PATTERN.fullmatch(digit_id):
            raise _no_digit(set_name, digit_id)
        return f"{digit_id}{SUFFIX}"

    @contextlib.contextmanager
    def _open_digit(self, set_name: str, digit_id: str) -> Iterator[np.lib.npyio.NpzFile]:
        """One digit's arrays, as np.load gives them.

        Raises:
            DigitSetError: a bad set name or digit id, or the set has no such digit.
        """
        try:
            file = self.storage.open(set_name, self._digit_file(set_name, digit_id))
        except FileNotFoundError:
            raise _no_digit(set_name, digit_id) from None
        with file, np.load(file, allow_pickle=False) as stored:
            yield stored

    def owner(self, set_name: str) -> str:
        """Who made the set: only they or an admin may add to it, relabel or delete in it.

        Args:
            set_name: the set.

        Returns:
            The owner's name; the local owner for a set made before sets had owners, or no set.

        Raises:
            DigitSetError: ``set_name`` is not allowed.

        Example:
            >>> DigitStore().owner("my-digits")  # doctest: +SKIP
            'local'
        """
        try:
            return self.storage.read_bytes(check_set_name(set_name), OWNER_FILE).decode().strip()
        except FileNotFoundError:
            return LOCAL_OWNER

    def _check_may_change(self, set_name: str, by: User) -> None:
        if self.storage.exists(check_set_name(set_name)):
            check_may_manage(by, self.owner(set_name), f"the digit set {set_name!r}")

    def is_shared(self, set_name: str) -> bool:
        """Whether the set's owner shares it with everyone (to see, download and fine-tune on, not to change).

        Raises:
            DigitSetError: ``set_name`` is not allowed.
        """
        return self.storage.exists(check_set_name(set_name), SHARED_FILE)

    def may_read(self, set_name: str, by: User) -> bool:
        """Whether ``by`` may see, download or fine-tune on the set's digits: its owner, an admin, anyone
        when it is shared, and anyone while there is no such set (it holds nothing to see).

        Raises:
            DigitSetError: ``set_name`` is not allowed.
        """
        if not self.storage.exists(check_set_name(set_name)):
            return True
        return may_read(by, self.owner(set_name), self.is_shared(set_name))

    def check_may_read(self, set_name: str, by: User) -> None:
        """Raise ``PermissionDenied`` unless ``by`` may read the set (see ``may_read``).

        Raises:
            DigitSetError: ``set_name`` is not allowed.
            PermissionDenied: the set is someone else's and not shared.
        """
        if not self.may_read(set_name, by):
            owner = self.owner(set_name)
            raise PermissionDenied(
                f"the digit set {set_name!r} is {owner}'s and not shared: only {owner} or an admin may see "
                "it or fine-tune on it; ask them to share it, or use a set of your own."
            )

    def set_shared(self, set_name: str, shared: bool, *, by: User) -> None:
        """Share the set with everyone, or stop sharing it (for its owner or an admin).

        Args:
            set_name: the set (it must hold digits).
            shared: True to share it, False to keep it to its owner (and admins) again.
            by: who asks.

        Raises:
            DigitSetError: a bad set name, or no such set.
            PermissionDenied: ``by`` is neither the set's owner nor an admin (a set they may not read is
                refused as such, saying nothing more about it).
            StorageError: the set cannot be written (read-only, disk full).

        Example:
            >>> DigitStore().set_shared("alice-digits", True, by=alice)  # doctest: +SKIP
        """
        self.check_may_read(set_name, by)
        self._check_may_change(set_name, by)
        if not self.storage.exists(set_name):
            raise DigitSetError(
                f"there is no digit set {set_name!r}; known: {', '.join(self.set_names(by=by)) or 'none'}."
            )
        if shared:
            self.storage.write_bytes(set_name, SHARED_FILE, b"")
        else:
            with contextlib.suppress(FileNotFoundError):
                self.storage.delete_file(set_name, SHARED_FILE)

    def set_names(self, *, by: User) -> list[str]:
        """The sets that hold at least one digit and that ``by`` may read (see ``may_read``).

        Returns:
            Their names, sorted (empty before the first digit is kept).

        Example:
            >>> DigitStore().set_names(by=LOCAL_USER)  # doctest: +SKIP
            ['my-digits']
        """
        return [
            name
            for name in self.storage.folders()
            if SET_NAME_PATTERN.fullmatch(name)
            and any(_is_digit_file(file.name) for file in self.storage.files(name))
            and self.may_read(name, by)
        ]

    def add(
        self, set_name: str, label: object, pixels: np.ndarray, digit: np.ndarray, *, by: User
    ) -> PersonalDigit:
        """Keep one labelled digit: ``pixels`` as drawn or uploaded, ``digit`` its (28, 28) preprocessed form.
        A new set is ``by``'s.

        Args:
            set_name: the set (made when missing).
            label: the digit that was drawn (see ``check_label``).
            pixels: the input as drawn or uploaded, e.g. the canvas's RGBA array.
            digit: its preprocessed form, ``inference.preprocess(pixels).digit``.
            by: who keeps it.

        Returns:
            The kept digit, with its new id.

        Raises:
            DigitSetError: a bad set name or label, or a digit that is not (28, 28) in [0, 1].
            PermissionDenied: ``by`` is not signed in, or the set is someone else's.
            StorageError: the set cannot be written (read-only, disk full); it is as it was.

        Example:
            >>> digit = preprocess(pixels).digit  # doctest: +SKIP
            >>> store.add("my-digits", 7, pixels, digit, by=LOCAL_USER).label  # doctest: +SKIP
            7
        """
        check_may_create(by, "keep your digits")
        self._check_may_change(set_name, by)
        value, array = check_label(label), _check_digit(digit)
        if not self.storage.exists(set_name):
            self._make_set(set_name, by)
        digit_id, created_at = uuid.uuid4().hex, time.time()
        self._write(
            set_name,
            digit_id,
            pixels=np.asarray(pixels),
            digit=array,
            label=np.int64(value),
            created_at=np.float64(created_at),
        )
        return PersonalDigit(set_name, digit_id, value, array, created_at)

    def _make_set(self, set_name: str, by: User) -> None:
        """Make the set as ``by``'s, in one step (its owner file published with it).

        Raises:
            StorageError: the digit sets' storage cannot be written (read-only, disk full).
        """
        with self.storage.staging() as staged:
            try:
                (staged / OWNER_FILE).write_text(by.name)
            except OSError as error:
                raise unwritable(self.storage.location(), error) from None
            try:
                self.storage.publish(staged, set_name)
            except FolderTaken:  # another session made the set at the same moment: it is theirs
                self._check_may_change(set_name, by)

    def _write(self, set_name: str, digit_id: str, **arrays: np.ndarray | np.generic) -> None:
        """Write one digit's .npz whole (``Storage.write_bytes``).

        Raises:
            StorageError: the set cannot be written (read-only, disk full); the digit is as it was.
        """
        buffer = io.BytesIO()
        np.savez_compressed(buffer, allow_pickle=False, **arrays)
        self.storage.write_bytes(set_name, f"{digit_id}{SUFFIX}", buffer.getvalue())

    def digits(self, set_name: str, *, by: User) -> list[PersonalDigit]:
        """Every digit of the set, oldest first.

        Args:
            set_name: the set.
            by: who reads.

        Returns:
            Its digits by the time they were added (empty for an unknown set).

        Raises:
            DigitSetError: ``set_name`` is not allowed.
            PermissionDenied: the set is someone else's and not shared.

        Example:
            >>> [digit.label for digit in DigitStore().digits("my-digits", by=LOCAL_USER)]  # doctest: +SKIP
            [7, 1, 7]
        """
        self.check_may_read(set_name, by)
        return self._digits(set_name)

    def _digits(self, set_name: str) -> list[PersonalDigit]:
        found = []
        for file in self.storage.files(check_set_name(set_name)):
            if not _is_digit_file(file.name):
                continue
            try:
                handle = self.storage.open(set_name, file.name)
            except FileNotFoundError:  # deleted since it was listed
                continue
            with handle, np.load(handle, allow_pickle=False) as stored:
                found.append(
                    PersonalDigit(
                        set_name,
                        file.name.removesuffix(SUFFIX),
                        int(stored["label"]),
                        stored["digit"].astype(np.float32),
                        float(stored["created_at"]),
                    )
                )
        return sorted(found, key=lambda digit: (digit.created_at, digit.id))

    def pixels(self, set_name: str, digit_id: str, *, by: User) -> np.ndarray:
        """The input of one digit as it was drawn or uploaded.

        Raises:
            DigitSetError: a bad set name, or the set has no such digit.
            PermissionDenied: the set is someone else's and not shared.
        """
        self.check_may_read(set_name, by)
        return self._pixels(set_name, digit_id)

    def _pixels(self, set_name: str, digit_id: str) -> np.ndarray:
        with self._open_digit(set_name, digit_id) as stored:
            return stored["pixels"]

    def relabel(self, set_name: str, digit_id: str, label: object, *, by: User) -> PersonalDigit:
        """Give one digit another label (its file is written anew, whole).

        Args:
            set_name: the digit's set.
            digit_id: the digit's id (``PersonalDigit.id``).
            label: the new label (see ``check_label``).
            by: who asks.

        Returns:
            The digit with its new label.

        Raises:
            DigitSetError: a bad set name or label, or the set has no such digit.
            PermissionDenied: ``by`` is not signed in, or is neither the set's owner nor an admin.
            StorageError: the set cannot be written (read-only, disk full); the digit keeps its label.

        Example:
            >>> store.relabel("my-digits", digit.id, 1, by=LOCAL_USER).label  # doctest: +SKIP
            1
        """
        self._check_may_change(set_name, by)
        value = check_label(label)
        with self._open_digit(set_name, digit_id) as stored:
            arrays: dict[str, Any] = {name: stored[name] for name in stored.files}
        arrays["label"] = np.int64(value)
        self._write(set_name, digit_id, **arrays)
        return PersonalDigit(
            set_name, digit_id, value, arrays["digit"].astype(np.float32), float(arrays["created_at"])
        )

    def delete(self, set_name: str, digit_id: str, *, by: User) -> None:
        """Remove one digit (for the set's owner or an admin).

        Args:
            set_name: the digit's set.
            digit_id: the digit's id (``PersonalDigit.id``).
            by: who asks.

        Raises:
            DigitSetError: a bad set name, or the set has no such digit.
            PermissionDenied: ``by`` is not signed in, or is neither the set's owner nor an admin.
            StorageError: the set cannot be written (read-only); the digit stays.

        Example:
            >>> store.delete("my-digits", digit.id, by=LOCAL_USER)  # doctest: +SKIP
        """
        self._check_may_change(set_name, by)
        try:
            self.storage.delete_file(set_name, self._digit_file(set_name, digit_id))
        except FileNotFoundError:
            raise _no_digit(set_name, digit_id) from None

    def delete_set(self, set_name: str, *, by: User) -> None:
        """Remove a whole set (it vanishes in one step), for its owner or an admin.

        Raises:
            DigitSetError: a bad set name, or no such set.
            PermissionDenied: ``by`` is not signed in, or is neither the set's owner nor an admin.
            StorageError: the digit sets' storage cannot be written (read-only).
        """
        self._check_may_change(set_name, by)
        try:
            self.storage.delete_folder(set_name)
        except FileNotFoundError:
            raise DigitSetError(
                f"there is no digit set {set_name!r}; known: {', '.join(self.set_names(by=by)) or 'none'}."
            ) from None

    def counts(self, set_name: str, *, by: User) -> list[int]:
        """How many digits of each class 0-9 the set holds.

        Args:
            set_name: the set.
            by: who reads.

        Returns:
            Ten counts, for the digits 0 to 9 (all zero for an unknown set).

        Raises:
            DigitSetError: ``set_name`` is not allowed.
            PermissionDenied: the set is someone else's and not shared.

        Example:
            >>> DigitStore().counts("my-digits", by=LOCAL_USER)  # doctest: +SKIP
            [0, 1, 0, 0, 0, 0, 0, 2, 0, 0]
        """
        digits = self.digits(set_name, by=by)
        return np.bincount([digit.label for digit in digits], minlength=NUM_DIGITS).tolist()

    def export_npz(self, set_name: str, *, by: User) -> bytes:
        """The set as an .npz, oldest digit first.

        Args:
            set_name: the set.
            by: who reads.

        Returns:
            The file's bytes: ``digits`` (N, 28, 28) float32, ``labels`` (N,) int64, ``ids`` and,
            when all inputs have one shape and dtype (the canvas's), ``pixels`` (N, ...) as drawn.

        Raises:
            DigitSetError: a bad set name, or the set holds no digits.
            PermissionDenied: the set is someone else's and not shared.

        Example:
            >>> exported = DigitStore().export_npz("my-digits", by=LOCAL_USER)  # doctest: +SKIP
            >>> np.load(io.BytesIO(exported))["labels"]  # doctest: +SKIP
            array([7, 1, 7])
        """
        self.check_may_read(set_name, by)
        digits = self._nonempty(set_name)
        arrays = {
            "digits": np.stack([digit.digit for digit in digits]),
            "labels": np.asarray([digit.label for digit in digits], dtype=np.int64),
            "ids": np.asarray([digit.id for digit in digits]),
        }
        inputs = [self._pixels(set_name, digit.id) for digit in digits]
        if len({(array.shape, array.dtype) for array in inputs}) == 1:
            arrays["pixels"] = np.stack(inputs)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    def export_zip(self, set_name: str, *, by: User) -> bytes:
        """The set as a zip of PNGs.

        Args:
            set_name: the set.
            by: who reads.

        Returns:
            The zip's bytes: ``LABEL/ID.png`` (the input as drawn) and ``LABEL/ID-28x28.png`` (the
            preprocessed digit) for each digit.

        Raises:
            DigitSetError: a bad set name, or the set holds no digits.
            PermissionDenied: the set is someone else's and not shared.

        Example:
            >>> exported = DigitStore().export_zip("my-digits", by=LOCAL_USER)  # doctest: +SKIP
            >>> Path("my-digits.zip").write_bytes(exported)  # doctest: +SKIP
        """
        from PIL import Image

        self.check_may_read(set_name, by)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for digit in self._nonempty(set_name):
                for suffix, image in (
                    ("", self._pixels(set_name, digit.id)),
                    ("-28x28", (digit.digit * 255).round().astype(np.uint8)),
                ):
                    png = io.BytesIO()
                    array = (
                        image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).astype(np.uint8)
                    )
                    Image.fromarray(array).save(png, format="PNG")
                    archive.writestr(f"{digit.label}/{digit.id}{suffix}.png", png.getvalue())
        return buffer.getvalue()

    def _nonempty(self, set_name: str) -> list[PersonalDigit]:
        digits = self._digits(set_name)
        if not digits:
            raise DigitSetError(
                f"the digit set {set_name!r} holds no digits; add some on the Draw page (correct a reading) "
                f"or with `python -m zoo digits add {set_name} LABEL IMAGE`."
            )
        return digits

    def fine_tuning_split(self, set_name: str) -> FineTuningSplit:
        """The set's training and held-out parts (``held_out_mask``), checked for fine-tuning (who may
        fine-tune on it is checked when the run is admitted: ``training.check_fine_tuning``).

        Raises:
            DigitSetError: the set is empty, holds one class only, or no digit twice (nothing to test on).
        """
        digits = self._nonempty(set_name)
        labels = np.asarray([digit.label for digit in digits])
        classes = np.unique(labels)
        if len(classes) < 2:
            raise DigitSetError(
                f"the digit set {set_name!r} holds only {labels[0]}s ({len(labels)}); fine-tuning needs at "
                "least two different digits, or the model would learn to answer one digit for everything."
            )
        held_out = held_out_mask(labels)
        if not held_out.any():
            raise DigitSetError(
                f"the digit set {set_name!r} holds one drawing of each digit "
                f"({', '.join(map(str, labels))}), so none is left to test on: draw a second of at least one "
                "of them (a drawing of each digit drawn twice is held out to test the fine-tuned model)."
            )
        return FineTuningSplit(
            set_name,
            tuple(digit.id for digit in digits),
            np.stack([digit.digit for digit in digits]),
            labels,
            held_out,
        )
