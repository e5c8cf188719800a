"""My digits: personal labelled sets of drawn digits, kept in the local zoo, never mixed into MNIST silently.

A set is a directory ``$ZOO_HOME/digits/SET/``; each digit is one ``.npz`` file holding the input as
it was drawn or uploaded (e.g. the 280x280 RGBA canvas), its 28x28 preprocessed form and its label.
Every write goes to a hidden temporary file that is renamed into place, so a reader never sees half a
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

import io
import os
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
from zoo.core.names import DEFAULT_SET, check_set_name
from zoo.core.paths import unwritable, zoo_home
from zoo.core.vocabulary import MNIST_IMAGE_SHAPE, NUM_DIGITS

HOLD_OUT_EVERY = 5  # of each digit's drawings (by time added), the 2nd, 7th, 12th... are held out
SUFFIX = ".npz"
OWNER_FILE = (
    ".owner"  # in a set's directory: who made the set (a set made before owners is the local owner's)
)
SHARED_FILE = ".shared"  # in a set's directory: its owner shares it with everyone, read-only


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
    """Personal digit sets under ``root`` (default: ``$ZOO_HOME/digits``)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else zoo_home() / "digits"
        # created with the first digit: a read-only ZOO_HOME still lets the Draw page read digits

    def _set_path(self, set_name: str) -> Path:
        return self.root / check_set_name(set_name)

    def _digit_path(self, set_name: str, digit_id: str) -> Path:
        path = self._set_path(set_name) / f"{digit_id}{SUFFIX}"
        if not re.fullmatch(r"[0-9a-f]{32}", digit_id) or not path.is_file():
            raise DigitSetError(f"the set {set_name!r} has no digit {digit_id!r}; list it to see its digits.")
        return path

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
        path = self._set_path(set_name) / OWNER_FILE
        return path.read_text().strip() if path.is_file() else LOCAL_OWNER

    def _check_may_change(self, set_name: str, by: User) -> None:
        if self._set_path(set_name).is_dir():
            check_may_manage(by, self.owner(set_name), f"the digit set {set_name!r}")

    def is_shared(self, set_name: str) -> bool:
        """Whether the set's owner shares it with everyone (to see, download and fine-tune on, not to change).

        Raises:
            DigitSetError: ``set_name`` is not allowed.
        """
        return (self._set_path(set_name) / SHARED_FILE).is_file()

    def may_read(self, set_name: str, by: User) -> bool:
        """Whether ``by`` may see, download or fine-tune on the set's digits: its owner, an admin, anyone
        when it is shared, and anyone while there is no such set (it holds nothing to see).

        Raises:
            DigitSetError: ``set_name`` is not allowed.
        """
        if not self._set_path(set_name).is_dir():
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

        Example:
            >>> DigitStore().set_shared("alice-digits", True, by=alice)  # doctest: +SKIP
        """
        self.check_may_read(set_name, by)
        self._check_may_change(set_name, by)
        marker = self._set_path(set_name) / SHARED_FILE
        if not marker.parent.is_dir():
            raise DigitSetError(
                f"there is no digit set {set_name!r}; known: {', '.join(self.set_names(by=by)) or 'none'}."
            )
        if shared:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def set_names(self, *, by: User) -> list[str]:
        """The sets that hold at least one digit and that ``by`` may read (see ``may_read``).

        Returns:
            Their names, sorted (empty before the first digit is kept).

        Example:
            >>> DigitStore().set_names(by=LOCAL_USER)  # doctest: +SKIP
            ['my-digits']
        """
        if not self.root.is_dir():
            return []
        return sorted(
            path.name
            for path in self.root.iterdir()
            if path.is_dir()
            and not path.name.startswith(".")
            and any(path.glob(f"*{SUFFIX}"))
            and self.may_read(path.name, by)
        )

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
        directory = self._set_path(set_name)
        if not directory.is_dir():
            self._make_set(directory, by)
        digit_id, created_at = uuid.uuid4().hex, time.time()
        self._write(
            directory / f"{digit_id}{SUFFIX}",
            pixels=np.asarray(pixels),
            digit=array,
            label=np.int64(value),
            created_at=np.float64(created_at),
        )
        return PersonalDigit(set_name, digit_id, value, array, created_at)

    def _make_set(self, directory: Path, by: User) -> None:
        """Make the set ``directory`` as ``by``'s, in one step (a temporary directory renamed into place).

        Raises:
            StorageError: the digit sets' directory cannot be written (read-only, disk full).
        """
        temporary = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary.mkdir()
            (temporary / OWNER_FILE).write_text(by.name)
        except OSError as error:
            shutil.rmtree(temporary, ignore_errors=True)
            raise unwritable(self.root, error) from None
        try:
            os.rename(temporary, directory)
        except OSError:  # another session made the set at the same moment: it is theirs
            shutil.rmtree(temporary, ignore_errors=True)
            self._check_may_change(directory.name, by)

    def _write(self, path: Path, **arrays: np.ndarray | np.generic) -> None:
        """Write an .npz next to ``path`` and rename it into place (atomic on one file system).

        Raises:
            StorageError: the set's directory cannot be written (read-only, disk full); ``path``
                is as it was.
        """
        temporary = path.with_name(f".tmp-{uuid.uuid4().hex}{SUFFIX}")
        try:
            with temporary.open("wb") as handle:
                np.savez_compressed(handle, allow_pickle=False, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise unwritable(path.parent, error) from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

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
        directory = self._set_path(set_name)
        found = []
        for path in directory.glob(f"*{SUFFIX}") if directory.is_dir() else []:
            if path.name.startswith("."):
                continue
            with np.load(path, allow_pickle=False) as stored:
                found.append(
                    PersonalDigit(
                        set_name,
                        path.stem,
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
        with np.load(self._digit_path(set_name, digit_id), allow_pickle=False) as stored:
            return stored["pixels"]

    def relabel(self, set_name: str, digit_id: str, label: object, *, by: User) -> PersonalDigit:
        """Give one digit another label (the file is rewritten and renamed into place).

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
        path = self._digit_path(set_name, digit_id)
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        arrays["label"] = np.int64(value)
        self._write(path, **arrays)
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
        path = self._digit_path(set_name, digit_id)
        try:
            path.unlink()
        except OSError as error:
            raise unwritable(path.parent, error) from None

    def delete_set(self, set_name: str, *, by: User) -> None:
        """Remove a whole set (renamed away first, so it vanishes in one step), for its owner or an admin."""
        self._check_may_change(set_name, by)
        path = self._set_path(set_name)
        if not path.is_dir():
            raise DigitSetError(
                f"there is no digit set {set_name!r}; known: {', '.join(self.set_names(by=by)) or 'none'}."
            )
        retired = self.root / f".old-{uuid.uuid4().hex}"
        os.rename(path, retired)
        shutil.rmtree(retired, ignore_errors=True)

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
