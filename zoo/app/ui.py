"""The only zoo module that imports streamlit: session keys, cached shared resources, and the few
pieces every page shows the same way (a run's progress, a run's outcome).

``st.cache_resource`` lives as long as the server process, so cached stores are keyed by their
URL (and the executor by its ``ZOO_HOME``): a test (or a server) with another ``ZOO_HOME`` gets its
own store, never a stale one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import streamlit as st
from streamlit.errors import StreamlitAuthError

from zoo.app.charts import playground
from zoo.core.errors import RunError, StorageError, ZooError
from zoo.core.hosting import LOCAL_USER, VISITOR, HostingConfig, User, load_config, may_manage
from zoo.core.logs import chosen_level, configure_logging
from zoo.core.paths import model_store_url, zoo_home
from zoo.core.settings import load_settings, log_level
from zoo.core.spec import TrainSpec
from zoo.ml.training import DecisionSurface, LimitBound, largest_within_limits
from zoo.runs.records import Run, lane_of
from zoo.runs.store import RunStore, run_store_url
from zoo.runs.store import open_run_store as open_store
from zoo.storage.digits import DIGITS_FOLDER, DigitStore
from zoo.storage.files import open_storage
from zoo.storage.models import MODELS_FOLDER, ModelEntry, ModelStore, open_local_zoo

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from zoo.app.overview import HostOverview
    from zoo.execution.executor import Executor
    from zoo.execution.supervisor import Supervisor
    from zoo.ml.data import PointsData
    from zoo.ml.evaluation import Evaluation
    from zoo.ml.inference import Predictor

Resource = TypeVar("Resource")  # what a cached opener gives: a store, an executor

APP_SESSION_KEY = "zoo.app_session"
VISITOR_PAGES = ("pages/home.py", "pages/learn.py", "pages/draw.py")  # open without signing in
ADMIN_PAGE = "pages/admin.py"  # in the menu of a hosted studio's admins only
SEEN_EVERY_SECONDS = 30.0  # how often a session records its person as seen (the Admin page's "active")
_SEEN_AT_KEY = "zoo.seen_at"
RUN_QUERY_KEY = "run"  # st.query_params key holding the id of the run a page follows
PAGE_OF_KIND = {"cnn": "pages/train.py", "binary": "pages/playground.py"}  # the page that follows a run
LIVE_REFRESH_SECONDS = 0.5  # live charts redraw at least twice a second
# The Playground's boundary redraws about seven times a second, as often as its worker computes a new one
# (a compiled call of training.CALL_SECONDS), so the page shows at least four a second: measured at 0.2 s,
# 2.5-4.9 boundaries a second for the default network (2 of 7 runs under 4), at 0.15 s 4.6-6.8 (all 7),
# interleaved runs of benchmarks/playground.py at load average 1.5-3.9.
BOUNDARY_REFRESH_SECONDS = 0.15
# Its loss curves and hidden units' maps, once a second: they change slowly to the eye, and each refresh
# reads the run's whole surface (1 MB for a 4x8 network) besides the new metric rows, on the 2 cores the
# browser, the server and the worker share.
UNIT_MAPS_REFRESH_SECONDS = 1.0
SIDEBAR_REFRESH_SECONDS = 1.0  # the sidebar's live-run line: cheaper, in every open tab
# How long the run-store reads of every page (app.py's, the sidebar's) and Home's and Runs' lists wait
# for it: a database server that is down costs a page this, not the store's own wait (5 s for a connection).
PAGE_STORE_WAIT_SECONDS = 1.0
_METRICS_CACHE_KEY = "zoo.metrics_cache"
_SIGN_IN_PROBLEM_KEY = "zoo.sign_in_problem"  # the key of the Sign in button whose click could not sign in
SIGN_IN_NOT_CONFIGURED = (
    "Sign-in is not configured on this host: its operator puts an [auth] section in "
    ".streamlit/secrets.toml, as the README's “Sign in (hosted mode)” shows."
)
FAILURE_HINTS = {
    "failed": "Check the settings the message names and start the run again.",
    "diverged": "Start again with a learning rate 10 times smaller, or the Adam optimizer.",
}


def run_through_app() -> None:
    """Make sure this page runs inside app.py's ``st.navigation`` (call it first in every page).

    Streamlit treats a folder named pages/ as a legacy multipage app until app.py has called
    ``st.navigation`` once: the first request of a fresh server to a page URL (a shared link)
    would run that page alone, without the sidebar and the page list. Leave that mode and rerun;
    the rerun goes through app.py to the same page, with the same query parameters.
    """
    from streamlit.runtime.pages_manager import PagesManager

    # Only a session that has not been through app.py yet reruns (so no click is ever dropped).
    if PagesManager.uses_pages_directory and not st.session_state.get(APP_SESSION_KEY):
        PagesManager.uses_pages_directory = False
        st.rerun()


def mark_app_session() -> None:
    """Record that this session runs through app.py (app.py calls it on every run)."""
    st.session_state[APP_SESSION_KEY] = True


def keep_reruns_cheap() -> None:
    """Keep what Streamlit does after every script run cheap (app.py calls this at each run's end).

    After every run Streamlit collects garbage over the whole heap (``runner.postScriptGC``) and,
    once Keras is imported, calls ``keras.backend.clear_session()``: a second full collection, and
    TensorFlow's kernel cache dropped, so the next prediction re-creates its kernels (2 ms -> 40 ms).
    With TensorFlow loaded the heap holds ~500,000 objects and one collection takes ~0.25 s of the
    server's CPU: together most of what a stroke on the Draw page cost (``benchmarks/load.py``).

    Zoo Studio builds no Keras model in a script run (runs train in worker processes; a predictor
    is built once per model and cached), so Keras' state is kept. After a run that imported modules
    or loaded a model, the objects alive are nearly all long-lived (modules, models): they are moved
    out of the collector's sight with ``gc.freeze()``; later objects are collected as before, and
    what was frozen and has become garbage since is collected at the next freeze.
    """
    import gc
    import sys

    from streamlit.runtime.scriptrunner import script_runner

    if hasattr(script_runner, "_clean_problem_modules"):  # Streamlit's hook: clears Keras, pyplot
        script_runner._clean_problem_modules = _close_pyplot_figures
    heap = _heap_state()
    if heap.modules_at_freeze == len(sys.modules) or not heap.lock.acquire(blocking=False):
        return
    try:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        heap.modules_at_freeze = len(sys.modules)
    finally:
        heap.lock.release()


def _close_pyplot_figures() -> None:
    """What Streamlit's hook does after every run, but Keras' ``clear_session`` (see above)."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


@dataclasses.dataclass
class _HeapState:
    """The server's one record of ``keep_reruns_cheap``'s last ``gc.freeze()``."""

    modules_at_freeze: int | None = None  # modules loaded then; None: freeze at the next run's end
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


@st.cache_resource
def _heap_state() -> _HeapState:
    return _HeapState()


# --- who is here ------------------------------------------------------------------------------


def log_to_console() -> None:
    """The library's log lines on this server's console, at ``ZOO_LOG_LEVEL`` (default info).

    Raises:
        SettingsError: ``ZOO_LOG_LEVEL`` is not a level.
    """
    configure_logging(chosen_level(log_level(), "info"))


def hosting() -> HostingConfig:
    """This server's hosting configuration (``zoo.core.hosting``), read on each call so an edit applies."""
    return load_config()


def current_user() -> User:
    """The person of this session: everything is theirs in local mode; in hosted mode the person
    signed in with ``st.login`` (OpenID Connect), or a visitor who is not signed in."""
    config = hosting()
    if not config.hosted:
        return LOCAL_USER
    claims = st.user.to_dict()
    if not claims.get("is_logged_in"):
        return VISITOR
    return config.user_from_claims(claims)


def page_is_open(page_file: str, user: User) -> bool:
    """Whether ``user`` sees the page ``pages/NAME.py``: a visitor who is not signed in sees only
    Home, Learn and Draw (with the shared models); training, managing and pushing need a sign-in; the
    Admin page is for a hosted studio's admins."""
    if page_file == ADMIN_PAGE:
        return user.is_admin and hosting().hosted
    return user.signed_in or page_file in VISITOR_PAGES


def note_visit(store: RunStore, user: User) -> None:
    """Hosted mode: record that ``user`` is here, for the Admin page's "active" (at most once every
    ``SEEN_EVERY_SECONDS`` per session, so a rerun costs no write)."""
    if not (user.signed_in and hosting().hosted):
        return
    if time.time() - st.session_state.get(_SEEN_AT_KEY, 0.0) < SEEN_EVERY_SECONDS:
        return
    with contextlib.suppress(StorageError):  # a store that takes no writes says so where it matters
        store.record_seen(user)
        st.session_state[_SEEN_AT_KEY] = time.time()


def account_panel(user: User) -> None:
    """Hosted mode's sidebar lines: who is signed in, with sign-out; or a sign-in button."""
    if user.signed_in:
        role = " (admin)" if user.is_admin else ""
        st.caption(f"Signed in as **{user.name}**{role}.")
        st.button("Sign out", on_click=st.logout, key="sign-out", icon=":material/logout:")
    else:
        st.caption("Sign in to train, keep and share your own models.")
        sign_in_button("sign-in")
        _give_browser_a_key()


def require_sign_in(what: str) -> User:
    """The signed-in person; a visitor who is not signed in gets a sign-in button and the page stops
    (signing in brings them back to this page, its query included: ``keep_place_through_sign_in``)."""
    user = current_user()
    if not user.signed_in:
        st.info(f"Sign in to {what}. You come back to this page after signing in.")
        sign_in_button("sign-in-to-continue")
        st.stop()
    return user


def cookie_secret_set() -> bool:
    """Whether this server's secrets (every file Streamlit read) give ``[auth] cookie_secret``."""
    if not st.secrets.load_if_toml_exists():
        return False
    auth = st.secrets.get("auth")
    return auth is not None and bool(auth.get("cookie_secret"))


def sign_in_button(key: str) -> None:
    """A Sign in button (``st.login``); under it, after a click on a host whose secrets have no
    usable ``[auth]`` section, one line saying so and how the operator fixes it."""
    st.button("Sign in", on_click=_sign_in, args=(key,), key=key, type="primary", icon=":material/login:")
    if st.session_state.get(_SIGN_IN_PROBLEM_KEY) == key:
        del st.session_state[_SIGN_IN_PROBLEM_KEY]
        st.error(SIGN_IN_NOT_CONFIGURED)


def _sign_in(key: str) -> None:
    try:
        st.login()
    except StreamlitAuthError as error:  # Streamlit's reason names the missing setting: for the server log
        logging.getLogger(__name__).warning("Sign in: %s", " ".join(str(error).split()))
        st.session_state[_SIGN_IN_PROBLEM_KEY] = key
        return
    browser = st.session_state.get(_BROWSER_KEY)
    if browser:  # where to come back to, for this browser's first session after signing in
        place = PlaceBeforeSignIn(
            st.session_state.get(_PAGE_KEY, ""), tuple(st.query_params.to_dict().items()), time.time()
        )
        _places_before_sign_in().keep(browser, place)


# --- back where one was, after signing in ----------------------------------------------------
# st.login() ends on the app's root in a new session (Streamlit's /oauth2callback redirects there): the
# page and query a visitor signed in from would be lost. So each visitor's browser gets a random key, in a
# cookie set by a script (Streamlit sets no cookie of its own a page can use); a click on Sign in keeps the
# page and its query under that key on this server, and the browser's first signed-in run goes back there.

BROWSER_COOKIE = "zoo_browser"  # a random key per browser, kept until the browser closes
RETURN_SECONDS = 600.0  # how long a place is kept for the sign-in to come back
_BROWSER_KEY = "zoo.browser_key"
_PAGE_KEY = "zoo.page"  # the URL path of the page this session showed last
_BROWSER_KEY_PATTERN = re.compile(r"[0-9a-f]{32}")


@dataclasses.dataclass(frozen=True)
class PlaceBeforeSignIn:
    """The page (its URL path; '' for Home) and query a visitor clicked Sign in on, and when."""

    url_path: str
    query: tuple[tuple[str, str], ...]
    kept_at: float


@dataclasses.dataclass
class _PlacesBeforeSignIn:
    """The server's places kept for the sign-ins under way, by browser key."""

    by_browser: dict[str, PlaceBeforeSignIn] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def keep(self, browser: str, place: PlaceBeforeSignIn) -> None:
        with self.lock:
            for stale in [key for key, kept in self.by_browser.items() if _expired(kept)]:
                del self.by_browser[stale]
            self.by_browser[browser] = place

    def take(self, browser: str) -> PlaceBeforeSignIn | None:
        """The place kept for ``browser`` (once), unless it is older than ``RETURN_SECONDS``."""
        with self.lock:
            place = self.by_browser.pop(browser, None)
        return None if place is None or _expired(place) else place


def _expired(place: PlaceBeforeSignIn) -> bool:
    return time.time() - place.kept_at > RETURN_SECONDS


@st.cache_resource
def _places_before_sign_in() -> _PlacesBeforeSignIn:
    return _PlacesBeforeSignIn()


def _browser_cookie() -> str | None:
    """The browser's key as its cookie held it when this session started (None: none, or not a key)."""
    key = st.context.cookies.get(BROWSER_COOKIE)
    return key if isinstance(key, str) and _BROWSER_KEY_PATTERN.fullmatch(key) else None


def _give_browser_a_key() -> None:
    """Make sure this visitor's browser holds a key (``BROWSER_COOKIE``), and remember it in the session."""
    key = _browser_cookie()
    if key is not None:
        st.session_state[_BROWSER_KEY] = key
        return
    key = st.session_state.setdefault(_BROWSER_KEY, secrets.token_hex(16))
    st.html(
        f"<script>document.cookie = '{BROWSER_COOKIE}={key}; path=/; samesite=lax';</script>",
        unsafe_allow_javascript=True,
    )


def keep_place_through_sign_in(current: st.Page, pages: list[st.Page], user: User) -> None:
    """Hosted mode: note the page a visitor is on (a click on Sign in keeps it); once signed in, go back
    to the page and query kept for this browser, if any (app.py calls this after ``st.navigation``)."""
    if not hosting().hosted:
        return
    if not user.signed_in:
        st.session_state[_PAGE_KEY] = current.url_path
        return
    key = _browser_cookie()
    place = _places_before_sign_in().take(key) if key is not None else None
    page = next((page for page in pages if place is not None and page.url_path == place.url_path), None)
    if page is not None and place is not None and (page.url_path != current.url_path or place.query):
        st.switch_page(page, query_params=dict(place.query))


FILE_SOURCE, UPLOAD_SOURCE, DATASET_PREFIX = "file", "upload", "dataset:"  # Train page source keys
BUILT_IN_SOURCES = {
    "auto": "Automatic: the full MNIST when this machine has it, else the embedded subset",
    "embedded": "Embedded subset: 4,000 train / 1,000 test digits (fast, offline)",
}


def mnist_sources() -> dict[str, str]:
    """The Train page's MNIST sources, by key: on one's own machine also any file on it; on a shared
    host an upload and the data sets the host registered instead, never a server path."""
    config = hosting()
    if not config.hosted:
        return {**BUILT_IN_SOURCES, FILE_SOURCE: "A Keras mnist.npz file on the server"}
    registered = {
        DATASET_PREFIX + name: f"Data set {name} (offered by this host)" for name, _ in config.datasets
    }
    limit = f" (up to {config.limits.upload_mb} MB)" if config.limits.upload_mb else ""
    return {**BUILT_IN_SOURCES, UPLOAD_SOURCE: f"An mnist.npz you upload{limit}", **registered}


def mnist_source_choice(mnist_source: str, sources: dict[str, str]) -> str:
    """The key of ``sources`` that a run's ``mnist_source`` was chosen with."""
    if mnist_source in sources:
        return mnist_source
    for name, path in hosting().datasets:
        if path == mnist_source:
            return DATASET_PREFIX + name
    return FILE_SOURCE if FILE_SOURCE in sources else UPLOAD_SOURCE


def chosen_mnist_source(choice: str, given, user: User) -> str:
    """The ``TrainSpec.mnist_source`` for a Train page choice: the path typed (checked to exist), the
    uploaded file (checked from its headers, then kept as ``user``'s data set), the file of a data
    set the host registered, or ``auto`` / ``embedded``.

    Raises:
        ZooError: a missing file, no or a bad upload, or an unknown data set.
    """
    from zoo.ml import data

    if choice == FILE_SOURCE:
        data.describe_mnist_source(given.strip())  # a missing file is said now, not after a worker started
        return given.strip()
    if choice == UPLOAD_SOURCE:
        if given is None:
            raise ZooError("choose an mnist.npz to upload first, or another MNIST source.")
        limit_mb = hosting().limits.upload_mb
        limit = limit_mb * 2**20 if limit_mb else data.MAX_MNIST_BYTES
        return data.save_uploaded_mnist(given.getvalue(), given.name, user.name, limit)
    if choice.startswith(DATASET_PREFIX):
        return hosting().dataset_path(choice.removeprefix(DATASET_PREFIX))
    return choice


def limit_bound(vary: Callable[[int], TrainSpec], low: int, high: int) -> LimitBound:
    """How far a page's field may go on this host, the other settings as they are: ``high``, or less
    where a limit of the host stops it (``training.largest_within_limits``; its ``note`` says which)."""
    return largest_within_limits(vary, low, high, hosting().limits)


def may_manage_owner(owner: str | None) -> bool:
    """Whether this session's person may stop, delete or rename what ``owner`` made (for showing
    the buttons; zoo refuses it anyway)."""
    return may_manage(current_user(), owner)


# --- cached shared resources ----------------------------------------------------------------


def _or_stop(open_resource: Callable[[], Resource]) -> Resource:
    """``open_resource()``; when it cannot be used (a ``ZooError``), the page says why and stops there."""
    try:
        return open_resource()
    except ZooError as error:
        st.error(str(error), icon=":material/error:")
        st.stop()


def model_store() -> ModelStore:
    """The local zoo of this ``ZOO_MODEL_STORE`` (default ``ZOO_HOME``), shared by every session of this
    server; the shipped starter is in it from the first page on, as in the CLI.

    When it cannot be used, the page says why and stops there.
    """
    return _or_stop(lambda: _model_store(model_store_url()))


@st.cache_resource(show_spinner=False)
def _model_store(url: str) -> ModelStore:
    return open_local_zoo(open_storage(url).within(MODELS_FOLDER))


def digit_store() -> DigitStore:
    """The personal digit sets ("my digits") of this ``ZOO_MODEL_STORE`` (default ``ZOO_HOME``).

    When it cannot be used, the page says why and stops there.
    """
    return _or_stop(lambda: _digit_store(model_store_url()))


@st.cache_resource(show_spinner=False)
def _digit_store(url: str) -> DigitStore:
    return DigitStore(open_storage(url).within(DIGITS_FOLDER))


def run_store() -> RunStore:
    """The run store of this ``ZOO_HOME`` (each call opens its own SQLite connection: thread-safe).

    When it cannot be used, the page says why and stops there: only pages that need runs call this.
    """
    return _or_stop(open_run_store)


def open_run_store() -> RunStore:
    """The run store of this server (``ZOO_RUN_STORE``, default the one in ``ZOO_HOME``), shared by
    every session.

    Raises:
        StorageError: it cannot be opened or written.
    """
    return _run_store(run_store_url())


@st.cache_resource(show_spinner=False)
def _run_store(url: str) -> RunStore:
    return open_store(url)


def executor() -> Executor:
    """Where this server's runs execute (``open_executor``).

    When it cannot be used (``ZOO_EXECUTOR`` names no executor, its files or its run store cannot be
    opened), the page says why and stops there, as ``run_store``.
    """
    return _or_stop(open_executor)


def open_executor() -> Executor:
    """Where this server's runs execute (``ZOO_EXECUTOR``), over its run store, shared by every
    session. The server's supervisor thread sweeps its runs every few seconds from the first call on
    (``zoo.execution.supervisor``; app.py calls this on every run), so a run whose worker died or hung
    is failed whether or not a page reads it.

    Raises:
        ZooError: ``ZOO_EXECUTOR`` names no executor, or the run store or the executor's files cannot
            be opened.
    """
    chosen = _executor(open_run_store().url, str(zoo_home()), load_settings().executor)
    _supervisor().watch(chosen)
    return chosen


@st.cache_resource(show_spinner=False)
def _executor(store_url: str, home: str, name: str) -> Executor:  # home, name: the cache key's parts
    from zoo.execution.executor import open_executor

    return open_executor(_run_store(store_url))


@st.cache_resource(show_spinner=False)
def _supervisor() -> Supervisor:
    """The server's one supervision thread (it follows the executor the pages use last)."""
    from zoo.execution.supervisor import Supervisor

    return Supervisor()


def keep_workers_warm() -> None:
    """Make sure warm workers wait for the next run on this host's device (see ``zoo.execution.local``)."""
    with contextlib.suppress(OSError, ZooError):  # a run that is started reports it, with the reason
        executor().keep_warm()


def backend_name() -> str:
    """The Keras backend new runs train with here (read without importing Keras)."""
    from zoo.core.spec import configured_backend

    return configured_backend()


def device_description() -> str:
    """What this server's runs train on: this host's GPU(s) or CPU (the local executor asks nvidia-smi
    once), or the Ray cluster's nodes, GPUs and CPUs (or why it cannot be reached)."""
    try:
        return executor().describe().devices
    except ZooError as error:
        return str(error)


def surface(run_id: str, *, wait_seconds: float = 0.0) -> DecisionSurface | None:
    """A binary run's newest decision surface; with ``wait_seconds``, waits that long at most for its
    first one (the run store polled every 20 ms)."""
    store = run_store()
    deadline = time.monotonic() + wait_seconds
    while (newest := store.surface(run_id)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return newest


# The Playground's canvases (charts.playground): one component, its data saying what to draw.
_PLAYGROUND_CANVAS = st.components.v2.component(
    "zoo.playground_canvas", js=playground.SCRIPT, css=playground.STYLE, isolate_styles=False
)


def playground_canvas(data: dict, *, key: str) -> None:
    """Draw ``data`` (``charts.playground``'s plane, loss or unit maps) in the component keyed ``key``:
    kept in the page while it is redrawn, so new data redraws its canvas."""
    _PLAYGROUND_CANVAS(data=data, key=key)


def points(spec: TrainSpec) -> PointsData:
    """The 2-D points a binary spec trains and tests on (the same ones the worker makes)."""
    return _points(spec.dataset, spec.num_samples, spec.noise, spec.test_fraction, spec.seed)


@st.cache_resource(show_spinner=False, max_entries=16)
def _points(dataset: str, num_samples: int, noise: float, test_fraction: float, seed: int) -> PointsData:
    from zoo.ml.data import make_points

    return make_points(dataset, num_samples, noise, test_fraction, seed)


@st.cache_resource(show_spinner=False, max_entries=8)
def _saved_model_evaluation(url: str, name: str, version: str) -> tuple[Evaluation, str]:
    from zoo.ml.evaluation import evaluate_saved_model

    return evaluate_saved_model(name, _model_store(url))  # version: part of the cache key


def saved_model_evaluation(name: str) -> tuple[Evaluation, str]:
    """Per-example evaluation of a local-zoo model on its test set (loads TensorFlow; cached
    per model version, so a re-saved model is evaluated again)."""
    return _saved_model_evaluation(model_store_url(), name, model_store().entry(name).version)


@st.cache_resource(show_spinner=False, max_entries=2)
def mnist_test_set(mnist_source: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 test digits and their labels for a CNN run's data source (``auto``,
    ``embedded`` or a path), as the worker and ``evaluate_saved_model`` load them."""
    from zoo.ml import data

    if mnist_source == "embedded":
        mnist = data.load_embedded_mnist()
    else:
        mnist = data.load_mnist(None if mnist_source == "auto" else mnist_source)
    return mnist.x_test, mnist.y_test


@st.cache_resource(show_spinner=False, max_entries=4)
def augmentation_examples(seed: int) -> np.ndarray:
    """One embedded training digit of each class and random augmentations of it (see ``augment.examples``)."""
    from zoo.ml.augment import examples
    from zoo.ml.data import load_embedded_mnist

    mnist = load_embedded_mnist()
    return examples(mnist.x_train, mnist.y_train, seed=seed)


def cnn_models() -> list[ModelEntry]:
    """The local zoo's CNNs, the most accurate first (unscored ones last; newest first among equals)."""
    cnns = [entry for entry in model_store().entries() if entry.kind == "cnn"]
    return sorted(cnns, key=lambda entry: -1.0 if entry.accuracy is None else entry.accuracy, reverse=True)


def describe_model(entry: ModelEntry) -> str:
    """A model in one line, as pickers and lists show it: name, test accuracy and training data."""
    scored = f" · test accuracy {entry.accuracy:.1%}" if entry.accuracy is not None else ""
    return f"{entry.name}{scored} · {entry.data_summary}"


def predictor(entry: ModelEntry) -> Predictor:
    """The compiled, warmed-up predictor of a local-zoo CNN, shared by every session and cached
    per model and stored version (a model replaced under the same name, from this server or another
    one sharing ZOO_MODEL_STORE, is reloaded); its file is fetched only when it is not cached."""
    return _predictor(model_store_url(), entry.name, entry.version)


@st.cache_resource(show_spinner="Loading the model and compiling it…", max_entries=4)
def _predictor(url: str, name: str, version: str) -> Predictor:  # version: part of the cache key
    from zoo.ml.inference import Predictor

    loaded = Predictor.from_file(_model_store(url).model_file(name))
    _heap_state().modules_at_freeze = None  # long-lived: keep_reruns_cheap freezes it with the rest
    return loaded


# --- runs -----------------------------------------------------------------------------------


def followed_run(kind: str) -> Run | None:
    """The run whose id is in the URL (``?run=...``), if it exists here and is a ``kind`` run.

    A stale or foreign id is dropped from the URL with a warning, so the page starts clean.
    """
    run_id = st.query_params.get(RUN_QUERY_KEY)
    if not run_id:
        return None
    try:
        run = run_store().get(run_id)
    except RunError:
        st.warning(f"The run {run_id!r} in the link is not in this studio's run store (deleted?).")
        del st.query_params[RUN_QUERY_KEY]
        return None
    if run.kind != kind:
        st.warning(f"The run {run_id!r} in the link trains a {run.kind} model; open it from the Runs page.")
        del st.query_params[RUN_QUERY_KEY]
        return None
    return run


def follow_run(run_id: str | None) -> None:
    """Put ``run_id`` in the URL (or take it out), so a reload or a second tab follows the same run."""
    if run_id:
        st.query_params[RUN_QUERY_KEY] = run_id
    elif RUN_QUERY_KEY in st.query_params:
        del st.query_params[RUN_QUERY_KEY]


def metrics_frame(run_id: str) -> pd.DataFrame:
    """A run's metric rows as a frame (``charts.training.metrics_frame``), read incrementally: each
    call fetches only the rows reported since the last (``RunStore.metrics_since``).

    The rows read so far and the cursor live in this session's state, so a live refresh costs one
    small query.
    """
    import pandas as pd

    from zoo.app.charts.training import metrics_frame as frame_of

    store = run_store()
    cache = st.session_state.setdefault(_METRICS_CACHE_KEY, {})
    key = (store.url, run_id)
    cursor, frame = cache.get(key, (0, None))
    batch = store.metrics_since(run_id, cursor)
    if frame is None or batch.rows:
        new_rows = frame_of(batch.rows)
        frame = (
            new_rows if frame is None or not len(frame) else pd.concat([frame, new_rows], ignore_index=True)
        )
    cache[key] = (batch.cursor, frame)
    return frame


def host_overview() -> HostOverview:
    """This host at a glance for its admins: people, runs, queue, models, load and limits
    (``overview.host_overview`` over this ``ZOO_HOME``'s stores)."""
    from zoo.app.overview import host_overview as gather

    return gather(executor(), model_store(), hosting())


def model_of_run(run: Run) -> str | None:
    """The name the run's model has in the local zoo now, or None if it is gone (or never saved)."""
    return model_store().names_by_run().get(run.id)


# --- what every page shows the same way -----------------------------------------------------


def format_score(value: float | None) -> str:
    """A score (precision, F1, AUC...) to three places, or a dash when the record has none."""
    return "–" if value is None else f"{value:.3f}"


def format_duration(seconds: float | None) -> str:
    """A duration in words for the pages: 12 s, 3 min 04 s, 1 h 02 min (the CLI's progress line uses the
    shorter ``cli.format_clock``)."""
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def show_progress(run: Run, unit: str = "images", *, pace: bool = False) -> None:
    """A progress bar with epoch, step, throughput (and with ``pace``, epochs per second) and ETA, or
    where a queued run waits."""
    if run.status == "queued":
        ahead = run_store().queue_position(run.id)
        st.info(
            f"Queued on the {run.device.upper()} ({lane_of(run.kind)} lane): {ahead or 0} run(s) ahead. "
            "It starts by itself when the device is free; stop it to cancel."
        )
        return
    progress = run.progress
    if progress is None:
        st.progress(0.0, text="Starting: building the model…")
        return
    text = (
        f"Epoch {progress.epoch}/{progress.num_epochs} · "
        f"step {progress.step}/{progress.total_steps} · {progress.samples_per_second:,.0f} {unit}/s · "
        + (f"{progress.epochs_per_second:.1f} epochs/s · " if pace else "")
        + f"ETA {format_duration(progress.eta_seconds)}"
    )
    st.progress(progress.fraction_done, text=text)


def show_run_outcome(run: Run) -> None:
    """How an ended run ended: a success line, or why it stopped and what to try (never a traceback)."""
    duration = format_duration(run.duration_seconds)
    scored = f" Test accuracy {run.final_metrics.accuracy:.1%}." if run.final_metrics is not None else ""
    if run.status == "completed":
        st.success(f"Run {run.id} completed in {duration}.{scored}")
    elif run.status == "stopped":
        st.warning(f"Run {run.id} stopped after {duration}: {run.message or 'stopped on request'}.{scored}")
    elif run.status in FAILURE_HINTS:
        # A visitor of a shared host is not shown server paths; its operator finds the log by the run id.
        worker_log = None if hosting().hosted else executor().worker_log(run)
        log = f" The worker's log is {worker_log}." if worker_log else ""
        st.error(
            f"Run {run.id} {run.status}: {run.message or 'no reason was recorded'}\n\n"
            f"**What to try:** {FAILURE_HINTS[run.status]}{log}"
        )


def stop_run(run: Run) -> None:
    """Ask a live run to stop (it ends after its current batch) and say so."""
    if _ask_to_stop(run):
        st.toast(f"Stopping run {run.id} after its current batch.")


def _ask_to_stop(run: Run) -> bool:
    """Ask a live run to stop; False, said with ``st.error``, when that is refused."""
    try:
        executor().stop(run.id, by=current_user())
    except ZooError as error:
        st.error(str(error))
        return False
    return True


def stop_button(run: Run, *, key: str, container=st, **options) -> None:
    """A Stop button for a live ``run``, or, once a stop was asked for, a line saying so.

    The click asks the run to stop in the button's callback, which runs before the page's script:
    the request reaches the run store as soon as the click interrupts the live fragment, not after the
    page has drawn everything above the button again (seconds on a busy CPU, while the run trained
    on: issue 22). Inside a live fragment, the click reruns only the fragment."""
    if run.stop_requested:
        container.info(f"Stopping run {run.id} after its current batch…", icon=":material/stop:")
        return
    container.button(
        "Stop",
        key=key,
        icon=":material/stop:",
        on_click=_ask_to_stop,
        args=(run,),
        help="The run stops after its current batch; the model as it stands is kept.",
        **options,
    )


def keep_model_form(model_name: str, key: str) -> str:
    """A name field that renames the run's model in the local zoo, or keeps a model nobody kept yet (a
    Playground run's) under that name (for its owner or an admin; others see whose it is); returns its
    current name."""
    entry = model_store().entry(model_name)
    if not may_manage_owner(entry.owner):
        st.caption(
            f"The model **{model_name}** is {entry.owner or 'shared'}'s: you can draw with it, not rename it."
        )
        return model_name
    kept = entry.config.kept
    with st.form(key):
        new_name = st.text_input(
            "Keep the model in the local zoo as" if kept else "Name", value=model_name, max_chars=80
        )
        if st.form_submit_button("Save under this name" if kept else "Keep this model"):
            try:
                if not kept:
                    model_name = model_store().keep(model_name, by=current_user(), new_name=new_name).name
                elif new_name != model_name:
                    model_name = model_store().rename(model_name, new_name, by=current_user()).name
                kept = True
                st.success(f"Saved in the local zoo as **{model_name}**.")
            except ZooError as error:
                st.error(str(error))
        if not kept:
            st.caption(
                "Playground models stay out of the local zoo's lists (Home, Hub, `python -m zoo models`) "
                "until you keep one; the others are removed with their run, or after a day."
            )
    return model_name


def live_fragment(render, *, live: bool, key: str, every: float = LIVE_REFRESH_SECONDS):
    """Wrap ``render(live)`` as a fragment that reruns every ``every`` seconds while ``live``.

    ``render`` returns whether the run is still active; when a live run has ended, the whole
    page reruns once, so it shows the results and stops polling.
    """

    def body() -> None:
        started = time.perf_counter()
        still_active = render(live)
        st.session_state[f"zoo.refresh_seconds.{key}"] = time.perf_counter() - started
        if live and not still_active:
            st.rerun()

    return st.fragment(body, run_every=every if live else None, key=key)


# --- the Hub token --------------------------------------------------------------------------

_HUB_TOKEN_KEY = "zoo.hub_token"
HUB_TOKEN_FIELD_KEY = "zoo.hub_token_field"


def hub_token_field() -> str | None:
    """A password field for a Hugging Face token; returns it, or None when empty (then HF_TOKEN or
    huggingface_hub's login applies).

    The token lives only in this browser session's ``st.session_state`` (kept while the person
    visits other pages) and is never written, logged or shown by Zoo Studio.
    """
    if HUB_TOKEN_FIELD_KEY not in st.session_state:  # Streamlit drops a widget's state on other pages
        st.session_state[HUB_TOKEN_FIELD_KEY] = st.session_state.get(_HUB_TOKEN_KEY, "")
    token = st.text_input(
        "Hugging Face token",
        type="password",
        key=HUB_TOKEN_FIELD_KEY,
        help="Kept only in this browser session. Leave empty to use HF_TOKEN or `hf auth login`.",
    ).strip()
    st.session_state[_HUB_TOKEN_KEY] = token
    return token or None
