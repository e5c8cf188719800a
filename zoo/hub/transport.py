"""How Zoo Studio talks to the Hugging Face Hub: the HTTP client huggingface_hub sends through, and
the budget of each Hub action.

An action (``hub_errors``) takes ``ZOO_HUB_TIMEOUT`` seconds in all, retries, uploads and downloads
included; a Hub that does not take a connection within ``ZOO_HUB_CONNECT_TIMEOUT`` fails it at once;
a download stops at its byte cap; and every failure becomes one ``HubError`` line that names the
action and never the token. ``client`` gives an ``HfApi`` whose requests keep to the calling
action's budget.

A private API of a dependency is used here, once: ``_BudgetTransport`` replaces httpx's
``HTTPTransport._pool`` (httpx has no public way to give its connection pool another network
backend), so that every socket read and write ends by the action's deadline. If httpx renames or
rebuilds ``_pool``, tests/test_hub.py's
``test_a_hub_sending_a_byte_a_second_ends_every_command_within_zoo_hub_timeout_in_total`` and
``test_a_pull_whose_downloads_never_answer_ends_within_zoo_hub_timeout_in_total`` fail.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpcore2
import httpx2

from zoo import __version__
from zoo.core.errors import ZooError
from zoo.core.settings import hide_passwords, load_settings

if TYPE_CHECKING:
    from huggingface_hub import HfApi

log = logging.getLogger(__name__)


class HubError(ZooError):
    """A Hub operation failed; the message says why in one line and never contains the token."""


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


def client(token: str | None) -> HfApi:
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
        # httpx has no public way to give its connection pool another network backend: a private API
        # (see the module's docstring for the tests that fail if httpx changes it).
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


@contextlib.contextmanager
def hub_errors(
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
    """What Hub calls raise that ``hub_errors`` says in one line."""
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
