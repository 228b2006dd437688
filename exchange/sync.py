"""The sync client: pull each remote Takedown instance's feed into a local bank, push our feedback back.

Each page is verified against the remote's pinned public key, then applied and the checkpoint (the
remote's cursor) moved in ONE transaction: a sync killed at any point resumes from the last applied page,
with no record applied twice into a different state and none skipped. Applying goes through
``hashing.banks`` so ``BankChange`` rows are written and matchers pick the entries up.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exchange.entries import hash_rows_apply
from exchange.models import HashFeedback, Remote
from exchange.signing import SIGNATURE_HEADER, sign, verify
from exchange.validation import ExchangeError, parse_hash_rows, signature_rejected
from moderation import http
from moderation.audit import SYSTEM, audit_record

logger = logging.getLogger(__name__)

FEEDBACK_BATCH_ROWS = 1000


class SyncError(Exception):
    """A remote could not be synced; the message says why (never the key)."""


class PageRejected(SyncError):
    """A page whose signature did not verify against the remote's pinned key: nothing of it was applied."""


@dataclass
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str]


# (method, url, body, headers) -> answer; tests and the benchmark may pass their own.
Transport = Callable[[str, str, bytes | None, dict[str, str]], HttpAnswer]

# A page holds at most a remote's page size of records (a few hundred bytes each), signed as a whole.
MAX_ANSWER_BYTES = 32 * http.MIB
# Within one sync: 4 tries on connection errors, 5xx, 408 and 429, waits of about 0.5, 1, 2 s (jittered),
# Retry-After honoured up to 60 s; then the remote's error is recorded and the next beat run tries again.
SYNC_RETRY = http.Retry(attempts=4, wait_initial=0.5, wait_max=30.0)


def http_transport(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> HttpAnswer:
    """The default transport: the one HTTP client (``moderation/http.py``), retried in-process. Any answer
    with a status comes back as an :class:`HttpAnswer` for the caller to judge; no answer is a SyncError."""
    timeout = float(settings.TAKEDOWN_EXCHANGE_TIMEOUT_SECONDS)
    client = http.HttpClient(purpose="exchange-sync", retry=SYNC_RETRY, max_bytes=MAX_ANSWER_BYTES,
                             timeouts=http.Timeouts(connect=min(timeout, 10.0), read=timeout, total=4 * timeout))
    try:
        answer = client.request(method, url, headers=headers, content=body)
    except http.StatusError as exc:
        answer = exc.response
    except http.BadUrl as exc:
        raise SyncError(f"remote URL must be http(s) with a host: {exc}") from exc
    except http.Unreachable as exc:
        raise SyncError(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {exc.reason}") from exc
    except http.HttpError as exc:
        raise SyncError(str(exc)) from exc  # an answer too long: it names the remote
    return HttpAnswer(answer.status, answer.body, dict(answer.headers))


@dataclass
class SyncResult:
    pages: int = 0
    records: int = 0
    added: int = 0
    withdrawn: int = 0
    feedback_pushed: int = 0
    complete: bool = False


def _url(remote: Remote, path: str) -> str:
    return remote.base_url.rstrip("/") + "/api/v1/exchange/" + path


def _headers(remote: Remote) -> dict[str, str]:
    return {"Authorization": f"Api-Key {remote.api_key}", "Accept": "application/json"}


def _error_detail(answer: HttpAnswer) -> str:
    try:
        return str(json.loads(answer.body).get("detail", ""))[:200]
    except (ValueError, AttributeError):
        return ""


def sync_remote(remote: Remote, *, max_pages: int | None = None, transport: Transport = http_transport,
                push_feedback: bool = True) -> SyncResult:
    """Pull ``remote``'s feed from its checkpoint until it has no more (or ``max_pages``), then push our
    feedback on its hashes. Raises :class:`SyncError` (:class:`PageRejected` for a bad signature)."""
    result = SyncResult()
    try:
        while max_pages is None or result.pages < max_pages:
            cursor = Remote.objects.values_list("cursor", flat=True).get(pk=remote.pk)
            query = urllib.parse.urlencode({"cursor": cursor, "limit": remote.page_size})
            answer = transport("GET", _url(remote, "hashes") + "?" + query, None, _headers(remote))
            if answer.status != 200:
                raise SyncError(f"the remote answered {answer.status} {_error_detail(answer)}".strip())
            if not verify(answer.body, answer.headers.get(SIGNATURE_HEADER.lower()), [remote.public_key]):
                signature_rejected(partner=remote.partner, what="page",
                                   detail={"remote": remote.base_url, "signed": SIGNATURE_HEADER.lower()
                                           in answer.headers})
                raise PageRejected("a page from the remote is unsigned or its signature does not verify against "
                                   "the pinned public key; nothing of it was applied")
            page = _parse_page(answer.body)
            _apply_page(remote, cursor, page)
            result.pages += 1
            result.records += len(page["records"])
            if not page["has_more"]:
                result.complete = True
                break
        if push_feedback and (result.complete or max_pages is None):
            result.feedback_pushed = push_remote_feedback(remote, transport=transport)
    except SyncError as exc:
        Remote.objects.filter(pk=remote.pk).update(last_error=str(exc)[:500])
        raise
    Remote.objects.filter(pk=remote.pk).update(last_error="", last_synced_at=timezone.now())
    return result


def _parse_page(body: bytes) -> dict[str, Any]:
    try:
        page = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SyncError("the remote's page is not JSON") from exc
    if (not isinstance(page, dict) or not isinstance(page.get("records"), list)
            or not isinstance(page.get("next_cursor"), str) or not isinstance(page.get("has_more"), bool)):
        raise SyncError("the remote's page lacks records, next_cursor or has_more")
    return page


def _apply_page(remote: Remote, cursor: str, page: dict[str, Any]) -> None:
    """Apply one verified page and move the checkpoint, in one transaction; a concurrent sync of the same
    remote that moved the checkpoint first makes this one stop without applying."""
    try:
        rows = parse_hash_rows(page["records"], field_name="records")
    except ExchangeError as exc:
        raise SyncError(f"the remote's page has bad records: {exc}"[:500]) from exc
    with transaction.atomic():
        locked = Remote.objects.select_for_update().select_related("bank", "partner").get(pk=remote.pk)
        if locked.cursor != cursor:
            raise SyncError("another sync of this remote moved its checkpoint; this one stopped")
        applied = hash_rows_apply(bank=locked.bank, rows=rows, partner=locked.partner)
        locked.cursor = page["next_cursor"]
        locked.records_applied += len(rows)
        locked.save(update_fields=["cursor", "records_applied"])
        if applied.added or applied.withdrawn:
            audit_record(actor=SYSTEM, action="exchange.page_applied", object_type="bank", object_id=locked.bank.pk,
                         data={"remote": locked.partner.name, "records": len(rows), "added": applied.added,
                               "withdrawn": applied.withdrawn})


def push_remote_feedback(remote: Remote, *, transport: Transport = http_transport) -> int:
    """Send our own verdicts on the remote's hashes (changed since the last push), signed. Returns how many."""
    since = Remote.objects.values_list("feedback_pushed_until", flat=True).get(pk=remote.pk)
    rows = HashFeedback.objects.filter(partner=None, entry__bank=remote.bank).select_related("entry")
    if since is not None:
        rows = rows.filter(updated_at__gte=since)  # >=: a verdict saved in the same instant is sent again, harmlessly
    pushed = 0
    batch: list[HashFeedback] = []
    for feedback in rows.order_by("updated_at", "id").iterator():
        batch.append(feedback)
        if len(batch) >= FEEDBACK_BATCH_ROWS:
            pushed += _push_feedback_batch(remote, batch, transport)
            batch = []
    if batch:
        pushed += _push_feedback_batch(remote, batch, transport)
    return pushed


def _push_feedback_batch(remote: Remote, batch: list[HashFeedback], transport: Transport) -> int:
    body = json.dumps({"feedback": [{"signal_type": f.entry.algorithm, "value": f.entry.value, "verdict": f.verdict,
                                     "tags": f.tags} for f in batch]}, separators=(",", ":")).encode()
    headers = {**_headers(remote), "Content-Type": "application/json", SIGNATURE_HEADER: sign(body)}
    answer = transport("POST", _url(remote, "feedback"), body, headers)
    if answer.status != 200:
        raise SyncError(f"the remote refused our feedback: {answer.status} {_error_detail(answer)}".strip())
    Remote.objects.filter(pk=remote.pk).update(feedback_pushed_until=batch[-1].updated_at)
    return len(batch)


def sync_all(*, names: list[str] | None = None, max_pages: int | None = None) -> dict[str, SyncResult | str]:
    """Sync every enabled remote (or those named); one remote's failure does not stop the others."""
    remotes = Remote.objects.filter(enabled=True, partner__enabled=True).select_related("partner", "bank")
    if names:
        remotes = remotes.filter(partner__name__in=names)
    outcome: dict[str, SyncResult | str] = {}
    for remote in remotes.order_by("partner__name"):
        try:
            outcome[remote.partner.name] = sync_remote(remote, max_pages=max_pages)
        except SyncError as exc:
            logger.warning("sync of remote %s failed: %s", remote.partner.name, exc)
            outcome[remote.partner.name] = str(exc)
    return outcome
