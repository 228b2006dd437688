"""Muted reporters: a senior mutes an address that files abusive or bad-faith reports.

A muted address's reports are still stored and acknowledged (the law requires it); routing sends them to the
low-priority queue (the seeded "Muted reporters" rule). The address itself is never stored: only an HMAC of
the lower-cased address keyed with the project's secret key, so a leaked table names nobody. Rotating
``SECRET_KEY`` (without keeping the old key in ``SECRET_KEY_FALLBACKS``) unmutes every address.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.crypto import salted_hmac

from moderation.audit import actor_for_user, audit_record
from moderation.models import Report, ReporterMute
from moderation.roles import PERM_SECOND_REVIEW, require

_SALT = "takedown.reporter-mute"
REASON_MAX_CHARS = 2000


class MuteError(ValueError):
    """The mute cannot be made as asked; the message says what to change."""


def email_hash(email: str, *, secret: str | bytes | None = None) -> str:
    """The keyed hash of a reporter address as stored (lower-cased, surrounding spaces dropped)."""
    return salted_hmac(_SALT, email.strip().lower(), secret=secret, algorithm="sha256").hexdigest()


def _hashes(email: str) -> list[str]:
    # The current key first; a mute made under a key kept in SECRET_KEY_FALLBACKS still holds.
    return [email_hash(email), *(email_hash(email, secret=old) for old in settings.SECRET_KEY_FALLBACKS)]


def mute_lookup(email: str) -> QuerySet[ReporterMute]:
    """The mutes of ``email`` (none or one), as a queryset to test or to use in a subquery."""
    return ReporterMute.objects.filter(email_hash__in=_hashes(email))


def reporter_is_muted(email: str) -> bool:
    return mute_lookup(email).exists()


def reporter_mute_for_case(*, user: Any, task_id: int, reason: str) -> ReporterMute:
    """Mute the address that filed this case, without showing it to the senior who mutes it."""
    require(user, PERM_SECOND_REVIEW, "mute reporters")
    report = Report.objects.filter(tasks__pk=task_id).only("reporter_email").first()
    if report is None or not report.reporter_email:
        raise MuteError("This case has no reporter address to mute (filed in the platform's app or found by "
                        "scanning).")
    return reporter_mute(user=user, email=report.reporter_email, reason=reason, task_id=task_id)


def reporter_mute(*, user: Any, email: str, reason: str, task_id: int | None = None) -> ReporterMute:
    """Mute ``email`` (senior moderators). Muting an address again keeps the first mute."""
    require(user, PERM_SECOND_REVIEW, "mute reporters")
    address, why = email.strip(), reason.strip()
    if "@" not in address:
        raise MuteError("Give the reporter's email address.")
    if not why:
        raise MuteError("Say why the reporter is muted: the reason is kept in the audit log.")
    if len(why) > REASON_MAX_CHARS:
        raise MuteError(f"Keep the reason under {REASON_MAX_CHARS} characters.")
    with transaction.atomic():
        mute, created = ReporterMute.objects.get_or_create(email_hash=email_hash(address),
                                                           defaults={"reason": why, "muted_by": user})
        if created:
            audit_record(actor=actor_for_user(user), action="reporter.muted", object_type="reporter_mute",
                         object_id=mute.pk, reason=why, data={"task": task_id} if task_id else None)
    return mute


def reporter_unmute(*, user: Any, mute_id: int) -> bool:
    """Lift a mute (senior moderators): new reports from the address are routed as anyone's again. Returns
    False when there was no such mute (already lifted)."""
    require(user, PERM_SECOND_REVIEW, "unmute reporters")
    with transaction.atomic():
        mute = ReporterMute.objects.select_for_update().filter(pk=mute_id).first()
        if mute is None:
            return False
        audit_record(actor=actor_for_user(user), action="reporter.unmuted", object_type="reporter_mute",
                     object_id=mute.pk, before={"reason": mute.reason, "muted_by": mute.muted_by_id})
        mute.delete()
    return True
