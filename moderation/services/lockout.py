"""Rate limits and lockout for case-number + PIN lookups (web status form and the status API).

Failures are counted in Django's cache per case number and per client address. After
``TAKEDOWN_PIN_MAX_FAILURES`` failures within ``TAKEDOWN_PIN_WINDOW_SECONDS`` further lookups for that
case (or from that address) are refused for ``TAKEDOWN_PIN_LOCKOUT_SECONDS``, right PIN or not, so
guessing gains nothing. A successful lookup clears the case's counter. Keys hold digests, not codes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from moderation.audit import SYSTEM, audit_record
from moderation.models import Report
from moderation.security.secrets import normalise_code
from moderation.selectors import reporter as reporter_selectors


class LookupLocked(Exception):
    """Too many failed lookups; ``retry_after`` seconds until the next try is allowed."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(_("Too many attempts. Please wait %(minutes)d minutes and try again.")
                         % {"minutes": max(1, retry_after // 60)})


@dataclass(frozen=True)
class _Keys:
    fails: str
    locked: str


def _keys(kind: str, value: str) -> _Keys:
    digest = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]
    return _Keys(fails=f"pinlookup:fails:{digest}", locked=f"pinlookup:locked:{digest}")


def _subjects(case_number: str, client: str) -> list[_Keys]:
    return [_keys("case", normalise_code(case_number)), _keys("client", client or "unknown")]


def report_lookup_limited(*, case_number: str, pin: str, client: str) -> Report | None:
    """The report for a right case number and PIN; None for a wrong pair; ``LookupLocked`` when locked out."""
    subjects = _subjects(case_number, client)
    for keys in subjects:
        if cache.get(keys.locked):
            raise LookupLocked(settings.TAKEDOWN_PIN_LOCKOUT_SECONDS)
    report = reporter_selectors.report_lookup(case_number, pin)
    if report is not None:
        cache.delete(subjects[0].fails)
        return report
    for keys in subjects:
        cache.add(keys.fails, 0, timeout=settings.TAKEDOWN_PIN_WINDOW_SECONDS)
        try:
            failures = cache.incr(keys.fails)
        except ValueError:  # expired between add and incr
            cache.set(keys.fails, 1, timeout=settings.TAKEDOWN_PIN_WINDOW_SECONDS)
            failures = 1
        if failures >= settings.TAKEDOWN_PIN_MAX_FAILURES:
            cache.set(keys.locked, 1, timeout=settings.TAKEDOWN_PIN_LOCKOUT_SECONDS)
            cache.delete(keys.fails)
            audit_record(actor=SYSTEM, action="lookup.locked", object_type="lookup", object_id=keys.locked[-12:],
                         data={"failures": failures})
    return None
