"""How this Zoo Studio is hosted: ``local`` (one person on their own machine, everything is
theirs; the default) or ``hosted`` (a class in front of one server: visitors sign in, own their
runs, models and data sets, and train within limits).

The mode, the admins, the limits and the data sets admins register are settings
(``zoo.core.settings``: the configuration file and ``ZOO_*`` variables, which win over it);
``load_config`` gives the hosting view of them. Nothing here imports Streamlit: ``zoo.app.ui``
turns the signed-in person into a ``User``.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.core.errors import ZooError
from zoo.core.settings import LOCAL_LIMITS, Limits, limit_setting, load_settings

LOCAL_OWNER = "local"  # the owner of everything made in local mode and by the CLI
SLUG_LENGTH = 50  # an owner's slug; "-digits" after it still makes a digit set name (at most 64)
HASHED_SLUG_END = re.compile(r"-[0-9a-f]{12}$")  # how owner_slug ends a name it had to change


class PermissionDenied(ZooError):
    """The person may not do this (not signed in, not the owner, or beyond a quota)."""


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


def load_config() -> HostingConfig:
    """The hosting settings, read now (``zoo.core.settings.load_settings``): an edit applies at once.

    Raises:
        SettingsError: a setting is not what it takes (the file is not valid TOML, a value is wrong).
    """
    settings = load_settings()
    return HostingConfig(
        mode=settings.mode,
        admins=settings.admins,
        limits=settings.limits,
        datasets=settings.datasets,
        source=str(settings.config_file) if settings.config_found else "defaults",
    )


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
