"""The storage seam: where the local zoo's models and the personal digit sets are kept.

A ``Storage`` holds folders of files under one root: ``models/NAME/`` (a model's files) and
``digits/SET/`` (a set's digits). ``open_storage`` picks one from ``ZOO_MODEL_STORE``; its
kinds are ``LocalDirectory`` (the default: ``ZOO_HOME``'s folders, or any directory) and ``ObjectStore``
(``s3://bucket/prefix``). ``ModelStore`` and ``DigitStore`` read and write through this interface alone;
every kind passes tests/test_storage_files.py.

What every kind guarantees:

- a file is written whole or not at all (``write_bytes``): a reader sees the old file or the new;
- a folder appears whole (``publish``): it is filled in a staging folder (``staging``), then made
  visible in one step; a name is taken once: a second ``publish`` under it raises ``FolderTaken``
  (two saves under one name never replace each other) unless it asks to ``replace``;
- a folder vanishes in one step (``delete_folder``), and ``rename_folder`` never replaces one;
- each file has an ``etag`` that changes whenever the file is written again, so a folder's
  ``version`` (from its files) keys caches such as the Draw page's loaded model;
- ``local_path`` is a file on this machine for libraries that read paths (Keras): the file itself
  here, a cached download (by etag) for a remote kind.

How the object store (``ObjectStore``: ``s3://bucket/prefix``) keeps these: a folder ``F`` is a marker
object ``F/.folder`` naming a version, and its files are objects under ``.versions/VERSION/``.
``write_bytes`` is one PUT (atomic per object); ``publish`` uploads the staged files under a fresh
version, then writes the marker last with a conditional PUT (``If-None-Match: *``; ``replace``:
unconditional, then the old version is deleted), so a folder is listed only once it is whole and a
name is taken once; ``rename_folder`` writes the new marker (conditionally) before deleting the old;
``delete_folder`` deletes the marker first; ``etag`` is the version and the object's ETag; a reader
that meets a replaced version reads the folder again.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

from zoo.core.errors import StorageError, ZooError
from zoo.core.paths import model_store_url, unwritable, zoo_home

TEMPORARY_PREFIX = ".tmp-"  # staging folders and files being written: never listed
RETIRED_PREFIX = ".old-"  # a folder on its way out (replaced or deleted): never listed
# What renaming a folder onto a name says when something is there already: a folder (ENOTEMPTY on
# Linux, EEXIST elsewhere) or a file (ENOTDIR).
NAME_TAKEN = (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR)


class FolderTaken(ZooError):
    """A folder of that name exists already: ``publish`` or ``rename_folder`` did not replace it."""


@dataclass(frozen=True)
class StoredFile:
    """A file of a folder: its name, its size in bytes and its etag (changes when it is written again)."""

    name: str
    size: int
    etag: str


class Storage(Protocol):
    """Folders of files under one root (see the module's docstring for what each method guarantees).

    Folder and file names are single path parts checked by the caller (``check_model_name``,
    ``check_set_name``); names starting with '.' are the storage's own and never listed as folders.
    Reading what is not there raises ``FileNotFoundError``; a write that fails raises ``StorageError``
    in one line (which place, why, the fix) and leaves what was there as it was.
    """

    def location(self, folder: str | None = None, name: str | None = None) -> str:
        """Where the root, a folder or a file is, as messages show it (a path, or a URL)."""
        ...

    def within(self, folder: str) -> Storage:
        """The storage whose root is ``folder`` of this one (``models``, ``digits``)."""
        ...

    def folders(self) -> list[str]:
        """The names of the folders, sorted (none while the root does not exist)."""
        ...

    def exists(self, folder: str, name: str | None = None) -> bool:
        """Whether the folder (or the file ``name`` in it) exists."""
        ...

    def files(self, folder: str) -> list[StoredFile]:
        """The files of a folder, by name (empty when there is no such folder); files being written
        are left out."""
        ...

    def open(self, folder: str, name: str) -> BinaryIO:
        """A file, opened for reading: seekable, so a zip's directory is read without the rest."""
        ...

    def read_bytes(self, folder: str, name: str) -> bytes:
        """The whole content of a file."""
        ...

    def write_bytes(self, folder: str, name: str, data: bytes) -> None:
        """Write a file of an existing folder atomically (replacing one of that name)."""
        ...

    def delete_file(self, folder: str, name: str) -> None:
        """Remove a file of a folder."""
        ...

    def staging(self) -> contextlib.AbstractContextManager[Path]:
        """A new, empty folder on this machine to fill and then ``publish``; removed on leaving
        the ``with`` unless published."""
        ...

    def publish(self, staged: Path, folder: str, *, replace: bool = False) -> None:
        """Make a folder filled in ``staging`` visible as ``folder``, whole, in one step.

        Raises:
            FolderTaken: ``folder`` exists and ``replace`` is not set; nothing changed.
            StorageError: the storage cannot be written.
        """
        ...

    def rename_folder(self, folder: str, new_folder: str) -> None:
        """Give a folder another name in one step.

        Raises:
            FileNotFoundError: no folder ``folder``.
            FolderTaken: ``new_folder`` exists; nothing changed.
        """
        ...

    def delete_folder(self, folder: str) -> None:
        """Remove a folder and its files; it vanishes in one step."""
        ...

    def local_path(self, folder: str, name: str) -> Path:
        """A path on this machine holding the file, for libraries that read files by path."""
        ...


def folder_version(files: list[StoredFile]) -> str:
    """A version of a folder from its files' names, sizes and etags: it changes whenever a file of it
    is written, added or removed, or the folder is published anew (same content, same version)."""
    listing = "\n".join(f"{file.name}\t{file.size}\t{file.etag}" for file in sorted(files, key=_name))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _name(file: StoredFile) -> str:
    return file.name


class LocalDirectory:
    """A directory on this machine's file systems: each folder a directory, each file a file.

    Writes go to hidden temporary names that are renamed into place (atomic on one file system, so
    staging happens inside the root). The root is created with the first write: a read-only place
    still reads.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def location(self, folder: str | None = None, name: str | None = None) -> str:
        return str(self._path(folder, name))

    def within(self, folder: str) -> LocalDirectory:
        return LocalDirectory(self.root / folder)

    def folders(self) -> list[str]:
        try:
            with os.scandir(self.root) as entries:
                return sorted(
                    entry.name for entry in entries if not entry.name.startswith(".") and entry.is_dir()
                )
        except (FileNotFoundError, NotADirectoryError):
            return []

    def exists(self, folder: str, name: str | None = None) -> bool:
        path = self._path(folder, name)
        return path.is_dir() if name is None else path.is_file()

    def files(self, folder: str) -> list[StoredFile]:
        try:
            with os.scandir(self._path(folder)) as entries:
                found = [
                    _stored(entry.name, entry.stat())
                    for entry in entries
                    if not entry.name.startswith(TEMPORARY_PREFIX) and entry.is_file()
                ]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(found, key=_name)

    def open(self, folder: str, name: str) -> BinaryIO:
        return self._path(folder, name).open("rb")

    def read_bytes(self, folder: str, name: str) -> bytes:
        return self._path(folder, name).read_bytes()

    def write_bytes(self, folder: str, name: str, data: bytes) -> None:
        directory = self._path(folder)
        temporary = directory / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        try:
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before it is renamed in: a crash loses nothing kept
            os.replace(temporary, directory / name)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise unwritable(directory, error) from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def delete_file(self, folder: str, name: str) -> None:
        path = self._path(folder, name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise
        except OSError as error:
            raise unwritable(path.parent, error) from None

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        staged = self.root / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        try:
            staged.mkdir(parents=True)
        except OSError as error:
            raise unwritable(self.root, error) from None
        try:
            yield staged
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # gone already once published

    def publish(self, staged: Path, folder: str, *, replace: bool = False) -> None:
        if staged.parent != self.root or not staged.name.startswith(TEMPORARY_PREFIX):
            raise ValueError(f"{staged} is not a staging folder of {self.root}: fill one from staging().")
        target = self._path(folder)
        retired = self.root / f"{RETIRED_PREFIX}{uuid.uuid4().hex}"
        try:
            if replace:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(target, retired)
            # A directory rename does not replace a directory that holds anything (nor a file), so
            # two publishers under one name can never both take it.
            os.rename(staged, target)
        except OSError as error:
            with contextlib.suppress(OSError):  # the folder replaced goes back where it was
                os.rename(retired, target)
            if error.errno in NAME_TAKEN:
                raise FolderTaken(f"{target} exists already.") from None
            raise unwritable(self.root, error) from None
        shutil.rmtree(retired, ignore_errors=True)

    def rename_folder(self, folder: str, new_folder: str) -> None:
        target = self._path(new_folder)
        if target.exists():  # a rename onto an empty directory would replace it
            raise FolderTaken(f"{target} exists already.")
        try:
            os.rename(self._path(folder), target)
        except FileNotFoundError:
            raise
        except OSError as error:
            if error.errno in NAME_TAKEN:
                raise FolderTaken(f"{target} exists already.") from None
            raise unwritable(self.root, error) from None

    def delete_folder(self, folder: str) -> None:
        retired = self.root / f"{RETIRED_PREFIX}{uuid.uuid4().hex}"
        try:
            os.rename(self._path(folder), retired)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise unwritable(self.root, error) from None
        shutil.rmtree(retired, ignore_errors=True)

    def local_path(self, folder: str, name: str) -> Path:
        return self._path(folder, name)

    def _path(self, folder: str | None = None, name: str | None = None) -> Path:
        path = self.root if folder is None else self.root / folder
        return path if name is None else path / name


def _stored(name: str, stat: os.stat_result) -> StoredFile:
    # A file is only ever replaced by renaming a new one onto it: a new inode, a new modification time.
    return StoredFile(name, stat.st_size, f"{stat.st_ino:x}-{stat.st_mtime_ns:x}")


Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")


def _reaching(
    method: Callable[Concatenate[ObjectStore, Parameters], Result],
) -> Callable[Concatenate[ObjectStore, Parameters], Result]:
    """An ``ObjectStore`` method whose failure to reach the store (no network, no credentials) or whose
    access it refuses is a ``StorageError`` in one line, not the client library's traceback."""

    @functools.wraps(method)
    def reach(store: ObjectStore, /, *arguments: Parameters.args, **options: Parameters.kwargs) -> Result:
        try:
            return method(store, *arguments, **options)
        except PermissionError as error:  # s3fs's word for AccessDenied, InvalidAccessKeyId...
            raise StorageError(
                f"{store.location()} refused access ({error}): check the credentials (AWS_* variables or "
                "~/.aws) and the bucket's policy."
            ) from None
        except store.unreachable as error:
            raise StorageError(
                f"{store.location()} cannot be reached ({error}): check AWS_ENDPOINT_URL (or the region), "
                "the network and the credentials (AWS_* variables or ~/.aws)."
            ) from None

    return reach


MARKER = ".folder"  # the object that makes a folder of an object store visible: it names its version
VERSIONS = ".versions"  # where an object store keeps each version's files: never listed


class ObjectStore:
    """Folders of files in an object store (S3, through fsspec's s3fs) under ``bucket/prefix``.

    A folder ``F`` is its marker object ``F/.folder``, whose content names a version; its files are the
    objects under ``.versions/VERSION/``. Every marker write is one PUT, so a folder appears, changes
    version or vanishes in one step (see the module's docstring). Listings are never cached: another
    server may have written since. Credentials are the usual AWS ones (variables, ``~/.aws``, s3fs's
    config) and never appear in a location or a message.
    """

    def __init__(
        self,
        filesystem: Any,
        root: str,
        protocol: str = "s3",
        unreachable: tuple[type[Exception], ...] = (),
    ) -> None:
        self.filesystem = filesystem
        self.root = root.rstrip("/")
        self.protocol = protocol
        self.unreachable = unreachable  # the client library's errors for a store it cannot reach

    def location(self, folder: str | None = None, name: str | None = None) -> str:
        parts = [self.root, *(part for part in (folder, name) if part is not None)]
        return f"{self.protocol}://{'/'.join(parts)}"

    def within(self, folder: str) -> ObjectStore:
        return ObjectStore(self.filesystem, f"{self.root}/{folder}", self.protocol, self.unreachable)

    @_reaching
    def folders(self) -> list[str]:
        try:
            entries = self.filesystem.ls(self.root, detail=True)
        except FileNotFoundError:
            self._check_bucket()
            return []
        names = (_basename(entry["name"]) for entry in entries if entry["type"] == "directory")
        return sorted(name for name in names if not name.startswith("."))

    @_reaching
    def exists(self, folder: str, name: str | None = None) -> bool:
        if name is None:
            return bool(self.filesystem.exists(self._marker(folder)))
        try:
            return bool(self.filesystem.isfile(self._object(folder, name)))
        except FileNotFoundError:
            return False

    @_reaching
    def files(self, folder: str) -> list[StoredFile]:
        try:
            version = self._version(folder)
            while True:
                try:
                    entries = self.filesystem.ls(self._versions(version), detail=True)
                except FileNotFoundError:
                    entries = []
                # A folder replaced meanwhile may have had its old version half deleted: read it again.
                current = self._version(folder)
                if current == version:
                    break
                version = current
        except FileNotFoundError:
            return []
        found = [
            StoredFile(
                _basename(entry["name"]), int(entry["size"]), f"{version}-{entry['ETag'].strip(chr(34))}"
            )
            for entry in entries
            if entry["type"] == "file"
        ]
        return sorted(found, key=_name)

    @_reaching
    def open(self, folder: str, name: str) -> BinaryIO:
        return self.filesystem.open(self._object(folder, name), "rb")  # type: ignore[no-any-return]

    @_reaching
    def read_bytes(self, folder: str, name: str) -> bytes:
        return self.filesystem.cat_file(self._object(folder, name))  # type: ignore[no-any-return]

    @_reaching
    def write_bytes(self, folder: str, name: str, data: bytes) -> None:
        try:
            self.filesystem.pipe_file(self._object(folder, name), data)  # one PUT: whole or not at all
        except OSError as error:
            raise self._unwritable(error) from None

    @_reaching
    def delete_file(self, folder: str, name: str) -> None:
        path = self._object(folder, name)
        if not self.filesystem.isfile(path):
            raise FileNotFoundError(self.location(folder, name))
        try:
            self.filesystem.rm_file(path)
        except OSError as error:
            raise self._unwritable(error) from None

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix=TEMPORARY_PREFIX) as staged:
            yield Path(staged)

    @_reaching
    def publish(self, staged: Path, folder: str, *, replace: bool = False) -> None:
        if staged.parent != Path(tempfile.gettempdir()) or not staged.name.startswith(TEMPORARY_PREFIX):
            raise ValueError(
                f"{staged} is not a staging folder of {self.location()}: fill one from staging()."
            )
        version = uuid.uuid4().hex
        try:
            for path in sorted(staged.rglob("*")):
                if path.is_file():
                    relative = path.relative_to(staged).as_posix()
                    self.filesystem.put_file(str(path), f"{self._versions(version)}/{relative}")
            if replace:
                old = self._version_or_none(folder)
                self.filesystem.pipe_file(self._marker(folder), version.encode())
                if old is not None and old != version:
                    self._delete_version(old)
                return
            self._take(folder, version)
        except FolderTaken:
            self._delete_version(version)
            raise
        except OSError as error:
            self._delete_version(version)
            raise self._unwritable(error) from None

    @_reaching
    def rename_folder(self, folder: str, new_folder: str) -> None:
        version = self._version(folder)  # FileNotFoundError: no such folder
        try:
            self._take(new_folder, version)
            self.filesystem.rm_file(self._marker(folder))
        except OSError as error:
            raise self._unwritable(error) from None

    @_reaching
    def delete_folder(self, folder: str) -> None:
        version = self._version(folder)
        try:
            self.filesystem.rm_file(self._marker(folder))  # gone for every reader, then its files
        except OSError as error:
            raise self._unwritable(error) from None
        self._delete_version(version)

    @_reaching
    def local_path(self, folder: str, name: str) -> Path:
        path = self._object(folder, name)
        etag = self.filesystem.info(path)["ETag"].strip('"')
        # One folder per stored file (as its location names it), one download in it per version.
        downloads = zoo_home() / "cache" / "objects" / _digest(self.location(folder, name))
        cached = downloads / _digest(f"{path}\t{etag}") / name
        if cached.is_file():  # a file of one etag never changes: downloaded once
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.parent / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        try:
            self.filesystem.get_file(path, str(temporary))
            os.replace(temporary, cached)
        finally:
            temporary.unlink(missing_ok=True)
        for older in downloads.iterdir():  # the versions this one replaced are read no more
            if older != cached.parent:
                shutil.rmtree(older, ignore_errors=True)
        return cached

    def _take(self, folder: str, version: str) -> None:
        """Write a folder's marker only if there is none (If-None-Match: *): a name is taken once."""
        try:
            self.filesystem.pipe_file(self._marker(folder), version.encode(), mode="create")
        except FileExistsError:
            raise FolderTaken(f"{self.location(folder)} exists already.") from None

    def _version(self, folder: str) -> str:
        return bytes(self.filesystem.cat_file(self._marker(folder))).decode()

    def _version_or_none(self, folder: str) -> str | None:
        try:
            return self._version(folder)
        except FileNotFoundError:
            return None

    def _delete_version(self, version: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filesystem.rm(self._versions(version), recursive=True)

    def _marker(self, folder: str) -> str:
        return f"{self.root}/{folder}/{MARKER}"

    def _versions(self, version: str) -> str:
        return f"{self.root}/{VERSIONS}/{version}"

    def _object(self, folder: str, name: str) -> str:
        return f"{self._versions(self._version(folder))}/{name}"

    def _check_bucket(self) -> None:
        bucket = self.root.split("/", 1)[0]
        if not self.filesystem.exists(bucket):
            raise StorageError(
                f"{self.location()}: the bucket {bucket} does not exist: create it, or name another in "
                "ZOO_MODEL_STORE."
            )

    def _unwritable(self, error: OSError) -> StorageError:
        if isinstance(error, FileNotFoundError):
            self._check_bucket()
        return StorageError(
            f"{self.location()} cannot be written ({error.strerror or error}): check that the bucket exists "
            "and that the credentials (AWS_* variables or ~/.aws) may write to it."
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def storage_for(storage: Storage | str | os.PathLike | None, folder: str) -> Storage:
    """The storage a store keeps its folders in: ``storage`` itself, a directory's, or (None) the
    ``folder`` of the storage ``ZOO_MODEL_STORE`` names."""
    if storage is None:
        return open_storage().within(folder)
    if isinstance(storage, str | os.PathLike):
        return LocalDirectory(storage)
    return storage


def open_storage(url: str | None = None) -> Storage:
    """The storage the local zoo and the digit sets are kept in.

    Args:
        url: a directory (``/data/zoo`` or ``file:///data/zoo``) or an S3 bucket
            (``s3://bucket/prefix``); default ``ZOO_MODEL_STORE``, else
            ``ZOO_HOME``.

    Returns:
        The storage (its folders ``models`` and ``digits`` hold the local zoo and the digit sets).

    Raises:
        StorageError: a kind of store Zoo Studio cannot use yet, in one line with what it can.

    Example:
        >>> open_storage("/tmp/zoo").within("models").location()  # doctest: +SKIP
        '/tmp/zoo/models'
    """
    url = model_store_url() if url is None else url
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return LocalDirectory(Path(url2pathname(parts.path)))
    if parts.scheme == "":
        return LocalDirectory(Path(url).expanduser().absolute())
    if parts.scheme == "s3" and parts.netloc:
        return _object_store(url, parts.netloc, parts.path)
    raise StorageError(
        f"ZOO_MODEL_STORE={url!r} is not a store Zoo Studio can use: give a directory (/data/zoo or "
        "file:///data/zoo) or an S3 bucket (s3://bucket/prefix), or unset it to use ZOO_HOME."
    )


def _object_store(url: str, bucket: str, prefix: str) -> ObjectStore:
    import fsspec  # only for an object store: s3fs and its botocore take a while to import

    try:
        from botocore.exceptions import BotoCoreError

        # No listings cache: another app server may have published or deleted a folder since.
        filesystem = fsspec.filesystem("s3", use_listings_cache=False)
    except ImportError:
        raise StorageError(
            f"ZOO_MODEL_STORE={url!r} needs s3fs, which is not installed: pip install -r requirements.txt."
        ) from None
    return ObjectStore(filesystem, f"{bucket}/{prefix.strip('/')}".rstrip("/"), unreachable=(BotoCoreError,))
