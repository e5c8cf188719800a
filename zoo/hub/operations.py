"""The hosted zoo: push, pull, browse, tag and compare models on the Hugging Face Hub.

A Zoo Studio repo holds Keras' own folder layout (``config.json``, ``metadata.json``,
``model.weights.h5``: the members of a ``.keras`` file), so plain
``keras.saving.load_model("hf://ns/name")`` loads it, plus Zoo Studio's description
(``zoo.json``), ``metrics.json``, ``history.csv`` and a model card (``README.md``).
Pull also takes repos written by plain ``model.save("hf://ns/name")``.

The Hub is ``HF_ENDPOINT`` (read at call time; huggingface.co by default) and the token comes
from the caller, ``HF_TOKEN`` or huggingface_hub's login. Our code never writes, logs or shows
the token; every failure is a one-line ``HubError``.

The Hub package is three modules: this one (the operations), ``card`` (the model card) and
``transport`` (the HTTP client, each action's time and byte budget, ``HubError``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import __version__
from zoo.core.errors import ModelStoreError, ZooError
from zoo.core.hosting import LOCAL_USER, User, check_may_create, load_config
from zoo.core.scores import Scores
from zoo.core.vocabulary import KIND_SHAPES
from zoo.hub.card import CARD_FILE, CARD_METRICS, ZOO_TAG, CardMetrics, build_model_card, card_metrics
from zoo.hub.transport import (
    HubError,
    client,
    default_max_download_bytes,
    hub_endpoint,
    hub_errors,
)
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
DIGITS_FILE = "digits.npz"  # a fine-tuned model's personal digits, pushed only when asked for
PULLED_FILES = (*KERAS_ARCHIVE_MEMBERS, ZOO_CONFIG_FILE, METRICS_FILE, HISTORY_FILE)
# What a pulled model keeps of the repo's zoo.json; its kind is checked, its origin and creation time are new.
PULLED_CONFIG_FIELDS = ("spec", "data_source", "run_id", "status")
REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID_PATTERN = re.compile(rf"{REPO_PART}/{REPO_PART}")
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


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


# ---- tokens and names ----------------------------------------------------------------------


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
    api = client(token)
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
        with hub_errors(f"push to {repo_id}", token):
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
    api = client(token)
    where = f"{repo_id} at {revision}"
    with hub_errors(f"pull {where}", token):  # one ZOO_HUB_TIMEOUT for the listing and the downloads
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
        with hub_errors(
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
    api = client(token)
    with hub_errors("list the models on the Hub", token):
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
    api = client(token)
    with hub_errors(f"list the revisions of {repo_id}", token):
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
    with hub_errors(f"read {repo_id} at {revision}", token):
        info = client(token).model_info(repo_id, revision=revision)
    return RevisionMetrics(
        revision, _commit_of(info, f"{repo_id} at {revision}"), card_metrics(info.card_data)
    )


def compare_revisions(
    repo_id: str, first: str, second: str, *, token: str | None = None
) -> RevisionComparison:
    """Two revisions' metrics side by side (see ``RevisionComparison.rows``), read within one
    ``ZOO_HUB_TIMEOUT``."""
    with hub_errors(f"compare {first} and {second} of {repo_id}", token):
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
    api = client(token)
    with hub_errors(f"tag {repo_id} at {revision}", token):
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
    with hub_errors("check the token", token):
        return client(token).whoami()["name"]


def resolve_token(token: str | None = None) -> str | None:
    """The token to use: the one given, else ``HF_TOKEN``, else huggingface_hub's login, else None.

    In hosted mode only the one given: the host's own token never acts for a visitor."""
    from huggingface_hub import get_token

    given = (token or "").strip() or None
    return given if given or load_config().hosted else get_token()


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


# ---- helpers -------------------------------------------------------------------------------


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
