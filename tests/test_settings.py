"""Settings (zoo/core/settings.py): every ``ZOO_*`` variable and the configuration file read in one
place, the environment over the file over the defaults, one line for each bad value, the README's
Configuration table the same as the declared settings, and ``python -m zoo doctor`` showing the
effective settings and where each came from, with secrets hidden.

Real files and real CLI processes; the app through Streamlit's AppTest."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_cli import run_zoo, zoo_environment
from test_faults import one_error_line

from zoo.core.errors import SettingsError
from zoo.core.hosting import load_config
from zoo.core.settings import HOSTED_LIMITS, SETTINGS, load_settings
from zoo.execution.devices import runs_per_device
from zoo.execution.local import warm_workers
from zoo.hub import transport
from zoo.ml.data import describe_mnist_source

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"
PYTHON_SOURCES = [
    *sorted((REPOSITORY / "zoo").rglob("*.py")),
    REPOSITORY / "app.py",
    *sorted((REPOSITORY / "pages").glob("*.py")),
]
SETTINGS_MODULE = REPOSITORY / "zoo" / "core" / "settings.py"
VARIABLE = re.compile(r"\bZOO_[A-Z][A-Z0-9_]*")
DECLARED = {setting.variable for setting in SETTINGS if setting.variable}
SECRETS = ("client-s3cret-41", "cookie-s3cret-42", "db-s3cret-43", "hf_s3cret44")
SECRET_ENVIRONMENT = {
    "ZOO_AUTH_CLIENT_SECRET": SECRETS[0],
    "ZOO_AUTH_COOKIE_SECRET": SECRETS[1],
    "ZOO_RUN_STORE": f"postgresql://zoo:{SECRETS[2]}@db.example/zoo",
    "HF_TOKEN": SECRETS[3],
}


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


# ---- one place, one table -------------------------------------------------------------------------


def declared_table() -> list[str]:
    """The README's Configuration table as ``SETTINGS`` declares it."""
    rows = ["| Variable | config.toml | Default | Meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        variable = f"`{setting.variable}`" if setting.variable else "—"
        table, _, name = (setting.key or "").rpartition(".")
        key = "—" if not setting.key else f"`[{table}] {name}`" if table else f"`{setting.key}`"
        meaning = f"internal: {setting.meaning}" if setting.internal else setting.meaning
        rows.append(f"| {variable} | {key} | {setting.default or '—'} | {meaning} |")
    return rows


def test_the_readmes_configuration_table_is_the_declared_settings():
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert table == declared_table(), "the README's table, as declared:\n" + "\n".join(declared_table())


def environment_reads(path: Path) -> list[str]:
    """The ``ZOO_*`` names ``path`` reads from an environment by their literal: ``.get("ZOO_X")``,
    ``os.getenv("ZOO_X")``, ``environ["ZOO_X"]`` or ``"ZOO_X" in environ``."""

    def named(node: ast.AST | None) -> str | None:
        is_name = isinstance(node, ast.Constant) and isinstance(node.value, str)
        return node.value if is_name and node.value.startswith("ZOO_") else None  # type: ignore[union-attr]

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if node.func.attr in ("get", "getenv", "pop", "setdefault"):
                found.append(named(node.args[0]))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            found.append(named(node.slice))
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            found.append(named(node.left))
    return [name for name in found if name]


def test_no_module_but_the_settings_module_reads_a_zoo_variable():
    readers = {
        str(path.relative_to(REPOSITORY)): environment_reads(path)
        for path in PYTHON_SOURCES
        if path != SETTINGS_MODULE and environment_reads(path)
    }
    assert readers == {}, "read these through zoo.core.settings"


def test_every_zoo_variable_the_code_and_the_docs_name_is_declared():
    named: dict[str, set[str]] = {}
    for path in PYTHON_SOURCES:  # strings only: ZOO_TAG and the like are Python names, not variables
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for name in VARIABLE.findall(node.value):
                    named.setdefault(name, set()).add(path.name)
    for path in (README, REPOSITORY / "Dockerfile", *sorted((REPOSITORY / "deploy").iterdir())):
        for name in VARIABLE.findall(path.read_text()):
            named.setdefault(name, set()).add(path.name)

    def declared(name: str) -> bool:  # "ZOO_LIMIT_" (before <NAME> or {name}) is a family's prefix
        return name in DECLARED or (name.endswith("_") and any(v.startswith(name) for v in DECLARED))

    assert {name: where for name, where in named.items() if not declared(name)} == {}


# ---- the environment over the file over the defaults ------------------------------------------------


def test_the_environment_wins_over_the_file_and_each_value_says_where_it_came_from(zoo_home, monkeypatch):
    write_config(
        zoo_home,
        'mode = "hosted"\nwarm_workers = 3\nhub_timeout = 12.5\nmirrored_devices = ["/gpu:0", "/gpu:1"]\n'
        "[limits]\nepochs = 40\n",
    )
    monkeypatch.setenv("ZOO_WARM_WORKERS", "1")
    monkeypatch.setenv("ZOO_LIMIT_EPOCHS", "7")
    settings = load_settings()
    assert (settings.warm_workers, settings.source("warm_workers")) == (1, "environment")
    assert (settings.limits.epochs, settings.source("limits.epochs")) == (7, "environment")
    assert (settings.hub_timeout, settings.source("hub_timeout")) == (12.5, "config file")
    assert (settings.mirrored_devices, settings.source("mirrored_devices")) == (
        ("/gpu:0", "/gpu:1"),
        "config file",
    )
    assert (settings.mode, settings.source("mode")) == ("hosted", "config file")
    # The rest: the hosted mode's defaults, the run store in ZOO_HOME.
    assert (settings.limits.batch_size, settings.source("limits.batch_size")) == (
        HOSTED_LIMITS.batch_size,
        "default",
    )
    assert (settings.run_store, settings.source("run_store")) == (
        f"sqlite:///{zoo_home}/runs.sqlite3",
        "default",
    )
    assert (settings.home, settings.source("home")) == (zoo_home, "environment")


def test_a_setting_in_the_file_reaches_the_code_that_uses_it(zoo_home, monkeypatch, mnist_npz_file):
    for name in ("ZOO_WARM_WORKERS", "ZOO_RUNS_PER_DEVICE", "ZOO_HUB_TIMEOUT", "ZOO_HUB_CONNECT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    write_config(
        zoo_home,
        f"warm_workers = 1\nruns_per_device = 3\nhub_timeout = 4\nhub_connect_timeout = 0.5\n"
        f'hub_max_download_mb = 2\nmnist = "{mnist_npz_file}"\n',
    )
    assert (warm_workers(), runs_per_device("cpu")) == (1, 3)
    assert (
        transport.timeout_seconds(),
        transport.connect_timeout_seconds(),
        transport.default_max_download_bytes(),
    ) == (
        4,
        0.5,
        2_000_000,
    )
    assert describe_mnist_source().kind == "file"


def test_an_edit_of_the_file_applies_at_the_next_read(zoo_home, monkeypatch):
    monkeypatch.delenv("ZOO_MODE", raising=False)
    path = write_config(zoo_home, 'mode = "local"\n')
    assert not load_config().hosted
    path.write_text('mode = "hosted"\n')
    assert load_config().hosted
    path.write_text("mode = 'local'\n")  # the same size, written within the same clock tick
    assert not load_config().hosted


@pytest.mark.parametrize(
    ("variables", "text", "message"),
    [
        (
            {"ZOO_WARM_WORKERS": "many"},
            "",
            r"^ZOO_WARM_WORKERS='many': set a whole number from 0 to 16, or unset it\.$",
        ),
        (
            {},
            "warm_workers = -1",
            r"^warm_workers = -1 in \S+config\.toml: set a whole number from 0 to 16, or remove it\.$",
        ),
        (
            {"ZOO_HUB_TIMEOUT": "0"},
            "",
            r"^ZOO_HUB_TIMEOUT='0': set a positive number, e\.g\. 30, or unset it\.$",
        ),
        ({"ZOO_EXECUTOR": "dask"}, "", r"^ZOO_EXECUTOR='dask': choose 'local' or 'ray', or unset it\.$"),
        (
            {"ZOO_RUN_STORE": "runs.sqlite3"},
            "",
            r"^ZOO_RUN_STORE='runs.sqlite3': give a URL such as sqlite:////",
        ),
        (
            {"ZOO_NATIVE_LOGS": "maybe"},
            "",
            r"^ZOO_NATIVE_LOGS='maybe': set 1 \(on\) or 0 \(off\), or unset it\.$",
        ),
        (
            {"ZOO_LOG_LEVEL": "loud"},
            "",
            r"^ZOO_LOG_LEVEL='loud': choose 'debug' or 'info' or 'warning' or 'error'",
        ),
        (
            {},
            "warm_worker = 2",
            r"^'warm_worker' in \S+config\.toml is not a setting \(did you mean warm_workers\?\)",
        ),
        (
            {"ZOO_CONFIG": "/nowhere/zoo.toml"},
            None,
            r"^ZOO_CONFIG='/nowhere/zoo.toml': there is no file there",
        ),
    ],
)
def test_a_bad_setting_is_one_line_saying_what_was_given_what_is_expected_and_the_fix(
    zoo_home, monkeypatch, variables, text, message
):
    monkeypatch.delenv("ZOO_WARM_WORKERS")  # the tests' 0: the file's value counts
    if text is not None:
        write_config(zoo_home, text)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message) as error:
        load_settings()
    assert "\n" not in str(error.value)


def test_a_bad_setting_is_one_error_line_from_the_cli_even_before_a_command_runs(zoo_home):
    for name, value in {"ZOO_LOG_LEVEL": "loud", "ZOO_NATIVE_LOGS": "maybe"}.items():
        refused = run_zoo(zoo_home, "runs", environment=zoo_environment(zoo_home, **{name: value}))
        one_error_line(refused, f"{name}='{value}'")


def test_an_unknown_zoo_variable_is_a_warning_naming_the_setting_meant(zoo_home, monkeypatch, caplog):
    monkeypatch.setenv("ZOO_WARM_WORKER", "four-k")
    with caplog.at_level(logging.WARNING, logger="zoo"):
        load_settings()
    assert "ZOO_WARM_WORKER is not a Zoo Studio setting (did you mean ZOO_WARM_WORKERS?)" in caplog.text
    assert "four-k" not in caplog.text  # the value is not repeated: it may be a secret


def test_the_app_shows_a_bad_setting_as_one_error_instead_of_a_traceback(zoo_home):
    write_config(zoo_home, 'mode = "public"\n')
    app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=90).run()
    assert not app.exception, app.exception
    assert [error.value for error in app.error] == [
        f"mode = 'public' in {zoo_home / 'config.toml'}: choose 'local' or 'hosted', or remove it."
    ]


def test_the_app_server_logs_the_librarys_lines_on_its_console(zoo_home, capsys):
    app = AppTest.from_file(str(REPOSITORY / "app.py"), default_timeout=90).run()
    assert not app.exception, app.exception
    console = capsys.readouterr().err
    installed = r"^\d\d:\d\d:\d\d INFO zoo\.storage\.models: installed the starter model mnist-cnn in \S+$"
    assert re.search(installed, console, re.MULTILINE), console


# ---- doctor: the effective settings, secrets hidden --------------------------------------------------


def test_doctor_prints_every_setting_with_where_it_came_from(zoo_home):
    write_config(zoo_home, "hub_timeout = 12\n[limits]\nepochs = 40\n")
    doctor = run_zoo(zoo_home, "doctor", environment=zoo_environment(zoo_home, ZOO_WARM_WORKERS="1"))
    assert doctor.stderr == "", doctor.stderr
    lines = doctor.stdout.splitlines()
    assert f"settings (config file: {zoo_home / 'config.toml'}):" in lines
    shown = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert re.fullmatch(r"  ZOO_WARM_WORKERS +1 +environment", shown["ZOO_WARM_WORKERS"])
    assert re.fullmatch(r"  ZOO_HUB_TIMEOUT +12 +config file", shown["ZOO_HUB_TIMEOUT"])
    assert re.fullmatch(r"  ZOO_LIMIT_EPOCHS +40 +config file", shown["ZOO_LIMIT_EPOCHS"])
    assert re.fullmatch(r"  ZOO_EXECUTOR +local +default", shown["ZOO_EXECUTOR"])
    people_set = {setting.variable or "[datasets]" for setting in SETTINGS if not setting.internal}
    assert set(shown) == people_set
    report = json.loads(run_zoo(zoo_home, "doctor", "--json").stdout)
    assert {check["name"] for check in report["checks"]} >= {"configuration", "run store"}
    (timeout,) = [row for row in report["settings"] if row["variable"] == "ZOO_HUB_TIMEOUT"]
    assert timeout == {
        "name": "hub_timeout",
        "variable": "ZOO_HUB_TIMEOUT",
        "key": "hub_timeout",
        "value": "12",
        "source": "config file",
    }


def test_doctor_says_the_settings_cannot_be_shown_while_the_configuration_fails(zoo_home):
    write_config(zoo_home, "hub_timeout = -5\n")
    doctor = run_zoo(zoo_home, "doctor")
    lines = doctor.stdout.splitlines()
    assert doctor.returncode == 1 and doctor.stderr == ""
    problem = f"hub_timeout = -5 in {zoo_home / 'config.toml'}: set a positive number, e.g. 30, or remove it."
    assert f"FAIL  configuration: {problem}" in lines
    assert lines[-1] == "settings: not shown until the configuration check passes."


def test_no_secret_reaches_doctors_output_or_the_logs(zoo_home):
    environment = zoo_environment(zoo_home, **SECRET_ENVIRONMENT)
    outputs = [
        run_zoo(zoo_home, *arguments, environment=environment)
        for arguments in (["-vv", "doctor"], ["doctor", "--json"])
    ]
    printed = "".join(output.stdout + output.stderr for output in outputs)
    assert "settings: " in outputs[0].stderr  # -vv logs the settings it read: the check below means something
    assert [secret for secret in SECRETS if secret in printed] == []
    assert "postgresql://zoo:***@db.example/zoo" in outputs[0].stdout
    lines = {
        line.split()[0]: line.split()[1]
        for line in outputs[0].stdout.splitlines()
        if line.startswith("  ZOO_AUTH")
    }
    assert (lines["ZOO_AUTH_CLIENT_SECRET"], lines["ZOO_AUTH_COOKIE_SECRET"]) == ("***", "***")


def test_a_password_in_a_store_url_is_hidden_in_the_error_that_refuses_it(monkeypatch):
    monkeypatch.setenv("ZOO_RUN_STORE", "postgresql:/zoo:db-s3cret-45@db.example/zoo")  # one slash: refused
    with pytest.raises(
        SettingsError, match=r"ZOO_RUN_STORE='postgresql:/zoo:\*\*\*@db\.example/zoo'"
    ) as error:
        load_settings()
    assert "db-s3cret-45" not in str(error.value)
