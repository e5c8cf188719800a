"""The hosted zoo against a loopback Hub-compatible server (tests/hub_server.py).

The real huggingface_hub client and real Keras ``hf://`` talk to the server over HTTP; nothing in
huggingface_hub is patched. tests/conftest.py points huggingface_hub at the server (HF_ENDPOINT,
HF_HUB_DISABLE_XET, HF_HOME) before anything imports it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hub_server import OTHER_TOKEN, READ_TOKEN, WRITE_TOKEN
from loopback import black_hole, closed_port_url
from test_store import forge_keras_config, small_cnn, with_dense_units

from zoo.hub import operations as hub
from zoo.hub.card import CARD_BEGIN, CARD_END, card_metrics
from zoo.storage.models import ModelConfig, ModelOrigin, ModelStore

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_TRAIN = 200


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny CNN (1 epoch on 200 embedded digits) saved through ModelStore, and test digits."""
    import keras

    from zoo.core.spec import TrainSpec
    from zoo.ml import architectures as models
    from zoo.ml import data
    from zoo.ml.evaluation import evaluate_predictions
    from zoo.ml.training import scale_digits

    mnist = data.load_embedded_mnist()
    spec = TrainSpec.cnn(mnist_source="embedded", max_train_samples=NUM_TRAIN, num_epochs=1, batch_size=32)
    keras.utils.set_random_seed(0)
    model = models.build_mnist_cnn()
    models.compile_classifier(model, models.make_optimizer("adam", 0.001))
    x_train, y_train = scale_digits(mnist.x_train[:NUM_TRAIN]), np.eye(10)[mnist.y_train[:NUM_TRAIN]]
    fitted = model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    x_test = scale_digits(mnist.x_test[:100])
    evaluation = evaluate_predictions(mnist.y_test[:100], np.asarray(model(x_test)))
    store = ModelStore(tmp_path_factory.mktemp("trained"))
    entry = store.save(
        model,
        "tiny-cnn",
        config=ModelConfig("cnn", spec=spec, data_source=mnist.source, run_id="run-1"),
        metrics=evaluation.scores(),
        history=[{"epoch": 1, **{name: values[0] for name, values in fitted.history.items()}}],
    )
    return {"path": store.storage.root / entry.name, "x_test": x_test, "digits": mnist.x_test[:3]}


def install(trained, name: str = "tiny-cnn", metrics: dict | None = None) -> str:
    """Copy the trained model into this test's local zoo (optionally with other metrics)."""
    target = ModelStore().storage.root / name
    shutil.copytree(trained["path"], target)
    if metrics is not None:
        (target / "metrics.json").write_text(json.dumps(metrics))
    return name


def outputs(model, inputs) -> np.ndarray:
    return np.asarray(model(inputs, training=False))


def api(token: str = WRITE_TOKEN):
    from huggingface_hub import HfApi

    return HfApi(endpoint=os.environ["HF_ENDPOINT"], token=token)


# ---- push, pull, interop -------------------------------------------------------------------


def test_round_trip_gives_identical_predictions_and_the_draw_pipeline_reads_the_pulled_model(server, trained):
    from zoo.ml import inference

    name = install(trained)
    pushed = hub.push(name, "alice/tiny-cnn", message="First tiny CNN", tag="v1")
    assert len(pushed.commit) == 40 and pushed.commit_url.endswith(f"/alice/tiny-cnn/commit/{pushed.commit}")
    assert pushed.repo_url == f"{server.url}/alice/tiny-cnn"
    files = server.files("alice/tiny-cnn")
    assert {
        "config.json",
        "metadata.json",
        "model.weights.h5",
        "zoo.json",
        "metrics.json",
        "history.csv",
    } <= set(files)
    assert "README.md" in files
    assert json.loads(files["zoo.json"])["kind"] == "cnn"
    assert json.loads(files["config.json"])["class_name"] == "Sequential"  # Keras' own config, not ours

    pulled = hub.pull("alice/tiny-cnn", revision=pushed.commit)

    store = ModelStore()
    assert pulled.entry.name == "tiny-cnn-2" and pulled.made_by == "zoo-studio"
    assert pulled.entry.config.origin == ModelOrigin(
        "alice/tiny-cnn", pushed.commit, pushed.commit, server.url
    )
    assert (
        pulled.entry.config.spec == store.entry(name).config.spec and pulled.entry.config.spec.num_epochs == 1
    )
    assert pulled.entry.metrics == store.entry(name).metrics
    original, copy = store.load(name), store.load(pulled.entry.name)
    assert np.array_equal(outputs(original.model, trained["x_test"]), outputs(copy.model, trained["x_test"]))
    assert copy.history == original.history
    with pytest.raises(hub.HubError, match="a model named 'tiny-cnn' is already in the local zoo"):
        hub.pull("alice/tiny-cnn", name=name)

    # The Draw page's pipeline: a canvas drawing -> MNIST preprocessing -> compiled predictor.
    canvas = inference.redraw_on_canvas(trained["digits"][0], np.random.default_rng(0))
    from_hub = inference.predict_digit(
        inference.Predictor.from_file(store.model_file(pulled.entry.name)), canvas
    )
    local = inference.predict_digit(inference.Predictor.from_file(store.model_file(name)), canvas)
    assert from_hub.probabilities.shape == (10,)
    assert np.array_equal(from_hub.probabilities, local.probabilities)


def test_pull_by_tag_and_branch_resolves_to_the_commit(server, trained):
    name = install(trained)
    first = hub.push(name, "alice/tiny-cnn", tag="v1")
    second = hub.push(name, "alice/tiny-cnn")
    assert first.commit != second.commit
    assert hub.pull("alice/tiny-cnn", revision="v1").commit == first.commit
    assert hub.pull("alice/tiny-cnn").commit == second.commit  # main by default


def test_a_zoo_pushed_model_loads_with_plain_keras_hf(server, trained):
    import keras

    name = install(trained)
    hub.push(name, "alice/tiny-cnn")
    model = keras.saving.load_model("hf://alice/tiny-cnn")
    local = ModelStore().load(name).model
    assert np.array_equal(outputs(model, trained["x_test"]), outputs(local, trained["x_test"]))


def test_a_plain_keras_hf_model_is_pulled_with_its_kind_inferred(server):
    import keras

    from zoo.ml import architectures as models

    keras.utils.set_random_seed(1)
    model = models.build_binary_classifier((3,), "sigmoid")
    model.save("hf://alice/plain-binary")
    assert "zoo.json" not in server.files("alice/plain-binary")

    pulled = hub.pull("alice/plain-binary")

    assert pulled.made_by == "keras" and pulled.entry.kind == "binary"
    points = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    loaded = ModelStore().load(pulled.entry.name).model
    assert np.array_equal(outputs(loaded, points), outputs(model, points))


def test_a_model_over_10_mib_goes_through_lfs_and_comes_back_identical(server, trained):
    from zoo.ml import architectures as models

    big = models.build_mnist_cnn(dense_units=(5000,))  # ~11.5 MB of weights
    ModelStore().save(big, "big-cnn", config=ModelConfig("cnn"))
    hub.push("big-cnn", "alice/big-cnn")

    stored = server.state.repos["alice/big-cnn"]
    weights = stored.resolve("main").files["model.weights.h5"]
    assert len(weights.data) > 10 * 1024 * 1024 and weights.lfs_sha256 is not None
    assert stored.resolve("main").files["config.json"].lfs_sha256 is None
    paths = [path for _, path in server.state.requests]
    assert "/alice/big-cnn.git/info/lfs/objects/batch" in paths
    assert f"/_lfs/alice/big-cnn/{weights.lfs_sha256}/verify" in paths

    pulled = hub.pull("alice/big-cnn")
    loaded = ModelStore().load(pulled.entry.name).model
    assert np.array_equal(outputs(loaded, trained["x_test"][:5]), outputs(big, trained["x_test"][:5]))


# ---- model card ----------------------------------------------------------------------------


def test_the_card_has_hub_metadata_and_the_run(server, trained):
    from huggingface_hub import ModelCard

    name = install(trained)
    metrics = ModelStore().entry(name).metrics
    hub.push(name, "alice/tiny-cnn")
    card = ModelCard(server.files("alice/tiny-cnn")["README.md"].decode())

    assert card.data.library_name == "keras"
    assert {"zoo-studio", "image-classification"} <= set(card.data.tags)
    assert card.data.datasets == ["mnist"]
    declared = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert declared["accuracy"] == pytest.approx(metrics.accuracy, abs=1e-6)  # the card keeps 6 digits
    assert declared["f1"] == pytest.approx(metrics.macro_f1, abs=1e-6)
    assert "## Hyperparameters" in card.text and "| learning_rate | 0.001 |" in card.text
    assert ModelStore().entry(name).config.data_source in card.text
    assert "## Training curves" in card.text and "| epoch | accuracy | loss |" in card.text
    assert 'keras.saving.load_model("hf://alice/tiny-cnn")' in card.text
    # The Hub itself reads the card: model info and listings carry its metrics.
    info = api().model_info("alice/tiny-cnn")
    assert card_metrics(info.card_data).accuracy == pytest.approx(metrics.accuracy, abs=1e-6)


def test_a_second_push_keeps_hand_written_text_and_updates_the_rest(server, trained):
    from huggingface_hub import ModelCard

    name = install(trained)
    first = hub.push(name, "alice/tiny-cnn", tag="v1")
    card = ModelCard(server.files("alice/tiny-cnn")["README.md"].decode())
    card.data.license = "mit"
    card.text = card.text.replace(CARD_BEGIN, "A note by a person: trained on a Tuesday.\n\n" + CARD_BEGIN)
    card.text += "\n## Thanks\n\nTo the MNIST authors.\n"
    api().upload_file(
        path_or_fileobj=str(card.content).encode(), path_in_repo="README.md", repo_id="alice/tiny-cnn"
    )

    original_accuracy = ModelStore().entry(name).accuracy
    better = {**ModelStore().entry(name).metrics.to_dict(), "accuracy": 0.99}
    (ModelStore().storage.root / name / "metrics.json").write_text(json.dumps(better))
    second = hub.push(name, "alice/tiny-cnn", message="Better")

    updated = ModelCard(server.files("alice/tiny-cnn")["README.md"].decode())
    assert "A note by a person: trained on a Tuesday." in updated.text
    assert "To the MNIST authors." in updated.text
    assert updated.data.license == "mit"
    assert updated.text.count(CARD_BEGIN) == 1 and updated.text.count(CARD_END) == 1
    assert card_metrics(updated.data).accuracy == 0.99
    assert "| Accuracy | 0.9900 |" in updated.text

    revisions = hub.list_revisions("alice/tiny-cnn")
    commits = [revision.commit for revision in revisions if revision.ref_type == "commit"]
    assert (
        commits[0] == second.commit and first.commit in commits and len(commits) == 4
    )  # + card edit, initial
    assert [(r.ref_type, r.name, r.commit) for r in revisions if r.ref_type != "commit"] == [
        ("branch", "main", second.commit),
        ("tag", "v1", first.commit),
    ]
    comparison = hub.compare_revisions("alice/tiny-cnn", "v1", "main")
    accuracy = next(change for change in comparison.changes() if change.metric == "accuracy")
    assert accuracy.first == pytest.approx(original_accuracy) and accuracy.second == 0.99
    assert accuracy.change == pytest.approx(0.99 - original_accuracy)
    assert (comparison.first.commit, comparison.second.commit) == (first.commit, second.commit)


def test_tag_a_pushed_revision(server, trained):
    name = install(trained)
    pushed = hub.push(name, "alice/tiny-cnn")
    assert hub.tag_revision("alice/tiny-cnn", "v1", revision=pushed.commit) == pushed.commit
    assert hub.pull("alice/tiny-cnn", revision="v1").commit == pushed.commit
    with pytest.raises(hub.HubError, match="tag 'v1' already exists in alice/tiny-cnn"):
        hub.tag_revision("alice/tiny-cnn", "v1")
    with pytest.raises(hub.HubError, match="tag 'v1' already exists in alice/tiny-cnn"):
        hub.push(name, "alice/tiny-cnn", tag="v1")
    assert server.state.repos["alice/tiny-cnn"].branches["main"] == pushed.commit  # nothing was committed
    with pytest.raises(hub.HubError, match="tag 'v 1' is not valid"):
        hub.tag_revision("alice/tiny-cnn", "v 1")


# ---- browse ----------------------------------------------------------------------------------


def test_browse_lists_zoo_models_filtered_by_author_and_search_with_card_metrics(server, trained):
    from zoo.ml import architectures as models

    install(trained, "a", metrics={"accuracy": 0.5})
    install(trained, "b", metrics={"accuracy": 0.75, "macro_f1": 0.7})
    hub.push("a", "alice/cnn-a")
    hub.push("b", "alice/cnn-b")
    hub.push("a", "bob/cnn-c", token=OTHER_TOKEN)
    hub.push("a", "alice/secret-cnn", private=True)
    models.build_binary_classifier().save("hf://alice/not-from-zoo-studio")

    listed = {model.repo_id: model for model in hub.list_models()}
    assert set(listed) == {"alice/cnn-a", "alice/cnn-b", "bob/cnn-c", "alice/secret-cnn"}
    assert listed["alice/cnn-b"].metrics == hub.CardMetrics(accuracy=0.75, macro_f1=0.7)
    assert listed["alice/cnn-b"].kind == "cnn" and listed["alice/secret-cnn"].private
    assert [m.repo_id for m in hub.list_models(author="bob")] == ["bob/cnn-c"]
    assert [m.repo_id for m in hub.list_models(search="CNN-B")] == ["alice/cnn-b"]
    assert "alice/secret-cnn" not in {m.repo_id for m in hub.list_models(token=OTHER_TOKEN)}
    with pytest.raises(hub.HubError, match="repo not found"):
        hub.pull("alice/secret-cnn", token=OTHER_TOKEN)


# ---- errors: one line, nothing half-written, never the token --------------------------------


def assert_clean_failure(error: pytest.ExceptionInfo, *tokens: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for token in (WRITE_TOKEN, READ_TOKEN, OTHER_TOKEN, *tokens):
        assert token not in message
    assert [entry.name for entry in ModelStore().entries() if entry.config.origin] == []
    local_zoo = ModelStore().storage.root  # made with the first model
    assert not local_zoo.exists() or not [path for path in local_zoo.iterdir() if path.name.startswith(".")]


@pytest.mark.parametrize("repo_id", ["tiny-cnn", "alice/tiny cnn", "a/b/c", "alice/--x", "", "alice/x..y"])
def test_invalid_repo_id(server, trained, repo_id):
    install(trained)
    for call in (lambda: hub.push("tiny-cnn", repo_id), lambda: hub.pull(repo_id)):
        with pytest.raises(hub.HubError, match="is not valid: use namespace/name") as error:
            call()
        assert_clean_failure(error)
    assert server.state.requests == []


def test_bad_token_401(server, trained, monkeypatch):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_42")
    with pytest.raises(hub.HubError, match=r"rejected the token \(401 Unauthorized\)") as error:
        hub.push("tiny-cnn", "alice/tiny-cnn")
    assert_clean_failure(error, "hf_not_a_real_token_42")
    with pytest.raises(hub.HubError, match=r"401") as error:
        hub.pull("alice/tiny-cnn")
    assert_clean_failure(error, "hf_not_a_real_token_42")


def test_no_write_access_403(server, trained):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    for token, repo_id in (
        (READ_TOKEN, "alice/tiny-cnn"),
        (READ_TOKEN, "alice/new-repo"),
        (OTHER_TOKEN, "alice/x"),
    ):
        with pytest.raises(hub.HubError, match=r"no write access there \(403 Forbidden\)") as error:
            hub.push("tiny-cnn", repo_id, token=token)
        assert_clean_failure(error)
    # A read-only token still pulls.
    assert hub.pull("alice/tiny-cnn", token=READ_TOKEN).repo_id == "alice/tiny-cnn"


def test_push_without_any_token(server, trained, monkeypatch):
    install(trained)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(hub.HubError, match="no Hugging Face token; set HF_TOKEN") as error:
        hub.push("tiny-cnn", "alice/tiny-cnn")
    assert_clean_failure(error)
    assert server.state.requests == []


def test_repo_not_found(server):
    with pytest.raises(hub.HubError, match="cannot pull alice/nothing-here at main: repo not found") as error:
        hub.pull("alice/nothing-here")
    assert_clean_failure(error)
    with pytest.raises(hub.HubError, match="repo not found"):
        hub.list_revisions("alice/nothing-here")


def test_revision_not_found(server, trained):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    for revision in ("no-such-branch", "0123456789abcdef0123456789abcdef01234567"):
        with pytest.raises(hub.HubError, match="revision not found") as error:
            hub.pull("alice/tiny-cnn", revision=revision)
        assert_clean_failure(error)
    with pytest.raises(hub.HubError, match="revision not found"):
        hub.compare_revisions("alice/tiny-cnn", "main", "v9")


def test_hub_unreachable_timeout(server, trained, monkeypatch):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "0.5")
    server.state.stall_seconds = 2.0
    for call in (
        lambda: hub.pull("alice/tiny-cnn"),
        lambda: hub.push("tiny-cnn", "alice/tiny-cnn"),
        lambda: hub.list_revisions("alice/tiny-cnn"),
    ):
        with pytest.raises(hub.HubError, match=r"did not answer within 0.5 s; check the network") as error:
            call()
        assert_clean_failure(error)


# ---- a Hub that is slow, down, or not a Hub ---------------------------------------------------

HUB_COMMANDS = {
    "list": ["hub", "list"],
    "revisions": ["hub", "revisions", "alice/tiny-cnn"],
    "compare": ["hub", "compare", "alice/tiny-cnn", "main", "main"],
    "tag": ["hub", "tag", "alice/tiny-cnn", "v9"],
    "push": ["push", "tiny-cnn", "alice/tiny-cnn"],
    "pull": ["pull", "alice/tiny-cnn", "--name", "pulled"],
}
NOT_JSON = {
    "html": ("text/html; charset=utf-8", b"<!doctype html><html><body><h1>Welcome</h1></body></html>"),
    "binary": ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe" + bytes(range(256))),
}


def failed_command(name: str, capsys) -> tuple[str, float]:
    """Run a Hub command of the CLI in this process; assert it failed with one ``error:`` line on
    stderr, naming no token, and that no model was pulled; return the line and the seconds it took."""
    from zoo.app.cli import main

    started = time.monotonic()
    exit_code = main(HUB_COMMANDS[name])
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert exit_code == 1 and captured.out == "", (name, captured)
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, captured.err)
    assert all(token not in lines[0] for token in (WRITE_TOKEN, READ_TOKEN, OTHER_TOKEN))
    assert "pulled" not in {entry.name for entry in ModelStore().entries()}
    return lines[0], elapsed


def test_a_pull_whose_downloads_never_answer_ends_within_zoo_hub_timeout_in_total(
    server, trained, monkeypatch, capsys
):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
    server.state.stall_paths, server.state.stall_seconds = "/resolve/", 600.0  # model info still answers
    line, elapsed = failed_command("pull", capsys)
    assert "did not answer within 2 s; check the network or raise ZOO_HUB_TIMEOUT" in line
    assert elapsed < 2 + 3, f"{elapsed:.1f} s"  # huggingface_hub alone: 390 s (10 s, then 60 s retried)
    assert any("/resolve/" in path for _, path in server.state.requests)  # it did get to the files


def test_a_push_whose_large_file_upload_never_answers_ends_within_zoo_hub_timeout_in_total(
    server, monkeypatch
):
    from zoo.ml import architectures as models

    big = models.build_mnist_cnn(dense_units=(5000,))  # ~11.5 MB of weights: uploaded through LFS
    ModelStore().save(big, "big-cnn", config=ModelConfig("cnn"))
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
    server.state.stall_paths, server.state.stall_seconds = "^/_lfs/", 600.0
    started = time.monotonic()
    with pytest.raises(hub.HubError, match="did not answer within 2 s; check the network or raise") as error:
        hub.push("big-cnn", "alice/big-cnn")  # huggingface_hub wraps the failure in a RuntimeError
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 3, f"{elapsed:.1f} s"
    assert any(path.startswith("/_lfs/") for _, path in server.state.requests)
    assert_clean_failure(error)


def test_a_hub_sending_a_byte_a_second_ends_every_command_within_zoo_hub_timeout_in_total(
    server, trained, monkeypatch, capsys
):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
    server.state.trickle_seconds = 1.0  # headers at once, then the body one byte a second
    for name in HUB_COMMANDS:
        line, elapsed = failed_command(name, capsys)
        assert "did not answer within 2 s; check the network or raise ZOO_HUB_TIMEOUT" in line, line
        assert elapsed < 2 + 3, f"{name}: {elapsed:.1f} s"


LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (INFO|WARNING) zoo\.[a-z_.]+: .+")


def test_cli_v_logs_the_model_pulled_and_saved_and_each_hub_retry_one_line_each_naming_no_token(
    server, trained, monkeypatch, capsys
):
    from zoo.app.cli import main

    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    assert main(["pull", "alice/tiny-cnn", "--name", "quiet"]) == 0
    assert capsys.readouterr().err == ""  # without -v: warnings only
    assert main(["-v", "pull", "alice/tiny-cnn", "--name", "told"]) == 0
    logged = capsys.readouterr().err.splitlines()
    assert all(LOG_LINE.fullmatch(line) for line in logged), logged
    assert any(" INFO zoo.storage.models: saved model told (cnn) in " in line for line in logged), logged
    assert any(" INFO zoo.hub.operations: pulled alice/tiny-cnn at main " in line for line in logged), logged

    server.state.busy_answers = 2
    assert main(["-v", "hub", "revisions", "alice/tiny-cnn"]) == 0
    logged = capsys.readouterr().err.splitlines()
    retried = [line for line in logged if ": answered 503; trying again in " in line]
    assert len(retried) == 2 and f" INFO zoo.hub.transport: GET {server.url}/api/" in retried[0], logged

    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "1")
    server.state.stall_seconds = 600.0
    assert main(["-v", "hub", "revisions", "alice/tiny-cnn"]) == 1
    *logged, error = capsys.readouterr().err.splitlines()
    assert error.startswith("error: ") and "did not answer within 1 s" in error, error
    assert all(LOG_LINE.fullmatch(line) for line in logged), logged  # no traceback, one line each
    assert any(line.endswith("no answer from the Hub within the action's time; giving up") for line in logged)
    assert not any(token in line for line in logged for token in (WRITE_TOKEN, READ_TOKEN, OTHER_TOKEN))


@pytest.mark.parametrize("answer", NOT_JSON, ids=list(NOT_JSON))
def test_an_endpoint_answering_200_with_something_else_than_json_is_named_in_one_line(
    server, trained, answer, capsys
):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    content_type, body = NOT_JSON[answer]
    server.state.answer_instead = (content_type, body)
    for name in HUB_COMMANDS:
        line, _ = failed_command(name, capsys)
        assert f"{server.url}/api/" in line and f"answered 200 with {content_type}, not JSON" in line, line
        assert f"HF_ENDPOINT ({server.url}) is probably not a Hugging Face Hub" in line, line


@pytest.mark.parametrize("where", ["closed port", "black hole"])
def test_a_hub_that_cannot_be_reached_is_known_within_about_a_second(
    server, trained, where, monkeypatch, capsys
):
    install(trained)
    with contextlib.ExitStack() as stack:
        endpoint = closed_port_url() if where == "closed port" else stack.enter_context(black_hole())
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        for name in HUB_COMMANDS:
            line, elapsed = failed_command(name, capsys)
            assert f"the Hub at {endpoint} is unreachable" in line and "HF_ENDPOINT" in line, line
            assert elapsed < 2, f"{name}: {elapsed:.1f} s"  # ZOO_HUB_TIMEOUT is 30 s


def test_repo_without_a_model(server):
    api().create_repo("alice/just-a-card")
    api().upload_file(
        path_or_fileobj=b"# Nothing here yet\n", path_in_repo="README.md", repo_id="alice/just-a-card"
    )
    with pytest.raises(
        hub.HubError, match=r"holds no Keras model: config\.json, model\.weights\.h5 missing"
    ) as error:
        hub.pull("alice/just-a-card")
    assert_clean_failure(error)


def test_corrupt_model_file(server, trained):
    with zipfile.ZipFile(trained["path"] / "model.keras") as archive:
        config, metadata = archive.read("config.json"), archive.read("metadata.json")
        weights = archive.read("model.weights.h5")
    api().create_repo("alice/corrupt")
    for path, data in (
        ("config.json", config),
        ("metadata.json", metadata),
        ("model.weights.h5", weights[:5000]),
    ):
        api().upload_file(path_or_fileobj=data, path_in_repo=path, repo_id="alice/corrupt")
    with pytest.raises(
        hub.HubError, match=r"alice/corrupt at [0-9a-f]{8} cannot be loaded as a Keras model"
    ) as error:
        hub.pull("alice/corrupt")
    assert_clean_failure(error)


def test_corrupt_zoo_description(server, trained):
    name = install(trained)
    hub.push(name, "alice/tiny-cnn")
    api().upload_file(path_or_fileobj=b"{not json", path_in_repo="zoo.json", repo_id="alice/tiny-cnn")
    with pytest.raises(hub.HubError, match=r"zoo\.json is not valid JSON") as error:
        hub.pull("alice/tiny-cnn")
    assert_clean_failure(error)


@pytest.mark.parametrize(
    ("path", "content", "problem"),
    [
        ("zoo.json", {"kind": "cnn", "spec": {"num_epochs": 0}}, "num_epochs=0: choose an integer"),
        ("zoo.json", {"kind": "cnn", "spec": {"dropout": 0.5}}, "unknown training option(s) dropout"),
        ("metrics.json", {"macro_f1": 0.5}, "the scores record is malformed"),
    ],
)
def test_a_repo_whose_description_zoo_studio_cannot_read_is_refused_in_one_line(
    server, trained, path, content, problem
):
    hub.push(install(trained), "alice/tiny-cnn")
    upload = json.dumps(content).encode()
    api().upload_file(path_or_fileobj=upload, path_in_repo=path, repo_id="alice/tiny-cnn")
    with pytest.raises(hub.HubError, match=r"^alice/tiny-cnn at [0-9a-f]{8}: ") as error:
        hub.pull("alice/tiny-cnn")
    assert problem in str(error.value)
    assert "zoo.json and metrics.json are not what Zoo Studio writes" in str(error.value)
    assert_clean_failure(error)


def test_a_model_needing_unsafe_deserialization_is_refused(server):
    import keras

    lambda_model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Lambda(lambda x: x * 2.0),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    lambda_model.save("hf://alice/lambda-model")
    with pytest.raises(
        hub.HubError, match=r"needs unsafe deserialization .* which Zoo Studio refuses"
    ) as error:
        hub.pull("alice/lambda-model")
    assert_clean_failure(error)


def test_a_small_repo_describing_a_huge_model_is_refused_before_it_is_built(server, tmp_path):
    """Issue 21: a 47 KB model with one Dense(500000) took 4 GB on pull; a description file larger than a
    model's is refused from its size too."""
    store = ModelStore(tmp_path)
    model_file = store.model_file(store.save(small_cnn(), "huge-layer", config=ModelConfig("cnn")).name)
    forge_keras_config(model_file, with_dense_units(500_000))
    api().create_repo("alice/huge-layer")
    with zipfile.ZipFile(model_file) as archive:
        for name in archive.namelist():
            api().upload_file(
                path_or_fileobj=archive.read(name), path_in_repo=name, repo_id="alice/huge-layer"
            )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        hub.HubError,
        match=r"^alice/huge-layer at [0-9a-f]{8} is too big to load: the model's parameter count is "
        r"397,500,010, beyond this host's limit of 50,000,000;.*ZOO_LIMIT_PARAMETERS",
    ) as error:
        hub.pull("alice/huge-layer")
    assert_clean_failure(error)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB
    api().upload_file(path_or_fileobj=b" " * 5_000_000, path_in_repo="zoo.json", repo_id="alice/huge-layer")
    with pytest.raises(
        hub.HubError, match=r"alice/huge-layer at [0-9a-f]{8}: zoo.json is 5.0 MB, more than"
    ) as error:
        hub.pull("alice/huge-layer")
    assert_clean_failure(error)


def test_a_keras_model_with_shapes_the_draw_page_cannot_use_is_refused(server):
    import keras

    iris = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    iris.save("hf://alice/iris")
    with pytest.raises(hub.HubError, match=r"maps \(4,\) -> \(3,\), which Zoo Studio cannot use") as error:
        hub.pull("alice/iris")
    assert "(28, 28, 1) -> (10,) (cnn)" in str(error.value)
    assert_clean_failure(error)


def test_a_download_over_the_limit_is_refused_before_downloading(server, trained, monkeypatch):
    name = install(trained)
    hub.push(name, "alice/tiny-cnn")
    server.state.requests.clear()
    with pytest.raises(hub.HubError, match=r"over the download limit of 0.0 MB") as error:
        hub.pull("alice/tiny-cnn", max_download_bytes=1000)
    assert_clean_failure(error)
    monkeypatch.setenv("ZOO_HUB_MAX_DOWNLOAD_MB", "0.5")
    with pytest.raises(
        hub.HubError, match=r"the model files are 1\.\d MB, over the download limit of 0\.5 MB"
    ):
        hub.pull("alice/tiny-cnn")
    assert not [path for _, path in server.state.requests if "/resolve/" in path]
    monkeypatch.setenv("ZOO_HUB_MAX_DOWNLOAD_MB", "2")
    assert hub.pull("alice/tiny-cnn").repo_id == "alice/tiny-cnn"


def test_the_token_is_never_written_or_logged(server, trained, caplog):
    from huggingface_hub import constants

    caplog.set_level(logging.DEBUG)
    name = install(trained)
    hub.push(name, "alice/tiny-cnn", tag="v1")
    pulled = hub.pull("alice/tiny-cnn")
    hub.list_models()
    hub.list_revisions("alice/tiny-cnn")
    assert WRITE_TOKEN not in caplog.text
    token = WRITE_TOKEN.encode()
    assert all(token not in data for data in server.files("alice/tiny-cnn").values())
    local_zoo = ModelStore().storage.root
    written = [path for root in (local_zoo, Path(constants.HF_HUB_CACHE)) for path in root.rglob("*")]
    assert local_zoo / pulled.entry.name in written
    assert all(token not in path.read_bytes() for path in written if path.is_file())


# ---- CLI -----------------------------------------------------------------------------------


def test_cli_push_pull_list_revisions_compare_tag(server, trained, capsys):
    from zoo.app.cli import main

    install(trained)
    assert main(["push", "tiny-cnn", "alice/tiny-cnn", "--message", "From the CLI", "--tag", "v1"]) == 0
    out = capsys.readouterr().out
    commit = server.state.repos["alice/tiny-cnn"].branches["main"]
    assert f"pushed tiny-cnn to alice/tiny-cnn: commit {commit} (tagged v1)" in out
    assert server.state.repos["alice/tiny-cnn"].commits[commit].title == "From the CLI"

    assert main(["pull", "alice/tiny-cnn", "--revision", "v1", "--name", "from-hub"]) == 0
    assert f"pulled alice/tiny-cnn at v1 (commit {commit}) into the local zoo as 'from-hub' (cnn)" in (
        capsys.readouterr().out
    )
    assert ModelStore().entry("from-hub").config.origin.commit == commit

    assert main(["hub", "list", "--author", "alice", "--json"]) == 0
    assert [row["repo_id"] for row in json.loads(capsys.readouterr().out)] == ["alice/tiny-cnn"]
    assert main(["hub", "revisions", "alice/tiny-cnn"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("ref_type ") and "\ntag       v1 " in table and commit in table
    assert "From the CLI" in table
    assert main(["hub", "tag", "alice/tiny-cnn", "v2"]) == 0
    assert f"tagged alice/tiny-cnn commit {commit} as v2" in capsys.readouterr().out
    assert main(["hub", "compare", "alice/tiny-cnn", "v1", "v2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["metric"] == "accuracy" and rows[0]["change"] == 0.0


def test_cli_errors_are_one_line_and_exit_non_zero(server, trained, capsys, monkeypatch):
    from zoo.app.cli import main

    install(trained)
    assert main(["pull", "not a repo"]) == 1
    assert main(["pull", "alice/missing"]) == 1
    monkeypatch.setenv("HF_TOKEN", "hf_bad_cli_token")
    assert main(["push", "tiny-cnn", "alice/tiny-cnn"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "is not valid" in lines[0] and "repo not found" in lines[1] and "401" in lines[2]
    assert "hf_bad_cli_token" not in captured.err


def test_cli_hub_list_in_a_fresh_process(server, trained):
    install(trained)
    hub.push("tiny-cnn", "alice/tiny-cnn")
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "hub", "list", "--search", "tiny"],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == [
        "repo_id",
        "kind",
        "accuracy",
        "macro_f1",
        "last_modified",
    ]
    assert result.stdout.splitlines()[1].startswith("alice/tiny-cnn  cnn")


# ---- the Hub page --------------------------------------------------------------------------


def test_hub_page_pushes_pulls_browses_compares_and_reports_a_bad_token(server, trained, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from zoo.app.ui import HUB_TOKEN_FIELD_KEY

    monkeypatch.delenv("HF_TOKEN")  # the page's password field is the only token
    install(trained)
    page = AppTest.from_file(str(REPO_ROOT / "pages" / "hub.py"), default_timeout=60)
    page.run()
    assert not page.exception
    assert "no token" in page.caption[0].value

    page.text_input(key=HUB_TOKEN_FIELD_KEY).input("hf_wrong_page_token")
    page.text_input(key="hub-push-repo").input("alice/from-the-page")
    page.text_input(key="hub-push-tag").input("v1")
    page.button(key="hub-push-submit").click().run()
    assert "rejected the token (401 Unauthorized)" in page.error[0].value
    everything = " ".join(str(element.value) for element in [*page.error, *page.success, *page.caption])
    assert "hf_wrong_page_token" not in everything

    page.text_input(key=HUB_TOKEN_FIELD_KEY).input(WRITE_TOKEN)
    page.button(key="hub-push-submit").click().run()
    assert not page.error
    commit = server.state.repos["alice/from-the-page"].branches["main"]
    assert f"commit `{commit}`, tagged `v1`" in page.success[0].value
    assert "the token entered in this session" in page.caption[0].value

    page.text_input(key="hub-pull-repo").input("alice/from-the-page")
    page.text_input(key="hub-pull-revision").input("v1")
    page.button(key="hub-pull-submit").click().run()
    assert "into the local zoo as **from-the-page** (cnn)" in page.success[0].value
    assert ModelStore().entry("from-the-page").config.origin.commit == commit

    page.text_input(key="hub-browse-author").input("alice")
    page.button(key="hub-browse-submit").click().run()
    listed = page.dataframe[0].value
    assert list(listed["repo_id"]) == ["alice/from-the-page"]

    page.text_input(key="hub-revisions-repo").input("alice/from-the-page")
    page.button(key="hub-revisions-submit").click().run()
    revisions = page.dataframe[1].value
    assert set(revisions["ref_type"]) == {"branch", "tag", "commit"}
    page.selectbox(key="hub-first").select("v1")
    page.selectbox(key="hub-second").select("main")
    page.button(key="hub-compare").click().run()
    comparison = page.dataframe[2].value
    assert comparison.iloc[0]["metric"] == "accuracy" and comparison.iloc[0]["change"] == 0.0
    assert not page.exception


@pytest.mark.parametrize("where", ["closed port", "black hole"])
def test_the_hub_page_says_within_about_a_second_that_the_hub_cannot_be_reached(
    server, trained, where, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    install(trained)
    with contextlib.ExitStack() as stack:
        endpoint = closed_port_url() if where == "closed port" else stack.enter_context(black_hole())
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        page = AppTest.from_file(str(REPO_ROOT / "pages" / "hub.py"), default_timeout=60)
        page.run()
        for field, submit in (
            ("hub-push-repo", "hub-push-submit"),
            ("hub-pull-repo", "hub-pull-submit"),
            ("hub-browse-author", "hub-browse-submit"),
            ("hub-revisions-repo", "hub-revisions-submit"),
        ):
            page.text_input(key=field).input("alice/tiny-cnn")
            started = time.monotonic()
            page.button(key=submit).click().run()
            elapsed = time.monotonic() - started
            assert len(page.error) == 1 and f"the Hub at {endpoint} is unreachable" in page.error[0].value
            assert elapsed < 2 + 1, f"{submit}: {elapsed:.1f} s"  # the page's rerun included
        assert not page.exception
