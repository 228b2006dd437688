"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from moderation.models import AuditChainHead, AuditEvent
from moderation.observability.request_id import request_id_get
from moderation.roles import role_of

GENESIS_HASH = "0" * 64
SYSTEM = "system"


@dataclass(frozen=True)
class RequestContext:
    """Who is acting, from where: set per request by ``AuditContextMiddleware``.

    ``user`` may be an object with ``resolve()`` returning the user, read when an event is recorded.
    """

    user: Any
    source_ip: str | None


_request_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "takedown_audit_request", default=None)


@contextmanager
def audit_request_context(*, user: Any, source_ip: str | None) -> Iterator[None]:
    """Events recorded inside get the acting user's role and source IP without each service passing them."""
    token = _request_context.set(RequestContext(user=user, source_ip=source_ip))
    try:
        yield
    finally:
        _request_context.reset(token)


def actor_for_user(user: Any) -> str:
    """The audit actor string for a user (by id, never by email)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    return f"user:{user.pk}"


def event_hash(*, prev_hash: str, created_at: datetime, actor: str, action: str, object_type: str,
               object_id: str, data: dict[str, Any], role: str = "", source_ip: str | None = None,
               reason: str = "", before: Any = None, after: Any = None, request_id: str | None = None) -> str:
    """SHA-256 over a canonical JSON encoding of the event and the previous event's hash.

    ``role``, ``source_ip``, ``reason``, ``before``, ``after`` and ``request_id`` are in the encoding only
    when set, so events written before they existed hash exactly as they did; setting or clearing one on a
    stored event changes the encoding and so breaks the chain.
    """
    content: dict[str, Any] = {
        "prev": prev_hash,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "data": data,
    }
    optional = {"role": role, "source_ip": source_ip, "reason": reason, "before": before, "after": after,
                "request_id": request_id}
    content.update({key: value for key, value in optional.items() if value not in (None, "")})
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _locked_head() -> AuditChainHead:
    try:
        return AuditChainHead.objects.select_for_update().get(pk=1)
    except AuditChainHead.DoesNotExist:
        try:
            with transaction.atomic():
                AuditChainHead.objects.create(pk=1, last_hash=GENESIS_HASH, last_event_id=0)
        except IntegrityError:
            pass  # another writer created it first; lock theirs
        return AuditChainHead.objects.select_for_update().get(pk=1)


def _json_clean(value: Any) -> Any:
    # Round-trip through JSON so the hash covers exactly what the database will give back.
    return None if value is None else json.loads(json.dumps(value, sort_keys=True, default=str))


@dataclass(frozen=True)
class _Event:
    actor: str
    action: str
    object_type: str
    object_id: str
    data: dict[str, Any]
    role: str
    source_ip: str | None
    reason: str
    before: Any
    after: Any
    request_id: str | None


# Events recorded inside ``audit_batch``, appended when it ends; None outside one.
_batch: contextvars.ContextVar[list[_Event] | None] = contextvars.ContextVar("takedown_audit_batch", default=None)


def audit_record(*, actor: str, action: str, object_type: str, object_id: object,
                 data: dict[str, Any] | None = None, role: str | None = None, source_ip: str | None = None,
                 reason: str = "", before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the chain. Call inside the transaction that makes the change.

    ``role`` and ``source_ip`` default to those of the request being served when ``actor`` is its
    user (see ``audit_request_context``); events by the system or by anonymous reporters carry
    neither, so no reporter's IP address is ever kept. Every event carries the id of the request (or of the
    request whose task records it) that caused it, when there is one (``observability.request_id``). Inside
    :func:`audit_batch` the event is appended when the batch ends, and the event returned is not saved yet.
    """
    clean = _json_clean(data or {})
    context = _request_context.get()
    user = context.user if context is not None else None
    if user is not None and hasattr(user, "resolve"):
        user = user.resolve()
    if context is not None and user is not None and actor.startswith("user:") and actor == actor_for_user(user):
        role = role if role is not None else role_of(user)
        source_ip = source_ip if source_ip is not None else context.source_ip
    event = _Event(actor=actor, action=action, object_type=object_type, object_id=str(object_id), data=clean,
                   role=role or "", source_ip=source_ip, reason=reason[:200], before=_json_clean(before),
                   after=_json_clean(after), request_id=request_id_get())
    batch = _batch.get()
    if batch is not None:
        batch.append(event)
        return _unsaved(event, prev_hash="", digest="", created_at=timezone.now())
    return _append([event])[0]


@contextmanager
def audit_batch() -> Iterator[None]:
    """Events recorded inside are appended together when the block ends, in the order recorded.

    The chain head's row lock serialises every writer from the moment it is taken to the commit. Inside a
    batch it is taken once, at the end of the block, for one insert of all the events and one update of
    the head, instead of at the first event. Use it inside the transaction that makes the change, around
    the code that records the events. If the block raises, nothing is appended. A batch inside a batch
    joins the outer one.
    """
    if _batch.get() is not None:
        yield
        return
    events: list[_Event] = []
    token = _batch.set(events)
    try:
        yield
    finally:
        _batch.reset(token)
    if events:
        _append(events)


def _unsaved(event: _Event, *, prev_hash: str, digest: str, created_at: datetime) -> AuditEvent:
    return AuditEvent(created_at=created_at, actor=event.actor, action=event.action,
                      object_type=event.object_type, object_id=event.object_id, data=event.data, role=event.role,
                      source_ip=event.source_ip, reason=event.reason, before=event.before, after=event.after,
                      request_id=event.request_id, prev_hash=prev_hash, hash=digest)


def _append(events: list[_Event]) -> list[AuditEvent]:
    """Link ``events`` to the chain in order: one lock of the head, one insert, one update.

    Inside the caller's transaction (no savepoint: an error here rolls the whole change back, as it
    must); in a transaction of its own otherwise. The head is read and written in plain SQL: every change
    in the system passes here, and building the ORM queries cost more than running them.
    """
    table = AuditChainHead._meta.db_table
    with transaction.atomic(savepoint=False):
        prev = _locked_head_hash(table)
        rows: list[AuditEvent] = []
        for event in events:
            created_at = timezone.now()
            digest = event_hash(prev_hash=prev, created_at=created_at, actor=event.actor, action=event.action,
                                object_type=event.object_type, object_id=event.object_id, data=event.data,
                                role=event.role, source_ip=event.source_ip, reason=event.reason,
                                before=event.before, after=event.after, request_id=event.request_id)
            rows.append(_unsaved(event, prev_hash=prev, digest=digest, created_at=created_at))
            prev = digest
        if len(rows) == 1:
            rows[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(rows)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET last_hash = %s, last_event_id = %s WHERE id = 1",  # noqa: S608
                           [prev, rows[-1].pk])
    return rows


def _locked_head_hash(table: str) -> str:
    """The chain head's hash, its row locked until the transaction ends (created at genesis if missing).
    SQLite has no row locks: its transactions take the write lock up front (settings: IMMEDIATE)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_hash FROM {table} WHERE id = 1{lock}")  # noqa: S608
        row = cursor.fetchone()
    return str(row[0]) if row is not None else _locked_head().last_hash


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    events_checked: int
    first_broken_id: int | None = None
    problem: str = ""


def audit_verify(*, batch_size: int = 2000) -> ChainVerification:
    """Recompute the whole chain; report the first event whose hash or link does not hold."""
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            break
        for event in batch:
            if event.prev_hash != prev:
                return ChainVerification(False, checked, event.pk,
                                         "its prev_hash does not equal the previous event's hash "
                                         "(an event before it was removed or rewritten)")
            expected = event_hash(prev_hash=event.prev_hash, created_at=event.created_at, actor=event.actor,
                                  action=event.action, object_type=event.object_type,
                                  object_id=event.object_id, data=event.data, role=event.role,
                                  source_ip=event.source_ip, reason=event.reason, before=event.before,
                                  after=event.after, request_id=event.request_id)
            if expected != event.hash:
                return ChainVerification(False, checked, event.pk, "its content does not match its hash")
            prev = event.hash
            checked += 1
            last_id = event.pk
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.last_hash != prev:
        return ChainVerification(False, checked, head.last_event_id or None,
                                 "the chain head names an event that is missing (the newest events were removed)")
    return ChainVerification(True, checked)
