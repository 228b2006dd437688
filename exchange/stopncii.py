"""StopNCII.org: its hash record shape, a client for its partner API, and fetch / submit / feedback jobs.

StopNCII.org lets people hash their intimate images on their own device; partner platforms (CSPs) fetch
those hashes, block matching uploads and report back whether they blocked them. The shapes and enum
values here are the ones StopNCII's partner API uses, as implemented by Meta's reference client
(python-threatexchange, ``threatexchange/exchanges/clients/stopncii/api.py``); docs/exchange.md lists
each field and where it comes from.

- :class:`HashRecord` reads and writes one record (``signalType``, ``hashValue``, ``hashStatus``,
  ``caseNumbers``, ``lastModtimestamp``, ``CSPFeedbacks``) and raises :class:`RecordError` naming the
  field that is wrong.
- :class:`StopNCIIClient` calls ``FetchHashes`` (paged by ``nextPageToken``), ``SubmitHashes`` and
  ``SubmitFeedback`` with the subscription and function keys, a timeout, and retries with backoff on
  5xx answers and broken connections; every failure is a :class:`StopNCIIError` subclass whose message
  says what to do.
- :func:`stopncii_fetch` applies fetched records to a local bank page by page and checkpoints after each
  page (:class:`StateFile`), so an interrupted fetch resumes where it stopped; :func:`stopncii_submit`
  sends a bank's new entries; :func:`stopncii_send_feedback` sends our verdicts.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exchange.feed import case_ref_for
from exchange.models import HashFeedback, SharedEntry
from exchange.services import ExchangeError, entry_tags_set, feedback_record
from hashing.banks import ImportRow, bank_get_or_create, bank_import_entries, bank_withdraw_entries
from hashing.models import Bank, BankChange, BankEntry
from moderation.models import Partner

logger = logging.getLogger(__name__)

# The reference client starts a first fetch at this timestamp (StopNCIIAPI.DEFAULT_START_TIME): everything.
FIRST_FETCH_TIMESTAMP = 10


# --- The record shape ------------------------------------------------------------------------------------


class SignalType(StrEnum):
    """``signalType``: what ``hashValue`` is."""

    UNKNOWN = "Unknown"
    IMAGE_PDQ = "ImagePDQ"
    VIDEO_MD5 = "VideoMD5"
    VIDEO_TMK = "VideoTMK"
    TEXT = "Text"
    URL = "URL"


class CaseStatus(StrEnum):
    """``hashStatus`` and the values of ``caseNumbers``: the state of the people's cases behind a hash."""

    UNKNOWN = "Unknown"
    RECEIVED = "Received"  # newly submitted
    ACTIVE = "Active"
    WITHDRAWN = "Withdrawn"  # the person withdrew the case: partners must stop using the hash
    DELETED = "Deleted"  # likewise


class FeedbackValue(StrEnum):
    """``feedbackValue`` of a CSP's feedback on a hash."""

    UNKNOWN = "Unknown"
    NONE = "None"  # tags only
    QUALITY_UNKNOWN = "QualityUnknown"
    PENDING_REVIEW = "PendingReview"  # a match is waiting for review
    BLOCKED = "Blocked"  # reviewed: the match was NCII and was blocked
    NOT_BLOCKED = "NotBlocked"  # reviewed: not blocked
    WITHDRAWN = "Withdrawn"
    DELETED = "Deleted"


class Endpoint(StrEnum):
    """The API's functions; each has its own function key."""

    FETCH_HASHES = "FetchHashes"
    SUBMIT_HASHES = "SubmitHashes"
    SUBMIT_FEEDBACK = "SubmitFeedback"


# Our algorithms that StopNCII carries. Its only MD5 signal is VideoMD5 (the MD5 of the file), so MD5
# entries go out as VideoMD5 whatever the media was: an image's MD5 just never equals a video's.
SIGNAL_TYPE_FOR_ALGORITHM: dict[str, SignalType] = {"pdq": SignalType.IMAGE_PDQ, "md5": SignalType.VIDEO_MD5}
ALGORITHM_FOR_SIGNAL_TYPE: dict[SignalType, str] = {v: k for k, v in SIGNAL_TYPE_FOR_ALGORITHM.items()}
_HEX_LENGTH = {SignalType.IMAGE_PDQ: 64, SignalType.VIDEO_MD5: 32}
_HEX = re.compile(r"[0-9a-f]+")
# Hash statuses that keep a hash in use; Withdrawn and Deleted take it out (the bank entry's status).
ACTIVE_STATUSES = frozenset({CaseStatus.RECEIVED, CaseStatus.ACTIVE})
ENTRY_STATUS_FOR_CASE_STATUS = {CaseStatus.WITHDRAWN: BankEntry.Status.WITHDRAWN,
                                CaseStatus.DELETED: BankEntry.Status.DELETED}
CASE_STATUS_FOR_ENTRY_STATUS = {BankEntry.Status.ACTIVE: CaseStatus.ACTIVE,
                                BankEntry.Status.WITHDRAWN: CaseStatus.WITHDRAWN,
                                BankEntry.Status.DELETED: CaseStatus.DELETED}


class RecordError(ValueError):
    """A record that does not have StopNCII's shape; the message names the field and what was expected."""


def _enum(kind: type[StrEnum], value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise RecordError(f"{name} must be one of {allowed}; got {str(value)[:40]!r}") from None


def _timestamp(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"{name} must be a whole number of seconds since 1970 (Unix time); got {value!r}")
    return value


@dataclass(frozen=True)
class CSPFeedback:
    """One CSP's feedback on a hash (an element of ``CSPFeedbacks``)."""

    value: FeedbackValue
    tags: tuple[str, ...] = ()
    source: str = ""  # the CSP's name; StopNCII fills it in, a CSP submitting feedback leaves it out

    @classmethod
    def from_json(cls, data: Any, where: str = "CSPFeedbacks[]") -> CSPFeedback:
        if not isinstance(data, dict):
            raise RecordError(f"{where} must be an object with feedbackValue; got {type(data).__name__}")
        if "feedbackValue" not in data:
            raise RecordError(f"{where}.feedbackValue is missing")
        tags = data.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise RecordError(f"{where}.tags must be a list of strings")
        source = data.get("source") or ""
        if not isinstance(source, str):
            raise RecordError(f"{where}.source must be a string")
        # A value outside the enum (the live API has sent "Undefined") reads as Unknown: the reference client
        # drops the whole record then, which would lose a person's hash over a partner's feedback.
        value = data["feedbackValue"]
        known = value in FeedbackValue._value2member_map_
        return cls(value=FeedbackValue(value) if known else FeedbackValue.UNKNOWN,
                   tags=tuple(sorted(set(tags))), source=source)

    def to_json(self, *, with_source: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"feedbackValue": self.value.value, "tags": list(self.tags)}
        if with_source and self.source:
            data["source"] = self.source
        return data


@dataclass(frozen=True)
class HashRecord:
    """One hash as StopNCII describes it: the whole current state, so a later record replaces an earlier one."""

    signal_type: SignalType
    hash_value: str
    status: CaseStatus
    last_modified: int  # lastModtimestamp, Unix seconds
    case_numbers: Mapping[str, CaseStatus] = field(default_factory=dict)
    feedbacks: tuple[CSPFeedback, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> HashRecord:
        """Read one record. Raises :class:`RecordError` naming the first field that is wrong."""
        if not isinstance(data, dict):
            raise RecordError(f"a hash record is a JSON object; got {type(data).__name__}")
        missing = [name for name in ("signalType", "hashValue", "hashStatus", "lastModtimestamp") if name not in data]
        if missing:
            raise RecordError(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        value = data["hashValue"]
        if not isinstance(value, str) or not value.strip():
            raise RecordError("hashValue must be a non-empty string")
        cases = data.get("caseNumbers") or {}
        # The live API has been seen to send an empty list for "no cases" (python-threatexchange's tests).
        if not isinstance(cases, dict):
            raise RecordError("caseNumbers must be an object mapping case numbers to statuses")
        feedbacks = data.get("CSPFeedbacks") or []
        if not isinstance(feedbacks, list):
            raise RecordError("CSPFeedbacks must be a list")
        return cls(
            signal_type=_enum(SignalType, data["signalType"], "signalType"),
            hash_value=value.strip(),
            status=_enum(CaseStatus, data["hashStatus"], "hashStatus"),
            last_modified=_timestamp(data["lastModtimestamp"], "lastModtimestamp"),
            case_numbers={str(case): _enum(CaseStatus, status, f"caseNumbers[{str(case)[:40]!r}]")
                          for case, status in cases.items()},
            feedbacks=tuple(CSPFeedback.from_json(item, f"CSPFeedbacks[{i}]") for i, item in enumerate(feedbacks)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "signalType": self.signal_type.value,
            "hashValue": self.hash_value,
            "hashStatus": self.status.value,
            "caseNumbers": {case: status.value for case, status in self.case_numbers.items()},
            "lastModtimestamp": self.last_modified,
            "CSPFeedbacks": [feedback.to_json() for feedback in self.feedbacks],
        }

    @property
    def algorithm(self) -> str | None:
        """Our algorithm for this signal type; None for one we do not match (VideoTMK, Text, URL)."""
        return ALGORITHM_FOR_SIGNAL_TYPE.get(self.signal_type)

    def checked_value(self) -> str:
        """The hash as lowercase hex of its algorithm's width. Raises :class:`RecordError` otherwise."""
        value = self.hash_value.lower()
        width = _HEX_LENGTH.get(self.signal_type)
        if width is None:
            raise RecordError(f"signalType {self.signal_type.value} is not one this instance matches "
                              f"({', '.join(s.value for s in _HEX_LENGTH)})")
        if len(value) != width or not _HEX.fullmatch(value):
            raise RecordError(f"hashValue of a {self.signal_type.value} record is {width} hex characters; "
                              f"got {self.hash_value[:80]!r}")
        return value


def record_for_entry(entry: BankEntry, *, case_ref: str = "",
                     feedbacks: Sequence[CSPFeedback] = ()) -> HashRecord | None:
    """A bank entry as a StopNCII record; None when StopNCII has no signal type for its algorithm.

    ``case_ref`` is the opaque case reference shared with the entry (never one of our case numbers).
    """
    signal_type = SIGNAL_TYPE_FOR_ALGORITHM.get(entry.algorithm)
    if signal_type is None:
        return None
    status = CASE_STATUS_FOR_ENTRY_STATUS.get(BankEntry.Status(entry.status), CaseStatus.UNKNOWN)
    return HashRecord(signal_type=signal_type, hash_value=entry.value, status=status,
                      last_modified=int(entry.updated_at.timestamp()),
                      case_numbers={case_ref: status} if case_ref else {}, feedbacks=tuple(feedbacks))


def export_records(bank: Bank, *, include_inactive: bool = False) -> Iterator[HashRecord]:
    """``bank``'s entries as StopNCII records, oldest first, with the feedback we hold on each.

    ``caseNumbers`` holds the entry's opaque case reference (``exchange.feed.case_ref_for``: never a case
    number of ours); ``CSPFeedbacks`` the partners' verdicts (``source`` = partner name) and our own
    (``source`` = this instance's host name). Entries of algorithms StopNCII has no type for are left out.
    """
    entries = BankEntry.objects.filter(bank=bank, algorithm__in=list(SIGNAL_TYPE_FOR_ALGORITHM)).order_by("id")
    if not include_inactive:
        entries = entries.filter(status=BankEntry.Status.ACTIVE)
    own_name = urllib.parse.urlsplit(settings.SITE_URL).hostname or "takedown"
    chunk: list[BankEntry] = []
    for entry in entries.iterator(chunk_size=2000):
        chunk.append(entry)
        if len(chunk) >= 2000:
            yield from _records_of(chunk, own_name)
            chunk = []
    yield from _records_of(chunk, own_name)


def _records_of(entries: list[BankEntry], own_name: str) -> Iterator[HashRecord]:
    ids = [e.pk for e in entries]
    shared = {s.entry_id: s for s in SharedEntry.objects.filter(entry_id__in=ids)}
    feedback: dict[int, list[CSPFeedback]] = {}
    for row in HashFeedback.objects.filter(entry_id__in=ids).select_related("partner").order_by("id"):
        feedback.setdefault(row.entry_id, []).append(CSPFeedback(
            value=FEEDBACK_FOR_VERDICT[HashFeedback.Verdict(row.verdict)], tags=tuple(row.tags or ()),
            source=row.partner.name if row.partner else own_name))
    for entry in entries:
        link = shared.get(entry.pk)
        record = record_for_entry(entry, case_ref=(link.case_ref if link and link.case_ref
                                                   else case_ref_for(entry.source)),
                                  feedbacks=feedback.get(entry.pk, ()))
        if record is not None:
            yield record


def read_records(lines: Iterable[str]) -> Iterator[tuple[str, HashRecord | RecordError]]:
    """Records of a StopNCII file: JSON lines (one record a line), or one JSON document that is a list of
    records or a FetchHashes answer (``{"hashRecords": [...]}``). Yields ``(where, record or error)``:
    ``line N`` for JSON lines, ``record N`` inside a document.
    """
    iterator = iter(lines)
    first: list[tuple[int, str]] = []
    for number, text in enumerate(iterator, start=1):
        if text.strip():
            first.append((number, text))
            break
    if not first:
        return
    if first[0][1].lstrip().startswith("["):
        document = first[0][1] + "".join(iterator)
        yield from _document_records(document)
        return
    number, text = first[0]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        # Not one whole object on the first line: a pretty-printed document.
        yield from _document_records(text + "".join(iterator))
        return
    if isinstance(parsed, dict) and "hashRecords" in parsed:
        yield from _document_records(text + "".join(iterator))
        return
    yield from _line_records([(number, text)])
    yield from _line_records(enumerate(iterator, start=number + 1))


def _line_records(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, HashRecord | RecordError]]:
    for number, text in lines:
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield f"line {number}", RecordError(f"not JSON: {exc.msg}")
            continue
        try:
            yield f"line {number}", HashRecord.from_json(data)
        except RecordError as exc:
            yield f"line {number}", exc


def _document_records(text: str) -> Iterator[tuple[str, HashRecord | RecordError]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield f"line {exc.lineno}", RecordError(f"the file is neither JSON lines nor one JSON document: {exc.msg}")
        return
    items = data.get("hashRecords") if isinstance(data, dict) else data
    if not isinstance(items, list):
        yield "line 1", RecordError("expected a list of records or an object with hashRecords")
        return
    for index, item in enumerate(items):
        try:
            yield f"record {index}", HashRecord.from_json(item)
        except RecordError as exc:
            yield f"record {index}", exc


# --- The API client --------------------------------------------------------------------------------------


class StopNCIIError(Exception):
    """Anything that went wrong talking to StopNCII; the message says what to do."""


class StopNCIIConfigError(StopNCIIError, ImproperlyConfigured):
    """A setting the StopNCII client needs is missing or wrong."""


class StopNCIIAuthError(StopNCIIError):
    """StopNCII refused our keys (401 / 403)."""


class StopNCIIRequestError(StopNCIIError):
    """StopNCII refused a request as malformed (another 4xx); retrying the same request will not help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class StopNCIIUnavailable(StopNCIIError):
    """StopNCII could not be reached or answered 5xx / 429 on every attempt."""


class StopNCIIResponseError(StopNCIIError):
    """StopNCII answered 2xx with a body that does not have the documented shape."""


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


# --- Checkpoints -----------------------------------------------------------------------------------------


class StateFile:
    """The jobs' checkpoints as one small JSON file, replaced atomically; a lock keeps two runs apart.

    A page is applied in one transaction and the checkpoint written after it commits: a crash in between
    applies that page again on the next run, which changes nothing (adding an active entry is a no-op).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StopNCIIError(f"The StopNCII checkpoint file {self.path} cannot be read ({exc}). Move it away "
                                "to start over (a fetch then reads everything again, which is safe).") from exc
        return data if isinstance(data, dict) else {}

    def section(self, name: str) -> dict[str, Any]:
        value = self.load().get(name)
        return dict(value) if isinstance(value, dict) else {}

    def save(self, name: str, values: Mapping[str, Any]) -> None:
        data = self.load()
        data[name] = dict(values)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".stopncii-", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(data, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def locked(self, job: str) -> Iterator[None]:
        """Hold the job's lock; raises :class:`StopNCIIError` when another run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f"{self.path.name}.{job}.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StopNCIIError(
                    f"Another StopNCII {job} is running on this machine; wait for it to finish.") from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @classmethod
    def from_settings(cls) -> StateFile:
        return cls(settings.TAKEDOWN_STOPNCII_STATE_FILE)


# --- Jobs ------------------------------------------------------------------------------------------------


def stopncii_bank(name: str | None = None) -> Bank:
    """The local bank StopNCII's hashes go to, made on first use.

    Its matches go to review rather than blocking: people submit StopNCII hashes without anyone reviewing
    the images, and StopNCII asks partners to review matches and report Blocked / NotBlocked.
    """
    return bank_get_or_create(name=name or settings.TAKEDOWN_STOPNCII_BANK, kind=Bank.Kind.PARTNER,
                              description="Hashes from StopNCII.org (manage.py stopncii fetch).", blocks_uploads=False)


@dataclass
class ApplyResult:
    added: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    unsupported: int = 0  # signal types we do not match (VideoTMK, Text, URL, Unknown)
    feedback_recorded: int = 0
    feedback_unknown_source: int = 0
    errors: list[str] = field(default_factory=list)  # "<where>: <what is wrong>"

    def add(self, other: ApplyResult) -> None:
        for name in ("added", "unchanged", "withdrawn", "unsupported", "feedback_recorded",
                     "feedback_unknown_source"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


@transaction.atomic
def records_apply(*, bank: Bank, records: Iterable[tuple[str, HashRecord]], source: str = "stopncii") -> ApplyResult:
    """Apply ``(where, record)`` pairs to ``bank`` in one transaction; a later record of a hash wins.

    Received / Active records add (or re-activate) the entry; Withdrawn / Deleted ones withdraw or delete
    it. The bank services write the change log, so matchers see the change. ``where`` locates a record in
    error messages (``line 3``, ``page 2 record 5``); bad records are reported there and skipped.
    """
    result = ApplyResult()
    latest: dict[tuple[str, str], tuple[str, HashRecord]] = {}
    for where, record in records:
        algorithm = record.algorithm
        if algorithm is None:
            result.unsupported += 1
            continue
        try:
            value = record.checked_value()
        except RecordError as exc:
            result.errors.append(f"{where}: {exc}")
            continue
        latest.pop((algorithm, value), None)  # re-insert so the dict keeps the order of last appearance
        latest[(algorithm, value)] = (where, record)
    adds = [ImportRow(line=0, algorithm=a, value=v, source=source) for (a, v), (_, r) in latest.items()
            if r.status in ACTIVE_STATUSES]
    unknown = [(w, r) for (w, r) in latest.values() if r.status not in ACTIVE_STATUSES
               and r.status not in ENTRY_STATUS_FOR_CASE_STATUS]
    for where, record in unknown:
        result.errors.append(f"{where}: hashStatus {record.status.value} says neither active nor withdrawn; skipped")
    imported = bank_import_entries(bank=bank, rows=adds, source=source)
    result.added, result.unchanged = imported.added, imported.unchanged
    for case_status, entry_status in ENTRY_STATUS_FOR_CASE_STATUS.items():
        gone = [(a, v) for (a, v), (_, r) in latest.items() if r.status == case_status]
        if gone:
            result.withdrawn += bank_withdraw_entries(bank=bank, hashes=gone, status=entry_status)
    _link_records(bank, latest, result)
    return result


# CSP feedback values that are verdicts on a match; the others (None, QualityUnknown, ...) carry none.
VERDICT_FOR_FEEDBACK = {FeedbackValue.BLOCKED: HashFeedback.Verdict.BLOCKED,
                        FeedbackValue.NOT_BLOCKED: HashFeedback.Verdict.NOT_BLOCKED,
                        FeedbackValue.PENDING_REVIEW: HashFeedback.Verdict.PENDING_REVIEW}
FEEDBACK_FOR_VERDICT = {verdict: value for value, verdict in VERDICT_FOR_FEEDBACK.items()}


def _link_records(bank: Bank, latest: Mapping[tuple[str, str], tuple[str, HashRecord]], result: ApplyResult) -> None:
    """Record the CSPs' feedback (where the CSP is one of our partners) and each entry's origin case."""
    wanted = [key for key, (_, record) in latest.items() if record.feedbacks or record.case_numbers]
    if not wanted:
        return
    entries: dict[tuple[str, str], BankEntry] = {}
    for algorithm in {a for a, _ in wanted}:
        values = [v for a, v in wanted if a == algorithm]
        for row in BankEntry.objects.filter(bank=bank, algorithm=algorithm, value__in=values):
            entries[(row.algorithm, row.value)] = row
    stopncii_partner = _partner_named(settings.TAKEDOWN_STOPNCII_PARTNER)
    links = {link.entry_id: link for link in SharedEntry.objects.filter(entry_id__in=[e.pk for e in entries.values()])}
    partners: dict[str, Partner | None] = {}
    for key in wanted:
        where, record = latest[key]
        entry = entries.get(key)
        if entry is None:  # withdrawn before we ever had it: nothing to attach to
            continue
        # The origin's case reference: StopNCII's case ids are opaque UUIDs; the first one is kept.
        case_ref = sorted(record.case_numbers)[0] if record.case_numbers else ""
        link = links.get(entry.pk)
        wanted_link = (case_ref, stopncii_partner.pk if stopncii_partner else None)
        if case_ref and (link is None or (link.case_ref, link.partner_id) != wanted_link):
            try:
                entry_tags_set(entry=entry, tags=link.tags if link else [], partner=stopncii_partner, case_ref=case_ref)
            except ExchangeError as exc:
                result.errors.append(f"{where}: caseNumbers: {exc}")
        for feedback in record.feedbacks:
            verdict = VERDICT_FOR_FEEDBACK.get(feedback.value)
            if verdict is None:
                continue
            if feedback.source not in partners:
                partners[feedback.source] = _partner_named(feedback.source)
            partner = partners[feedback.source]
            if partner is None:
                result.feedback_unknown_source += 1
                continue
            try:
                feedback_record(entry=entry, partner=partner, verdict=verdict, tags=feedback.tags)
            except ExchangeError as exc:
                result.errors.append(f"{where}: CSPFeedbacks of {feedback.source}: {exc}")
                continue
            result.feedback_recorded += 1


def _partner_named(name: str) -> Partner | None:
    """The enabled partner whose name or organisation is ``name`` (any case); None when there is none."""
    name = (name or "").strip()
    if not name:
        return None
    return (Partner.objects.filter(enabled=True).filter(Q(name__iexact=name) | Q(organisation__iexact=name))
            .order_by("id").first())


@dataclass
class FetchResult(ApplyResult):
    pages: int = 0
    resumed: bool = False  # the run went on from a page token an earlier run left


def stopncii_fetch(*, client: StopNCIIClient, bank: Bank, state: StateFile, page_size: int | None = None,
                   restart: bool = False, on_page: Callable[[FetchPage], None] | None = None) -> FetchResult:
    """Fetch every record changed since the last complete fetch and apply it to ``bank``, page by page.

    After each applied page the checkpoint (the pass's ``startTimestamp`` and the next page token) is
    saved, so a run that stops (network, crash, Ctrl-C) is resumed by the next. A finished pass stores
    ``nextSetTimestamp`` of its last page as the next pass's start. A stored page token that StopNCII no
    longer accepts (tokens expire) restarts the pass from its start timestamp, which only repeats records.
    ``restart`` forgets the checkpoint and reads everything.
    """
    page_size = page_size or settings.TAKEDOWN_STOPNCII_PAGE_SIZE
    result = FetchResult()
    with state.locked("fetch"):
        checkpoint = {} if restart else state.section("fetch")
        start = int(checkpoint.get("start_timestamp") or FIRST_FETCH_TIMESTAMP)
        token = str(checkpoint.get("next_page_token") or "")
        result.resumed = bool(token)
        while True:
            try:
                page = client.fetch_hashes(start_timestamp=start, page_size=page_size, next_page_token=token)
            except StopNCIIRequestError as exc:
                if not (result.resumed and result.pages == 0 and exc.status == 400):
                    raise
                logger.warning("StopNCII refused the stored page token (%s); restarting the pass from %s", exc, start)
                token = ""
                result.resumed = False
                continue
            result.pages += 1
            records = [(f"page {result.pages} record {index}", record)
                       for index, record in enumerate(page.records)]
            page_result = records_apply(bank=bank, records=records)
            page_result.errors[:0] = [f"page {result.pages} record {index}: {error}" for index, error in page.rejected]
            for error in page_result.errors:
                logger.warning("StopNCII record skipped: %s", error)
            result.add(page_result)
            if on_page:
                on_page(page)
            if page.has_more:
                if page.next_page_token == token:
                    raise StopNCIIResponseError("FetchHashes gave the same nextPageToken twice; stopping so the "
                                                "fetch does not loop. The checkpoint holds the last good page.")
                token = page.next_page_token
                state.save("fetch", {"start_timestamp": start, "next_page_token": token,
                                     "pages_done": result.pages, "saved_at": int(time.time())})
                continue
            state.save("fetch", {"start_timestamp": max(start, page.next_set_timestamp), "next_page_token": "",
                                 "pages_done": 0, "saved_at": int(time.time())})
            return result


@dataclass
class SubmitResult:
    submitted: int = 0
    batches: int = 0
    unsupported: int = 0  # active entries whose algorithm StopNCII does not carry


def stopncii_submit(*, client: StopNCIIClient, bank: Bank, state: StateFile, batch_size: int = 500,
                    settle_seconds: int | None = None, tags: Sequence[str] = ()) -> SubmitResult:
    """Send ``bank``'s entries that became active since the last submit, as Blocked (we confirmed them).

    Walks the bank change log (``hashing.models.BankChange``) from the checkpoint. Change ids are handed
    out before commit, so only changes older than ``settle_seconds`` are read (default: the matcher's gap
    timeout, longer than any transaction lives); the checkpoint moves after each accepted batch.
    Withdrawn entries are not sent: StopNCII's API has no documented call to take back a submitted hash.
    """
    settle = settings.TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS if settle_seconds is None else settle_seconds
    result = SubmitResult()
    feedback = (CSPFeedback(value=FeedbackValue.BLOCKED, tags=tuple(sorted(set(tags)))),)
    with state.locked("submit"):
        checkpoint = state.section("submit")
        last_id = int(checkpoint.get("change_id") or 0)
        cutoff = timezone.now() - timedelta(seconds=settle)
        changes = (BankChange.objects.filter(id__gt=last_id, created_at__lte=cutoff).order_by("id")
                   .values_list("id", "entry_id").iterator(chunk_size=5000))
        batch: list[HashRecord] = []
        batch_last_id = last_id

        def flush() -> None:
            nonlocal batch
            if batch:
                client.submit_hashes(batch)
                result.submitted += len(batch)
                result.batches += 1
            state.save("submit", {"change_id": batch_last_id, "saved_at": int(time.time())})
            batch = []

        pending: dict[int, int] = {}  # entry id -> change id, read in chunks
        for change_id, entry_id in changes:
            pending[entry_id] = change_id
            if len(pending) >= batch_size:
                batch_last_id = _collect(bank, pending, feedback, batch, result)
                pending = {}
                if len(batch) >= batch_size:
                    flush()
        if pending:
            batch_last_id = _collect(bank, pending, feedback, batch, result)
        flush()
    return result


def _collect(bank: Bank, pending: dict[int, int], feedback: tuple[CSPFeedback, ...], batch: list[HashRecord],
             result: SubmitResult) -> int:
    entries = BankEntry.objects.filter(id__in=list(pending), bank=bank, status=BankEntry.Status.ACTIVE)
    for entry in entries:
        record = record_for_entry(entry, feedbacks=feedback)
        if record is None:
            result.unsupported += 1
        else:
            batch.append(record)
    return max(pending.values())


@dataclass
class FeedbackResult:
    sent: int = 0
    unsupported: int = 0


def stopncii_send_feedback(*, client: StopNCIIClient, bank: Bank, state: StateFile,
                           batch_size: int = 500) -> FeedbackResult:
    """Send our own verdicts (Blocked / NotBlocked / PendingReview) on ``bank``'s entries changed since the last run.

    Our verdicts are the ``HashFeedback`` rows with no partner (``exchange.services.feedback_record``);
    the checkpoint is the (updated_at, id) of the last one sent, moved after each accepted batch.
    """
    result = FeedbackResult()
    with state.locked("feedback"):
        checkpoint = state.section("feedback")
        rows = HashFeedback.objects.filter(entry__bank=bank, partner=None).select_related("entry")
        if checkpoint.get("sent_until"):
            since = datetime.fromisoformat(checkpoint["sent_until"])
            rows = rows.filter(Q(updated_at__gt=since) | Q(updated_at=since, id__gt=int(checkpoint.get("id") or 0)))
        batch: list[tuple[str, CSPFeedback]] = []
        last: HashFeedback | None = None

        def flush() -> None:
            nonlocal batch
            if batch:
                client.submit_feedback(batch)
                result.sent += len(batch)
                batch = []
            if last is not None:
                state.save("feedback", {"sent_until": last.updated_at.isoformat(), "id": last.pk})

        for row in rows.order_by("updated_at", "id").iterator(chunk_size=1000):
            last = row
            if row.entry.algorithm not in SIGNAL_TYPE_FOR_ALGORITHM:
                result.unsupported += 1
                continue
            batch.append((row.entry.value, CSPFeedback(value=FEEDBACK_FOR_VERDICT[HashFeedback.Verdict(row.verdict)],
                                                       tags=tuple(row.tags or ()))))
            if len(batch) >= batch_size:
                flush()
        flush()
    return result
