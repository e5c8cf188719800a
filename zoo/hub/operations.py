"""The hosted zoo: push, pull, browse, tag and compare models on the Hugging Face Hub.

A Zoo Studio repo holds Keras' own folder layout (``config.json``, ``metadata.json``,
``model.weights.h5``: the members of a ``.keras`` file), so plain
``keras.saving.load_model("hf://ns/name")`` loads it, plus Zoo Studio's description
(``zoo.json``), ``metrics.json``, ``history.csv`` and a model card (``README.md``).
Pull also takes repos written by plain ``model.save("hf://ns/name")``.

The Hub is ``HF_ENDPOINT`` (read at call time; huggingface.co by default) and the token comes
from the caller, ``HF_TOKEN`` or huggingface_hub's login. Our code never writes, logs or shows
the token; every failure is a one-line ``HubError``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import logging
import math
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpcore2
import httpx2

from zoo import __version__
from zoo.core.errors import ModelStoreError, ZooError
from zoo.core.hosting import LOCAL_USER, User, check_may_create, load_config
from zoo.core.scores import Scores
from zoo.core.settings import hide_passwords, load_settings
from zoo.core.vocabulary import KIND_SHAPES
from zoo.storage.models import (
    HISTORY_FILE,
    KERAS_ARCHIVE_MEMBERS,
    KERAS_CONFIG_FILE,
    KERAS_WEIGHTS_FILE,
    METRICS_FILE,
    ModelConfig,
    ModelEntry,
    ModelOrigin,
    ModelStore,
    check_description_size,
    check_model_shapes,
    load_keras_file,
    read_history,
    write_json,
)

if TYPE_CHECKING:
    import keras
    from huggingface_hub import HfApi, ModelCard, ModelInfo

log = logging.getLogger(__name__)
HUB_FORMAT = "zoo-studio-hub/1"
ZOO_CONFIG_FILE = "zoo.json"  # not config.json: that name belongs to Keras' model config
CARD_FILE = "README.md"
DIGITS_FILE = "digits.npz"  # a fine-tuned model's personal digits, pushed only when asked for
PULLED_FILES = (*KERAS_ARCHIVE_MEMBERS, ZOO_CONFIG_FILE, METRICS_FILE, HISTORY_FILE)
# What a pulled model keeps of the repo's zoo.json; its kind is checked, its origin and creation time are new.
PULLED_CONFIG_FIELDS = ("spec", "data_source", "run_id", "status")
ZOO_TAG = "zoo-studio"
TASKS = {"cnn": "image-classification", "binary": "tabular-classification"}
KIND_DESCRIPTIONS = {
    "cnn": "MNIST digit classifier (convolutional network, 28x28x1 image -> 10 digit probabilities)",
    "binary": "2-D binary classifier (dense network, 2 coordinates -> probability of class 1)",
}
# (our metrics.json key, the Hub's metric type, the label shown)
CARD_METRICS = (
    ("accuracy", "accuracy", "Accuracy"),
    ("macro_precision", "precision", "Macro precision"),
    ("macro_recall", "recall", "Macro recall"),
    ("macro_f1", "f1", "Macro F1"),
    ("auc", "roc_auc", "ROC AUC"),
)
CARD_BEGIN = "<!-- zoo-studio:begin (generated: Zoo Studio replaces this section on every push) -->"
CARD_END = "<!-- zoo-studio:end -->"
MAX_CURVE_ROWS = 25
REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID_PATTERN = re.compile(rf"{REPO_PART}/{REPO_PART}")
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class HubError(ZooError):
    """A Hub operation failed; the message says why in one line and never contains the token."""


@dataclass(frozen=True)
class PushResult:
    """Where a push landed: the repo, the new commit and their URLs."""

    repo_id: str
    commit: str
    commit_url: str
    repo_url: str
    tag: str | None = None


@dataclass(frozen=True)
class PullResult:
    """A pulled model, registered in the local zoo, and the exact commit it came from."""

    entry: ModelEntry
    repo_id: str
    commit: str
    revision: str
    made_by: str  # "zoo-studio" or "keras" (a plain model.save("hf://...") repo)


@dataclass(frozen=True)
class CardMetrics:
    """The metrics a model card declares in its ``model-index``, by our names (None: not declared)."""

    accuracy: float | None = None
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None
    auc: float | None = None


@dataclass(frozen=True)
class HubModel:
    """A model of the hosted zoo as listings show it, with the metrics from its card."""

    repo_id: str
    author: str | None
    kind: str | None
    private: bool
    last_modified: str | None
    metrics: CardMetrics

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table or ``--json`` (made at that edge, read by nothing else)."""
        return {
            "repo_id": self.repo_id,
            "kind": self.kind,
            "accuracy": self.metrics.accuracy,
            "macro_f1": self.metrics.macro_f1,
            "private": self.private,
            "last_modified": self.last_modified,
        }


@dataclass(frozen=True)
class HubRevision:
    """A branch, tag or commit of a repo."""

    ref_type: str  # "branch", "tag" or "commit" (not ``kind``: that word names a model's kind)
    name: str
    commit: str
    title: str = ""
    date: str = ""

    @property
    def ref(self) -> str:
        """What names it in a revision field: a commit's full id, a branch's or tag's name."""
        return self.commit if self.ref_type == "commit" else self.name

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table or ``--json`` (made at that edge, read by nothing else)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RevisionMetrics:
    """The metrics a repo's card declares at one revision."""

    revision: str
    commit: str
    metrics: CardMetrics


@dataclass(frozen=True)
class MetricChange:
    """One metric at two revisions (None where a revision's card does not declare it)."""

    metric: str  # our name, e.g. macro_f1
    first: float | None
    second: float | None

    @property
    def change(self) -> float | None:
        """second - first, None when one of them is missing."""
        return self.second - self.first if self.first is not None and self.second is not None else None

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table or ``--json``: metric, first, second, change."""
        return {**dataclasses.asdict(self), "change": self.change}


@dataclass(frozen=True)
class RevisionComparison:
    """Two revisions' metrics side by side."""

    repo_id: str
    first: RevisionMetrics
    second: RevisionMetrics

    def changes(self) -> list[MetricChange]:
        """One per metric either revision declares, in the card's order."""
        changes = [
            MetricChange(key, getattr(self.first.metrics, key), getattr(self.second.metrics, key))
            for key, _, _ in CARD_METRICS
        ]
        return [change for change in changes if change.first is not None or change.second is not None]


# ---- settings ------------------------------------------------------------------------------


def hub_endpoint() -> str:
    """The Hub's base URL: ``HF_ENDPOINT`` when set (self-hosted hubs, mirrors), else huggingface_hub's."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def default_max_download_bytes() -> int:
    """The largest download ``pull`` accepts: ``ZOO_HUB_MAX_DOWNLOAD_MB`` (default 500 MB)."""
    return int(load_settings().hub_max_download_mb * 1_000_000)


def timeout_seconds() -> float:
    """How long one Hub action (push, pull, a listing) may take in all, uploads and downloads
    included: ``ZOO_HUB_TIMEOUT`` seconds (default 30)."""
    return load_settings().hub_timeout


def connect_timeout_seconds() -> float:
    """How long to wait for the Hub to take a connection: ``ZOO_HUB_CONNECT_TIMEOUT`` seconds
    (default 1), so that a Hub that cannot be reached is known at once, not after ``ZOO_HUB_TIMEOUT``."""
    return load_settings().hub_connect_timeout


def token_source(token: str | None = None) -> str:
    """Where the token in use comes from, for people: never the token itself."""
    from huggingface_hub import get_token

    if token:
        return "the token entered in this session"
    if load_config().hosted:
        return "none yet (on this shared host, enter your own token to push or read private repos)"
    if os.environ.get("HF_TOKEN"):
        return "HF_TOKEN"
    if get_token():
        return "huggingface_hub's login (hf auth login)"
    return "no token (public repos only; set HF_TOKEN or run `hf auth login` to push)"


def check_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it names a Hub repo as ``namespace/name``.

    Raises:
        HubError: it is empty, has no namespace, or has characters the Hub does not allow.
    """
    if (
        not isinstance(repo_id, str)
        or not REPO_ID_PATTERN.fullmatch(repo_id)
        or ".." in repo_id
        or "--" in repo_id
    ):
        raise HubError(
            f"repo id {repo_id!r} is not valid: use namespace/name with letters, digits, '.', '_' or '-' "
            "(no '--' or '..'), e.g. alice/mnist-cnn."
        )
    return repo_id


# ---- operations ----------------------------------------------------------------------------


def push(
    model_name: str,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    message: str | None = None,
    tag: str | None = None,
    store: ModelStore | None = None,
    include_digits: bool = False,
    by: User = LOCAL_USER,
) -> PushResult:
    """Upload a model of the local zoo to ``repo_id`` in one commit, with a generated model card.

    The repo is created when missing (``private`` applies then). A card that already exists keeps
    its hand-written text; only its metadata and the generated section are replaced. The personal
    digits a model was fine-tuned on go along (``digits.npz``) only with ``include_digits``.

    Args:
        model_name: a model of the local zoo.
        repo_id: ``namespace/name`` on the Hub.
        token: a Hugging Face token (default: ``HF_TOKEN`` or ``hf auth login``); never stored.
        private: create the repo as private (when it is new).
        message: the commit message.
        tag: tag the new commit, e.g. ``v1`` (refused before the commit if it exists).
        store: the local zoo (default: ``$ZOO_HOME``'s).
        include_digits: also upload the personal digit set it was fine-tuned on (``digits.npz``).
        by: who pushes (must be signed in).

    Returns:
        The repo, the commit id and its URL, and the tag.

    Example:
        >>> push("mnist-cnn", "alice/mnist-cnn", tag="v1").commit  # doctest: +SKIP
        '3f1c...'

    Raises:
        HubError: bad repo id or tag, the tag exists, no or bad token, no write access, hub
            unreachable, or ``include_digits`` for a model not fine-tuned on personal digits.
        ModelStoreError: no such local model, or its files are corrupt.
        DigitSetError: with ``include_digits``, the set it learnt from is gone or empty now.
        PermissionDenied: ``by`` is not signed in, or with ``include_digits``, the set it learnt from
            is someone else's and not shared.
    """
    check_may_create(by, "push a model to the Hub")
    check_repo_id(repo_id)
    if tag is not None:
        _check_tag(tag)
    store = store or ModelStore()
    entry = store.entry(model_name)
    token = _require_token(token, f"push to {repo_id}")
    api = _api(token)
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as temporary:
        folder = Path(temporary)
        _extract_keras_archive(store.model_file(entry.name), folder)
        store.copy_files(entry.name, (METRICS_FILE, HISTORY_FILE), folder)
        write_json(
            folder / ZOO_CONFIG_FILE,
            {**entry.config.to_dict(), "format": HUB_FORMAT, "model_name": entry.name},
        )
        if include_digits:
            (folder / DIGITS_FILE).write_bytes(_personal_digits(entry, by))
        with _hub_errors(f"push to {repo_id}", token):
            repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
            if tag is not None:
                _refuse_existing_tag(api, repo_id, tag)  # before the commit, so a bad tag changes nothing
            existing = _existing_card(api, repo_id)
            card = build_model_card(entry, repo_id, existing, history=store.history(entry.name))
            (folder / CARD_FILE).write_text(str(card.content))
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=message or f"Push {entry.name} from Zoo Studio",
                commit_description=f"Zoo Studio {__version__}: {entry.kind} model {entry.name!r}.",
            )
            if tag is not None:
                api.create_tag(repo_id, tag=tag, revision=commit.oid, tag_message=message)
    log.info("pushed %s to %s: commit %s%s", entry.name, repo_id, commit.oid, f" (tag {tag})" if tag else "")
    return PushResult(repo_id, commit.oid, commit.commit_url, str(repo_url), tag)


def pull(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    name: str | None = None,
    max_download_bytes: int | None = None,
    store: ModelStore | None = None,
    by: User = LOCAL_USER,
) -> PullResult:
    """Download a repo at ``revision`` (branch, tag or commit id; default ``main``), check it,
    load it with ``safe_mode=True`` and register it in the local zoo with its origin.

    Sizes are checked from the Hub's file listing before anything is downloaded, and the bytes
    received are capped while they stream (a listing may leave sizes out); the local zoo gets the
    model atomically or not at all.

    Args:
        repo_id: ``namespace/name`` on the Hub.
        revision: a branch, tag or commit id (default ``main``).
        token: a Hugging Face token for a private repo (default: ``HF_TOKEN`` or the login).
        name: its name in the local zoo (default: the repo's name, made unique).
        max_download_bytes: refuse larger models (default ``ZOO_HUB_MAX_DOWNLOAD_MB``).
        store: the local zoo (default: ``$ZOO_HOME``'s).
        by: who pulls; the model is recorded as theirs (must be signed in).

    Returns:
        The new local entry (its config's ``origin`` names the repo and exact commit), and
        whether Zoo Studio or plain Keras made the repo.

    Example:
        >>> pull("alice/mnist-cnn", revision="v1").entry.name  # doctest: +SKIP
        'mnist-cnn-2'

    Raises:
        HubError: bad repo id; ``name`` already in the local zoo; repo or revision not found; bad
            token; hub unreachable; no model in the repo; download over ``max_download_bytes``;
            corrupt or unsafe model; shapes that do not fit a Zoo Studio model.
        ModelStoreError: ``name`` (or the repo's name, when no ``name`` is given) is not a
            valid model name.
        PermissionDenied: ``by`` (who will own the pulled model) is not signed in.
    """
    check_may_create(by, "pull a model from the Hub")
    check_repo_id(repo_id)
    revision = revision or "main"
    store = store or ModelStore()
    if name is not None and store.has(name):
        raise HubError(f"a model named {name!r} is already in the local zoo; choose another name.")
    limit = default_max_download_bytes() if max_download_bytes is None else max_download_bytes
    token = resolve_token(token)
    api = _api(token)
    where = f"{repo_id} at {revision}"
    with _hub_errors(f"pull {where}", token):  # one ZOO_HUB_TIMEOUT for the listing and the downloads
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
        commit = _commit_of(info, where)
        sizes = {sibling.rfilename: sibling.size for sibling in info.siblings or []}  # None: not listed
        missing = [file for file in (KERAS_CONFIG_FILE, KERAS_WEIGHTS_FILE) if file not in sizes]
        if missing:
            raise HubError(
                f"{where} holds no Keras model: {', '.join(missing)} missing (a repo pushed by Zoo Studio "
                "or by Keras' model.save('hf://...') has config.json and model.weights.h5)."
            )
        wanted = [file for file in PULLED_FILES if file in sizes]
        total = sum(sizes[file] or 0 for file in wanted)
        over_limit = (
            f"over the download limit of {limit / 1e6:,.1f} MB; raise it (--max-download-mb or "
            "ZOO_HUB_MAX_DOWNLOAD_MB) if you trust this repo."
        )
        if total > limit:
            raise HubError(f"{where}: the model files are {total / 1e6:,.1f} MB, {over_limit}")
        # Sizes the listing leaves out (or understates) are capped while the bytes arrive.
        with _hub_errors(
            f"download {where}", token, max_bytes=limit, too_large=f"{where}: the download went {over_limit}"
        ):
            paths = [api.hf_hub_download(repo_id, file, revision=commit) for file in wanted]
    folder = Path(paths[0]).parent
    origin = f"{repo_id} at {commit[:8]}"
    try:
        for file in wanted:  # a description larger than a model's is refused before it is read
            if file != KERAS_WEIGHTS_FILE:
                check_description_size(
                    (folder / file).stat().st_size, f"{origin}: {file}", "the repo is corrupt."
                )
        zoo_config = _read_repo_json(folder / ZOO_CONFIG_FILE, origin) if ZOO_CONFIG_FILE in wanted else None
        # measured before it is built: a model beyond this host's limits is refused without being allocated
        model = load_keras_file(folder, origin=origin)
    except ModelStoreError as error:
        raise HubError(str(error)) from None
    kind = _model_kind(model, zoo_config, origin)
    metrics = _read_repo_json(folder / METRICS_FILE, origin) if METRICS_FILE in wanted else {}
    history = read_history(folder / HISTORY_FILE)
    recorded = {key: value for key, value in (zoo_config or {}).items() if key in PULLED_CONFIG_FIELDS}
    try:
        described = ModelConfig.from_dict({**recorded, "kind": kind})
        scores = Scores.from_dict(metrics) if metrics else None
    except ZooError as error:
        raise HubError(
            f"{origin}: {str(error).rstrip('.')}; its {ZOO_CONFIG_FILE} and {METRICS_FILE} are not what "
            "Zoo Studio writes (or a newer version wrote them)."
        ) from None
    config = dataclasses.replace(
        described, origin=ModelOrigin(repo_id, commit, revision, hub_endpoint()), owner=by.name
    )
    entry = store.save(
        model,
        name or repo_id.split("/")[1],
        config=config,
        metrics=scores,
        history=history,
        unique=name is None,
    )
    log.info("pulled %s at %s (commit %s) into the local zoo as %s", repo_id, revision, commit, entry.name)
    return PullResult(entry, repo_id, commit, revision, "zoo-studio" if zoo_config else "keras")


def list_models(
    *, author: str | None = None, search: str | None = None, token: str | None = None, limit: int = 100
) -> list[HubModel]:
    """The hosted zoo: models tagged ``zoo-studio``, filtered by author and search text, with the
    metrics their cards declare.

    Raises:
        HubError: bad token or hub unreachable.
    """
    token = resolve_token(token)
    api = _api(token)
    with _hub_errors("list the models on the Hub", token):
        infos = list(
            api.list_models(
                filter=ZOO_TAG, author=author or None, search=search or None, cardData=True, limit=limit
            )
        )
    return [
        HubModel(
            repo_id=info.id,
            author=info.author,
            kind=next((kind for kind in KIND_SHAPES if f"{ZOO_TAG}-{kind}" in (info.tags or [])), None),
            private=bool(info.private),
            last_modified=info.last_modified.isoformat() if info.last_modified else None,
            metrics=card_metrics(info.card_data),
        )
        for info in infos
    ]


def list_revisions(repo_id: str, *, token: str | None = None) -> list[HubRevision]:
    """A repo's branches, tags and the commits of ``main``, newest commit first.

    Raises:
        HubError: bad repo id, repo not found, bad token, hub unreachable.
    """
    check_repo_id(repo_id)
    token = resolve_token(token)
    api = _api(token)
    with _hub_errors(f"list the revisions of {repo_id}", token):
        refs = api.list_repo_refs(repo_id)
        commits = api.list_repo_commits(repo_id)
    return [
        *(HubRevision("branch", ref.name, ref.target_commit) for ref in refs.branches),
        *(HubRevision("tag", ref.name, ref.target_commit) for ref in refs.tags),
        *(
            HubRevision(
                "commit", commit.commit_id[:8], commit.commit_id, commit.title, commit.created_at.isoformat()
            )
            for commit in commits
        ),
    ]


def _commit_of(info: ModelInfo, where: str) -> str:
    """The commit a model's listing is at (huggingface_hub types it optional: a listing of a revision
    always has one).

    Raises:
        HubError: the Hub's answer names no commit.
    """
    if info.sha is None:
        raise HubError(f"{where}: the Hub's answer names no commit; try again, or check the Hub endpoint.")
    return info.sha


def revision_metrics(repo_id: str, revision: str, *, token: str | None = None) -> RevisionMetrics:
    """The metrics the card declares at ``revision`` (empty when it declares none).

    Raises:
        HubError: bad repo id, repo or revision not found, bad token, hub unreachable.
    """
    check_repo_id(repo_id)
    token = resolve_token(token)
    with _hub_errors(f"read {repo_id} at {revision}", token):
        info = _api(token).model_info(repo_id, revision=revision)
    return RevisionMetrics(
        revision, _commit_of(info, f"{repo_id} at {revision}"), card_metrics(info.card_data)
    )


def compare_revisions(
    repo_id: str, first: str, second: str, *, token: str | None = None
) -> RevisionComparison:
    """Two revisions' metrics side by side (see ``RevisionComparison.rows``), read within one
    ``ZOO_HUB_TIMEOUT``."""
    with _hub_errors(f"compare {first} and {second} of {repo_id}", token):
        return RevisionComparison(
            repo_id,
            revision_metrics(repo_id, first, token=token),
            revision_metrics(repo_id, second, token=token),
        )


def tag_revision(
    repo_id: str, tag: str, *, revision: str = "main", token: str | None = None, message: str | None = None
) -> str:
    """Tag ``revision`` (e.g. ``v1``) and return the commit id the tag points at.

    Raises:
        HubError: bad repo id or tag name, the tag exists, revision not found, no write access.
    """
    check_repo_id(repo_id)
    _check_tag(tag)
    token = _require_token(token, f"tag {repo_id}")
    api = _api(token)
    with _hub_errors(f"tag {repo_id} at {revision}", token):
        commit = _commit_of(api.model_info(repo_id, revision=revision), f"{repo_id} at {revision}")
        _refuse_existing_tag(api, repo_id, tag)
        api.create_tag(repo_id, tag=tag, revision=commit, tag_message=message)
    return commit


def hub_user(token: str | None = None) -> str:
    """The user name the token belongs to.

    Raises:
        HubError: no token, bad token, hub unreachable.
    """
    token = _require_token(token, "check the token")
    with _hub_errors("check the token", token):
        return _api(token).whoami()["name"]


def resolve_token(token: str | None = None) -> str | None:
    """The token to use: the one given, else ``HF_TOKEN``, else huggingface_hub's login, else None.

    In hosted mode only the one given: the host's own token never acts for a visitor."""
    from huggingface_hub import get_token

    given = (token or "").strip() or None
    return given if given or load_config().hosted else get_token()


# ---- model card ----------------------------------------------------------------------------


def build_model_card(
    entry: ModelEntry,
    repo_id: str,
    existing: ModelCard | None = None,
    *,
    history: list[dict[str, float]],
) -> ModelCard:
    """The card for ``entry`` in ``repo_id``: Hub metadata (library, tags, datasets, model-index)
    and a generated section (with the training curves of ``history``, the model's per-epoch metrics),
    keeping any metadata and text a person added to ``existing``."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    kind, task = entry.kind, TASKS[entry.kind]
    metadata = existing.data.to_dict() if existing is not None else {}
    metadata.pop("model-index", None)
    metadata.pop("model_name", None)
    metadata.pop("eval_results", None)
    dataset_id, dataset_name = _dataset_of(entry)
    datasets = list(metadata.get("datasets") or [])
    metadata.update(
        library_name="keras",
        pipeline_tag=task,
        tags=list(
            dict.fromkeys([*(metadata.get("tags") or []), ZOO_TAG, f"{ZOO_TAG}-{kind}", task, "keras"])
        ),
        datasets=list(dict.fromkeys([*datasets, dataset_id])) if dataset_id == "mnist" else datasets or None,
    )
    eval_results = [
        EvalResult(
            task_type=task,
            dataset_type=dataset_id,
            dataset_name=dataset_name,
            dataset_split="test",
            metric_type=metric_type,
            metric_name=label,
            metric_value=round(float(value), 6),
        )
        for metric_type, label, value in _declared_metrics(entry.metrics)
    ]
    card_data = ModelCardData(
        **{key: value for key, value in metadata.items() if value is not None},
        model_name=repo_id.split("/")[1],
        eval_results=eval_results or None,
    )
    generated = _generated_section(entry, repo_id, dataset_name, history)
    if existing is not None and CARD_BEGIN in existing.text and CARD_END in existing.text:
        before, rest = existing.text.split(CARD_BEGIN, 1)
        body = before + generated + rest.split(CARD_END, 1)[1]
    elif existing is not None and existing.text.strip():
        body = existing.text.rstrip() + "\n\n" + generated + "\n"
    else:
        body = (
            f"# {repo_id.split('/')[1]}\n\nTrained with Zoo Studio ({kind} model).\n\n"
            "_Text you write outside the generated section below is kept when the model is pushed again._\n\n"
            + generated
            + "\n"
        )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def card_metrics(card_data: Any) -> CardMetrics:
    """The metrics a card's ``model-index`` declares (none when it has none)."""
    names = {metric_type: key for key, metric_type, _ in CARD_METRICS}
    results = getattr(card_data, "eval_results", None) or []
    return CardMetrics(
        **{
            names[result.metric_type]: float(result.metric_value)
            for result in results
            if result.metric_type in names and isinstance(result.metric_value, int | float)
        }
    )


def _declared_metrics(scores: Scores | None) -> list[tuple[str, str, float]]:
    """(Hub metric type, label, value) of each card metric ``scores`` holds, in the card's order."""
    if scores is None:
        return []
    declared = [(metric_type, label, getattr(scores, key)) for key, metric_type, label in CARD_METRICS]
    return [(metric_type, label, value) for metric_type, label, value in declared if value is not None]


def _generated_section(
    entry: ModelEntry, repo_id: str, dataset_name: str, history: list[dict[str, float]]
) -> str:
    spec = entry.config.spec.to_dict() if entry.config.spec is not None else {}
    lines = [CARD_BEGIN, "", "## Model", "", f"{KIND_DESCRIPTIONS[entry.kind]}."]
    metric_rows = [f"| {label} | {value:.4f} |" for _, label, value in _declared_metrics(entry.metrics)]
    if entry.metrics is not None and metric_rows:
        examples = entry.metrics.num_examples
        on = f"{dataset_name}" + (f", {examples:,} examples" if isinstance(examples, int) else "")
        lines += [
            "",
            "## Evaluation",
            "",
            f"On the held-out test set ({on}):",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += metric_rows
    if spec:
        lines += ["", "## Hyperparameters", "", "| option | value |", "|---|---|"]
        lines += [
            f"| {key} | {_format_value(value)} |" for key, value in sorted(spec.items()) if value is not None
        ]
    lines += ["", "## Training data", "", str(entry.config.data_source or "not recorded")]
    lines += _fine_tuning_lines(entry)
    if history:
        columns = [column for column in history[0] if column != "epoch"]
        step = max(1, math.ceil(len(history) / MAX_CURVE_ROWS))
        shown = [row for index, row in enumerate(history) if index % step == 0 or index == len(history) - 1]
        lines += ["", "## Training curves", ""]
        lines += ["| epoch | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [
            f"| {int(row.get('epoch', 0))} | "
            + " | ".join(f"{row.get(c, float('nan')):.4f}" for c in columns)
            + " |"
            for row in shown
        ]
    lines += [
        "",
        "## How to use",
        "",
        "With Keras alone:",
        "",
        "```python",
        "import keras",
        "",
        f'model = keras.saving.load_model("hf://{repo_id}")',
        "```",
        "",
        "Into Zoo Studio's local zoo (then pick it on the Draw page):",
        "",
        "```bash",
        f"python -m zoo pull {repo_id}",
        "```",
        "",
        CARD_END,
    ]
    return "\n".join(lines)


def _personal_digits(entry: ModelEntry, by: User) -> bytes:
    """The .npz export of the personal set a fine-tuned model learnt from, read as ``by``.

    Raises:
        HubError: the model was not fine-tuned on a digit set.
        DigitSetError: the set is gone or empty now.
        PermissionDenied: the set is someone else's and not shared.
    """
    from zoo.storage.digits import DigitStore

    set_name = entry.config.lineage.digits_set if entry.config.lineage is not None else None
    if not set_name:
        raise HubError(f"{entry.name!r} was not fine-tuned on personal digits, so there are none to push.")
    return DigitStore().export_npz(set_name, by=by)


def _fine_tuning_lines(entry: ModelEntry) -> list[str]:
    """The card's "Fine-tuning" section: base model, personal digits, and accuracy before and after."""
    lineage = entry.config.lineage
    if lineage is None:
        return []
    lines = ["", "## Fine-tuning", ""]
    if lineage.digits_set:
        counts = ", ".join(f"{digit}: {count}" for digit, count in enumerate(lineage.personal_counts))
        lines.append(
            f"Fine-tuned from `{lineage.base_model}` on "
            f"{lineage.personal_train_digits + lineage.personal_test_digits} personal digits "
            f"(set `{lineage.digits_set}`; per digit {counts}): {lineage.personal_train_digits} "
            f"trained on, each {lineage.personal_copies} times among {lineage.mnist_train_digits:,} "
            f"MNIST training digits, and {lineage.personal_test_digits} held out."
        )
    else:
        lines.append(f"Training continued from `{lineage.base_model}`.")
    report = entry.metrics.fine_tuning if entry.metrics is not None else None
    if report is not None:
        lines += ["", "| accuracy | before | after |", "|---|---|---|"]
        before, after = report.before, report.after
        lines.append(f"| MNIST test digits | {before.mnist_accuracy:.4f} | {after.mnist_accuracy:.4f} |")
        if before.personal_accuracy is not None and after.personal_accuracy is not None:
            personal = f"{before.personal_accuracy:.4f} | {after.personal_accuracy:.4f}"
            lines.append(f"| held-out personal digits | {personal} |")
    return lines


def _dataset_of(entry: ModelEntry) -> tuple[str, str]:
    """(Hub dataset id, name) of the data the model was evaluated on."""
    if entry.kind == "cnn":
        return "mnist", "MNIST"
    dataset = entry.config.spec.dataset if entry.config.spec is not None else "points"
    return f"synthetic-{dataset}", f"{dataset} (synthetic 2-D points)"


def _format_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


# ---- helpers -------------------------------------------------------------------------------


def _api(token: str | None) -> HfApi:
    """A client for ``hub_endpoint()`` whose requests keep to the calling action's budget."""
    from huggingface_hub import HfApi

    _hold_hub_calls_to_budgets()
    return HfApi(endpoint=hub_endpoint(), token=token, library_name="zoo-studio", library_version=__version__)


@functools.cache
def _hold_hub_calls_to_budgets() -> None:
    """Once per process: huggingface_hub's client sends through ``_BudgetTransport``, and its progress
    bars and retry messages stay off the terminal (every failure is one HubError line instead)."""
    from huggingface_hub import get_session, set_client_factory
    from huggingface_hub.utils import disable_progress_bars, logging

    hooks = get_session().event_hooks  # huggingface_hub's own (request ids, offline mode)
    set_client_factory(
        lambda: httpx2.Client(
            event_hooks=hooks, follow_redirects=True, timeout=None, transport=_BudgetTransport()
        )
    )
    disable_progress_bars()
    logging.set_verbosity_error()


@dataclass
class _Budget:
    """What one Hub action may spend: the time by which it ends (retries, uploads and downloads
    included) and the bytes it receives; and the last answer it got, to name one it cannot read."""

    deadline: float  # time.monotonic() by which the action ends
    max_bytes: int | None
    received: int = 0
    last_answer: httpx2.Response | None = None


class _GiveUp(Exception):
    """The action ends now: ``error`` is why (None: its time ran out while the Hub had not answered)."""

    def __init__(self, error: BaseException | None) -> None:
        super().__init__(str(error))
        self.error = error


class _TooLarge(Exception):
    """More bytes arrived than the action's ``max_bytes``."""


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("zoo_hub_budget", default=None)
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


class _BudgetTransport(httpx2.HTTPTransport):
    """An httpx transport that keeps each Zoo Studio action to its budget.

    A Hub that does not take a connection within ``connect_timeout_seconds()`` fails the action at
    once (one quick probe, no retry); busy answers and broken connections are retried here within
    the action's time, so that huggingface_hub's own back-off (five retries, 23 s of sleeping, a
    warning each) never starts; every socket operation waits at most until the action's deadline
    (``_DeadlineBackend``), so neither a silent Hub nor one sending a byte a second outlasts it; and
    a download stops at ``max_bytes``. Requests outside an action only get a per-request timeout."""

    def __init__(self) -> None:
        super().__init__()
        # httpx has no public way to give its connection pool another network backend.
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(), network_backend=_DeadlineBackend()
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        budget = _BUDGET.get()
        if budget is None:
            timeouts = request.extensions.get("timeout") or {}
            if all(value is None for value in timeouts.values()):  # huggingface_hub passes None: no end
                request.extensions["timeout"] = httpx2.Timeout(timeout_seconds()).as_dict()
            return super().handle_request(request)
        wait, last_error = 0.25, None
        where = f"{request.method} {hide_passwords(str(request.url.copy_with(query=None)))}"
        while True:
            remaining = budget.deadline - time.monotonic()
            if remaining <= 0:
                log.info("%s: no answer within the action's time; giving up", where)
                raise _GiveUp(last_error)
            timeout = httpx2.Timeout(remaining, connect=connect_timeout_seconds())
            request.extensions["timeout"] = timeout.as_dict()
            try:
                response = super().handle_request(request)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as error:
                log.info("%s: no connection (%s); giving up", where, type(error).__name__)
                raise _GiveUp(error) from None  # nothing takes connections there: waiting will not help
            except httpx2.TransportError as error:
                last_error = error  # a connection broken mid-answer: try again while time is left
                said = type(error).__name__
            else:
                budget.last_answer = response
                if response.status_code not in _RETRY_STATUSES:
                    return self._capped(response, budget)
                response.close()
                last_error, said = None, f"answered {response.status_code}"
            log.info("%s: %s; trying again in %.2g s", where, said, wait)
            time.sleep(max(0.0, min(wait, budget.deadline - time.monotonic())))
            wait = min(wait * 2, 4.0)

    def _capped(self, response: httpx2.Response, budget: _Budget) -> httpx2.Response:
        # a sync transport's answers stream synchronously (httpx's ResponseStream)
        if budget.max_bytes is not None and isinstance(response.stream, httpx2.SyncByteStream):
            response.stream = _CappedStream(response.stream, budget)
        return response


class _DeadlineBackend(httpcore2.NetworkBackend):
    """httpcore's sockets, each connect, read and write cut to what is left of the calling action's
    time (``_until_deadline``)."""

    def __init__(self) -> None:
        self._sockets = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore2.NetworkStream:
        with _until_deadline(timeout) as cut:
            return _DeadlineStream(self._sockets.connect_tcp(host, port, cut, local_address, socket_options))

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class _DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every read and write ends by the calling action's deadline."""

    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _until_deadline(timeout) as cut:
            return self._stream.read(max_bytes, cut)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _until_deadline(timeout) as cut:
            self._stream.write(buffer, cut)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        with _until_deadline(timeout) as cut:
            return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, cut))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


@contextlib.contextmanager
def _until_deadline(timeout: float | None) -> Iterator[float | None]:
    """``timeout`` cut to the time the calling action has left (unchanged outside an action); a socket
    operation that waits until the deadline ends the action.

    Raises:
        _GiveUp: the action's time is up (before or during the operation).
    """
    budget = _BUDGET.get()
    remaining = None if budget is None else budget.deadline - time.monotonic()
    if remaining is None or (timeout is not None and timeout < remaining):
        yield timeout
        return
    if remaining <= 0:
        log.info("no answer from the Hub within the action's time; giving up")
        raise _GiveUp(None)
    try:
        yield remaining
    except httpcore2.TimeoutException:
        log.info("no answer from the Hub within the action's time; giving up")
        raise _GiveUp(None) from None


class _CappedStream(httpx2.SyncByteStream):
    """A response body that raises ``_TooLarge`` once the action has received more than its limit."""

    def __init__(self, stream: httpx2.SyncByteStream, budget: _Budget) -> None:
        self._stream, self._budget = stream, budget

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._budget.received += len(chunk)
            if self._budget.max_bytes is not None and self._budget.received > self._budget.max_bytes:
                raise _TooLarge
            yield chunk

    def close(self) -> None:
        self._stream.close()


def _require_token(token: str | None, action: str) -> str:
    resolved = resolve_token(token)
    if not resolved:
        raise HubError(
            f"cannot {action}: no Hugging Face token; set HF_TOKEN, run `hf auth login`, "
            "or enter one in the Hub page's token field."
        )
    return resolved


def _refuse_existing_tag(api: HfApi, repo_id: str, tag: str) -> None:
    if tag in {ref.name for ref in api.list_repo_refs(repo_id).tags}:
        raise HubError(f"tag {tag!r} already exists in {repo_id}: choose another name, e.g. {tag}.1.")


def _check_tag(tag: str) -> None:
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        raise HubError(
            f"tag {tag!r} is not valid: use 1-100 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, e.g. v1."
        )


@contextlib.contextmanager
def _hub_errors(
    action: str, token: str | None, *, max_bytes: int | None = None, too_large: str = ""
) -> Iterator[None]:
    """Hold the Hub calls inside to one budget and turn huggingface_hub and network errors into
    one-line HubErrors naming ``action``.

    The calls take ``timeout_seconds()`` in all, retries, uploads and downloads included (inside
    another action, no longer than what it has left); with ``max_bytes`` the bytes received stop
    there with HubError(``too_large``)."""
    deadline = time.monotonic() + timeout_seconds()
    outer = _BUDGET.get()
    budget = _Budget(deadline if outer is None else min(deadline, outer.deadline), max_bytes)
    reset = _BUDGET.set(budget)
    try:
        yield
    except _hub_failures() as error:
        message = _hub_failure(error, action, budget, too_large)
        if message is None:
            raise
        raise HubError(_redact(message, token)) from None
    finally:
        _BUDGET.reset(reset)


def _hub_failures() -> tuple[type[BaseException], ...]:
    """What Hub calls raise that ``_hub_errors`` says in one line."""
    from huggingface_hub import errors

    return (
        _GiveUp,
        _TooLarge,
        json.JSONDecodeError,  # huggingface_hub reading an answer that is not JSON
        UnicodeDecodeError,
        RuntimeError,  # huggingface_hub's wrapping of what an LFS upload raised
        errors.HfHubHTTPError,
        errors.LocalEntryNotFoundError,
        errors.HFValidationError,
        errors.OfflineModeIsEnabled,
        httpx2.TransportError,
    )


def _hub_failure(error: BaseException, action: str, budget: _Budget, too_large: str) -> str | None:
    """The one line for a failure of ``_hub_failures()`` in ``action``; None for a RuntimeError that
    wraps none."""
    if isinstance(error, _GiveUp):
        return _describe(error.error or httpx2.TimeoutException("no answer in time"), action)
    if isinstance(error, _TooLarge):
        return too_large
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return _not_json(budget.last_answer, action)
    if isinstance(error, RuntimeError):
        cause = error.__cause__
        if isinstance(cause, _hub_failures()) and not isinstance(cause, RuntimeError):
            return _hub_failure(cause, action, budget, too_large)
        return None
    return _describe(error, action)


def _not_json(answer: httpx2.Response | None, action: str) -> str:
    """Why an answer the client had to read as JSON could not be, and the likely cause."""
    if answer is None:
        what = "the Hub's answer"
    else:
        content_type = answer.headers.get("content-type") or "no content type"
        url = answer.request.url.copy_with(query=None)
        what = f"{url} answered {answer.status_code} with {content_type}"
    return (
        f"cannot {action}: {what}, not JSON, so HF_ENDPOINT ({hub_endpoint()}) is probably not a Hugging "
        "Face Hub; set it to a Hub's address, or unset it to use huggingface.co."
    )


def _describe(error: BaseException, action: str) -> str:
    from huggingface_hub import errors

    endpoint = hub_endpoint()
    cause = error.__cause__ or error.__context__
    if isinstance(error, errors.LocalEntryNotFoundError) and cause is not None:
        return _describe(cause, action)
    if isinstance(error, errors.RevisionNotFoundError):
        return (
            f"cannot {action}: revision not found; give a branch, tag or commit id that exists in the repo."
        )
    if isinstance(error, errors.RepositoryNotFoundError):
        return (
            f"cannot {action}: repo not found on {endpoint}; check its name, and if it is private, "
            "use a token that can read it."
        )
    if isinstance(error, errors.RemoteEntryNotFoundError):
        return f"cannot {action}: a file the repo lists is missing on the Hub; push the model again."
    if isinstance(error, errors.HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        if status == 401:
            return (
                f"cannot {action}: the Hub at {endpoint} rejected the token (401 Unauthorized); set a valid "
                "token in HF_TOKEN, with `hf auth login`, or in the Hub page's token field."
            )
        if status == 403:
            return (
                f"cannot {action}: the token has no write access there (403 Forbidden); use a token with "
                "the write role for that namespace."
            )
        detail = (error.server_message or "").strip().splitlines()
        return f"cannot {action}: the Hub answered {status}" + (f" ({detail[0][:200]})." if detail else ".")
    if isinstance(error, httpx2.ConnectTimeout):
        return (
            f"cannot {action}: the Hub at {endpoint} is unreachable (no connection within "
            f"{connect_timeout_seconds():g} s); check the network and HF_ENDPOINT, or on a slow network "
            "raise ZOO_HUB_CONNECT_TIMEOUT."
        )
    if isinstance(error, httpx2.TimeoutException):
        return (
            f"cannot {action}: the Hub at {endpoint} did not answer within {timeout_seconds():g} s; "
            "check the network or raise ZOO_HUB_TIMEOUT."
        )
    if isinstance(error, httpx2.TransportError):
        return (
            f"cannot {action}: the Hub at {endpoint} is unreachable ({type(error).__name__}); check the "
            "network and HF_ENDPOINT, then try again."
        )
    if isinstance(error, errors.OfflineModeIsEnabled):
        return (
            f"cannot {action}: HF_HUB_OFFLINE is set, so the Hub is not contacted; unset it to use the Hub."
        )
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"cannot {action}: {first_line[:200]}"


def _redact(message: str, token: str | None) -> str:
    return message.replace(token, "***") if token else message


def _existing_card(api: HfApi, repo_id: str) -> ModelCard | None:
    from huggingface_hub import ModelCard, errors

    try:
        path = api.hf_hub_download(repo_id, CARD_FILE)
    except errors.RemoteEntryNotFoundError:
        return None
    return ModelCard(Path(path).read_text(encoding="utf-8"), ignore_metadata_errors=True)


def _extract_keras_archive(model_file: Path, folder: Path) -> None:
    """Unpack a ``.keras`` file into Keras' folder layout (what ``hf://`` loading expects)."""
    try:
        with zipfile.ZipFile(model_file) as archive:
            missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in archive.namelist()]
            if missing:
                raise ModelStoreError(
                    f"{model_file} is not a Keras 3 model file: {', '.join(missing)} missing."
                )
            for name in KERAS_ARCHIVE_MEMBERS:
                (folder / name).write_bytes(archive.read(name))
    except (OSError, zipfile.BadZipFile) as error:
        raise ModelStoreError(f"{model_file} cannot be read as a Keras model file ({error}).") from None


def _model_kind(model: keras.Model, zoo_config: dict[str, Any] | None, origin: str) -> str:
    """The kind named by ``zoo.json``, checked against the model; else inferred from its shapes."""
    if zoo_config is not None:
        kind = zoo_config.get("kind")
        if kind not in KIND_SHAPES:
            raise HubError(f"{origin}: zoo.json names kind {kind!r}; expected 'cnn' or 'binary'.")
        try:
            check_model_shapes(model, kind, origin)
        except ModelStoreError as error:
            raise HubError(str(error)) from None
        return kind
    for kind in KIND_SHAPES:
        with contextlib.suppress(ModelStoreError):
            check_model_shapes(model, kind, origin)
            return kind
    expected = " or ".join(
        f"{inputs} -> {outputs} ({kind})" for kind, (inputs, outputs) in KIND_SHAPES.items()
    )
    raise HubError(
        f"{origin}: this Keras model maps {_shape_of(model, 'input_shape')} -> "
        f"{_shape_of(model, 'output_shape')}, which Zoo Studio cannot use; the Draw page needs {expected}."
    )


def _shape_of(model: keras.Model, attribute: str) -> Any:
    shape = getattr(model, attribute, None)
    return tuple(shape[1:]) if isinstance(shape, tuple) else shape


def _read_repo_json(path: Path, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HubError(f"{origin}: {path.name} is not valid JSON ({error}); the repo is corrupt.") from None
    if not isinstance(data, dict):
        raise HubError(f"{origin}: {path.name} must hold a JSON object; the repo is corrupt.")
    return data
