"""``python -m zoo`` end to end, as a person runs it: real subprocesses on the embedded digits,
with ZOO_HOME pointing at a fresh directory. Bad input is one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_store import forge_keras_config, small_cnn, with_dense_units

from zoo.core.hosting import LOCAL_USER
from zoo.storage.models import ModelConfig, ModelStore

REPOSITORY = Path(__file__).resolve().parents[1]


def zoo_environment(home: Path, **overrides: str) -> dict[str, str]:
    """This process's environment for a CLI subprocess on ``home``, without ZOO_MNIST, plus ``overrides``."""
    environment = {key: value for key, value in os.environ.items() if key != "ZOO_MNIST"}
    environment.update(ZOO_HOME=str(home), KERAS_HOME=str(home / "keras"), **overrides)
    return environment


def run_zoo(
    home: Path,
    *arguments: str,
    timeout: float = 300,
    stdout: int = subprocess.PIPE,
    environment: dict[str, str] | None = None,
    cwd: Path = REPOSITORY,  # elsewhere: give PYTHONPATH=REPOSITORY in ``environment``
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *arguments],
        cwd=cwd,
        env=environment or zoo_environment(home),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One ZOO_HOME for the module: the CNN trained once is listed, evaluated and compared."""
    return tmp_path_factory.mktemp("cli-home")


@pytest.fixture(scope="module")
def trained_t1(home) -> dict:
    options = ["--data", "embedded", "--epochs", "1", "--max-train-samples", "500", "--name", "t1"]
    result = succeeded(run_zoo(home, "train", "cnn", *options, "--json"))
    return {"run": json.loads(result.stdout), "stderr": result.stderr}


def test_train_cnn_runs_to_completion_and_prints_the_run(trained_t1):
    run = trained_t1["run"]
    assert run["status"] == "completed" and run["kind"] == "cnn" and run["model_name"] == "t1"
    assert run["epochs"] == 1 and 0.15 < run["test_accuracy"] <= 1.0  # chance is 0.1, 4 steps give ~0.36
    assert (
        run["data_source"].startswith("embedded MNIST subset")
        and "first 500 training images" in run["data_source"]
    )
    lines = trained_t1["stderr"].splitlines()
    assert lines[0] == f"run {run['id']}: cnn queued on cpu with tensorflow"
    assert any(line.startswith("epoch 1/1 [") for line in lines)  # the progress bar


def test_models_lists_the_trained_model_and_the_starter(home, trained_t1):
    models = json.loads(succeeded(run_zoo(home, "models", "--json")).stdout)
    assert [(model["name"], model["kind"], model["run_id"]) for model in models] == [
        ("t1", "cnn", trained_t1["run"]["id"]),  # newest first
        ("mnist-cnn", "cnn", "6077f52a0162"),  # the shipped starter
    ]
    assert models[0]["accuracy"] == trained_t1["run"]["test_accuracy"]
    table = succeeded(run_zoo(home, "models")).stdout.splitlines()
    assert table[0].split() == ["name", "kind", "accuracy", "origin", "data_source"]
    assert table[1].startswith("t1 ") and f"{trained_t1['run']['test_accuracy']:.4f}" in table[1]


def test_a_fresh_install_lists_the_starter_from_the_first_command(tmp_path):
    models = json.loads(succeeded(run_zoo(tmp_path, "models", "--json")).stdout)
    assert [(model["name"], model["kind"], model["accuracy"]) for model in models] == [
        ("mnist-cnn", "cnn", 0.9945)
    ]


def test_runs_lists_the_run(home, trained_t1):
    runs = json.loads(succeeded(run_zoo(home, "runs", "--json")).stdout)
    assert [(run["id"], run["status"], run["model_name"]) for run in runs][-1] == (
        trained_t1["run"]["id"],
        "completed",
        "t1",
    )


def test_evaluate_scores_the_saved_model_on_its_test_set(home, trained_t1):
    summary = json.loads(succeeded(run_zoo(home, "evaluate", "t1", "--json")).stdout)
    assert summary["model_name"] == "t1" and summary["num_examples"] == 1000
    assert summary["accuracy"] == trained_t1["run"]["test_accuracy"]  # the same model on the same digits
    assert summary["data_source"].startswith("embedded MNIST subset")
    matrix = np.array(summary["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 1000 and matrix.sum(axis=1).tolist() == [100] * 10
    assert summary["accuracy"] == pytest.approx(np.trace(matrix) / 1000)
    text = succeeded(run_zoo(home, "evaluate", "t1")).stdout.splitlines()
    assert text[0].startswith("t1 on embedded MNIST subset")
    assert text[1].startswith(f"accuracy {summary['accuracy']:.4f}  macro precision")
    assert [line.split()[0] for line in text[3:13]] == [str(digit) for digit in range(10)]
    assert text[-1] == f"misclassified: {summary['num_misclassified']} of 1000"


@pytest.mark.parametrize("arguments", [["runs"], ["models", "--json"]])
def test_output_into_a_reader_that_has_gone_ends_quietly(home, trained_t1, arguments):
    reading_end, writing_end = os.pipe()  # as in `python -m zoo runs | head -0`: nobody reads
    os.close(reading_end)
    try:
        result = run_zoo(home, *arguments, timeout=120, stdout=writing_end)
    finally:
        os.close(writing_end)
    assert (result.returncode, result.stderr) == (1, "")


def test_train_binary_for_three_epochs(tmp_path):
    result = succeeded(run_zoo(tmp_path, "train", "binary", "--epochs", "3", "--lr-schedule", "cosine"))
    finished, data_line = result.stdout.strip().splitlines()
    assert finished.startswith("run ") and " completed, test accuracy " in finished
    assert "; model saved as 'binary-" in finished
    assert data_line == "data: moons (400 points, noise 0.2, seed 0)"
    runs = json.loads(succeeded(run_zoo(tmp_path, "runs", "--json")).stdout)
    assert [(run["kind"], run["status"], run["epochs"]) for run in runs] == [("binary", "completed", 3)]
    spec = ModelStore(tmp_path / "models").entry(runs[0]["model_name"]).config.spec
    assert spec.learning_rate_schedule == "cosine"
    # as the Train page does:
    ModelStore(tmp_path / "models").rename(runs[0]["model_name"], "my-points", by=LOCAL_USER)
    runs = json.loads(succeeded(run_zoo(tmp_path, "runs", "--json")).stdout)
    assert runs[0]["model_name"] == "my-points"


BAD_INPUT = {
    "unknown model": (["train", "rnn"], 2, "error: argument kind: invalid choice: 'rnn'"),
    "no command": ([], 2, "error: the following arguments are required: command"),
    "epochs not a number": (["train", "cnn", "--epochs", "many"], 2, "invalid int value: 'many'"),
    "epochs out of range": (["train", "cnn", "--epochs", "0"], 1, "error: num_epochs=0: choose an integer"),
    "learning rate too large": (["train", "binary", "--learning-rate", "50"], 1, "error: learning_rate=50.0"),
    "unknown schedule": (
        ["train", "binary", "--lr-schedule", "step"],
        2,
        "argument --lr-schedule: invalid choice: 'step'",
    ),
    "too few points": (["train", "binary", "--samples", "5"], 1, "error: num_samples=5: choose between 20"),
    "four convolutions": (["train", "cnn", "--filters", "8,8,8,8"], 1, "error: conv_filters=(8, 8, 8, 8)"),
    "printed points": (["train", "binary", "--printed"], 1, "error: printed: printed digits are for the CNN"),
    "augmenting points": (["train", "binary", "--augment"], 1, "error: augment: only the CNN's digits"),
    "a digit set without a base model": (
        ["train", "cnn", "--digits", "mine"],
        1,
        "error: digits_set='mine': fine-tuning on a digit set continues a trained CNN",
    ),
    "an unknown base model": (
        ["train", "cnn", "--base", "nosuch", "--digits", "mine"],
        1,
        "no model named 'nosuch'",
    ),
    "an empty digit set": (
        ["train", "cnn", "--base", "mnist-cnn", "--digits", "mine"],
        1,
        "'mine' holds no digits",
    ),
    "unknown point set": (
        ["train", "binary", "--dataset", "swirls"],
        1,
        "error: dataset 'swirls': choose one of",
    ),
    "missing data file": (
        ["train", "cnn", "--data", "/nowhere/mnist.npz"],
        1,
        "/nowhere/mnist.npz does not exist",
    ),
    "unknown saved model": (["evaluate", "nosuch"], 1, "error: no model named 'nosuch'"),
    "unknown run": (["stop", "0123456789ab"], 1, "error: there is no run '0123456789ab'"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_on_stderr_and_a_non_zero_exit(case, tmp_path):
    arguments, exit_code, message = BAD_INPUT[case]
    result = run_zoo(tmp_path, *arguments, timeout=120)
    assert result.returncode == exit_code
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stdout == ""


def test_a_bad_data_file_is_one_line_and_starts_no_run(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"not a zip archive at all")
    result = run_zoo(tmp_path, "train", "cnn", "--data", str(bad), timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {bad} is not an .npz file (a zip archive of arrays); give a Keras mnist.npz file."
    ]
    assert json.loads(succeeded(run_zoo(tmp_path, "runs", "--json")).stdout) == []


def test_zoo_model_store_keeps_the_models_and_digits_elsewhere_and_a_bad_one_is_one_line(tmp_path):
    home, shared, one = tmp_path / "home", tmp_path / "shared", tmp_path / "one.png"
    drawing = np.zeros((280, 280), np.uint8)
    drawing[40:240, 130:150] = 255
    Image.fromarray(drawing).save(one)
    environment = zoo_environment(home, ZOO_MODEL_STORE=shared.as_uri())
    models = json.loads(succeeded(run_zoo(home, "models", "--json", environment=environment)).stdout)
    assert [model["name"] for model in models] == ["mnist-cnn"]
    succeeded(run_zoo(home, "digits", "add", "mine", "1", str(one), environment=environment))
    assert sorted(path.name for path in shared.iterdir()) == ["digits", "models"]
    assert (shared / "models" / "mnist-cnn" / "model.keras").is_file()
    assert not (home / "models").exists() and not (home / "digits").exists()
    refused = run_zoo(home, "models", environment=zoo_environment(home, ZOO_MODEL_STORE="gs://bucket/zoo"))
    assert refused.returncode == 1 and refused.stderr.splitlines() == [
        "error: ZOO_MODEL_STORE='gs://bucket/zoo' is not a store Zoo Studio can use: give a directory "
        "(/data/zoo or file:///data/zoo) or an S3 bucket (s3://bucket/prefix), or unset it to use ZOO_HOME."
    ]


def test_digits_add_list_relabel_export_and_delete(tmp_path):
    one, blank = tmp_path / "one.png", tmp_path / "blank.png"
    drawing = np.zeros((280, 280), np.uint8)
    drawing[40:240, 130:150] = 255
    Image.fromarray(drawing).save(one)
    Image.fromarray(np.zeros((280, 280), np.uint8)).save(blank)
    added = succeeded(run_zoo(tmp_path, "digits", "add", "mine", "1", str(one), str(one)))
    assert added.stdout.strip() == "added 2 digit(s) 1 to mine: 2 digits in the set"
    refused = run_zoo(tmp_path, "digits", "add", "mine", "1", str(one), str(blank))
    assert refused.returncode == 1 and refused.stderr.splitlines() == [
        f"error: {blank}: Draw a digit: there is too little ink to read one."
    ]
    sets = json.loads(succeeded(run_zoo(tmp_path, "digits", "list", "--json")).stdout)
    counts = {str(d): 2 if d == 1 else 0 for d in range(10)}
    assert sets == [{"set": "mine", "owner": "local", "shared": False, "digits": 2, **counts}]
    assert succeeded(run_zoo(tmp_path, "digits", "share", "mine")).stdout == "mine: shared with everyone\n"
    assert json.loads(succeeded(run_zoo(tmp_path, "digits", "list", "--json")).stdout)[0]["shared"] is True
    succeeded(run_zoo(tmp_path, "digits", "unshare", "mine"))
    assert json.loads(succeeded(run_zoo(tmp_path, "digits", "list", "--json")).stdout)[0]["shared"] is False
    first, second = json.loads(succeeded(run_zoo(tmp_path, "digits", "list", "mine", "--json")).stdout)
    succeeded(run_zoo(tmp_path, "digits", "relabel", "mine", second["id"], "7"))
    succeeded(run_zoo(tmp_path, "digits", "export", "mine", str(tmp_path / "mine.npz")))
    arrays = np.load(tmp_path / "mine.npz")
    assert arrays["labels"].tolist() == [1, 7] and arrays["digits"].shape == (2, 28, 28)
    succeeded(run_zoo(tmp_path, "digits", "export", "mine", str(tmp_path / "mine.zip")))
    assert (tmp_path / "mine.zip").read_bytes()[:2] == b"PK"
    succeeded(run_zoo(tmp_path, "digits", "delete", "mine", first["id"]))
    listed = succeeded(run_zoo(tmp_path, "digits", "list", "mine")).stdout
    assert second["id"] in listed and first["id"] not in listed


def test_predict_with_a_model_too_big_to_load_is_one_line(tmp_path):
    store = ModelStore(tmp_path / "models")
    model_file = store.model_file(store.save(small_cnn(), "huge-layer", config=ModelConfig("cnn")).name)
    forge_keras_config(model_file, with_dense_units(500_000))
    result = run_zoo(tmp_path, "predict", "huge-layer", str(tmp_path / "seven.png"), timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {model_file} is too big to load: the model's parameter count")


@pytest.mark.parametrize(
    "arguments", [["predict", "mnist-cnn"], ["digits", "add", "mine", "7"]], ids=["predict", "digits add"]
)
def test_a_fifo_named_as_an_image_is_refused_at_once_in_one_line(arguments, tmp_path):
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)  # opening it to read would wait for a writer for ever
    result = run_zoo(tmp_path, *arguments, str(fifo), timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: image {fifo} is a named pipe (FIFO); give the path of a PNG or JPEG file."
    ]
    assert not (tmp_path / "digits" / "mine").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["digits", "add", "mine", "12", "x.png"], "error: label '12' is outside 0-9"),
        (["digits", "add", "my set", "1", "x.png"], "error: digit set name 'my set' is not allowed"),
        (["digits", "export", "mine", "out.txt"], "give a path ending in .npz (arrays) or .zip"),
        (["digits", "export", "mine", "out.npz"], "error: the digit set 'mine' holds no digits"),
        (["digits", "relabel", "mine", "0" * 32, "3"], "error: the set 'mine' has no digit"),
        (["digits", "share", "mine"], "error: there is no digit set 'mine'; known: none."),
    ],
)
def test_digits_bad_input_is_one_line(arguments, message, tmp_path):
    result = run_zoo(tmp_path, *arguments, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
