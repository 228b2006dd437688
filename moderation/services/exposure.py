"""Moderator wellness: exposure (media revealed today, the optional daily cap) and display preferences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from moderation.audit import actor_for_user, audit_record
from moderation.models import ConsolePreference, Media, MediaExposure, ReviewTask
from moderation.models.console import MAX_BLUR_PX
from moderation.roles import PERM_VIEW_MEDIA, PERM_VIEW_QUEUE, PERM_VIEW_TEAM_EXPOSURE, require
from moderation.selectors.case import withheld_media_ids


class ExposureCapReached(Exception):
    """The moderator has revealed as many media items today as the daily cap allows."""


class MediaWithheld(Exception):
    """The media belongs to a case handed to the child-safety procedure; nobody reveals it here."""


def today() -> date:
    return timezone.localdate()


def exposure_today(*, user: Any) -> int:
    """Distinct media items ``user`` revealed today."""
    return MediaExposure.objects.filter(user=user, day=today()).count()


def exposure_record(*, user: Any, media_id: int, task_id: int | None = None) -> int:
    """Record that ``user`` revealed a media item; returns today's count.

    Revealing the same item again the same day counts once. With ``TAKEDOWN_EXPOSURE_DAILY_CAP`` set,
    a new item beyond the cap raises ``ExposureCapReached``.
    """
    require(user, PERM_VIEW_MEDIA, "see reported media")
    if media_id in withheld_media_ids([media_id]):
        raise MediaWithheld("This media is withheld: the case was handed to the child-safety procedure.")
    media = Media.objects.get(pk=media_id)
    task = ReviewTask.objects.filter(pk=task_id).first() if task_id else None
    day = today()
    cap = settings.TAKEDOWN_EXPOSURE_DAILY_CAP
    with transaction.atomic():
        if MediaExposure.objects.filter(user=user, media=media, day=day).exists():
            return exposure_today(user=user)
        count = exposure_today(user=user)
        if cap and count >= cap:
            raise ExposureCapReached(f"You have revealed {count} media items today, the daily limit. "
                                     "Take a break; a lead can take over cases that need viewing.")
        try:
            with transaction.atomic():
                MediaExposure.objects.create(user=user, media=media, task=task, day=day, revealed_at=timezone.now())
        except IntegrityError:
            return exposure_today(user=user)  # a second tab revealed it at the same moment
        audit_record(actor=actor_for_user(user), action="media.revealed", object_type="media", object_id=media.pk,
                     data={"task": task.pk if task else None})
    return count + 1


@dataclass(frozen=True)
class ExposureRow:
    username: str
    revealed: int


def exposure_team(*, user: Any, day: date | None = None) -> list[ExposureRow]:
    """Every moderator's count for ``day`` (leads only)."""
    require(user, PERM_VIEW_TEAM_EXPOSURE, "see other moderators' exposure")
    rows = (MediaExposure.objects.filter(day=day or today()).values("user__username")
            .annotate(n=Count("id")).order_by("-n", "user__username"))
    return [ExposureRow(r["user__username"], r["n"]) for r in rows]


def preference_save(*, user: Any, blur_px: int, greyscale: bool, video_autoplay: bool,
                    reveal_mode: str) -> ConsolePreference:
    """Store how ``user`` wants media concealed (one row per user)."""
    require(user, PERM_VIEW_QUEUE, "use the console")
    if not 0 <= blur_px <= MAX_BLUR_PX:
        raise ValueError(f"blur_px: use a blur between 0 and {MAX_BLUR_PX} pixels.")
    if reveal_mode not in ConsolePreference.RevealMode.values:
        raise ValueError(f"reveal_mode: use one of {', '.join(ConsolePreference.RevealMode.values)}.")
    pref, _ = ConsolePreference.objects.update_or_create(user=user, defaults={
        "blur_px": blur_px, "greyscale": greyscale, "video_autoplay": video_autoplay, "reveal_mode": reveal_mode})
    return pref
