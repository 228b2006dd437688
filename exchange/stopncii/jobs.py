"""The StopNCII jobs: fetch hashes into a local bank, submit ours, send our verdicts, apply records.

- :func:`stopncii_fetch` applies fetched records to a local bank page by page and checkpoints after each
  page (:class:`~exchange.stopncii.store.StateFile`), so an interrupted fetch resumes where it stopped.
- :func:`stopncii_submit` sends a bank's new entries; :func:`stopncii_send_feedback` sends our verdicts.
- :func:`records_apply` applies records (fetched or from a file) to a bank, with the partners' feedback
  they carry; :func:`stopncii_bank` is the local bank StopNCII's hashes go to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exchange.entries import entry_tags_set, feedback_record
from exchange.models import HashFeedback, SharedEntry
from exchange.stopncii.client import FetchPage, StopNCIIClient
from exchange.stopncii.errors import StopNCIIRequestError, StopNCIIResponseError
from exchange.stopncii.records import (
    ACTIVE_STATUSES,
    ENTRY_STATUS_FOR_CASE_STATUS,
    FEEDBACK_FOR_VERDICT,
    SIGNAL_TYPE_FOR_ALGORITHM,
    VERDICT_FOR_FEEDBACK,
    CSPFeedback,
    FeedbackValue,
    HashRecord,
    RecordError,
    record_for_entry,
)
from exchange.stopncii.store import StateFile
from exchange.validation import ExchangeError
from hashing.banks import ImportRow, bank_get_or_create, bank_import_entries, bank_withdraw_entries
from hashing.models import Bank, BankChange, BankEntry
from moderation.models import Partner

logger = logging.getLogger(__name__)

# The reference client starts a first fetch at this timestamp (StopNCIIAPI.DEFAULT_START_TIME): everything.
FIRST_FETCH_TIMESTAMP = 10


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

    Our verdicts are the ``HashFeedback`` rows with no partner (``exchange.entries.feedback_record``);
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
