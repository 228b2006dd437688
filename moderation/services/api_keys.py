"""API keys for the host platform and partners."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from moderation.models import ApiKey
from moderation.services.audit import SYSTEM, audit_record
from moderation.services.secrets import hash_api_key, new_api_key


def api_key_create(*, kind: str, name: str, actor: str = SYSTEM) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself, which is never shown again."""
    if kind not in ApiKey.Kind.values:
        raise ValueError(f"Unknown key kind {kind!r}; use one of {', '.join(ApiKey.Kind.values)}.")
    if not name.strip():
        raise ValueError("Give the key a name, e.g. the platform it is for.")
    prefix, key = new_api_key()
    with transaction.atomic():
        row = ApiKey.objects.create(kind=kind, name=name.strip(), prefix=prefix, key_hash=hash_api_key(key))
        audit_record(actor=actor, action="api_key.created", object_type="api_key", object_id=row.pk,
                     data={"kind": kind, "name": row.name, "prefix": prefix})
    return row, key


def api_key_authenticate(key: str, *, kind: str) -> ApiKey | None:
    """The active key of this kind matching ``key``, or None."""
    row = ApiKey.objects.filter(key_hash=hash_api_key(key.strip()), kind=kind, revoked_at=None).first()
    if row is not None:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row
