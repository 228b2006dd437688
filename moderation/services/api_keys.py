"""API keys for the host platform, partners and notice senders (trusted flaggers, eSafety)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from moderation.audit import SYSTEM, audit_record
from moderation.models import ApiKey, Report
from moderation.security.secrets import hash_api_key, new_api_key

# The report sources a flagger key may file notices as (POST /api/v1/notices).
FLAGGER_SOURCES = (Report.Source.TRUSTED_FLAGGER, Report.Source.ESAFETY)


def api_key_create(*, kind: str, name: str, source: str = "", curation: bool = False,
                   actor: str = SYSTEM) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself, which is never shown again.

    A flagger key names the ``source`` its notices are filed as (trusted flagger or eSafety); its name is
    the sender's identity, recorded on each case it files. A platform key with ``curation`` may also change
    banks through the HMA-compatible curation routes (docs/hma.md).
    """
    if kind not in ApiKey.Kind.values:
        raise ValueError(f"Unknown key kind {kind!r}; use one of {', '.join(ApiKey.Kind.values)}.")
    if not name.strip():
        raise ValueError("Give the key a name, e.g. the platform it is for.")
    if kind == ApiKey.Kind.FLAGGER and source not in FLAGGER_SOURCES:
        raise ValueError(f"A flagger key needs --source, one of {', '.join(FLAGGER_SOURCES)}.")
    if kind != ApiKey.Kind.FLAGGER and source:
        raise ValueError("Only flagger keys have a source.")
    if curation and kind != ApiKey.Kind.PLATFORM:
        raise ValueError("Only platform keys may curate banks (--curation).")
    prefix, key = new_api_key()
    with transaction.atomic():
        row = ApiKey.objects.create(kind=kind, name=name.strip(), prefix=prefix, key_hash=hash_api_key(key),
                                    source=source, curation=curation)
        audit_record(actor=actor, action="api_key.created", object_type="api_key", object_id=row.pk,
                     data={"kind": kind, "name": row.name, "prefix": prefix, "source": source,
                           "curation": curation})
    return row, key


def api_key_revoke(*, prefix: str, actor: str = SYSTEM) -> ApiKey:
    """Revoke the active key whose prefix (``td_<prefix>_...``) is ``prefix``; audited.

    This process refuses the key at once; every other web process within ``TAKEDOWN_API_KEY_CACHE_SECONDS``.
    Raises ``ValueError`` saying what is wrong (no such key, or revoked already).
    """
    prefix = prefix.strip().removeprefix("td_").split("_")[0]
    with transaction.atomic():
        row = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if row is None:
            raise ValueError(f"No API key has the prefix {prefix!r}; the prefix is the part after td_ "
                             "(create_api_key printed it).")
        if row.revoked_at is not None:
            raise ValueError(f"The key {row.name!r} ({prefix}) was revoked already, "
                             f"on {row.revoked_at:%Y-%m-%d %H:%M} UTC.")
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_key.revoked", object_type="api_key", object_id=row.pk,
                     data={"kind": row.kind, "name": row.name, "prefix": prefix})
    api_key_forget({row.pk})
    return row


# ``last_used_at`` is kept to this resolution: one UPDATE per key per minute, not one per request (a busy
# platform key would otherwise serialise every scan on one row lock).
LAST_USED_RESOLUTION = timedelta(seconds=60)


class _KeyCache:
    """Keys found valid in this process, trusted for ``TAKEDOWN_API_KEY_CACHE_SECONDS`` without asking the
    database again. A busy platform key would otherwise cost a query on every scan; a revoked key is refused
    by every process within that time (at once by the process that revoked it, see :func:`api_key_forget`).
    Only valid keys are kept, by their hash, and at most ``_MAX`` of them."""

    _MAX = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], tuple[float, ApiKey]] = {}

    def get(self, digest: str, kind: str, ttl: float) -> ApiKey | None:
        with self._lock:
            hit = self._rows.get((digest, kind))
        if hit is None or _clock() - hit[0] >= ttl:
            return None
        return hit[1]

    def put(self, digest: str, kind: str, row: ApiKey) -> None:
        with self._lock:
            if len(self._rows) >= self._MAX:
                self._rows.clear()
            self._rows[(digest, kind)] = (_clock(), row)

    def forget(self, key_ids: set[int] | None = None) -> None:
        with self._lock:
            if key_ids is None:
                self._rows.clear()
            else:
                self._rows = {k: v for k, v in self._rows.items() if v[1].pk not in key_ids}


_key_cache = _KeyCache()
_clock = time.monotonic  # tests move it forward


def api_key_forget(key_ids: set[int] | None = None) -> None:
    """Drop these keys (all, with None) from this process's cache: call after revoking one."""
    _key_cache.forget(key_ids)


def api_key_authenticate(key: str, *, kind: str) -> ApiKey | None:
    """The active key of this kind matching ``key``, or None. Records when it was last used, to the minute.

    A key found valid is not looked up again in this process for ``TAKEDOWN_API_KEY_CACHE_SECONDS``.
    """
    digest = hash_api_key(key.strip())
    ttl = float(settings.TAKEDOWN_API_KEY_CACHE_SECONDS)
    if ttl > 0 and (cached := _key_cache.get(digest, kind, ttl)) is not None:
        return cached
    row = ApiKey.objects.filter(key_hash=digest, kind=kind, revoked_at=None).first()
    if row is not None:
        now = timezone.now()
        stale = now - LAST_USED_RESOLUTION
        if row.last_used_at is None or row.last_used_at <= stale:
            # Conditional, so concurrent requests that all read an old value write it only once.
            ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=row.pk).update(
                last_used_at=now)
            row.last_used_at = now
        if ttl > 0:
            _key_cache.put(digest, kind, row)
    return row
