"""Every setting of Zoo Studio in one place: the ``ZOO_*`` environment variables and the configuration
file (``ZOO_CONFIG``, default ``$ZOO_HOME/config.toml``), read together, each checked with a one-line
error that says what was given, what is expected and how to fix it, into one ``Settings`` record.

An environment variable wins over the file; an empty variable counts as unset (but an empty
``ZOO_ADMINS`` means no admins). ``SETTINGS`` declares them all, as the README's Configuration table
lists them (``tests/test_settings.py`` keeps the two the same)::

    mode = "hosted"                        # ZOO_MODE
    admins = ["teacher", "ta@example.org"] # ZOO_ADMINS=teacher,ta@example.org
    warm_workers = 2                       # ZOO_WARM_WORKERS
    hub_timeout = 30                       # ZOO_HUB_TIMEOUT

    [limits]                               # ZOO_LIMIT_<NAME>, e.g. ZOO_LIMIT_EPOCHS=20
    epochs = 500

    [datasets]                             # MNIST files an admin offers by name (hosted mode)
    full-mnist = "/srv/data/mnist.npz"

``load_settings()`` reads them on each call, so an edit of the file (or a test's ``monkeypatch``)
applies at once; what it parsed is kept per environment and file version, so a call costs a look at
the environment and one ``stat``. The settings that apply before the file can be read (``ZOO_HOME``,
``ZOO_CONFIG``, ``ZOO_LOG_LEVEL``, ``ZOO_NATIVE_LOGS``, the container's ``ZOO_AUTH_*``) come from the
environment only, each through its own function here, so a damaged file never hides the data
directory. Variables Zoo Studio sets for its own worker processes are declared as internal.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from zoo.core.errors import SettingsError

log = logging.getLogger(__name__)

MODES = ("local", "hosted")
EXECUTORS = ("local", "ray")  # where runs execute (zoo.execution); a new executor adds its name here
LOG_LEVELS = ("debug", "info", "warning", "error")
FLAGS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
HIDDEN = "***"  # what is shown instead of a secret
# user:password@ in a URL (a run store on a database server), even a malformed one: never shown.
URL_PASSWORD = re.compile(r"([^/@:\s]*):([^/@\s]*)@")

T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True)
class Limits:
    """What one run may ask of the host, and how many runs may wait or train at once.

    ``None`` means no limit. A run's samples are its training images (CNN) or points (binary).
    """

    parameters: int | None = 50_000_000
    training_memory_mb: int | None = 16_384
    epochs: int | None = 10_000
    samples: int | None = None
    batch_size: int | None = 8192
    active_runs_per_owner: int | None = None
    active_runs: int | None = None
    upload_mb: int | None = 60


LOCAL_LIMITS = Limits()
HOSTED_LIMITS = Limits(
    parameters=2_000_000,
    training_memory_mb=1024,
    epochs=500,
    samples=60_000,
    batch_size=1024,
    active_runs_per_owner=2,
    active_runs=8,
    upload_mb=60,
)
LIMIT_NAMES = tuple(field.name for field in dataclasses.fields(Limits))
LIMIT_MEANINGS = {
    "parameters": "the most parameters of a run's model",
    "training_memory_mb": "the most estimated training memory of a run, in MB",
    "epochs": "the most epochs of a run",
    "samples": "the most training images (CNN) or points (binary) of a run",
    "batch_size": "the largest batch of a run",
    "active_runs_per_owner": "the most queued or running runs per person (admins are not held)",
    "active_runs": "the most queued or running runs on the whole host",
    "upload_mb": "the largest uploaded mnist.npz, in MB",
}


@dataclass(frozen=True)
class Setting:
    """One setting as the README's Configuration table lists it."""

    name: str  # its field of ``Settings`` (a limit: ``limits.NAME``)
    variable: str | None  # the environment variable, or None (only in the file)
    key: str | None  # its key in the configuration file (``limits.epochs``: under [limits]), or None
    default: str  # as people read it
    meaning: str
    secret: bool = False  # never shown, never logged
    internal: bool = False  # set by Zoo Studio for its own worker processes, not by people


def _limit_default(name: str) -> str:
    local, hosted = (getattr(limits, name) for limits in (LOCAL_LIMITS, HOSTED_LIMITS))
    return f"{f'{local:,}' if local else 'none'}; hosted: {f'{hosted:,}' if hosted else 'none'}"


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "ZOO_HOME", None, "~/.zoo-studio", "the data directory: runs, models, digit sets, logs"),
    Setting("config_file", "ZOO_CONFIG", None, "$ZOO_HOME/config.toml", "the configuration file (optional)"),
    Setting("mode", "ZOO_MODE", "mode", "local", "local (one person) or hosted (sign-in, owners, limits)"),
    Setting(
        "admins", "ZOO_ADMINS", "admins", "none", "user names or e-mails of admins (hosted), comma-separated"
    ),
    *(
        Setting(
            f"limits.{name}",
            f"ZOO_LIMIT_{name.upper()}",
            f"limits.{name}",
            _limit_default(name),
            f"{LIMIT_MEANINGS[name]}; none lifts it",
        )
        for name in LIMIT_NAMES
    ),
    Setting("datasets", None, "datasets.NAME", "none", "MNIST files admins offer by name: NAME = PATH"),
    Setting(
        "executor",
        "ZOO_EXECUTOR",
        "executor",
        "local",
        "where runs execute: local (warm worker processes on this host) or ray (warm actors on the Ray "
        "cluster RAY_ADDRESS names; pip install -r requirements-ray.txt)",
    ),
    Setting(
        "host",
        "ZOO_HOST",
        "host",
        "the machine's host name",
        "the name runs record for the machine they ran on",
    ),
    Setting(
        "run_store",
        "ZOO_RUN_STORE",
        "run_store",
        "sqlite:///$ZOO_HOME/runs.sqlite3",
        "URL of the run store: sqlite:///PATH or postgresql://USER@HOST:PORT/DB (a password is never shown)",
    ),
    Setting(
        "run_store_pool",
        "ZOO_RUN_STORE_POOL",
        "run_store_pool",
        "4",
        "connections each process keeps to a PostgreSQL run store at most (1-64)",
    ),
    Setting(
        "model_store",
        "ZOO_MODEL_STORE",
        "model_store",
        "$ZOO_HOME",
        "where the local zoo (models/) and digit sets (digits/) live: a directory, a file:// URL or "
        "s3://BUCKET/PREFIX (credentials: the AWS_* variables or ~/.aws; AWS_ENDPOINT_URL for another "
        "S3-compatible store)",
    ),
    Setting(
        "warm_workers", "ZOO_WARM_WORKERS", "warm_workers", "2", "workers each pool keeps waiting (0-16)"
    ),
    Setting(
        "runs_per_device",
        "ZOO_RUNS_PER_DEVICE",
        "runs_per_device",
        "1 on a CPU; a GPU: one per 16 GB, at most 8",
        "runs of one lane a device trains at once (1-64)",
    ),
    Setting(
        "mirrored_devices",
        "ZOO_MIRRORED_DEVICES",
        "mirrored_devices",
        "all GPUs",
        "devices a run trains data-parallel over, comma-separated (e.g. /gpu:0,/gpu:1)",
    ),
    Setting(
        "mnist", "ZOO_MNIST", "mnist", "Keras' cache, else embedded", "the MNIST file (a Keras mnist.npz)"
    ),
    Setting("hub_timeout", "ZOO_HUB_TIMEOUT", "hub_timeout", "30", "seconds one Hub action may take in all"),
    Setting(
        "hub_connect_timeout",
        "ZOO_HUB_CONNECT_TIMEOUT",
        "hub_connect_timeout",
        "1",
        "seconds to wait for the Hub to take a connection",
    ),
    Setting(
        "hub_max_download_mb",
        "ZOO_HUB_MAX_DOWNLOAD_MB",
        "hub_max_download_mb",
        "500",
        "the largest model pull downloads, in MB",
    ),
    Setting(
        "log_level",
        "ZOO_LOG_LEVEL",
        None,
        "info; the CLI: warning",
        "debug, info, warning or error: what the server, workers and CLI log (CLI: -v info, -vv debug)",
    ),
    Setting("native_logs", "ZOO_NATIVE_LOGS", None, "0", "1 keeps TensorFlow's native log lines"),
    Setting(
        "auth.client_id",
        "ZOO_AUTH_CLIENT_ID",
        None,
        "a Space's OAUTH_CLIENT_ID",
        "sign-in client (container)",
    ),
    Setting(
        "auth.client_secret",
        "ZOO_AUTH_CLIENT_SECRET",
        None,
        "a Space's OAUTH_CLIENT_SECRET",
        "sign-in client's secret (container)",
        secret=True,
    ),
    Setting(
        "auth.cookie_secret",
        "ZOO_AUTH_COOKIE_SECRET",
        None,
        "made at start: sign-ins end at restart",
        "signs sign-in cookies (container)",
        secret=True,
    ),
    Setting(
        "auth.redirect_uri",
        "ZOO_AUTH_REDIRECT_URI",
        None,
        "a Space's https://SPACE_HOST/oauth2callback",
        "where the sign-in provider sends people back (container)",
    ),
    Setting(
        "auth.server_metadata_url",
        "ZOO_AUTH_SERVER_METADATA_URL",
        None,
        "Hugging Face's",
        "the sign-in provider's OpenID configuration (container)",
    ),
    Setting("pool_owner", "ZOO_POOL_OWNER", None, "", "the process a pool worker waits for", internal=True),
    Setting(
        "gpu_memory_fraction",
        "ZOO_GPU_MEMORY_FRACTION",
        None,
        "",
        "a worker's share of its GPU's memory",
        internal=True,
    ),
    Setting("gpu_memory_mb", "ZOO_GPU_MEMORY_MB", None, "", "a worker's GPU memory cap in MB", internal=True),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}
VARIABLES = frozenset(setting.variable for setting in SETTINGS if setting.variable)
FILE_KEYS = frozenset(setting.key.split(".")[0] for setting in SETTINGS if setting.key)


@dataclass(frozen=True)
class AuthSettings:
    """Sign-in for the container (``zoo.app.container``), from the environment only."""

    client_id: str | None = None
    client_secret: str | None = None
    cookie_secret: str | None = None
    redirect_uri: str | None = None
    server_metadata_url: str | None = None


@dataclass(frozen=True)
class SettingRow:
    """One setting as ``python -m zoo doctor`` shows it: its value (secrets hidden) and where it came
    from: ``default``, ``environment`` or ``config file``."""

    name: str
    variable: str | None
    key: str | None
    value: str
    source: str


@dataclass(frozen=True)
class Settings:
    """Every setting's value, checked (``load_settings``)."""

    home: Path
    config_file: Path
    config_found: bool  # whether the configuration file exists (else: the defaults and the environment)
    mode: str
    admins: frozenset[str]  # lower case
    limits: Limits
    datasets: tuple[tuple[str, str], ...]  # (name, path of a Keras mnist.npz), by name
    executor: str
    host: str
    run_store: str  # a URL
    run_store_pool: int  # a PostgreSQL run store's connections per process, at most
    model_store: str  # a directory or a URL (zoo.storage.files.open_storage says which kinds it takes)
    warm_workers: int
    runs_per_device: int | None  # None: as the device allows
    mirrored_devices: tuple[str, ...]  # (): every GPU
    mnist: str | None
    hub_timeout: float
    hub_connect_timeout: float
    hub_max_download_mb: float
    log_level: str | None  # None: the process's own default
    native_logs: bool
    auth: AuthSettings
    sources: tuple[tuple[str, str], ...]  # (setting name, where its value came from)

    def source(self, name: str) -> str:
        """Where the setting ``name`` came from: ``default``, ``environment`` or ``config file``."""
        return dict(self.sources)[name]

    def rows(self) -> list[SettingRow]:
        """Every setting people set, in ``SETTINGS``' order, for ``python -m zoo doctor``: secrets and
        URL passwords hidden."""
        return [
            SettingRow(
                setting.name, setting.variable, setting.key, self._shown(setting), self.source(setting.name)
            )
            for setting in SETTINGS
            if not setting.internal
        ]

    def _shown(self, setting: Setting) -> str:
        value: Any = self
        for part in setting.name.split("."):
            value = getattr(value, part)
        if value is None or value == () or value == frozenset():
            unset = setting.name.startswith("limits.") or self.source(setting.name) != "default"
            return "none" if unset or setting.default == "none" else f"none ({setting.default})"
        if setting.secret:
            return HIDDEN
        if setting.name == "datasets":
            return ", ".join(f"{name} = {path}" for name, path in value)
        if isinstance(value, tuple | frozenset):
            return ", ".join(sorted(value))
        if isinstance(value, bool):
            return "1" if value else "0"
        return hide_passwords(f"{value:g}" if isinstance(value, float) else str(value))


def hide_passwords(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` in it shown as ``***``.

    Example:
        >>> hide_passwords("postgresql://zoo:s3cret@db/zoo")
        'postgresql://zoo:***@db/zoo'
    """
    return URL_PASSWORD.sub(rf"\1:{HIDDEN}@", text)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Every setting: the environment (``os.environ`` unless given) over the configuration file over
    the defaults, read now (what was parsed before is reused while neither has changed).

    Raises:
        SettingsError: a variable or a line of the file is not what its setting takes, the file is
            not TOML or names an unknown setting, or ``ZOO_CONFIG`` names no file; one line that says
            which, what is expected and how to fix it.
    """
    environ = os.environ if environ is None else environ
    variables = tuple(sorted((name, value) for name, value in environ.items() if name.startswith("ZOO_")))
    try:
        status = config_file(environ).stat()
        version: tuple[int, int, int] | None = (status.st_mtime_ns, status.st_size, status.st_ino)
    except OSError:
        version = None
    return _load(variables, environ.get("HOME") or str(Path.home()), version)


def shared_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings this process was given as ``ZOO_*`` variables, secrets and Zoo Studio's own internal
    ones left out: what a worker on another machine is given so that it acts as this process would
    (the Ray executor's actors)."""
    environ = os.environ if environ is None else environ
    return {
        variable: environ[variable]
        for setting in SETTINGS
        if (variable := setting.variable) and variable in environ and not (setting.secret or setting.internal)
    }


def home_directory(environ: Mapping[str, str] | None = None) -> Path:
    """The data directory (``ZOO_HOME``, default ``~/.zoo-studio``), not created here."""
    return _Reader(environ).home()


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The configuration file: ``ZOO_CONFIG``, else ``$ZOO_HOME/config.toml`` (it may not exist)."""
    return _Reader(environ).config_file()


def log_level(environ: Mapping[str, str] | None = None) -> str | None:
    """``ZOO_LOG_LEVEL`` (``debug``, ``info``, ``warning`` or ``error``), or None when unset.

    Raises:
        SettingsError: it is none of those.
    """
    return _Reader(environ).log_level()


def native_logs_kept(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``ZOO_NATIVE_LOGS`` asks to keep TensorFlow's native log lines (default: no).

    Raises:
        SettingsError: it is not 1 or 0 (or true/false, yes/no, on/off).
    """
    return _Reader(environ).native_logs()


def auth_settings(environ: Mapping[str, str] | None = None) -> AuthSettings:
    """The container's sign-in settings (``ZOO_AUTH_*``), each None when unset."""
    return _Reader(environ).auth()


def limit_setting(name: str) -> str:
    """How an operator changes the limit ``name``, for messages."""
    return f"ZOO_LIMIT_{name.upper()}, or {name} under [limits] in the configuration file"


# ---- reading ----------------------------------------------------------------------------------


class _Expected(Exception):
    """What a setting takes, said by a parser of a value that is not it."""


@functools.lru_cache(maxsize=16)
def _load(
    variables: tuple[tuple[str, str], ...], user_home: str, version: tuple[int, int, int] | None
) -> Settings:
    """The settings of ``variables`` (the ``ZOO_*`` environment), ``user_home`` (``~``) and the
    configuration file at ``version`` (None: there is none); the same arguments, the same record."""
    for name in sorted({name for name, _ in variables} - VARIABLES):
        nearest = difflib.get_close_matches(name, sorted(VARIABLES), n=1)
        hint = f" (did you mean {nearest[0]}?)" if nearest else ""
        log.warning("%s is not a Zoo Studio setting%s; the README's Configuration lists them.", name, hint)
    reader = _Reader({**dict(variables), "HOME": user_home})
    reader.read_file(found=version is not None)
    mode = reader.read("mode", "local", _choice(MODES))
    home = reader.home()
    settings = Settings(
        home=home,
        config_file=reader.config_file(),
        config_found=version is not None,
        mode=mode,
        admins=frozenset(name.lower() for name in reader.read("admins", (), _names, empty_counts=True)),
        limits=reader.limits(HOSTED_LIMITS if mode == "hosted" else LOCAL_LIMITS),
        datasets=reader.datasets(),
        executor=reader.read("executor", "local", _choice(EXECUTORS)),
        host=reader.read("host", socket.gethostname(), _text),
        run_store=reader.read("run_store", f"sqlite:///{home / 'runs.sqlite3'}", _store_url),
        model_store=reader.read("model_store", str(home), _store_location),
        run_store_pool=reader.read("run_store_pool", 4, _whole(1, 64)),
        warm_workers=reader.read("warm_workers", 2, _whole(0, 16)),
        runs_per_device=reader.read("runs_per_device", None, _whole(1, 64)),
        mirrored_devices=reader.read("mirrored_devices", (), _names),
        mnist=reader.read("mnist", None, _file_name),
        hub_timeout=reader.read("hub_timeout", 30.0, _positive(30)),
        hub_connect_timeout=reader.read("hub_connect_timeout", 1.0, _positive(1)),
        hub_max_download_mb=reader.read("hub_max_download_mb", 500.0, _positive(500)),
        log_level=reader.log_level(),
        native_logs=reader.native_logs(),
        auth=reader.auth(),
        sources=(),
    )
    reader.check_file_keys()
    settings = dataclasses.replace(settings, sources=tuple(reader.sources.items()))
    log.debug("settings: %s", "; ".join(f"{row.name}={row.value} ({row.source})" for row in settings.rows()))
    return settings


class _Reader:
    """Reads settings from an environment over the configuration file's values, and remembers where
    each came from."""

    def __init__(self, environ: Mapping[str, str] | None) -> None:
        self.environ = os.environ if environ is None else environ
        self.values: dict[str, Any] = {}  # the configuration file's, once read
        self.sources: dict[str, str] = {}

    def home(self) -> Path:
        return self.read("home", Path(self.environ.get("HOME") or Path.home()) / ".zoo-studio", _path)

    def config_file(self) -> Path:
        return self.read("config_file", self.home() / "config.toml", _path)

    def log_level(self) -> str | None:
        return self.read("log_level", None, _choice(LOG_LEVELS, lower=True))

    def native_logs(self) -> bool:
        return self.read("native_logs", False, _flag)

    def auth(self) -> AuthSettings:
        names = (field.name for field in dataclasses.fields(AuthSettings))
        return AuthSettings(**{name: self.read(f"auth.{name}", None, _text) for name in names})

    def read_file(self, found: bool) -> None:
        """Read the configuration file (when ``found``; else one that ``ZOO_CONFIG`` names is missing)."""
        path = self.config_file()
        if not found:
            if self.sources["config_file"] == "environment":
                raise SettingsError(
                    f"ZOO_CONFIG={str(path)!r}: there is no file there; create it, or unset ZOO_CONFIG."
                )
            return
        try:
            self.values = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise SettingsError(
                f"the configuration file {path} cannot be read ({error}); fix or remove it."
            ) from None

    def read(self, name: str, default: D, parse: Callable[[Any], T], *, empty_counts: bool = False) -> T | D:
        """The setting ``name``: its variable's value when set, else its key's in the file, else
        ``default``; parsed by ``parse``, whose ``_Expected`` becomes a one-line SettingsError."""
        setting = SETTINGS_BY_NAME[name]
        raw: Any = self.environ.get(setting.variable) if setting.variable else None
        in_file = self._in_file(setting.key)
        if raw is not None and (raw.strip() or empty_counts):
            self.sources[name] = "environment"
            given, unset = f"{setting.variable}={self._shown(setting, raw)}", "unset it"
            if parse is _names:
                raw = raw.split(",")
        elif in_file is not None:
            (raw,) = in_file
            self.sources[name] = "config file"
            given, unset = f"{setting.key} = {self._shown(setting, raw)} in {self.config_file()}", "remove it"
        else:
            self.sources[name] = "default"
            return default
        try:
            return parse(raw)
        except _Expected as expected:
            if name.startswith("limits."):
                limit = name.removeprefix("limits.")
                raise SettingsError(f"limit {limit}={raw!r} ({limit_setting(limit)}): {expected}.") from None
            raise SettingsError(f"{given}: {expected}, or {unset}.") from None

    def limits(self, defaults: Limits) -> Limits:
        table = self.values.get("limits", {})
        if not isinstance(table, dict):
            raise SettingsError(
                f"[limits] in {self.config_file()} must be a table of limits, e.g. epochs = 20."
            )
        unknown = sorted(set(table) - set(LIMIT_NAMES))
        if unknown:
            raise SettingsError(
                f"unknown limit(s) {', '.join(unknown)} in {self.config_file()}; "
                f"known: {', '.join(sorted(LIMIT_NAMES))}."
            )
        return Limits(
            **{name: self.read(f"limits.{name}", getattr(defaults, name), _limit) for name in LIMIT_NAMES}
        )

    def datasets(self) -> tuple[tuple[str, str], ...]:
        table = self.values.get("datasets", {})
        if not isinstance(table, dict) or not all(isinstance(path, str) for path in table.values()):
            raise SettingsError(
                f'[datasets] in {self.config_file()}: give name = "/path/to/mnist.npz" lines.'
            )
        self.sources["datasets"] = "config file" if table else "default"
        return tuple(sorted(table.items()))

    def check_file_keys(self) -> None:
        unknown = sorted(set(self.values) - FILE_KEYS)
        if unknown:
            nearest = difflib.get_close_matches(unknown[0], sorted(FILE_KEYS), n=1)
            hint = f" (did you mean {nearest[0]}?)" if nearest else ""
            raise SettingsError(
                f"{unknown[0]!r} in {self.config_file()} is not a setting{hint}: fix or remove it "
                "(the README's Configuration lists them)."
            )

    def _in_file(self, key: str | None) -> tuple[Any] | None:
        """``(value,)`` of ``key`` (``table.key``: under [table]) in the file, or None."""
        table: Any = self.values
        for part in key.split(".") if key else ():
            if not isinstance(table, dict) or part not in table:
                return None
            table = table[part]
        return (table,) if key else None

    @staticmethod
    def _shown(setting: Setting, raw: Any) -> str:
        return HIDDEN if setting.secret else hide_passwords(repr(raw))


# ---- parsers: each returns the value, or raises _Expected saying what the setting takes ---------


def _choice(choices: tuple[str, ...], *, lower: bool = False) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower() if lower else raw
        if value not in choices:
            raise _Expected(f"choose {' or '.join(repr(choice) for choice in choices)}")
        return value

    return parse


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        text = str(raw).strip()
        if isinstance(raw, bool) or not text.isdigit() or not low <= int(text) <= high:
            raise _Expected(f"set a whole number from {low} to {high}")
        return int(text)

    return parse


def _positive(example: float) -> Callable[[Any], float]:
    def parse(raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = -1.0
        if isinstance(raw, bool) or not 0 < value < float("inf"):
            raise _Expected(f"set a positive number, e.g. {example:g}")
        return value

    return parse


def _limit(raw: Any) -> int | None:
    if isinstance(raw, str) and raw.strip().lower() == "none":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if isinstance(raw, bool) or value < 1:
        raise _Expected("give a positive whole number, or none")
    return value


def _flag(raw: Any) -> bool:
    value = FLAGS.get(str(raw).strip().lower()) if not isinstance(raw, bool) else raw
    if value is None:
        raise _Expected("set 1 (on) or 0 (off)")
    return value


def _text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _Expected("give a text")
    return raw


def _names(raw: Any) -> tuple[str, ...]:
    """Names from a list in the file, or a comma-separated variable (``read`` splits it)."""
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise _Expected("give a list of names, e.g. ['teacher'] (a variable: teacher,ta@example.org)")
    return tuple(name.strip() for name in raw if name.strip())


def _path(raw: Any) -> Path:
    if not isinstance(raw, str | Path) or not str(raw).strip():
        raise _Expected("give a path")
    return Path(raw).expanduser()


def _store_location(raw: Any) -> str:
    """A directory (``~`` expanded) or a URL as given: ``zoo.storage.files.open_storage`` says which
    kinds of store it can use."""
    if not isinstance(raw, str | Path) or not str(raw).strip():
        raise _Expected("give a directory, e.g. /data/zoo, a file:// URL or s3://BUCKET/PREFIX")
    text = str(raw).strip()
    return text if "://" in text else str(Path(text).expanduser())


def _file_name(raw: Any) -> str:
    """A file's path as given (``zoo.ml.data`` says what is wrong with the file itself)."""
    if not isinstance(raw, str) or not raw.strip():
        raise _Expected("give the path of a Keras mnist.npz file")
    return raw


def _store_url(raw: Any) -> str:
    text = str(raw).strip()
    scheme, separator, rest = text.partition("://")
    if not separator or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) or not rest:
        raise _Expected("give a URL such as sqlite:////srv/zoo/runs.sqlite3")
    if scheme == "sqlite" and not rest.removeprefix("/"):
        raise _Expected("give sqlite:/// followed by the file's path, e.g. sqlite:////srv/zoo/runs.sqlite3")
    return text
