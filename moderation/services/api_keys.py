"""API keys for the host platform, partners and notice senders (trusted flaggers, eSafety)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from moderation.models import ApiKey, Report
from moderation.services.audit import SYSTEM, audit_record
from moderation.services.secrets import hash_api_key, new_api_key

# The report sources a flagger key may file notices as (POST /api/v1/notices).
FLAGGER_SOURCES = (Report.Source.TRUSTED_FLAGGER, Report.Source.ESAFETY)


def api_key_create(*, kind: str, name: str, source: str = "", actor: str = SYSTEM) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself, which is never shown again.

    A flagger key names the ``source`` its notices are filed as (trusted flagger or eSafety); its name is
    the sender's identity, recorded on each case it files.
    """
    if kind not in ApiKey.Kind.values:
        raise ValueError(f"Unknown key kind {kind!r}; use one of {', '.join(ApiKey.Kind.values)}.")
    if not name.strip():
        raise ValueError("Give the key a name, e.g. the platform it is for.")
    if kind == ApiKey.Kind.FLAGGER and source not in FLAGGER_SOURCES:
        raise ValueError(f"A flagger key needs --source, one of {', '.join(FLAGGER_SOURCES)}.")
    if kind != ApiKey.Kind.FLAGGER and source:
        raise ValueError("Only flagger keys have a source.")
    prefix, key = new_api_key()
    with transaction.atomic():
        row = ApiKey.objects.create(kind=kind, name=name.strip(), prefix=prefix, key_hash=hash_api_key(key),
                                    source=source)
        audit_record(actor=actor, action="api_key.created", object_type="api_key", object_id=row.pk,
                     data={"kind": kind, "name": row.name, "prefix": prefix, "source": source})
    return row, key


# ``last_used_at`` is kept to this resolution: one UPDATE per key per minute, not one per request (a busy
# platform key would otherwise serialise every scan on one row lock).
LAST_USED_RESOLUTION = timedelta(seconds=60)


def api_key_authenticate(key: str, *, kind: str) -> ApiKey | None:
    """The active key of this kind matching ``key``, or None. Records when it was last used, to the minute."""
    row = ApiKey.objects.filter(key_hash=hash_api_key(key.strip()), kind=kind, revoked_at=None).first()
    if row is not None:
        now = timezone.now()
        stale = now - LAST_USED_RESOLUTION
        if row.last_used_at is None or row.last_used_at <= stale:
            # Conditional, so concurrent requests that all read an old value write it only once.
            ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=row.pk).update(
                last_used_at=now)
            row.last_used_at = now
    return row
