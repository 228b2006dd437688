"""A client for StopNCII's partner API: ``FetchHashes`` (paged by ``nextPageToken``), ``SubmitHashes`` and
``SubmitFeedback``, over the one HTTP client (``moderation/http.py``).

Each request carries the subscription key and that function's key, with timeouts, and is retried with
backoff and jitter on 5xx / 408 / 429 answers (``Retry-After`` honoured) and broken connections; every
failure raises a :class:`~exchange.stopncii.errors.StopNCIIError` subclass.
"""

from __future__ import annotations

import json
import time
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
from moderation import http


class Endpoint(StrEnum):
    """The API's functions; each has its own function key."""

    FETCH_HASHES = "FetchHashes"
    SUBMIT_HASHES = "SubmitHashes"
    SUBMIT_FEEDBACK = "SubmitFeedback"


_KEY_SETTINGS = {Endpoint.FETCH_HASHES: "TAKEDOWN_STOPNCII_FETCH_HASHES_KEY",
                 Endpoint.SUBMIT_HASHES: "TAKEDOWN_STOPNCII_SUBMIT_HASHES_KEY",
                 Endpoint.SUBMIT_FEEDBACK: "TAKEDOWN_STOPNCII_SUBMIT_FEEDBACK_KEY"}
_MAX_RETRY_AFTER_SECONDS = 60.0
MAX_ANSWER_BYTES = 32 * http.MIB  # a FetchHashes page of up to 1,000 records with their feedback


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
                "Accept": "application/json"}

    def _http(self) -> http.HttpClient:
        retry = http.Retry(attempts=max(1, self.attempts), wait_initial=self.backoff_seconds,
                           retry_after_max=_MAX_RETRY_AFTER_SECONDS)
        return http.HttpClient(purpose="stopncii", retry=retry, sleep=self.sleep, max_bytes=MAX_ANSWER_BYTES,
                               timeouts=http.Timeouts(connect=min(self.timeout, 10.0), read=self.timeout,
                                                      total=2 * self.timeout))

    def _request(self, endpoint: Endpoint, *, query: Mapping[str, Any] | None = None,
                 body: Mapping[str, Any] | None = None) -> Any:
        """GET (with ``query``) or POST (JSON ``body``) one endpoint, retried; the parsed JSON answer."""
        url = f"{self.base_url}/{endpoint.value}"
        headers = self._headers(endpoint)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        # POSTs are retried too: a record carries the whole of our state for its hash, so a repeat
        # replaces the same feedback rather than adding to it.
        try:
            answer = self._http().request("POST" if body is not None else "GET", url, headers=headers,
                                          content=data, params=query)
        except http.Refused as exc:
            message = f": {exc.detail}" if exc.detail else ""
            if exc.status in (401, 403):
                raise StopNCIIAuthError(
                    f"StopNCII refused our keys for {endpoint.value} (HTTP {exc.status}{message}): check "
                    f"TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY and {_KEY_SETTINGS[endpoint]}.") from exc
            raise StopNCIIRequestError(f"StopNCII refused the {endpoint.value} request (HTTP {exc.status}{message}).",
                                       status=exc.status) from exc
        except http.Transient as exc:
            if isinstance(exc, http.StatusError):
                last_error = f"HTTP {exc.status}" + (f": {exc.detail}" if exc.detail else "")
            else:
                last_error = f"could not reach it: {getattr(exc, 'reason', exc)}"
            raise StopNCIIUnavailable(
                f"StopNCII {endpoint.value} failed {self.attempts} times ({last_error}). Nothing was lost: run "
                "the command again later; a fetch resumes from its checkpoint.") from exc
        except http.BadUrl as exc:
            raise StopNCIIConfigError(f"TAKEDOWN_STOPNCII_BASE_URL is not usable: {exc}") from exc
        except http.HttpError as exc:
            raise StopNCIIResponseError(f"StopNCII {endpoint.value}: {exc}") from exc
        return _parse_json(endpoint, answer.body)


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
