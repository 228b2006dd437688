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

from django.db import IntegrityError, transaction
from django.utils import timezone

from moderation.models import AuditChainHead, AuditEvent

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
               reason: str = "", before: Any = None, after: Any = None) -> str:
    """SHA-256 over a canonical JSON encoding of the event and the previous event's hash.

    ``role``, ``source_ip``, ``reason``, ``before`` and ``after`` are in the encoding only when set, so
    events written before they existed hash exactly as they did; setting or clearing one on a stored
    event changes the encoding and so breaks the chain.
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
    optional = {"role": role, "source_ip": source_ip, "reason": reason, "before": before, "after": after}
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


def audit_record(*, actor: str, action: str, object_type: str, object_id: object,
                 data: dict[str, Any] | None = None, role: str | None = None, source_ip: str | None = None,
                 reason: str = "", before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the chain. Call inside the transaction that makes the change.

    ``role`` and ``source_ip`` default to those of the request being served when ``actor`` is its
    user (see ``audit_request_context``); events by the system or by anonymous reporters carry
    neither, so no reporter's IP address is ever kept.
    """
    from moderation.services.roles import role_of

    clean = _json_clean(data or {})
    context = _request_context.get()
    user = context.user if context is not None else None
    if user is not None and hasattr(user, "resolve"):
        user = user.resolve()
    if context is not None and user is not None and actor.startswith("user:") and actor == actor_for_user(user):
        role = role if role is not None else role_of(user)
        source_ip = source_ip if source_ip is not None else context.source_ip
    role = role or ""
    reason = reason[:200]
    before_clean, after_clean = _json_clean(before), _json_clean(after)
    with transaction.atomic():
        head = _locked_head()
        created_at = timezone.now()
        digest = event_hash(prev_hash=head.last_hash, created_at=created_at, actor=actor, action=action,
                            object_type=object_type, object_id=str(object_id), data=clean, role=role,
                            source_ip=source_ip, reason=reason, before=before_clean, after=after_clean)
        event = AuditEvent.objects.create(
            created_at=created_at, actor=actor, action=action, object_type=object_type,
            object_id=str(object_id), data=clean, role=role, source_ip=source_ip, reason=reason,
            before=before_clean, after=after_clean, prev_hash=head.last_hash, hash=digest,
        )
        head.last_hash = digest
        head.last_event_id = event.pk
        head.save(update_fields=["last_hash", "last_event_id"])
    return event


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
                                  after=event.after)
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
