"""The StopNCII record format: one hash as StopNCII's partner API describes it, read, checked and written.

The shapes and enum values are the ones StopNCII's partner API uses, as implemented by Meta's reference
client (python-threatexchange, ``threatexchange/exchanges/clients/stopncii/api.py``); docs/exchange.md lists
each field and where it comes from.

- :class:`HashRecord` reads and writes one record (``signalType``, ``hashValue``, ``hashStatus``,
  ``caseNumbers``, ``lastModtimestamp``, ``CSPFeedbacks``) and raises :class:`RecordError` naming the
  field that is wrong; :func:`read_records` reads a file of them.
- :func:`record_for_entry` and :func:`export_records` write our bank entries as records.
- The maps between StopNCII's values and ours: signal types and algorithms, case and entry statuses,
  feedback values and verdicts.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings

from exchange.entries import case_ref_for
from exchange.models import HashFeedback, SharedEntry
from hashing.models import Bank, BankEntry


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
# CSP feedback values that are verdicts on a match; the others (None, QualityUnknown, ...) carry none.
VERDICT_FOR_FEEDBACK = {FeedbackValue.BLOCKED: HashFeedback.Verdict.BLOCKED,
                        FeedbackValue.NOT_BLOCKED: HashFeedback.Verdict.NOT_BLOCKED,
                        FeedbackValue.PENDING_REVIEW: HashFeedback.Verdict.PENDING_REVIEW}
FEEDBACK_FOR_VERDICT = {verdict: value for value, verdict in VERDICT_FOR_FEEDBACK.items()}


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

    ``caseNumbers`` holds the entry's opaque case reference (``exchange.entries.case_ref_for``: never a case
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
