"""Hosting a class on one server: the configuration (file and environment), the limits a run is held
to before anything is queued, the caps on live runs, and who may stop, delete or rename what.

Real SQLite run stores, real local-zoo directories and real Keras models; the CLI as a subprocess."""

from __future__ import annotations

import io
import re
import resource
import sqlite3
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hub_server import WRITE_TOKEN
from test_cli import run_zoo

from zoo.core.errors import DataError, ZooError
from zoo.core.hosting import (
    LOCAL_USER,
    VISITOR,
    PermissionDenied,
    User,
    load_config,
    owner_slug,
)
from zoo.core.settings import HOSTED_LIMITS, LOCAL_LIMITS, Limits
from zoo.core.spec import Lineage, TrainSpec
from zoo.execution.admission import start
from zoo.execution.executor import open_executor
from zoo.hub import operations as hub
from zoo.ml.architectures import build_binary_classifier
from zoo.ml.data import (
    check_visitor_data_source,
    load_embedded_mnist,
    load_mnist,
    save_uploaded_mnist,
    uploads_directory,
)
from zoo.ml.training import build_model, check_fine_tuning, check_limits, estimate_cost, largest_within_limits
from zoo.runs.sqlite import SqliteRunStore
from zoo.runs.store import open_run_store
from zoo.storage.digits import DigitStore, personal_set_name
from zoo.storage.models import ModelConfig, ModelStore

ALICE = User("alice", "alice@example.org")
BOB = User("bob", "bob@example.org")
TEACHER = User("teacher", "teacher@example.org", is_admin=True)
SPEC = TrainSpec.binary(num_epochs=3)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def hosted(zoo_home, monkeypatch):
    """Hosted mode from a configuration file in ZOO_HOME, with no ZOO_* variable set."""
    for name in ("ZOO_MODE", "ZOO_ADMINS", "ZOO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    zoo_home.mkdir(parents=True, exist_ok=True)
    (zoo_home / "config.toml").write_text(
        'mode = "hosted"\nadmins = ["Teacher", "ta@example.org"]\n\n'
        '[limits]\nepochs = 40\n\n[datasets]\nfull-mnist = "/srv/data/mnist.npz"\n'
    )
    return zoo_home


def test_without_configuration_the_studio_is_local_and_everything_is_its_owners(zoo_home, monkeypatch):
    monkeypatch.delenv("ZOO_MODE", raising=False)
    config = load_config()
    assert (config.mode, config.hosted, config.limits, config.source) == (
        "local",
        False,
        LOCAL_LIMITS,
        "defaults",
    )
    assert LOCAL_USER.is_admin and LOCAL_USER.signed_in


def test_a_configuration_file_sets_the_mode_admins_limits_and_data_sets(hosted):
    config = load_config()
    assert config.hosted and config.source == str(hosted / "config.toml")
    assert config.limits.epochs == 40  # the file's value
    assert config.limits.parameters == HOSTED_LIMITS.parameters  # the hosted default for the rest
    assert config.dataset_path("full-mnist") == "/srv/data/mnist.npz"
    with pytest.raises(ZooError, match=r"no data set named 'other'.*registered: full-mnist"):
        config.dataset_path("other")
    # Admins by user name or e-mail, whatever the case; the user name is the owner recorded.
    assert config.user_from_claims({"preferred_username": "teacher", "sub": "1"}).is_admin
    assistant = config.user_from_claims({"email": "TA@example.org", "sub": "2"})
    assert assistant.is_admin and assistant.name == "TA@example.org"
    student = config.user_from_claims(
        {"preferred_username": "alice", "email": "alice@example.org", "sub": "3"}
    )
    assert (student.name, student.is_admin, student.signed_in) == ("alice", False, True)
    assert config.user_from_claims({"sub": "4"}).name == "4"  # a provider that names no one else


def test_environment_variables_win_over_the_file(hosted, monkeypatch):
    monkeypatch.setenv("ZOO_MODE", "local")
    monkeypatch.setenv("ZOO_ADMINS", "carol, dave@example.org")
    monkeypatch.setenv("ZOO_LIMIT_EPOCHS", "7")
    monkeypatch.setenv("ZOO_LIMIT_SAMPLES", "none")
    config = load_config()
    assert config.mode == "local" and config.admins == {"carol", "dave@example.org"}
    assert (config.limits.epochs, config.limits.samples) == (7, None)


@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ('mode = "hosted', {}, "cannot be read"),
        ('mode = "public"', {}, "mode = 'public'.*choose 'local' or 'hosted'"),
        ("[limits]\nepoch = 3", {}, "unknown limit.*epoch.*known: active_runs"),
        ("[limits]\nepochs = 0", {}, "limit epochs=0.*ZOO_LIMIT_EPOCHS.*positive whole number"),
        ("", {"ZOO_LIMIT_BATCH_SIZE": "many"}, "limit batch_size='many'"),
        ("admins = 'teacher'", {}, "admins.*give a list"),
    ],
)
def test_a_bad_configuration_is_one_clear_error(zoo_home, monkeypatch, text, variables, message):
    monkeypatch.delenv("ZOO_MODE", raising=False)
    zoo_home.mkdir(parents=True, exist_ok=True)
    (zoo_home / "config.toml").write_text(text)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ZooError, match=message):
        load_config()


@pytest.mark.parametrize(
    "spec",
    [
        TrainSpec.cnn(),
        TrainSpec.cnn(conv_filters=(8, 16), hidden_units=(32, 16), activation="tanh"),
        TrainSpec.cnn(conv_filters=(4,), hidden_units=(5,)),
        TrainSpec.binary(hidden_units=(8, 8, 3)),
    ],
)
def test_the_parameter_count_is_known_without_building_the_model(spec):
    assert estimate_cost(spec).parameters == build_model(spec).count_params()


@pytest.mark.parametrize(
    ("overrides", "limit", "setting"),
    [
        ({"hidden_units": (1_000_000_000,)}, "parameter count is 587,000,", "ZOO_LIMIT_PARAMETERS"),
        ({"conv_filters": (100_000_000, 64, 64)}, "parameter count is 58,600,", "ZOO_LIMIT_PARAMETERS"),
        (
            {"batch_size": 8192, "conv_filters": (1000, 1000)},
            "training memory",
            "ZOO_LIMIT_TRAINING_MEMORY_MB",
        ),
    ],
)
def test_a_run_too_big_for_the_machine_is_refused_before_anything_is_queued(overrides, limit, setting):
    store = open_run_store()
    with pytest.raises(PermissionDenied, match=rf"{limit}.*beyond this host's limit.*{setting}"):
        start(TrainSpec.cnn(**overrides), by=LOCAL_USER, executor=open_executor(store))
    assert store.list_runs() == []


def test_hosted_limits_bound_epochs_samples_and_batch_size():
    limits = Limits(epochs=5, samples=1000, batch_size=64)
    assert (
        check_limits(TrainSpec.cnn(num_epochs=5, max_train_samples=1000, batch_size=64), limits).samples
        == 1000
    )
    for spec, message in [
        (
            TrainSpec.cnn(num_epochs=6, max_train_samples=1000, batch_size=64),
            "number of epochs is 6.*limit of 5",
        ),
        (
            TrainSpec.cnn(num_epochs=1, batch_size=64),
            "training samples is 60,000.*limit of 1,000",
        ),  # all of them
        (TrainSpec.binary(num_epochs=1, num_samples=2000, batch_size=64), "training samples is 2,000"),
        (
            TrainSpec.cnn(num_epochs=1, max_train_samples=100, batch_size=128),
            "batch size is 128.*limit of 64",
        ),
    ]:
        with pytest.raises(PermissionDenied, match=message):
            check_limits(spec, limits)


def test_a_settings_largest_value_on_this_host_and_the_limit_that_sets_it():
    binary, cnn = TrainSpec.binary(), TrainSpec.cnn()
    epochs = largest_within_limits(lambda value: replace(binary, num_epochs=value), 1, 1000, HOSTED_LIMITS)
    assert (epochs.maximum, epochs.limit) == (500, "epochs")
    assert epochs.note == (
        "At most 500 with the other settings as they are: this host allows 500 epochs per run."
    )
    short = largest_within_limits(lambda value: replace(binary, num_epochs=value), 1, 100, HOSTED_LIMITS)
    assert (short.maximum, short.limit, short.note) == (100, None, None)  # the field's own range is tighter

    # Settings that feed a limit together: a CNN's batch size and layer, its memory and parameters.
    for vary, high, limits, limit in [
        (lambda value: replace(cnn, batch_size=value), 8192, Limits(training_memory_mb=300), "memory"),
        (lambda value: replace(cnn, hidden_units=(value,)), 4096, Limits(parameters=10**5), "parameter"),
    ]:
        bound = largest_within_limits(vary, 1, high, limits)
        assert bound.limit is not None and 1 < bound.maximum < high
        check_limits(vary(bound.maximum), limits)
        with pytest.raises(PermissionDenied, match=limit):
            check_limits(vary(bound.maximum + 1), limits)

    # A limit the spec is beyond through another setting (batch 128 of 64) does not stop this one.
    epochs = largest_within_limits(
        lambda value: replace(cnn, num_epochs=value), 1, 1000, Limits(batch_size=64)
    )
    assert (epochs.maximum, epochs.limit) == (1000, None)


def test_the_cli_refuses_a_huge_layer_in_one_line(tmp_path):
    result = run_zoo(tmp_path, "train", "cnn", "--hidden", "1000000000", timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "limit of 50,000,000" in result.stderr
    assert result.stderr.startswith("error: the model's parameter count")


def test_each_visitor_may_have_two_live_runs_and_the_host_eight(hosted):
    limits = load_config().limits
    assert (limits.active_runs_per_owner, limits.active_runs) == (2, 8)
    store = open_run_store()
    for _ in range(2):
        store.create_run(SPEC, "cpu", owner=ALICE, limits=limits)
    with pytest.raises(PermissionDenied, match="you have 2 runs queued or running"):
        store.create_run(SPEC, "cpu", owner=ALICE, limits=limits)
    for _ in range(2):
        store.create_run(SPEC, "cpu", owner=BOB, limits=limits)
    for _ in range(4):  # admins are held by no cap
        store.create_run(SPEC, "cpu", owner=TEACHER, limits=limits)
    with pytest.raises(PermissionDenied, match="this host has 8 runs queued or running"):
        store.create_run(SPEC, "cpu", owner=User("carol"), limits=limits)
    assert len(store.active_runs(owner="alice")) == 2 and len(store.active_runs()) == 8
    # A run that ends frees its owner's place.
    store.request_stop(store.active_runs(owner="alice")[0].id, by=ALICE)
    store.create_run(SPEC, "cpu", owner=ALICE, limits=limits)
    assert len(store.active_runs(owner="alice")) == 2


def test_a_visitor_who_is_not_signed_in_cannot_train(hosted):
    store = open_run_store()
    with pytest.raises(PermissionDenied, match="sign in to train a model"):
        start(SPEC, by=VISITOR, executor=open_executor(store))
    assert store.list_runs() == []


def test_only_its_owner_or_an_admin_stops_or_deletes_a_run():
    store = open_run_store()
    run_id = store.create_run(SPEC, "cpu", owner=ALICE)
    assert store.get(run_id).owner == "alice" and store.get(run_id).to_row()["owner"] == "alice"
    for intruder, message in [(BOB, "belongs to alice"), (VISITOR, "sign in to manage")]:
        with pytest.raises(PermissionDenied, match=message):
            store.request_stop(run_id, by=intruder)
        assert store.get(run_id).status == "queued"
    assert store.request_stop(run_id, by=ALICE).status == "stopped"
    with pytest.raises(PermissionDenied, match=f"run {run_id} belongs to alice"):
        store.delete(run_id, by=BOB)
    store.delete(run_id, by=TEACHER)
    assert store.list_runs() == []


def test_only_its_owner_or_an_admin_renames_or_deletes_a_model():
    models = ModelStore()
    models.save(build_binary_classifier(), "alices-points", config=ModelConfig("binary", owner="alice"))
    models.save(build_binary_classifier(), "shared", config=ModelConfig("binary"))  # e.g. the starter
    assert models.entry("alices-points").owner == "alice" and models.entry("shared").owner is None
    with pytest.raises(PermissionDenied, match="model 'alices-points' belongs to alice"):
        models.rename("alices-points", "bobs-now", by=BOB)
    with pytest.raises(PermissionDenied, match="model 'alices-points' belongs to alice"):
        models.delete("alices-points", by=BOB)
    with pytest.raises(PermissionDenied, match="model 'shared' is shared"):
        models.delete("shared", by=ALICE)
    assert models.rename("alices-points", "alices-moons", by=ALICE).owner == "alice"
    models.delete("alices-moons", by=TEACHER)
    models.delete("shared", by=LOCAL_USER)
    assert models.entries() == []


def test_a_run_store_made_before_owners_gives_its_runs_to_the_local_owner(zoo_home):
    path = zoo_home / "old" / "runs.sqlite3"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as connection:
        connection.executescript((FIXTURES / "runs-schema-v2.sql").read_text())
    store = SqliteRunStore(path)
    runs = store.list_runs()
    assert runs and {run.owner for run in runs} == {"local"}
    with pytest.raises(PermissionDenied, match="belongs to local"):
        store.delete(runs[-1].id, by=ALICE)
    store.delete(runs[-1].id, by=LOCAL_USER)


def test_a_digit_set_is_its_makers_and_each_person_starts_with_their_own():
    store = DigitStore()
    pixels, digit = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.float32)
    assert personal_set_name(LOCAL_USER) == "my-digits"
    assert re.fullmatch(
        r"alice-example\.org-[0-9a-f]{12}-digits", personal_set_name(User("alice@example.org"))
    )
    kept = store.add("alices-digits", 3, pixels, digit, by=ALICE)
    assert store.owner("alices-digits") == "alice"
    with pytest.raises(PermissionDenied, match="sign in to keep your digits"):
        store.add("visitors-digits", 3, pixels, digit, by=VISITOR)
    for change in (
        lambda: store.add("alices-digits", 4, pixels, digit, by=BOB),
        lambda: store.relabel("alices-digits", kept.id, 5, by=BOB),
        lambda: store.delete("alices-digits", kept.id, by=BOB),
        lambda: store.delete_set("alices-digits", by=BOB),
    ):
        with pytest.raises(PermissionDenied, match="the digit set 'alices-digits' belongs to alice"):
            change()
    assert [(each.id, each.label) for each in store.digits("alices-digits", by=ALICE)] == [(kept.id, 3)]
    assert store.relabel("alices-digits", kept.id, 5, by=ALICE).label == 5
    store.delete_set("alices-digits", by=TEACHER)
    assert store.set_names(by=ALICE) == [] and not list(store.storage.root.iterdir())


def test_a_digit_set_is_private_to_its_owner_and_an_admin_unless_its_owner_shares_it():
    store = DigitStore()
    for index in range(6):
        drawing = np.full((28, 28), index, np.uint8)
        store.add("alices-digits", index % 2, drawing, drawing / 255, by=ALICE)
    first = store.digits("alices-digits", by=ALICE)[0]
    private = "the digit set 'alices-digits' is alice's and not shared"
    for read in (
        lambda: store.digits("alices-digits", by=BOB),
        lambda: store.counts("alices-digits", by=BOB),
        lambda: store.pixels("alices-digits", first.id, by=BOB),
        lambda: store.export_npz("alices-digits", by=BOB),
        lambda: store.export_zip("alices-digits", by=BOB),
        lambda: store.digits("alices-digits", by=VISITOR),
        lambda: store.set_shared("alices-digits", True, by=BOB),  # only its owner (or an admin) shares it
    ):
        with pytest.raises(PermissionDenied, match=private):
            read()
    assert store.set_names(by=BOB) == [] and store.set_names(by=VISITOR) == []
    assert store.set_names(by=ALICE) == store.set_names(by=TEACHER) == ["alices-digits"]
    assert store.counts("alices-digits", by=TEACHER) == [3, 3, 0, 0, 0, 0, 0, 0, 0, 0]
    assert not store.is_shared("alices-digits")

    # Shared on purpose: everyone reads it, lists it and may train on it; only alice (or an admin) changes it.
    store.set_shared("alices-digits", True, by=ALICE)
    assert store.is_shared("alices-digits") and store.set_names(by=BOB) == ["alices-digits"]
    assert store.digits("alices-digits", by=BOB)[0].id == first.id
    assert np.load(io.BytesIO(store.export_npz("alices-digits", by=VISITOR)))["labels"].tolist() == [0, 1] * 3
    with pytest.raises(PermissionDenied, match="the digit set 'alices-digits' belongs to alice"):
        store.relabel("alices-digits", first.id, 7, by=BOB)
    store.set_shared("alices-digits", False, by=TEACHER)
    with pytest.raises(PermissionDenied, match=private):
        store.digits("alices-digits", by=BOB)


def test_nobody_fine_tunes_on_or_pushes_another_persons_digits_unless_they_are_shared(hosted, server):
    store, private = DigitStore(), "the digit set 'alices-digits' is alice's and not shared"
    for index in range(6):
        store.add("alices-digits", index % 2, np.zeros((28, 28), np.uint8), np.zeros((28, 28)), by=ALICE)
    cnn = build_model(TrainSpec.cnn())
    ModelStore().save(cnn, "base", config=ModelConfig("cnn", owner="alice"))
    lineage = Lineage("base", "alices-digits", 4, 2, (3, 3, 0, 0, 0, 0, 0, 0, 0, 0), 30, 900)
    tuned = ModelConfig("cnn", owner="alice", lineage=lineage)
    ModelStore().save(cnn, "base-alices-digits", config=tuned)
    spec = TrainSpec.cnn(mnist_source="embedded", base_model="base", digits_set="alices-digits")
    with pytest.raises(PermissionDenied, match=private):
        start(spec, by=BOB, executor=open_executor())
    assert open_run_store().list_runs() == []
    with pytest.raises(PermissionDenied, match=private):  # her digits do not leave with her model either
        hub.push("base-alices-digits", "bob/tuned", token=WRITE_TOKEN, include_digits=True, by=BOB)
    assert "bob/tuned" not in server.state.repos
    check_fine_tuning(spec, by=TEACHER)  # an admin may
    store.set_shared("alices-digits", True, by=ALICE)
    check_fine_tuning(spec, by=BOB)


def test_distinct_people_get_distinct_folders_and_digit_sets(hosted):
    """Issue 21: "alice." was given alice's folder (both made "alice"), so she could train on alice's
    uploads. Every name gets a place of its own; a name that is already a safe spelling keeps its own."""
    names = ["alice", "alice.", ".alice", "alice@example.org", "alice example.org", "alice-example.org"]
    names += ["Zoë", "Zoe", "日本", "中文", "x" * 60, "x" * 60 + "y", "bob-0123456789ab"]
    assert len({owner_slug(name) for name in names}) == len(names)
    assert len({uploads_directory(name) for name in names}) == len(names)
    assert len({personal_set_name(User(name)) for name in names}) == len(names)
    for name in ("alice", "alice-example.org", "Zoe", "x" * 50):  # as before: their folders stay theirs
        assert owner_slug(name) == name
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}", owner_slug(name)), name
    config = load_config()
    upload = save_uploaded_mnist(small_mnist(), "mnist.npz", "alice", 60 * 2**20)
    check_visitor_data_source(upload, ALICE, config)
    with pytest.raises(PermissionDenied, match="a file on the server cannot be named"):
        check_visitor_data_source(upload, User("alice."), config)
    store = open_run_store()
    with pytest.raises(PermissionDenied, match="a file on the server cannot be named"):
        start(TrainSpec.cnn(mnist_source=upload), by=User("alice."), executor=open_executor(store))
    assert store.list_runs() == []


def test_a_digit_set_made_before_names_were_kept_apart_is_still_its_makers(hosted):
    """Before issue 21 "alice@example.org" kept her digits in "alice-example.org-digits" (a name
    "alice example.org" shared): her set, recorded as hers, stays her personal set; not his."""
    pixels, digit = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.float32)
    her, him = User("alice@example.org"), User("alice example.org")
    DigitStore().add("alice-example.org-digits", 3, pixels, digit, by=her)
    assert personal_set_name(her) == "alice-example.org-digits"
    assert personal_set_name(him) == f"{owner_slug(him.name)}-digits" != personal_set_name(her)


def mnist_npz(members: dict[str, bytes]) -> bytes:
    """An .npz (zip of .npy members) holding exactly ``members``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def small_mnist(**replaced: bytes) -> bytes:
    """A tiny but valid MNIST .npz (the embedded digits' first 60 / 20), with members replaced."""
    mnist = load_embedded_mnist()
    arrays = {"x_train": mnist.x_train[:60], "y_train": mnist.y_train[:60]}
    arrays |= {"x_test": mnist.x_test[:20], "y_test": mnist.y_test[:20]}
    return mnist_npz({name: npy(array) for name, array in arrays.items()} | replaced)


def many_blank_digits(path: Path, images: int) -> Path:
    """A Keras mnist.npz of ``images`` blank training digits (and 20 test digits) that takes a few MB on
    disk: zeros compress, so the file's size says nothing of what it holds."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("x_train.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "|u1", "fortran_order": False, "shape": (images, 28, 28)}
            )
            for _ in range(images // 10_000):
                member.write(bytes(10_000 * 28 * 28))
        archive.writestr("y_train.npy", npy(np.zeros(images, np.uint8)))
        archive.writestr("x_test.npy", npy(np.zeros((20, 28, 28), np.uint8)))
        archive.writestr("y_test.npy", npy(np.zeros(20, np.uint8)))
    return path


def test_hosted_limits_are_judged_from_what_the_data_holds_before_a_run_is_queued(hosted, monkeypatch):
    """Issue 21: an uploaded mnist.npz of 2.9 MB holding 600,000 digits passed the samples and memory
    limits (estimated from 60,000) and its worker reached 4.9 GB against 1,024 MB."""
    upload = many_blank_digits(uploads_directory("alice") / "many.npz", 600_000)  # where uploads are kept
    assert upload.stat().st_size < HOSTED_LIMITS.upload_mb * 2**20  # small enough to upload
    spec = TrainSpec.cnn(mnist_source=str(upload), num_epochs=1)
    limits = load_config().limits
    with pytest.raises(
        PermissionDenied, match="training samples is 600,000, beyond this host's limit of 60,000"
    ):
        check_limits(spec, limits)
    store = open_run_store()
    with pytest.raises(PermissionDenied, match=r"training samples is 600,000.*ZOO_LIMIT_SAMPLES"):
        start(spec, by=ALICE, executor=open_executor(store))
    monkeypatch.setenv("ZOO_LIMIT_SAMPLES", "none")
    with pytest.raises(
        PermissionDenied,
        match=r"estimated training memory \(MB\) is 2,\d{3}, beyond this host's limit of 1,024.*MEMORY_MB",
    ):
        start(spec, by=ALICE, executor=open_executor(store))
    assert store.list_runs() == []
    # A small file is judged by what it holds too: 60 digits fit a limit of 100 samples.
    small = uploads_directory("alice") / "small.npz"
    small.write_bytes(small_mnist())
    assert check_limits(TrainSpec.cnn(mnist_source=str(small)), Limits(samples=100)).samples == 60


def test_a_run_on_a_registered_data_set_names_the_set_not_its_server_path(zoo_home, tmp_path, monkeypatch):
    served = tmp_path / "srv" / "mnist.npz"  # outside ZOO_HOME: the host's own layout
    served.parent.mkdir()
    served.write_bytes(small_mnist())
    config = tmp_path / "config.toml"
    config.write_text(f'mode = "hosted"\n\n[datasets]\nclass-mnist = "{served}"\n')
    monkeypatch.setenv("ZOO_CONFIG", str(config))
    source = load_mnist(str(served)).source
    assert source == "MNIST from the data set class-mnist (60 train / 20 test)"
    assert str(tmp_path) not in source


def test_a_header_that_claims_a_billion_images_is_refused_without_allocating_them(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (1_000_000_000, 28, 28)}
    )
    path = tmp_path / "header-bomb.npz"
    path.write_bytes(small_mnist(x_train=header.getvalue() + bytes(784)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        DataError, match=r"array x_train claims shape \(1000000000, 28, 28\).*damaged or forged"
    ):
        load_mnist(path)
    with pytest.raises(DataError, match=r"^bomb.npz: array x_train claims shape \(1000000000, 28, 28\)"):
        save_uploaded_mnist(path.read_bytes(), "bomb.npz", "alice", 60 * 2**20)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB: nothing was allocated


def test_a_zip_bomb_upload_is_refused_from_its_directory_before_it_is_unpacked(zoo_home):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("y_train.npy", npy(np.zeros(1_500_000, np.uint8)))
        with archive.open("x_train.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "|u1", "fortran_order": False, "shape": (1_500_000, 28, 28)}
            )
            for _ in range(70):  # 1.1 GB of zeros, written 16.8 MB at a time
                member.write(bytes(16_800_000))
    bomb = buffer.getvalue()
    assert len(bomb) < 5 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        DataError, match=r"^bomb.npz holds 1,1\d\d MB of arrays, more than the 1,000 MB allowed"
    ):
        save_uploaded_mnist(bomb, "bomb.npz", "alice", 60 * 2**20)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000
    assert not list(uploads_directory("alice").iterdir())
    with pytest.raises(DataError, match=r"big.npz is 70.0 MB, over this host's upload limit of 60 MB"):
        save_uploaded_mnist(bytes(70 * 2**20), "big.npz", "alice", 60 * 2**20)


def test_an_upload_is_kept_as_its_owners_data_set_and_named_without_server_paths(zoo_home):
    path = save_uploaded_mnist(small_mnist(), "my-mnist.npz", "alice@example.org", 60 * 2**20)
    assert Path(path).parent == uploads_directory("alice@example.org") and load_mnist(path).x_train.shape == (
        60,
        28,
        28,
    )
    assert (
        f"$ZOO_HOME/datasets/{owner_slug('alice@example.org')}/" in load_mnist(path).source
        and str(zoo_home) not in load_mnist(path).source
    )
    bad_labels = small_mnist(y_test=npy(np.full(20, 12, np.uint8)))
    with pytest.raises(DataError, match=r"^my-digits.npz: y_test holds labels outside 0-9") as refused:
        save_uploaded_mnist(bad_labels, "my-digits.npz", "alice@example.org", 60 * 2**20)
    assert str(zoo_home) not in str(refused.value)
    for broken, message in [
        (b"not a zip", r"^broken.npz is not an .npz file"),
        (small_mnist(x_test=npy(np.zeros((20, 28, 28), np.float32))), "x_test has dtype float32"),
    ]:
        with pytest.raises(DataError, match=message):
            save_uploaded_mnist(broken, "broken.npz", "alice@example.org", 60 * 2**20)
    assert [p.name for p in uploads_directory("alice@example.org").iterdir()] == [Path(path).name]


def test_a_visitor_names_no_server_file_only_built_in_registered_or_their_own_data(hosted, tmp_path):
    config = load_config()
    upload = save_uploaded_mnist(small_mnist(), "mnist.npz", "alice", 60 * 2**20)
    for source in ("auto", "embedded", "/srv/data/mnist.npz", upload):
        check_visitor_data_source(source, ALICE, config)
    messages = set()
    for source in (upload, "/etc/shadow", "/nonexistent/mnist.npz", str(tmp_path / ".." / "x.npz")):
        with pytest.raises(PermissionDenied) as refused:
            check_visitor_data_source(source, BOB, config)
        messages.add(str(refused.value))
    assert len(messages) == 1 and "a file on the server cannot be named" in messages.pop()  # nothing leaks
    store = open_run_store()
    with pytest.raises(PermissionDenied, match="a file on the server cannot be named"):
        start(TrainSpec.cnn(mnist_source="/etc/shadow"), by=BOB, executor=open_executor(store))
    assert store.list_runs() == []
