"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from moderation.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
SYSTEM = "system"


def actor_for_user(user: Any) -> str:
    """The audit actor string for a user (by id, never by email)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    return f"user:{user.pk}"


def event_hash(*, prev_hash: str, created_at: datetime, actor: str, action: str, object_type: str,
               object_id: str, data: dict[str, Any]) -> str:
    """SHA-256 over a canonical JSON encoding of the event and the previous event's hash."""
    payload = json.dumps(
        {
            "prev": prev_hash,
            "created_at": created_at.astimezone(UTC).isoformat(),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "data": data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
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


def audit_record(*, actor: str, action: str, object_type: str, object_id: object,
                 data: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the chain. Call inside the transaction that makes the change."""
    # Round-trip through JSON so the hash covers exactly what the database will give back.
    clean = json.loads(json.dumps(data or {}, sort_keys=True, default=str))
    with transaction.atomic():
        head = _locked_head()
        created_at = timezone.now()
        digest = event_hash(prev_hash=head.last_hash, created_at=created_at, actor=actor, action=action,
                            object_type=object_type, object_id=str(object_id), data=clean)
        event = AuditEvent.objects.create(
            created_at=created_at, actor=actor, action=action, object_type=object_type,
            object_id=str(object_id), data=clean, prev_hash=head.last_hash, hash=digest,
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
                                  object_id=event.object_id, data=event.data)
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
