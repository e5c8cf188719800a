"""The local zoo: one directory per trained model, written atomically and loaded safely.

A model directory holds ``model.keras`` (Keras 3 format, loaded with ``safe_mode=True``),
``config.json`` (a ``ModelConfig``: kind, training spec, data source, run id, Hub origin),
``metrics.json`` (evaluation) and ``history.csv`` (per-epoch metrics). ``open_local_zoo`` is how
commands and pages open it: with the shipped starter model (``zoo/starter/``) in it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import os
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from zoo.core.errors import ModelStoreError, ZooError
from zoo.core.hosting import PermissionDenied, User, check_may_manage, check_within, load_config
from zoo.core.names import check_model_name
from zoo.core.paths import unwritable
from zoo.core.scores import Scores
from zoo.core.spec import Lineage, TrainSpec
from zoo.core.vocabulary import KIND_SHAPES
from zoo.storage.files import (
    FolderTaken,
    Storage,
    StoredFile,
    folder_version,
    storage_for,
)

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)
FORMAT = "zoo-studio-model/1"
MODELS_FOLDER = "models"  # of the storage ZOO_MODEL_STORE names: the local zoo
MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
MODEL_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, HISTORY_FILE)
# A model's description files (config.json, metrics.json, history.csv; Keras' config.json and
# metadata.json) take a few KB; what is larger is damaged or forged and is refused before it is read.
MAX_DESCRIPTION_BYTES = 4_000_000
DAMAGED_DIRECTORY_FIX = "the model directory is corrupt: delete it, or save the model again."
DAMAGED_FILE_FIX = "the file is damaged or forged: delete it, or save or pull the model again."
# Keras' own model layout (a .keras archive's members, or a folder's files such as a Hub repo's).
KERAS_CONFIG_FILE = "config.json"
KERAS_WEIGHTS_FILE = "model.weights.h5"
KERAS_DESCRIPTION_FILES = (KERAS_CONFIG_FILE, "metadata.json")  # what Keras reads besides the weights
KERAS_ARCHIVE_MEMBERS = (*KERAS_DESCRIPTION_FILES, KERAS_WEIGHTS_FILE)
BYTES_PER_VALUE = 4  # float32
UNKEPT_LIFETIME_SECONDS = 24 * 3600  # how long a model nobody kept stays in the zoo's directory
# Where a data source sentence ("full MNIST from /data/mnist.npz (60,000 train ...)") ends its first words.
DATA_SUMMARY_END = re.compile(r" from | downloaded | \(|;")


@dataclass(frozen=True)
class ModelOrigin:
    """Where a model pulled from a Hub came from: the repo, the exact commit and the revision asked for."""

    repo_id: str
    commit: str
    revision: str
    endpoint: str


@dataclass(frozen=True)
class ModelConfig:
    """How a model of the local zoo was made: what ``config.json`` (and a Hub repo's ``zoo.json``) holds.

    Written by the worker at the end of a run and by ``hub.pull``; ``ModelStore.save`` adds the
    creation time.

    Example:
        >>> ModelConfig("cnn", data_source="embedded MNIST subset", status="completed").kind
        'cnn'
    """

    kind: str  # one of vocabulary.MODEL_KINDS
    spec: TrainSpec | None = None  # None: not recorded (e.g. a model pulled from a plain Keras repo)
    data_source: str | None = None
    run_id: str | None = None
    status: str | None = None  # how the run ended: completed or stopped
    origin: ModelOrigin | None = None  # set for a model pulled from a Hub
    created_at: float | None = None
    lineage: Lineage | None = None  # a fine-tuned model's base model and digits
    owner: str | None = None  # who trained or pulled it (hosted mode); None: shipped or older models
    # False: a Playground run's model, left out of the zoo's lists until someone keeps it (``keep``),
    # removed with its run or after UNKEPT_LIFETIME_SECONDS (``remove_unkept``).
    kept: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: the layout of ``config.json`` (the spec and lineage as their
        ``to_dict`` writes them), the inverse of ``from_dict``."""
        return {
            **dataclasses.asdict(self),
            "spec": self.spec.to_dict() if self.spec is not None else None,
            "lineage": self.lineage.to_dict() if self.lineage is not None else None,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Read the values of a ``config.json`` (other keys, such as its format marker, are ignored).

        Raises:
            ModelStoreError: a field is missing or malformed (the training spec one ``TrainSpec`` refuses).
        """
        known = {field.name for field in dataclasses.fields(cls)}
        fields = {key: value for key, value in values.items() if key in known}
        try:
            if fields.get("origin") is not None:
                fields["origin"] = ModelOrigin(**fields["origin"])
            # an empty record ({}) is one not recorded, as older versions read it
            fields["spec"] = TrainSpec.from_dict(fields["spec"]) if fields.get("spec") else None
            fields["lineage"] = Lineage.from_dict(fields["lineage"]) if fields.get("lineage") else None
            return cls(**fields)
        except (TypeError, AttributeError, ZooError) as error:
            raise ModelStoreError(f"the model config is malformed ({str(error).rstrip('.')}).") from None


@dataclass(frozen=True)
class ModelEntry:
    """A model folder in the local zoo, described by its config and metrics."""

    name: str
    config: ModelConfig
    metrics: Scores | None  # its evaluation (metrics.json); None when it was not evaluated
    version: str  # changes whenever a file of the model changes (``files.folder_version``): a cache key

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def owner(self) -> str | None:
        """Who made it (trained or pulled it); None for shipped and older models, which only admins manage."""
        return self.config.owner

    @property
    def accuracy(self) -> float | None:
        """Its test accuracy, when it was evaluated."""
        return self.metrics.accuracy if self.metrics is not None else None

    @property
    def data_summary(self) -> str:
        """What it was trained on, in a few words: 'full MNIST', 'embedded MNIST subset', 'moons'..."""
        if not self.config.data_source:
            return "training data not recorded"
        return DATA_SUMMARY_END.split(self.config.data_source, maxsplit=1)[0]

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table or a ``--json`` listing (made at that edge, read by nothing else)."""
        origin = self.config.origin
        return {
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "created_at": self.config.created_at,
            "accuracy": self.accuracy,
            "data_source": self.config.data_source,
            "run_id": self.config.run_id,
            "origin": origin.repo_id if origin else None,
            "revision": origin.commit if origin else None,
        }


@dataclass(frozen=True)
class DamagedModel:
    """A folder of the local zoo that holds a model's files but cannot be used, and what to do."""

    name: str
    location: str  # where its folder is (``Storage.location``)
    problem: str  # what is wrong, and the fix

    def to_row(self) -> dict[str, Any]:
        """One row for ``--json`` listings, beside the models' (``ModelEntry.to_row``)."""
        return {"name": self.name, "path": self.location, "damaged": self.problem}


@dataclass(frozen=True)
class LoadedModel:
    """A model loaded from the local zoo with its entry and per-epoch history."""

    entry: ModelEntry
    model: keras.Model
    history: list[dict[str, float]]


def check_model_shapes(model: keras.Model, kind: str, origin: str) -> None:
    """Check that ``model`` takes and returns what a ``kind`` model must.

    Raises:
        ModelStoreError: naming ``origin``, the shapes found and the shapes expected.
    """
    expected_input, expected_output = KIND_SHAPES[kind]
    input_shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
    output_shape = tuple(model.output_shape[1:]) if hasattr(model, "output_shape") else None
    if input_shape != expected_input or output_shape != expected_output:
        raise ModelStoreError(
            f"{origin}: the model maps {input_shape} to {output_shape}, but a {kind} model must map "
            f"{expected_input} to {expected_output}."
        )


class ModelStore:
    """The local zoo: one folder per model in ``storage`` (default: the ``models`` folder of
    ``ZOO_MODEL_STORE``, else ``$ZOO_HOME/models``), read and written through the storage seam
    (``zoo.storage.files``) alone.

    Args:
        storage: the storage of the models, or a directory that holds them.
    """

    def __init__(self, storage: Storage | str | os.PathLike | None = None) -> None:
        self.storage: Storage = storage_for(storage, MODELS_FOLDER)
        # The entries of the last listing by (name, version): a version changes with any of its files,
        # so an entry read once holds until then; a listing reads again only what changed (an object
        # store answers each read over the network, and pages list the models at every full rerun).
        self._entries: dict[tuple[str, str], ModelEntry] = {}

    @property
    def location(self) -> str:
        """Where the zoo is, as messages show it (a directory, or a URL)."""
        return self.storage.location()

    def save(
        self,
        model: keras.Model,
        name: str,
        *,
        config: ModelConfig,
        metrics: Scores | None = None,
        history: list[dict[str, float]] | None = None,
        overwrite: bool = False,
        unique: bool = False,
    ) -> ModelEntry:
        """Write a model folder atomically: all files go to a staging folder that is published whole
        (``Storage.publish``), so readers never see half a model.

        Publishing is also what takes the name: it fails when a folder of that name appeared meanwhile
        (another process saving under the same name at the same moment), so a save never replaces
        another model unless ``overwrite`` asks it to.

        The store adds the format marker, and the creation time unless ``config`` has one.

        Args:
            model: a Keras model whose shapes fit ``config.kind``.
            name: the folder name (letters, digits, '.', '_', '-').
            config: how the model was made.
            metrics: its evaluation (``metrics.json``).
            history: per-epoch metrics (``history.csv``).
            overwrite: replace a model of that name.
            unique: save as ``name``, or as ``name-2``, ``name-3``... whichever is free when the model
                is published (the returned entry says which).

        Returns:
            The new entry, under the name it was saved as.

        Raises:
            ModelStoreError: bad name, kind or shapes, or ``name`` exists and neither ``overwrite`` nor
                ``unique`` is set.
            StorageError: the zoo's storage cannot be written (read-only, disk full); nothing is saved.

        Example:
            >>> ModelStore().save(model, "my-cnn", config=ModelConfig("cnn"))  # doctest: +SKIP
        """
        check_model_name(name)
        if config.kind not in KIND_SHAPES:
            raise ModelStoreError(
                f"config kind {config.kind!r} is unknown: use one of {', '.join(KIND_SHAPES)}."
            )
        check_model_shapes(model, config.kind, f"model {name!r}")
        if self.storage.exists(name) and not (overwrite or unique):
            raise self._taken(name)  # said before the model is written; publishing is the real guard
        full_config = {**config.to_dict(), "format": FORMAT, "created_at": config.created_at or time.time()}
        with self.storage.staging() as staged:
            try:
                model.save(staged / MODEL_FILE)
                write_json(staged / CONFIG_FILE, full_config)
                write_json(staged / METRICS_FILE, metrics.to_dict() if metrics is not None else {})
                _write_history(staged / HISTORY_FILE, history or [])
            except OSError as error:
                raise unwritable(self.location, error) from None
            if overwrite:
                self.storage.publish(staged, name, replace=True)
            else:
                name = self._publish_under_free_name(staged, name, unique)
        log.info("saved model %s (%s) in %s", name, config.kind, self.location)
        return self.entry(name)

    def _publish_under_free_name(self, staged: Path, name: str, unique: bool) -> str:
        """Publish ``staged`` as ``name`` (or, ``unique``, as the first of ``name-2``, ``name-3``...
        that is free) and return the name it got."""
        candidate, number = name, 1
        while True:
            try:
                self.storage.publish(staged, check_model_name(candidate))
                return candidate
            except FolderTaken:
                if not unique:
                    raise self._taken(name) from None
            number += 1
            candidate = f"{name}-{number}"

    def _taken(self, name: str) -> ModelStoreError:
        return ModelStoreError(
            f"a model named {name!r} already exists in {self.location}; choose another name "
            "or delete the old one first."
        )

    def has(self, name: str) -> bool:
        """Whether the zoo has a folder ``name`` (a model, or what is left of one).

        Raises:
            ModelStoreError: ``name`` is not allowed.
        """
        return self.storage.exists(check_model_name(name))

    def entries(self, include_unkept: bool = False) -> list[ModelEntry]:
        """Every valid model in the zoo, newest first; foreign folders and damaged models (see
        ``damaged``) are left out.

        Args:
            include_unkept: also the models of Playground runs nobody kept (``ModelConfig.kept``).

        Returns:
            The entries, by ``config.created_at``, newest first.

        Example:
            >>> [entry.name for entry in open_local_zoo().entries()]  # doctest: +SKIP
            ['my-cnn', 'mnist-cnn']
        """
        return [entry for entry in self._survey()[0] if include_unkept or entry.config.kept]

    def damaged(self) -> list[DamagedModel]:
        """The folders that hold a model's files (``model.keras``, ``config.json``...) but that
        ``entries`` leaves out: a config that is not valid, a model file that is not a whole Keras
        archive. Nothing is loaded (the archive's zip directory is read).

        Returns:
            Each with what is wrong and the fix, by name.

        Example:
            >>> [model.name for model in open_local_zoo().damaged()]  # doctest: +SKIP
            ['cut-short']
        """
        return self._survey()[1]

    def _survey(self) -> tuple[list[ModelEntry], list[DamagedModel]]:
        found, damaged, known, listed = [], [], self._entries, {}
        for name in self.storage.folders():
            files = self.storage.files(name)
            key = (name, folder_version(files))
            try:
                entry = known.get(key) or self._entry(name, files)
                if key not in known:
                    with self._open(name, MODEL_FILE) as model_file:
                        check_keras_archive(model_file, self.storage.location(name, MODEL_FILE))
                found.append(entry)
                listed[key] = entry
            except ModelStoreError as error:
                if any(file.name in MODEL_FILES for file in files):  # not a foreign folder
                    where = self.storage.location(name)
                    fix = (
                        f"delete the folder {where}, or put its files back from a backup "
                        "(or train or pull the model again)"
                    )
                    damaged.append(DamagedModel(name, where, f"{str(error).rstrip('.')}; {fix}."))
        self._entries = listed  # models gone or changed are forgotten
        found.sort(key=lambda entry: entry.config.created_at or 0, reverse=True)
        return found, damaged

    def names_by_run(self) -> dict[str, str]:
        """The name each run's model has in the zoo now, by run id (follows renames and deletions,
        unlike ``Run.model_name``, the name it was saved under).

        Returns:
            Model names by the run id their config records (models recording none are left out);
            runs whose model is gone are absent.

        Example:
            >>> store.names_by_run().get(run.id)  # doctest: +SKIP
            'mnist-cnn-3'
        """
        return {
            entry.config.run_id: entry.name
            for entry in self.entries(include_unkept=True)
            if entry.config.run_id
        }

    def entry(self, name: str) -> ModelEntry:
        """Read and validate a model folder's description (not its weights).

        Args:
            name: the model's name in the zoo.

        Returns:
            Its entry: config, scores (None when it has no ``metrics.json``) and version.

        Raises:
            ModelStoreError: a name that is not allowed, no such model, or its files are missing
                or not Zoo Studio's.

        Example:
            >>> open_local_zoo().entry("mnist-cnn").kind  # doctest: +SKIP
            'cnn'
        """
        return self._entry(check_model_name(name), self.storage.files(name))

    def _entry(self, name: str, files: list[StoredFile]) -> ModelEntry:
        if not files and not self.storage.exists(name):
            known = ", ".join(self.storage.folders())
            raise ModelStoreError(
                f"no model named {name!r} in {self.location}; known models: {known or 'none yet'}."
            )
        sizes = {file.name: file.size for file in files}
        missing = [file for file in (MODEL_FILE, CONFIG_FILE) if file not in sizes]
        if missing:
            raise ModelStoreError(
                f"{self.storage.location(name)} is not a Zoo Studio model: {', '.join(missing)} missing."
            )
        values = self._read_json(name, CONFIG_FILE, sizes[CONFIG_FILE])
        if values.get("format") != FORMAT or values.get("kind") not in KIND_SHAPES:
            raise ModelStoreError(
                f"{self.storage.location(name, CONFIG_FILE)} is not a Zoo Studio model config (format "
                f"{FORMAT} with kind 'cnn' or 'binary' expected)."
            )
        config = ModelConfig.from_dict(values)
        metrics = self._scores(name, sizes[METRICS_FILE]) if METRICS_FILE in sizes else None
        return ModelEntry(name=name, config=config, metrics=metrics, version=folder_version(files))

    def _scores(self, name: str, size: int) -> Scores | None:
        """A model's evaluation from its ``metrics.json`` (None when it is empty: the model was not
        evaluated).

        Raises:
            ModelStoreError: the file is unreadable, or not a Zoo Studio evaluation.
        """
        values = self._read_json(name, METRICS_FILE, size)
        try:
            return Scores.from_dict(values) if values else None
        except ZooError as error:
            raise ModelStoreError(f"{self.storage.location(name, METRICS_FILE)}: {error}") from None

    def _read_json(self, name: str, file: str, size: int) -> dict[str, Any]:
        """A JSON object of a model folder, its size checked before it is read.

        Raises:
            ModelStoreError: the file is too large, unreadable, not JSON, or not an object.
        """
        where = self.storage.location(name, file)
        check_description_size(size, where, DAMAGED_DIRECTORY_FIX)
        try:
            data = json.loads(self.storage.read_bytes(name, file))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelStoreError(
                f"{where} is not valid JSON ({error}); the model directory is corrupt."
            ) from None
        if not isinstance(data, dict):
            raise ModelStoreError(f"{where} must hold a JSON object; the model directory is corrupt.")
        return data

    def _open(self, name: str, file: str) -> IO[bytes]:
        """A file of a model folder, open for reading.

        Raises:
            ModelStoreError: it cannot be read.
        """
        try:
            return self.storage.open(name, file)
        except OSError as error:
            where = self.storage.location(name, file)
            raise ModelStoreError(f"{where} cannot be read ({error.strerror or error}).") from None

    def model_file(self, name: str) -> Path:
        """The ``model.keras`` of a model as a file on this machine, for Keras to load.

        Raises:
            ModelStoreError: ``name`` is not allowed.
        """
        return self.storage.local_path(check_model_name(name), MODEL_FILE)

    def history(self, name: str) -> list[dict[str, float]]:
        """A model's per-epoch metrics (``history.csv``; empty when it has none).

        Raises:
            ModelStoreError: ``name`` is not allowed, or the file is larger than a model's history can be.
        """
        sizes = {file.name: file.size for file in self.storage.files(check_model_name(name))}
        if HISTORY_FILE not in sizes:
            return []
        check_description_size(
            sizes[HISTORY_FILE], self.storage.location(name, HISTORY_FILE), DAMAGED_DIRECTORY_FIX
        )
        return parse_history(self.storage.read_bytes(name, HISTORY_FILE).decode())

    def copy_files(self, name: str, files: Sequence[str], folder: Path) -> list[str]:
        """Copy those of ``files`` a model has into ``folder`` on this machine (e.g. to push them).

        Returns:
            The names copied.

        Raises:
            ModelStoreError: ``name`` is not allowed.
        """
        copied = []
        for file in files:
            with contextlib.suppress(FileNotFoundError):
                (folder / file).write_bytes(self.storage.read_bytes(check_model_name(name), file))
                copied.append(file)
        return copied

    def load(self, name: str) -> LoadedModel:
        """Load a model with ``safe_mode=True`` and check its input and output shapes.

        Args:
            name: the model's name in the zoo.

        Returns:
            Its entry, the Keras model (not compiled) and its per-epoch history.

        Raises:
            ModelStoreError: no such model, or the folder or ``model.keras`` is corrupt, unsafe
                or the wrong shape.

        Example:
            >>> open_local_zoo().load("mnist-cnn").model.input_shape  # doctest: +SKIP
            (None, 28, 28, 1)
        """
        entry = self.entry(name)
        model = load_keras_file(self.model_file(name), self.storage.location(name, MODEL_FILE))
        check_model_shapes(model, entry.kind, self.storage.location(name))
        return LoadedModel(entry=entry, model=model, history=self.history(name))

    def delete(self, name: str, *, by: User) -> None:
        """Remove a model folder (it vanishes in one step).

        Args:
            name: the model's name in the zoo.
            by: who asks.

        Raises:
            ModelStoreError: no model ``name``.
            PermissionDenied: ``by`` is not signed in, or is neither the model's owner nor an admin.
            StorageError: the zoo's storage cannot be written.

        Example:
            >>> store.delete("my-cnn", by=LOCAL_USER)  # doctest: +SKIP
        """
        entry = self.entry(name)
        check_may_manage(by, entry.owner, f"model {name!r}")
        self.storage.delete_folder(name)
        log.info("deleted model %s from %s (asked by %s)", name, self.location, by.name)

    def rename(self, name: str, new_name: str, *, by: User) -> ModelEntry:
        """Give a model a new name (its folder is renamed in one step).

        Args:
            name: the model's name in the zoo.
            new_name: its new name (letters, digits, '.', '_', '-').
            by: who asks.

        Returns:
            The entry under its new name.

        Raises:
            ModelStoreError: no model ``name``, ``new_name`` is not allowed, or it is taken.
            PermissionDenied: ``by`` is not signed in, or is neither the model's owner nor an admin.

        Example:
            >>> store.rename("mnist-cnn-3", "best-cnn", by=LOCAL_USER).name  # doctest: +SKIP
            'best-cnn'
        """
        entry = self.entry(name)
        check_may_manage(by, entry.owner, f"model {name!r}")
        try:
            self.storage.rename_folder(name, check_model_name(new_name))
        except FolderTaken:
            raise ModelStoreError(
                f"a model named {new_name!r} already exists in {self.location}; choose another name."
            ) from None
        log.info("renamed model %s to %s in %s", name, new_name, self.location)
        return self.entry(new_name)

    def keep(self, name: str, *, by: User, new_name: str | None = None) -> ModelEntry:
        """Keep a model nobody kept yet (a Playground run's), under ``new_name`` if given: from then on
        the zoo lists it (Home, Draw, the Hub page, ``python -m zoo models``) and nothing removes it.

        Args:
            name: the model's name in the zoo.
            by: who asks.
            new_name: its name from now on (default: unchanged).

        Returns:
            The kept entry.

        Raises:
            ModelStoreError: no model ``name``, ``new_name`` is not allowed, or it is taken.
            PermissionDenied: ``by`` is not signed in, or is neither the model's owner nor an admin.

        Example:
            >>> store.keep("binary-3f9c0a1b2d4e", by=LOCAL_USER, new_name="my-spiral").name  # doctest: +SKIP
            'my-spiral'
        """
        entry = self.entry(name)
        check_may_manage(by, entry.owner, f"model {name!r}")
        if new_name is not None and new_name != name:
            entry = self.rename(name, new_name, by=by)
        sizes = {file.name: file.size for file in self.storage.files(entry.name)}
        values = self._read_json(entry.name, CONFIG_FILE, sizes.get(CONFIG_FILE, 0))
        # readers see the old file or the new, never half
        self.storage.write_bytes(entry.name, CONFIG_FILE, json_bytes({**values, "kept": True}))
        return self.entry(entry.name)

    def remove_unkept(self, older_than_seconds: float = UNKEPT_LIFETIME_SECONDS) -> list[str]:
        """Remove the models nobody kept that were made over ``older_than_seconds`` ago (housekeeping:
        whoever made them). Returns their names."""
        deadline = time.time() - older_than_seconds
        stale = [
            entry
            for entry in self.entries(include_unkept=True)
            if not entry.config.kept and (entry.config.created_at or 0) < deadline
        ]
        for entry in stale:
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                self.storage.delete_folder(entry.name)
                log.info("removed model %s, which nobody kept, from %s", entry.name, self.location)
        return [entry.name for entry in stale]


STARTER_DIRECTORY = Path(__file__).resolve().parents[1] / "starter"


def open_local_zoo(storage: Storage | str | os.PathLike | None = None) -> ModelStore:
    """The local zoo (default: ``ZOO_MODEL_STORE``'s, else ``$ZOO_HOME/models``) with the shipped
    starter models in it: every command and page opens it this way, so a fresh install lists, draws
    with and evaluates the starter.

    Args:
        storage: the zoo's storage, or its directory (see ``ModelStore``).

    Returns:
        The store; the starter is copied in when the zoo holds none of the shipped models.

    Example:
        >>> [entry.name for entry in open_local_zoo().entries()]  # doctest: +SKIP
        ['mnist-cnn']
    """
    store = ModelStore(storage)
    install_starter_models(store)
    return store


def install_starter_models(store: ModelStore | None = None, source: Path = STARTER_DIRECTORY) -> list[str]:
    """Copy the models shipped with Zoo Studio (``zoo/starter/NAME/``, complete model directories)
    into the local zoo when it holds none of them yet, so a fresh machine always has one.

    Each is copied to a staging folder and published, as ``save`` does. Returns the names copied
    (empty when the zoo already has a starter or none is shipped).

    Raises:
        StorageError: the zoo's storage cannot be written.
    """
    store = store or ModelStore()
    shipped = sorted(p for p in source.iterdir() if (p / MODEL_FILE).is_file()) if source.is_dir() else []
    if any(store.has(path.name) for path in shipped):
        return []
    installed = []
    for path in shipped:
        with store.storage.staging() as staged:
            try:
                shutil.copytree(path, staged, dirs_exist_ok=True)
            except OSError as error:
                raise unwritable(store.location, error) from None
            with contextlib.suppress(FolderTaken):  # another session installed it at the same moment
                store.storage.publish(staged, path.name)
                installed.append(path.name)
                log.info("installed the starter model %s in %s", path.name, store.location)
    return installed


def check_keras_archive(file: IO[bytes], origin: str) -> None:
    """Check that a ``.keras`` file is a whole Keras archive, from its zip directory alone (cheap:
    nothing is loaded), so that a file cut short or overwritten is found without loading TensorFlow.

    Args:
        file: the file, open for reading (seekable).
        origin: where it is, for the message.

    Raises:
        ModelStoreError: it is not a zip archive, or lacks its config, metadata or weights.
    """
    try:
        with zipfile.ZipFile(file) as archive:
            missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in archive.namelist()]
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelStoreError(f"{origin} is not a Keras model file ({error}).") from None
    if missing:
        raise ModelStoreError(f"{origin} is not a Keras model file ({', '.join(missing)} missing in it).")


@dataclass(frozen=True)
class ModelSize:
    """What a Keras model holds, judged from its files before anything of it is built."""

    parameters: int  # of the model its config describes
    weight_bytes: int  # of the arrays its weights file declares (each is read whole when loaded)
    activations: int  # values its layers output for one digit

    @property
    def memory_bytes(self) -> int:
        """What it takes loaded and reading one digit: float32 weights, the weights file's arrays as they
        are read, each layer's output and its gradient (the Draw page's saliency)."""
        return self.parameters * BYTES_PER_VALUE + self.weight_bytes + self.activations * BYTES_PER_VALUE * 2


def load_keras_file(path: Path, origin: str | None = None) -> keras.Model:
    """Load a ``.keras`` file (or Keras model folder) with ``safe_mode=True``; any failure becomes
    one clear error naming ``origin`` (default: the path).

    The model is measured first (``measure_keras_model``) and refused when it is beyond this host's
    limits on parameters and memory (``hosting.Limits``), so a small file that describes a huge model
    never allocates it: loading takes at most the memory those limits allow.

    Raises:
        ModelStoreError: the file is corrupt, not a Keras model, beyond the host's limits (saying what
            it holds, the limit and the setting that changes it), or needs unsafe deserialization (e.g.
            a Lambda layer), which is refused.
    """
    import keras

    origin = origin or str(path)
    try:
        check_model_size(measure_keras_model(path, origin), origin)
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ModelStoreError:
        raise
    except Exception as error:  # Keras raises many types for bad files; all mean "unusable"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "safe_mode" in str(error) or "unsafe" in str(error).lower():
            reason = "it needs unsafe deserialization (e.g. a Lambda layer), which Zoo Studio refuses"
        raise ModelStoreError(f"{origin} cannot be loaded as a Keras model: {reason[:300]}.") from None


def check_model_size(size: ModelSize, origin: str) -> None:
    """Refuse a model beyond this host's limits on parameters and memory (``hosting.load_config``).

    Raises:
        ModelStoreError: naming ``origin``, what it holds, the limit and the setting that changes it.
    """
    limits = load_config().limits
    memory_mb = math.ceil(size.memory_bytes / 2**20)
    try:
        check_within("parameters", size.parameters, limits.parameters, "the model's parameter count")
        check_within(
            "training_memory_mb",
            memory_mb,
            limits.training_memory_mb,
            "the memory the model takes loaded (MB)",
        )
    except PermissionDenied as error:
        raise ModelStoreError(f"{origin} is too big to load: {error}") from None


def measure_keras_model(path: Path, origin: str) -> ModelSize:
    """Measure the model of a ``.keras`` file (or Keras model folder) without building it: the sizes of
    its description files, the arrays its weights file declares, and the parameters and layer outputs of
    the model its config describes.

    Raises:
        ModelStoreError: a description file (config.json, metadata.json) larger than a model needs, or
            no config.json.
        Exception: whatever reading or deserializing a bad file raises (``load_keras_file`` says it).
    """
    with contextlib.ExitStack() as stack:
        archive = None if path.is_dir() else stack.enter_context(zipfile.ZipFile(path))
        if archive is None:
            sizes = {file.name: file.stat().st_size for file in path.iterdir() if file.is_file()}
        else:
            sizes = {member.filename: member.file_size for member in archive.infolist()}

        def open_file(name: str) -> IO[bytes]:
            return stack.enter_context((path / name).open("rb") if archive is None else archive.open(name))

        for name in KERAS_DESCRIPTION_FILES:
            if name in sizes:
                check_description_size(sizes[name], f"{name} in {origin}", DAMAGED_FILE_FIX)
        if KERAS_CONFIG_FILE not in sizes:
            raise ModelStoreError(
                f"{origin} cannot be loaded as a Keras model: it has no {KERAS_CONFIG_FILE}."
            )
        parameters, activations = _measure_layers(json.load(open_file(KERAS_CONFIG_FILE)))
        has_weights = KERAS_WEIGHTS_FILE in sizes
        weight_bytes = _declared_array_bytes(open_file(KERAS_WEIGHTS_FILE)) if has_weights else 0
    return ModelSize(parameters, weight_bytes, activations)


def _measure_layers(config: dict[str, Any]) -> tuple[int, int]:
    """The parameters and one digit's layer outputs of the model ``config`` describes, from a copy built
    in a thread of its own under ``keras.StatelessScope``: its variables get shapes but no values (nothing
    is allocated), and the thread's Keras state, which keeps them for a later initialisation, ends with it."""
    import keras

    measured: dict[str, Any] = {}

    def build() -> None:
        try:
            with keras.StatelessScope(initialize_variables=False):
                model = keras.saving.deserialize_keras_object(
                    {**config, "compile_config": None}, safe_mode=True
                )
                measured["parameters"] = sum(math.prod(variable.shape) for variable in model.weights)
                measured["activations"] = sum(map(_values_per_digit, model.layers))
        except Exception as error:  # raised again in the caller's thread, where load_keras_file says it
            measured["error"] = error

    thread = threading.Thread(target=build, name="zoo-measure-model")
    thread.start()
    thread.join()
    if "error" in measured:
        raise measured["error"]
    return measured["parameters"], measured["activations"]


def _values_per_digit(layer: keras.Layer) -> int:
    import keras

    try:
        outputs = keras.tree.flatten(layer.output)
    except (AttributeError, ValueError):  # a layer never called, or called more than once
        return 0
    return sum(math.prod(dimension or 1 for dimension in output.shape[1:]) for output in outputs)


def _declared_array_bytes(weights: Any) -> int:
    """The bytes of every array an HDF5 weights file declares (from its headers: an unwritten array
    takes no room in the file, yet reading it fills one of its declared shape)."""
    import h5py

    total = 0

    def add(_: str, item: Any) -> None:
        nonlocal total
        if isinstance(item, h5py.Dataset) and item.shape is not None:
            total += math.prod(item.shape) * item.dtype.itemsize

    with h5py.File(weights, "r") as file:
        file.visititems(add)
    return total


def check_description_size(size: int, what: str, fix: str) -> None:
    """Refuse a description file of a model (its config, metrics or history: a few KB) that is larger
    than ``MAX_DESCRIPTION_BYTES``, from its size, before it is read.

    Raises:
        ModelStoreError: ``what`` is too large; ``fix`` says what to do.
    """
    if size > MAX_DESCRIPTION_BYTES:
        raise ModelStoreError(
            f"{what} is {size / 1e6:,.1f} MB, more than the {MAX_DESCRIPTION_BYTES / 1e6:,.0f} MB a model's "
            f"description file may take (a real one takes a few KB); {fix}"
        )


def json_bytes(data: dict[str, Any]) -> bytes:
    """``data`` as indented, key-sorted JSON (the form of every JSON file in a model folder)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str).encode()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to a file as ``json_bytes`` does."""
    path.write_bytes(json_bytes(data))


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    columns = sorted({key for row in history for key in row}, key=lambda key: (key != "epoch", key))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def parse_history(text: str) -> list[dict[str, float]]:
    """Per-epoch metrics from the text of a ``history.csv``."""
    return [
        {key: float(value) for key, value in row.items() if value != ""}
        for row in csv.DictReader(io.StringIO(text, newline=""))
    ]


def read_history(path: Path) -> list[dict[str, float]]:
    """Per-epoch metrics from a ``history.csv`` file on this machine (empty when it is absent), such as
    one downloaded from a Hub.

    Raises:
        ModelStoreError: the file is larger than a model's history can be.
    """
    if not path.is_file():
        return []
    check_description_size(path.stat().st_size, str(path), DAMAGED_DIRECTORY_FIX)
    return parse_history(path.read_bytes().decode())
