"""How this Zoo Studio is hosted: ``local`` (one person on their own machine, everything is
theirs; the default) or ``hosted`` (a class in front of one server: visitors sign in, own their
runs, models and data sets, and train within limits).

The configuration comes from a TOML file (``ZOO_CONFIG``, default ``$ZOO_HOME/config.toml``)
and environment variables, which win over the file::

    mode = "hosted"                        # ZOO_MODE
    admins = ["teacher", "ta@example.org"] # ZOO_ADMINS=teacher,ta@example.org (user names or e-mails)

    [limits]                               # ZOO_LIMIT_<NAME>, e.g. ZOO_LIMIT_EPOCHS=20
    parameters = 2_000_000
    training_memory_mb = 1024

    [datasets]                             # MNIST files an admin offers by name (hosted mode)
    full-mnist = "/srv/data/mnist.npz"

Nothing here imports Streamlit: ``zoo.app.ui`` turns the signed-in person into a ``User``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.core.errors import ZooError
from zoo.core.paths import zoo_home

MODES = ("local", "hosted")
LOCAL_OWNER = "local"  # the owner of everything made in local mode and by the CLI
SLUG_LENGTH = 50  # an owner's slug; "-digits" after it still makes a digit set name (at most 64)
HASHED_SLUG_END = re.compile(r"-[0-9a-f]{12}$")  # how owner_slug ends a name it had to change


class PermissionDenied(ZooError):
    """The person may not do this (not signed in, not the owner, or beyond a quota)."""


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


@dataclass(frozen=True)
class User:
    """The person acting: ``name`` is the owner recorded on what they make."""

    name: str
    email: str | None = None
    is_admin: bool = False
    signed_in: bool = True


LOCAL_USER = User(name=LOCAL_OWNER, is_admin=True)  # local mode and the CLI: everything is theirs
VISITOR = User(name="", signed_in=False)  # hosted mode, not signed in


@dataclass(frozen=True)
class HostingConfig:
    """The mode, the admins, the limits and the data sets admins registered by name."""

    mode: str = "local"
    admins: frozenset[str] = frozenset()
    limits: Limits = LOCAL_LIMITS
    datasets: tuple[tuple[str, str], ...] = ()  # (name, path of a Keras mnist.npz)
    source: str = "defaults"  # where the configuration was read from, for messages

    @property
    def hosted(self) -> bool:
        return self.mode == "hosted"

    def user_from_claims(self, claims: dict[str, Any]) -> User:
        """The ``User`` for a signed-in person's OpenID Connect claims (``preferred_username``,
        ``email``, ``sub``); an admin when their user name or e-mail is listed in ``admins``."""
        email = claims.get("email") or None
        name = str(claims.get("preferred_username") or email or claims.get("sub") or "")
        if not name:
            raise PermissionDenied("the sign-in provider named no user; sign in again.")
        is_admin = name.lower() in self.admins or (email is not None and email.lower() in self.admins)
        return User(name=name, email=email, is_admin=is_admin)

    def dataset_path(self, name: str) -> str:
        """The file of the data set an admin registered as ``name``.

        Raises:
            ZooError: no data set has that name.
        """
        registered = dict(self.datasets)
        if name not in registered:
            known = ", ".join(registered) or "none"
            raise ZooError(f"there is no data set named {name!r} on this host; registered: {known}.")
        return registered[name]

    def dataset_name(self, path: str | os.PathLike) -> str | None:
        """The name an admin registered the file ``path`` under, or None (how a run names its data
        without showing visitors the server's layout)."""
        resolved = Path(path).resolve()
        return next((name for name, file in self.datasets if Path(file).resolve() == resolved), None)


def owner_slug(name: str) -> str:
    """``name`` made safe as a file or set name (letters, digits, '.', '_', '-'; at most 50), and distinct
    for distinct names: the folder of a person's uploads and the name of their digit set.

    A name that is already such a spelling is kept as it is (``alice``; so are the folders made for it
    before); any other name is spelt safely and followed by 12 hex digits of its SHA-256, which no kept
    name ends with, so "alice." gets a place of its own instead of alice's.

    Example:
        >>> owner_slug("alice"), owner_slug("alice.")
        ('alice', 'alice-aa3bed7fcf1e')
    """
    spelled = _spelled_safely(name)
    if spelled == name and len(name) <= SLUG_LENGTH and not HASHED_SLUG_END.search(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{spelled[: SLUG_LENGTH - len(digest) - 1] or 'visitor'}-{digest}"


def former_owner_slug(name: str) -> str:
    """The slug ``owner_slug`` gave before it kept names apart (distinct names could share it): only for
    finding what a person made then, where its owner is recorded."""
    return _spelled_safely(name)[:SLUG_LENGTH] or "visitor"


def _spelled_safely(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")


def config_path() -> Path:
    """The configuration file: ``ZOO_CONFIG``, else ``$ZOO_HOME/config.toml`` (it may not exist)."""
    return Path(os.environ.get("ZOO_CONFIG") or zoo_home() / "config.toml").expanduser()


def load_config() -> HostingConfig:
    """Read the configuration file (when there is one) and the ``ZOO_*`` environment variables.

    Raises:
        ZooError: the file is not valid TOML, or a value is not what its key takes.
    """
    path = config_path()
    values: dict[str, Any] = {}
    if path.is_file():
        try:
            values = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ZooError(
                f"the configuration file {path} cannot be read ({error}); fix or remove it."
            ) from None
    mode = os.environ.get("ZOO_MODE") or values.get("mode", "local")
    if mode not in MODES:
        raise ZooError(f"mode {mode!r} (ZOO_MODE or {path}): choose 'local' or 'hosted'.")
    admins = values.get("admins", [])
    if "ZOO_ADMINS" in os.environ:
        admins = [name.strip() for name in os.environ["ZOO_ADMINS"].split(",") if name.strip()]
    if not isinstance(admins, list) or not all(isinstance(name, str) for name in admins):
        raise ZooError(f"admins in {path}: give a list of user names or e-mails, e.g. ['teacher'].")
    limits = _limits(HOSTED_LIMITS if mode == "hosted" else LOCAL_LIMITS, values.get("limits", {}), path)
    datasets = values.get("datasets", {})
    if not isinstance(datasets, dict) or not all(isinstance(p, str) for p in datasets.values()):
        raise ZooError(f'[datasets] in {path}: give name = "/path/to/mnist.npz" lines.')
    return HostingConfig(
        mode=mode,
        admins=frozenset(name.lower() for name in admins),
        limits=limits,
        datasets=tuple(sorted(datasets.items())),
        source=str(path) if path.is_file() else "defaults",
    )


def _limits(defaults: Limits, overrides: Any, path: Path) -> Limits:
    if not isinstance(overrides, dict):
        raise ZooError(f"[limits] in {path} must be a table of limits, e.g. epochs = 20.")
    names = {field.name for field in dataclasses.fields(Limits)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ZooError(f"unknown limit(s) {', '.join(unknown)} in {path}; known: {', '.join(sorted(names))}.")
    chosen: dict[str, int | None] = dict(overrides)
    for name in names:
        variable = f"ZOO_LIMIT_{name.upper()}"
        if os.environ.get(variable):
            chosen[name] = None if os.environ[variable].lower() == "none" else os.environ[variable]
    for name, value in chosen.items():
        try:
            chosen[name] = None if value is None else int(value)
        except (TypeError, ValueError):
            chosen[name] = -1
        if chosen[name] is not None and chosen[name] < 1:
            raise ZooError(
                f"limit {name}={value!r} ({limit_setting(name)}): give a positive whole number, or none."
            )
    return dataclasses.replace(defaults, **chosen)


LIMIT_WORDS = {  # what each limit allows, for the fields it bounds: "this host allows ..."
    "epochs": "{:,} epochs per run",
    "batch_size": "batches of at most {:,}",
    "samples": "{:,} training samples (images or points) per run",
    "parameters": "models of at most {:,} parameters",
    "training_memory_mb": "{:,} MB of estimated training memory per run",
    "active_runs_per_owner": "{:,} queued or running runs per person",
    "active_runs": "{:,} queued or running runs in all",
    "upload_mb": "uploads of at most {:,} MB",
}


def describe_limit(name: str, value: int) -> str:
    """What the limit ``name`` at ``value`` allows, in words: ``describe_limit("epochs", 500)`` is
    ``'500 epochs per run'``."""
    return LIMIT_WORDS[name].format(value)


def limit_setting(name: str) -> str:
    """How an operator changes the limit ``name``, for messages."""
    return f"ZOO_LIMIT_{name.upper()}, or {name} under [limits] in the configuration file"


def check_within(name: str, value: int, limit: int | None, what: str) -> None:
    """Raise ``PermissionDenied`` when ``value`` is beyond the limit ``name``.

    The message says the value, the limit and how the host's operator raises it.
    """
    if limit is not None and value > limit:
        raise PermissionDenied(
            f"{what} is {value:,}, beyond this host's limit of {limit:,}; ask for less, or have the "
            f"host's operator raise it ({limit_setting(name)})."
        )


def may_manage(user: User, owner: str | None) -> bool:
    """Whether ``user`` may stop, delete or rename something owned by ``owner``."""
    return user.is_admin or (user.signed_in and owner is not None and owner == user.name)


def may_read(user: User, owner: str | None, shared: bool) -> bool:
    """Whether ``user`` may see what ``owner`` keeps to themselves unless ``shared`` (a digit set):
    everyone when it is shared, else its owner and admins."""
    return shared or may_manage(user, owner)


def check_may_manage(user: User, owner: str | None, what: str) -> None:
    """Raise ``PermissionDenied`` unless ``user`` may manage ``what``, owned by ``owner``."""
    if not user.signed_in:
        raise PermissionDenied(f"sign in to manage {what}.")
    if not may_manage(user, owner):
        whose = f"belongs to {owner}" if owner else "is shared"
        raise PermissionDenied(f"{what} {whose}; only its owner or an admin may change it.")


def check_may_create(user: User, what: str) -> None:
    """Raise ``PermissionDenied`` unless ``user`` is signed in (training, pulling, uploading)."""
    if not user.signed_in:
        raise PermissionDenied(f"sign in to {what}.")
