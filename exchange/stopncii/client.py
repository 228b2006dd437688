"""A client for StopNCII's partner API: ``FetchHashes`` (paged by ``nextPageToken``), ``SubmitHashes`` and
``SubmitFeedback``, over urllib.

Each request carries the subscription key and that function's key, with a timeout, and is retried with
backoff on 5xx / 429 answers and broken connections; every failure raises a
:class:`~exchange.stopncii.errors.StopNCIIError` subclass.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings

from exchange.stopncii.errors import (
    StopNCIIAuthError,
    StopNCIIConfigError,
    StopNCIIRequestError,
    StopNCIIResponseError,
    StopNCIIUnavailable,
)
from exchange.stopncii.records import CSPFeedback, HashRecord, RecordError

logger = logging.getLogger(__name__)


class Endpoint(StrEnum):
    """The API's functions; each has its own function key."""

    FETCH_HASHES = "FetchHashes"
    SUBMIT_HASHES = "SubmitHashes"
    SUBMIT_FEEDBACK = "SubmitFeedback"


_KEY_SETTINGS = {Endpoint.FETCH_HASHES: "TAKEDOWN_STOPNCII_FETCH_HASHES_KEY",
                 Endpoint.SUBMIT_HASHES: "TAKEDOWN_STOPNCII_SUBMIT_HASHES_KEY",
                 Endpoint.SUBMIT_FEEDBACK: "TAKEDOWN_STOPNCII_SUBMIT_FEEDBACK_KEY"}
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # as the reference client retries
_MAX_RETRY_AFTER_SECONDS = 60.0


@dataclass
class FetchPage:
    """One ``FetchHashes`` answer. ``rejected`` holds ``(index in hashRecords, error)`` of unreadable records."""

    count: int
    next_page_token: str
    next_set_timestamp: int
    has_more: bool
    records: list[HashRecord]
    rejected: list[tuple[int, RecordError]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Any) -> FetchPage:
        """Read a page; raises :class:`StopNCIIResponseError` when the page itself is malformed."""
        if not isinstance(data, dict):
            raise StopNCIIResponseError(f"FetchHashes answered a JSON {type(data).__name__}, not an object")
        for name, kind in (("hashRecords", list), ("hasMoreRecords", bool), ("nextSetTimestamp", int)):
            if not isinstance(data.get(name), kind) or (kind is int and isinstance(data.get(name), bool)):
                raise StopNCIIResponseError(
                    f"FetchHashes answered without a valid {name} (expected {kind.__name__}); "
                    "StopNCII may have changed its API: check docs/exchange.md against their documentation")
        token = data.get("nextPageToken") or ""
        if not isinstance(token, str):
            raise StopNCIIResponseError("FetchHashes answered a nextPageToken that is not a string")
        if data["hasMoreRecords"] and not token:
            raise StopNCIIResponseError("FetchHashes said hasMoreRecords but gave no nextPageToken to continue with")
        records: list[HashRecord] = []
        rejected: list[tuple[int, RecordError]] = []
        for index, item in enumerate(data["hashRecords"]):
            try:
                records.append(HashRecord.from_json(item))
            except RecordError as exc:
                rejected.append((index, exc))
        count = data.get("count", len(data["hashRecords"]))
        return cls(count=count if isinstance(count, int) else len(records), next_page_token=token,
                   next_set_timestamp=data["nextSetTimestamp"], has_more=data["hasMoreRecords"],
                   records=records, rejected=rejected)


@dataclass
class StopNCIIClient:
    """A client for StopNCII's partner API (``{base_url}/FetchHashes`` etc.).

    Each request carries ``Ocp-Apim-Subscription-Key`` (the API-gateway subscription) and
    ``x-functions-key`` (the key of that one function). Failures raise :class:`StopNCIIError` subclasses.
    """

    base_url: str
    subscription_key: str
    function_keys: Mapping[Endpoint, str]
    timeout: float = 60.0
    attempts: int = 5
    backoff_seconds: float = 0.2
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls) -> StopNCIIClient:
        base_url = settings.TAKEDOWN_STOPNCII_BASE_URL.rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise StopNCIIConfigError("TAKEDOWN_STOPNCII_BASE_URL must start with https:// "
                                      f"(the API is https://api.stopncii.org/v1); got {base_url[:80]!r}")
        return cls(base_url=base_url, subscription_key=settings.TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY,
                   function_keys={endpoint: getattr(settings, name) for endpoint, name in _KEY_SETTINGS.items()
                                  if getattr(settings, name)},
                   timeout=settings.TAKEDOWN_STOPNCII_TIMEOUT_SECONDS, attempts=settings.TAKEDOWN_STOPNCII_ATTEMPTS,
                   backoff_seconds=settings.TAKEDOWN_STOPNCII_BACKOFF_MS / 1000)

    def fetch_hashes(self, *, start_timestamp: int, page_size: int, next_page_token: str = "") -> FetchPage:
        """One page of records changed since ``start_timestamp``; pass the last page's token to go on."""
        query: dict[str, Any] = {"startTimestamp": start_timestamp, "pageSize": page_size}
        if next_page_token:
            query["nextPageToken"] = next_page_token
        return FetchPage.from_json(self._request(Endpoint.FETCH_HASHES, query=query))

    def submit_hashes(self, records: Sequence[HashRecord]) -> None:
        """Send hashes this platform found itself, each with our feedback on it (usually Blocked)."""
        payload = {"count": len(records), "hashRecords": [{
            "lastModtimestamp": record.last_modified,
            "signalType": record.signal_type.value,
            "hashValue": record.hash_value,
            "CSPFeedbacks": [feedback.to_json(with_source=False) for feedback in record.feedbacks],
        } for record in records]}
        self._request(Endpoint.SUBMIT_HASHES, body=payload)

    def submit_feedback(self, feedbacks: Sequence[tuple[str, CSPFeedback]]) -> None:
        """Send our feedback, ``(hashValue, feedback)`` pairs. StopNCII keys feedback by hash value alone."""
        payload = {"count": len(feedbacks), "hashFeedbacks": [
            {"hashValue": value, **feedback.to_json(with_source=False)} for value, feedback in feedbacks]}
        self._request(Endpoint.SUBMIT_FEEDBACK, body=payload)

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        key = self.function_keys.get(endpoint)
        if not self.subscription_key:
            raise StopNCIIConfigError("TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY is not set: StopNCII gives partners a "
                                      "subscription key with their API access.")
        if not key:
            raise StopNCIIConfigError(f"There is no function key for {endpoint.value}: set "
                                      f"{_KEY_SETTINGS[endpoint]} to the key StopNCII issued for that function.")
        return {"Ocp-Apim-Subscription-Key": self.subscription_key, "x-functions-key": key,
                "Accept": "application/json", "User-Agent": "Takedown-stopncii/1"}

    def _request(self, endpoint: Endpoint, *, query: Mapping[str, Any] | None = None,
                 body: Mapping[str, Any] | None = None) -> Any:
        """GET (with ``query``) or POST (JSON ``body``) one endpoint, retried; the parsed JSON answer."""
        url = f"{self.base_url}/{endpoint.value}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = self._headers(endpoint)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        # POSTs are retried too: a record carries the whole of our state for its hash, so a repeat
        # replaces the same feedback rather than adding to it.
        last_error = ""
        for attempt in range(max(1, self.attempts)):
            wait = self.backoff_seconds * 2 ** attempt
            request = urllib.request.Request(url, data=data, headers=headers,  # noqa: S310 - http(s) checked
                                             method="POST" if body is not None else "GET")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                message = _error_text(exc)
                if exc.code in (401, 403):
                    raise StopNCIIAuthError(
                        f"StopNCII refused our keys for {endpoint.value} (HTTP {exc.code}{message}): check "
                        f"TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY and {_KEY_SETTINGS[endpoint]}.") from exc
                if exc.code not in _RETRY_STATUSES:
                    raise StopNCIIRequestError(
                        f"StopNCII refused the {endpoint.value} request (HTTP {exc.code}{message}).",
                        status=exc.code) from exc
                last_error = f"HTTP {exc.code}{message}"
                retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
                if retry_after.isdigit():
                    wait = min(float(retry_after), _MAX_RETRY_AFTER_SECONDS)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                last_error = f"could not reach it: {getattr(exc, 'reason', None) or exc}"
            else:
                return _parse_json(endpoint, raw)
            if attempt + 1 < self.attempts:
                logger.warning("StopNCII %s failed (%s); retrying in %.1f s", endpoint.value, last_error, wait)
                self.sleep(wait)
        raise StopNCIIUnavailable(f"StopNCII {endpoint.value} failed {self.attempts} times ({last_error}). "
                                  "Nothing was lost: run the command again later; a fetch resumes from its checkpoint.")


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(500).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f": {text[:300]}" if text else ""


def _parse_json(endpoint: Endpoint, raw: bytes) -> Any:
    if not raw.strip():
        if endpoint == Endpoint.FETCH_HASHES:
            raise StopNCIIResponseError("FetchHashes answered with an empty body")
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if endpoint != Endpoint.FETCH_HASHES:
            return None  # a submit's answer carries nothing we use
        raise StopNCIIResponseError(f"FetchHashes answered with something that is not JSON ({exc}); "
                                    "the checkpoint was not moved, so run the fetch again later.") from exc
