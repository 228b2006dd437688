"""The one HTTP client for everything that calls out: webhooks to the host platform, the DSA Transparency
Database, partner sync and StopNCII (and the platform adapters to come).

Built on httpx, with:

- timeouts: ``connect`` and ``read`` (per socket operation) and ``total`` (one attempt, answer included);
- retries (tenacity) on what may pass: connection errors and timeouts (:class:`Unreachable`), 5xx
  (:class:`ServerError`), 408 and 429 (:class:`Throttled`, whose ``Retry-After`` is honoured up to
  ``Retry.retry_after_max``). Waits grow exponentially from ``Retry.wait_initial`` up to ``Retry.wait_max``,
  each cut at random by up to ``Retry.jitter`` of itself so that many clients do not retry in step;
- no retries on other answers: a 4xx is final (:class:`Refused`; 404 and 410 are :class:`Gone`), and so is
  a redirect (point the setting at the final URL);
- a response size limit: the body is read as a stream and refused past ``max_bytes``
  (:class:`ResponseTooLarge`);
- a ``User-Agent`` naming Takedown and the purpose.

Every failure is an :class:`HttpError`; the retryable ones are :class:`Transient` (``retryable`` is True), so a
caller that retries elsewhere (the webhook's Celery task) makes one attempt here (:data:`ONE_ATTEMPT`)
and tells the two apart. Messages name the host and path, never the query, headers or body sent.

This module sits in moderation's low layer: it imports nothing from moderation.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import tenacity

logger = logging.getLogger(__name__)

try:
    VERSION = importlib.metadata.version("takedown")
except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
    VERSION = "0"

GONE_STATUSES = frozenset({404, 410})
THROTTLED_STATUSES = frozenset({408, 429})
DETAIL_CHARS = 300  # how much of a refusal's body an error keeps (for the admin who reads it)


# --- Errors ---------------------------------------------------------------------------------------------

class HttpError(Exception):
    """A call out failed. ``retryable``: whether the same request may succeed later."""

    retryable = False

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable whatever the subclass's keyword arguments, so Celery can store and pass these errors on.
        return _error_rebuild, (type(self), self.args), self.__dict__


class Transient(HttpError):
    """A failure that may pass: the base of every retryable error (a Celery task can retry on this class)."""

    retryable = True


class Unreachable(Transient):
    """No answer: the connection failed, dropped or timed out. ``reason`` says which, without the URL."""

    def __init__(self, message: str, *, url: str = "", reason: str = "") -> None:
        super().__init__(message, url=url)
        self.reason = reason or message


class BadUrl(HttpError, ValueError):
    """The URL is not an http(s) URL with a host: a setting to fix, not a request to retry."""


class ResponseTooLarge(HttpError):
    """The answer was longer than the client accepts; it was not read to the end."""


class StatusError(HttpError):
    """The server answered with a status this client does not accept (anything but 2xx)."""

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message, url=response.url)
        self.response = response
        self.status = response.status

    @property
    def detail(self) -> str:
        """The start of the answer's body, as text: the server's reason, if it gave one."""
        return response_detail(self.response)


class ServerError(StatusError, Transient):
    """A 5xx answer: the server failed; it may not next time."""


class Throttled(StatusError, Transient):
    """408 or 429: the server asks us to come back later (``retry_after`` seconds, when it said)."""

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message, response=response)
        self.retry_after = retry_after_seconds(response.headers.get("retry-after", ""))


class Refused(StatusError):
    """Another 4xx (or a redirect): the server refuses this request as it stands; resending it will not help."""


class Gone(Refused):
    """404 or 410: what the request names does not exist (any more)."""


def _error_rebuild(kind: type[HttpError], args: tuple[Any, ...]) -> HttpError:
    error = Exception.__new__(kind)
    error.args = args
    return error


# --- Answers and settings -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    url: str

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not JSON)."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``connect``: to open a connection; ``read``: for each read (and write) on it; ``total``: for
    one attempt from sending to the last byte of the answer (checked as the answer arrives)."""

    connect: float = 5.0
    read: float = 30.0
    total: float = 60.0


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to try. ``attempts`` counts the first try.

    The wait before try n+1 is ``min(wait_initial * 2**(n-1), wait_max)``, less a random share of up to
    ``jitter`` of it; a ``Retry-After`` answer replaces it, capped at ``retry_after_max``.
    """

    attempts: int = 4
    wait_initial: float = 0.5
    wait_max: float = 30.0
    jitter: float = 0.5
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts must be at least 1 (the first try counts).")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Retry.jitter is a share of each wait, from 0 to 1.")

    def wait(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based) that raised ``error``."""
        if isinstance(error, Throttled) and error.retry_after is not None:
            return min(error.retry_after, self.retry_after_max)
        base = min(self.wait_initial * 2 ** (attempt - 1), self.wait_max)
        return base * (1 - random.uniform(0, self.jitter))


ONE_ATTEMPT = Retry(attempts=1)  # for callers whose retries live elsewhere (a Celery task's)
MIB = 1024 * 1024


def retry_after_seconds(value: str) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def response_detail(response: Response, *, chars: int = DETAIL_CHARS) -> str:
    """The start of the answer's body as one line of text (at most ``chars`` characters)."""
    text = response.body[:chars * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:chars]


def where(url: str) -> str:
    """The URL without credentials, query or fragment: safe for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


# --- The client -----------------------------------------------------------------------------------------

@dataclass
class HttpClient:
    """``purpose`` names the caller in the User-Agent and in logs (``"webhook"``, ``"dsa"``, ...).

    Use it as a context manager to keep connections open across several requests; outside one, each
    request (with its retries) opens and closes its own. ``sleep`` is for tests (to record the waits).
    """

    purpose: str
    retry: Retry = field(default_factory=Retry)
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_bytes: int = MIB
    sleep: Callable[[float], None] = time.sleep
    _open: httpx.Client | None = field(default=None, init=False, repr=False)

    @property
    def user_agent(self) -> str:
        return f"Takedown/{VERSION} ({self.purpose})"

    def __enter__(self) -> HttpClient:
        if self._open is None:
            self._open = self._client()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def get(self, url: str, *, headers: Mapping[str, str] | None = None,
            params: Mapping[str, Any] | None = None) -> Response:
        return self.request("GET", url, headers=headers, params=params)

    def post(self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("POST", url, headers=headers, content=content)

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                content: bytes | None = None, params: Mapping[str, Any] | None = None) -> Response:
        """Send the request, retried as ``self.retry`` allows; a 2xx :class:`Response`, or an :class:`HttpError`
        (the last one, when every try failed)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadUrl(f"{where(url)!r} is not an http(s) URL with a host.", url=where(url))
        sent = {"User-Agent": self.user_agent, **(headers or {})}
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(Transient),
            sleep=self.sleep,
            before_sleep=lambda state: self._log_retry(method, url, state),
            reraise=True,
        )
        if self._open is not None:
            return retrying(self._send, self._open, method, url, sent, content, params)
        with self._client() as client:
            return retrying(self._send, client, method, url, sent, content, params)

    # --- inside ---

    def _client(self) -> httpx.Client:
        timeout = httpx.Timeout(self.timeouts.read, connect=self.timeouts.connect)
        return httpx.Client(timeout=timeout, follow_redirects=False)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.retry.wait(state.attempt_number, error)

    def _log_retry(self, method: str, url: str, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning("%s: %s %s failed (%s); try %d of %d, next in %.1f s", self.purpose, method, where(url),
                       error, state.attempt_number, self.retry.attempts, wait)

    def _send(self, client: httpx.Client, method: str, url: str, headers: dict[str, str], content: bytes | None,
              params: Mapping[str, Any] | None) -> Response:
        place = where(url)
        deadline = time.monotonic() + self.timeouts.total
        try:
            with client.stream(method, url, headers=headers, content=content, params=params) as answer:
                declared = answer.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise ResponseTooLarge(f"{place} answered {int(declared)} bytes; at most {self.max_bytes} "
                                           "are accepted.", url=place)
                chunks: list[bytes] = []
                size = 0
                for chunk in answer.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ResponseTooLarge(f"{place} answered more than {self.max_bytes} bytes; the rest "
                                               "was not read.", url=place)
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        reason = f"took longer than {self.timeouts.total:g} s to answer"
                        raise Unreachable(f"{place} {reason}.", url=place, reason=reason)
                response = Response(status=answer.status_code, body=b"".join(chunks), url=place,
                                    headers={k.lower(): v for k, v in answer.headers.items()})
        except httpx.TimeoutException as exc:
            reason = f"no answer in time ({type(exc).__name__})"
            raise Unreachable(f"{place}: {reason}.", url=place, reason=reason) from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise Unreachable(f"could not reach {place}: {reason}", url=place, reason=reason) from exc
        return _checked(method, response)


def _checked(method: str, response: Response) -> Response:
    status = response.status
    if 200 <= status < 300:
        return response
    said = f"{method} {response.url} answered HTTP {status}"
    detail = response_detail(response)
    message = f"{said}: {detail}" if detail else said
    if status >= 500:
        raise ServerError(message, response=response)
    if status in THROTTLED_STATUSES:
        raise Throttled(message, response=response)
    if status in GONE_STATUSES:
        raise Gone(message, response=response)
    if 300 <= status < 400:
        target = where(response.headers.get("location", "")) if response.headers.get("location") else "elsewhere"
        raise Refused(f"{said}, a redirect to {target}: use the final URL in the setting.", response=response)
    raise Refused(message, response=response)
