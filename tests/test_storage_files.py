"""The storage seam (zoo/storage/files.py): what every kind of storage must do, for the local zoo and the
digit sets to stay whole, parameterised over the kinds (a local directory; an S3 bucket on the session's
S3-compatible server), and how ZOO_MODEL_STORE picks one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from zoo.core.errors import StorageError
from zoo.storage.files import FolderTaken, LocalDirectory, ObjectStore, Storage, folder_version, open_storage

FILES = {"model.keras": b"PK" + bytes(range(256)) * 40, "config.json": b'{"kind": "cnn"}', "history.csv": b""}


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    """A fresh, empty storage of each kind."""
    if request.param == "s3":
        return open_storage(request.getfixturevalue("s3_store_url"))
    return LocalDirectory(tmp_path / "storage")


def everything_in(storage: Storage) -> list[str]:
    """Every file and folder a storage holds, its own hidden ones included."""
    if isinstance(storage, ObjectStore):
        return storage.filesystem.find(storage.root)
    return [path.name for path in Path(storage.location()).iterdir()]


def publish(storage: Storage, folder: str, files: dict[str, bytes] = FILES, *, replace: bool = False) -> None:
    with storage.staging() as staged:
        for name, content in files.items():
            (staged / name).write_bytes(content)
        storage.publish(staged, folder, replace=replace)


def contents(storage: Storage, folder: str) -> dict[str, bytes]:
    return {file.name: storage.read_bytes(folder, file.name) for file in storage.files(folder)}


def test_a_published_folder_is_listed_with_its_files_and_reads_back_byte_for_byte(storage):
    assert storage.folders() == [] and storage.files("model") == [] and not storage.exists("model")
    publish(storage, "model")
    assert (
        storage.folders() == ["model"] and storage.exists("model") and storage.exists("model", "config.json")
    )
    assert [(file.name, file.size) for file in storage.files("model")] == sorted(
        (name, len(content)) for name, content in FILES.items()
    )
    assert contents(storage, "model") == FILES
    assert storage.local_path("model", "model.keras").read_bytes() == FILES["model.keras"]
    with storage.open("model", "model.keras") as handle:  # seekable: a zip's directory is at its end
        handle.seek(-3, 2)
        assert handle.read() == FILES["model.keras"][-3:]
    for missing in (lambda: storage.read_bytes("model", "metrics.json"), lambda: storage.open("none", "x")):
        with pytest.raises(FileNotFoundError):
            missing()


def test_a_folder_being_filled_is_never_listed_and_is_gone_when_it_is_not_published(storage):
    with pytest.raises(RuntimeError), storage.staging() as staged:
        (staged / "model.keras").write_bytes(b"half")
        assert storage.folders() == []
        raise RuntimeError("the save failed")
    publish(storage, "model")
    storage.delete_folder("model")
    assert storage.folders() == []
    assert everything_in(storage) == []  # nothing left behind


def publish_at_once(
    storage: Storage, folder: str, who: str, barrier: threading.Barrier, outcomes: dict
) -> None:
    """Publish a folder saying ``who`` made it as ``folder`` when the barrier lets every publisher go."""
    with storage.staging() as staged:
        (staged / "who").write_text(who)
        barrier.wait(timeout=30)
        try:
            storage.publish(staged, folder)
            outcomes[who] = "published"
        except FolderTaken:
            outcomes[who] = "taken"


def test_two_publishers_under_one_name_never_replace_each_other(storage):
    """Two saves of a model under one name at the same moment: one takes it, the other is told."""
    for trial in range(8):
        barrier, outcomes = threading.Barrier(2), {}
        threads = [
            threading.Thread(target=publish_at_once, args=(storage, f"trial-{trial}", who, barrier, outcomes))
            for who in ("first", "second")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes.values()) == ["published", "taken"], outcomes
        (winner,) = [who for who, outcome in outcomes.items() if outcome == "published"]
        assert storage.read_bytes(f"trial-{trial}", "who").decode() == winner


def test_replacing_a_folder_swaps_it_whole_for_every_reader(storage):
    publish(storage, "model")
    problems, done = [], threading.Event()

    def read() -> None:
        while not done.is_set():
            for folder in storage.folders():
                names = {file.name for file in storage.files(folder)}
                if names and names != set(FILES):  # empty: replaced between the two calls
                    problems.append(f"{folder} holds {sorted(names)}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for index in range(20):
            publish(storage, "model", {**FILES, "config.json": b"%d" % index}, replace=True)
    finally:
        done.set()
        reader.join()
    assert problems == [] and storage.read_bytes("model", "config.json") == b"19"
    with pytest.raises(FolderTaken):
        publish(storage, "model", {"other": b"x"})
    assert contents(storage, "model")["config.json"] == b"19"


def test_a_written_file_replaces_the_old_one_whole_and_changes_the_version(storage):
    publish(storage, "model")
    before = folder_version(storage.files("model"))
    assert folder_version(storage.files("model")) == before  # stable while nothing changes
    storage.write_bytes("model", "config.json", b'{"kind": "cnn", "kept": true}')
    assert storage.read_bytes("model", "config.json") == b'{"kind": "cnn", "kept": true}'
    assert sorted(file.name for file in storage.files("model")) == sorted(FILES)  # no temporary file listed
    after = folder_version(storage.files("model"))
    assert after != before
    storage.write_bytes("model", "digit.npz", b"1")
    storage.delete_file("model", "digit.npz")
    with pytest.raises(FileNotFoundError):
        storage.delete_file("model", "digit.npz")
    publish(storage, "model", replace=True)
    assert folder_version(storage.files("model")) not in (before, after)  # published anew


def test_rename_moves_a_folder_and_never_replaces_one(storage):
    publish(storage, "first")
    publish(storage, "second", {"other": b"x"})
    storage.rename_folder("first", "renamed")
    assert storage.folders() == ["renamed", "second"] and contents(storage, "renamed") == FILES
    with pytest.raises(FolderTaken):
        storage.rename_folder("renamed", "second")
    assert contents(storage, "second") == {"other": b"x"}
    with pytest.raises(FileNotFoundError):
        storage.rename_folder("first", "third")
    with pytest.raises(FileNotFoundError):
        storage.delete_folder("first")


def test_a_storage_within_another_keeps_its_folders_apart(storage):
    models, digits = storage.within("models"), storage.within("digits")
    publish(models, "mnist-cnn")
    publish(digits, "my-digits", {".owner": b"local"})
    assert models.folders() == ["mnist-cnn"] and digits.folders() == ["my-digits"]
    assert storage.folders() == ["digits", "models"]
    assert models.location("mnist-cnn", "model.keras") != digits.location("mnist-cnn", "model.keras")


# --- ZOO_MODEL_STORE ----------------------------------------------------------------------------------


def test_zoo_model_store_names_the_directory_as_a_path_or_a_file_url(tmp_path, zoo_home, monkeypatch):
    assert open_storage().location() == str(zoo_home)  # by default, ZOO_HOME's folders
    zoo_home.mkdir(exist_ok=True)
    (zoo_home / "config.toml").write_text(f'model_store = "{tmp_path / "configured"}"\n')
    assert open_storage().location("models") == str(tmp_path / "configured" / "models")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ZOO_MODEL_STORE", "~/in-home")  # the environment wins over the file
    assert open_storage().location() == str(tmp_path / "in-home")
    monkeypatch.setenv("ZOO_MODEL_STORE", str(tmp_path / "shared"))
    assert open_storage().location("models") == str(tmp_path / "shared" / "models")
    monkeypatch.setenv("ZOO_MODEL_STORE", (tmp_path / "shared").as_uri())
    assert open_storage().location("digits") == str(tmp_path / "shared" / "digits")


def test_zoo_model_store_names_an_s3_bucket_and_prefix(s3_store_url, monkeypatch):
    monkeypatch.setenv("ZOO_MODEL_STORE", s3_store_url)
    storage = open_storage()
    assert isinstance(storage, ObjectStore)
    assert (
        storage.within("models").location("mnist-cnn", "model.keras")
        == f"{s3_store_url}/models/mnist-cnn/model.keras"
    )
    publish(storage.within("models"), "mnist-cnn")
    assert open_storage(s3_store_url.rstrip("/") + "/").within("models").folders() == ["mnist-cnn"]


@pytest.mark.parametrize(
    "url", ["s3:///zoo", "gs://bucket/zoo", "https://example.org/zoo", "file://server/zoo"]
)
def test_a_store_zoo_studio_cannot_use_is_one_line_with_what_it_can(url, monkeypatch):
    monkeypatch.setenv("ZOO_MODEL_STORE", url)
    with pytest.raises(StorageError) as refused:
        open_storage()
    assert str(refused.value) == (
        f"ZOO_MODEL_STORE={url!r} is not a store Zoo Studio can use: give a directory (/data/zoo or "
        "file:///data/zoo) or an S3 bucket (s3://bucket/prefix), or unset it to use ZOO_HOME."
    )
