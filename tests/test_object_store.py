"""The local zoo and the digit sets shared by several app servers through ZOO_MODEL_STORE: an S3 bucket (on
the session's S3-compatible server) or a shared directory (file://). Each "server" here is a store
opened from the URL on its own, as another process would."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator

import keras
import numpy as np
import pytest
from loopback import closed_port_url
from test_cli import run_zoo, zoo_environment
from test_digits import canvas, digit
from test_store import forge_keras_config, small_cnn, with_dense_units

from zoo.core.errors import ModelStoreError
from zoo.core.hosting import LOCAL_USER
from zoo.storage.digits import DIGITS_FOLDER, DigitStore
from zoo.storage.files import ObjectStore, open_storage
from zoo.storage.models import MODEL_FILE, MODELS_FOLDER, ModelConfig, ModelStore

IMAGES = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)


@pytest.fixture(params=["s3", "shared-directory"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty ZOO_MODEL_STORE that several servers share."""
    if request.param == "s3":
        return request.getfixturevalue("s3_store_url")
    return (tmp_path / "shared").as_uri()


def server(url: str) -> ModelStore:
    """The local zoo as one app server opens it from ZOO_MODEL_STORE."""
    return ModelStore(open_storage(url).within(MODELS_FOLDER))


def cnn(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return small_cnn()


def readings(model: keras.Model) -> np.ndarray:
    return np.asarray(model(IMAGES))


def test_a_model_saved_by_one_server_is_listed_loaded_replaced_renamed_and_deleted_by_another(store_url):
    first, second = server(store_url), server(store_url)
    first.save(cnn(1), "shared", config=ModelConfig("cnn"))
    assert [entry.name for entry in second.entries()] == ["shared"]
    version = second.entry("shared").version
    assert np.array_equal(readings(second.load("shared").model), readings(cnn(1)))  # bit for bit

    second.save(cnn(2), "shared", config=ModelConfig("cnn"), overwrite=True)
    assert first.entry("shared").version != version
    assert np.array_equal(readings(first.load("shared").model), readings(cnn(2)))  # not a stale copy

    first.rename("shared", "renamed", by=LOCAL_USER)
    assert [entry.name for entry in second.entries()] == ["renamed"]
    second.delete("renamed", by=LOCAL_USER)
    assert first.entries() == [] and not first.has("renamed")


def test_two_servers_saving_under_one_name_at_once_never_replace_each_others_model(store_url):
    barrier, outcomes = threading.Barrier(2), {}
    models = {seed: cnn(seed) for seed in (1, 2)}  # built here: Keras' random seed is one for all threads

    def save(seed: int) -> None:
        model, store = models[seed], server(store_url)
        barrier.wait(timeout=30)
        try:
            store.save(model, "contested", config=ModelConfig("cnn"))
            outcomes[seed] = "saved"
        except ModelStoreError as error:
            assert "a model named 'contested' already exists" in str(error)
            outcomes[seed] = "taken"

    threads = [threading.Thread(target=save, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["saved", "taken"], outcomes
    (winner,) = [seed for seed, outcome in outcomes.items() if outcome == "saved"]
    assert np.array_equal(readings(server(store_url).load("contested").model), readings(cnn(winner)))


def test_a_small_model_file_describing_a_huge_layer_is_refused_from_the_object_store(s3_store_url, tmp_path):
    """Loading stays size-checked and safe_mode=True: the file Keras reads is a download of the object."""
    store = server(s3_store_url)
    store.save(small_cnn(), "huge-layer", config=ModelConfig("cnn"))
    forged = tmp_path / "forged.keras"
    shutil.copy(store.model_file("huge-layer"), forged)
    forge_keras_config(forged, with_dense_units(500_000))
    store.storage.write_bytes("huge-layer", MODEL_FILE, forged.read_bytes())
    with pytest.raises(
        ModelStoreError, match="is too big to load: the model's parameter count is 397,500,010"
    ):
        server(s3_store_url).load("huge-layer")


def test_digit_sets_are_shared_by_the_servers(store_url):
    first, second = (DigitStore(open_storage(store_url).within(DIGITS_FOLDER)) for _ in range(2))
    added = [
        first.add("mine", label, canvas(index), digit(index), by=LOCAL_USER)
        for index, label in enumerate([3, 5])
    ]
    assert second.set_names(by=LOCAL_USER) == ["mine"]
    assert [kept.label for kept in second.digits("mine", by=LOCAL_USER)] == [3, 5]
    np.testing.assert_array_equal(second.pixels("mine", added[1].id, by=LOCAL_USER), canvas(1))
    second.relabel("mine", added[0].id, 8, by=LOCAL_USER)
    second.delete("mine", added[1].id, by=LOCAL_USER)
    assert [(kept.id, kept.label) for kept in first.digits("mine", by=LOCAL_USER)] == [(added[0].id, 8)]
    first.delete_set("mine", by=LOCAL_USER)
    assert second.set_names(by=LOCAL_USER) == []


def test_the_draw_pages_model_is_reloaded_when_another_server_replaces_it(s3_store_url, monkeypatch):
    from zoo.app import ui

    monkeypatch.setenv("ZOO_MODEL_STORE", s3_store_url)
    elsewhere = server(s3_store_url)
    elsewhere.save(cnn(1), "shared", config=ModelConfig("cnn"))
    loaded = ui.predictor(ui.model_store().entry("shared"))
    assert ui.predictor(ui.model_store().entry("shared")) is loaded  # kept while the model is unchanged
    np.testing.assert_allclose(loaded.predict(IMAGES[0, ..., 0]), readings(cnn(1))[0], rtol=1e-5)

    elsewhere.save(cnn(2), "shared", config=ModelConfig("cnn"), overwrite=True)
    reloaded = ui.predictor(ui.model_store().entry("shared"))
    assert reloaded is not loaded
    np.testing.assert_allclose(reloaded.predict(IMAGES[0, ..., 0]), readings(cnn(2))[0], rtol=1e-5)
    assert isinstance(ui.model_store().storage, ObjectStore)


@pytest.mark.parametrize(
    ("bucket", "endpoint", "said"),
    [
        (
            "no-such-bucket",
            None,
            "s3://no-such-bucket/zoo/{folder}: the bucket no-such-bucket does not exist",
        ),
        (
            "any-bucket",
            closed_port_url(),
            "s3://any-bucket/zoo/{folder} cannot be reached (Could not connect",
        ),
    ],
)
def test_an_s3_store_that_cannot_be_used_is_one_line_from_the_cli(
    s3_store_url, zoo_home, bucket, endpoint, said
):
    environment = zoo_environment(zoo_home, ZOO_MODEL_STORE=f"s3://{bucket}/zoo")
    if endpoint is not None:
        environment["AWS_ENDPOINT_URL"] = endpoint
    for command, folder in ((["models"], "models"), (["digits", "list"], "digits")):
        result = run_zoo(zoo_home, *command, environment=environment, timeout=120)
        assert result.returncode == 1 and result.stdout == "", result
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: " + said.format(folder=folder)), line
        assert "zoo-tests-secret" not in line


def test_a_model_trained_by_a_worker_lands_in_the_s3_store_and_another_host_uses_it(s3_store_url, tmp_path):
    """A run's worker (another process) saves its model through ZOO_MODEL_STORE; a server with another
    ZOO_HOME (another host) lists, evaluates and loads it."""
    trained = run_zoo(
        tmp_path / "first",
        "train",
        "binary",
        "--epochs",
        "2",
        environment=zoo_environment(tmp_path / "first", ZOO_MODEL_STORE=s3_store_url),
    )
    assert trained.returncode == 0, trained.stderr
    assert not (tmp_path / "first" / "models").exists()  # nothing kept on this host's disk
    (entry,) = [entry for entry in server(s3_store_url).entries() if entry.kind == "binary"]
    assert f"model saved as '{entry.name}'" in trained.stdout
    evaluated = run_zoo(
        tmp_path / "second",
        "evaluate",
        entry.name,
        "--json",
        environment=zoo_environment(tmp_path / "second", ZOO_MODEL_STORE=s3_store_url),
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == entry.accuracy


def test_doctor_writes_and_reads_back_a_probe_in_the_s3_store_and_shows_no_credential(s3_store_url, zoo_home):
    found = run_zoo(
        zoo_home, "-vv", "doctor", environment=zoo_environment(zoo_home, ZOO_MODEL_STORE=s3_store_url)
    )
    (line,) = [line for line in found.stdout.splitlines() if "local zoo:" in line]
    assert re.fullmatch(
        rf"ok +local zoo: 0 model\(s\) in {re.escape(s3_store_url)}/models, written and read back", line
    ), line
    assert "zoo-tests-secret" not in found.stdout + found.stderr
    storage = open_storage(s3_store_url)
    assert storage.filesystem.find(storage.root) == []  # the probe, its marker and its files are gone

    missing = run_zoo(
        zoo_home, "doctor", environment=zoo_environment(zoo_home, ZOO_MODEL_STORE="s3://no-such-bucket/zoo")
    )
    assert missing.returncode == 1
    assert (
        "local zoo: s3://no-such-bucket/zoo/models: the bucket no-such-bucket does not exist"
        in missing.stdout
    )


def test_a_model_file_is_downloaded_once_per_version_and_the_replaced_one_is_not_kept(s3_store_url, zoo_home):
    store = server(s3_store_url)
    store.save(cnn(1), "shared", config=ModelConfig("cnn"))
    first = store.model_file("shared")
    assert first.read_bytes() == store.storage.read_bytes("shared", MODEL_FILE)
    assert store.model_file("shared") == first and first.is_relative_to(zoo_home)
    server(s3_store_url).save(cnn(2), "shared", config=ModelConfig("cnn"), overwrite=True)
    second = store.model_file("shared")
    assert second != first and second.read_bytes() == store.storage.read_bytes("shared", MODEL_FILE)
    downloads = sorted(path for path in (zoo_home / "cache").rglob("*") if path.is_file())
    assert downloads == [second]  # the replaced version's download is gone


@pytest.fixture
def s3_checking_credentials(s3_store_url, s3_endpoint) -> Iterator[str]:
    """The session's S3 server checking credentials, as a real one does (the test's are unknown to it)."""
    import urllib.request

    def unauthorized_requests_allowed(count: str) -> None:
        request = urllib.request.Request(
            f"{s3_endpoint}/moto-api/reset-auth", data=count.encode(), headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=10).close()

    unauthorized_requests_allowed("0")
    try:
        yield s3_store_url
    finally:
        unauthorized_requests_allowed("inf")


def test_credentials_the_s3_store_refuses_are_one_line_from_the_cli(s3_checking_credentials, zoo_home):
    environment = zoo_environment(zoo_home, ZOO_MODEL_STORE=s3_checking_credentials)
    for command, folder in ((["digits", "list"], "digits"), (["models"], "models")):
        said = f"error: {s3_checking_credentials}/{folder} refused access ("
        result = run_zoo(zoo_home, *command, environment=environment, timeout=120)
        assert result.returncode == 1 and result.stdout == "", result
        (line,) = result.stderr.splitlines()
        assert line.startswith(said) and "credentials" in line, line
        assert "zoo-tests-secret" not in line
