"""Retention: media files are deleted a configurable number of days after their case closes.

LEGAL.md (practice): keep as little as possible; purge media when a case closes and its retention period
ends. Hashes (``MediaHash``), bank entries and the audit log are kept: they let copies be found and show
an auditor what happened, without the images. Media still named by a case that is open, or closed
more recently, is kept until every case naming it is past retention.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from moderation.audit import SYSTEM, audit_record
from moderation.models import Media, Report

CLOSED_STATUSES = (Report.Status.REMOVED, Report.Status.NO_VIOLATION, Report.Status.WITHDRAWN,
                   Report.Status.RESTORED)


@dataclass
class PurgeResult:
    reports: list[str] = field(default_factory=list)
    media_purged: int = 0


def media_purge(*, now: datetime | None = None, days: int | None = None, dry_run: bool = False) -> PurgeResult:
    """Delete the files of media whose every case closed more than ``days`` ago. ``now`` allows time travel."""
    now = now or timezone.now()
    days = settings.TAKEDOWN_MEDIA_RETENTION_DAYS if days is None else days
    cutoff = now - timedelta(days=days)
    result = PurgeResult()
    due = Report.objects.filter(status__in=CLOSED_STATUSES, closed_at__lte=cutoff, media_purged_at__isnull=True)
    for report in due.order_by("closed_at"):
        media = Media.objects.filter(reported_items__report=report).exclude(file="").distinct()
        purgeable = [m for m in media if not _still_needed(m, cutoff)]
        if dry_run:
            result.reports.append(report.case_number)
            result.media_purged += len(purgeable)
            continue
        with transaction.atomic():
            for item in purgeable:
                name = item.file.name or ""
                Media.objects.filter(pk=item.pk).update(file="")
                transaction.on_commit(functools.partial(_delete_file, name))
            still = Media.objects.filter(reported_items__report=report).exclude(file="").exists()
            if not still:
                Report.objects.filter(pk=report.pk).update(media_purged_at=now)
            audit_record(actor=SYSTEM, action="media.purged", object_type="report", object_id=report.pk,
                         data={"media": [m.pk for m in purgeable], "retention_days": days, "complete": not still})
        result.reports.append(report.case_number)
        result.media_purged += len(purgeable)
    return result


def _still_needed(media: Media, cutoff: datetime) -> bool:
    """True while another case naming this media is open or closed after the cutoff."""
    return Report.objects.filter(items__media=media).filter(
        ~Q(status__in=CLOSED_STATUSES) | Q(closed_at__isnull=True) | Q(closed_at__gt=cutoff)).exists()


def _delete_file(name: str) -> None:
    if name and default_storage.exists(name):
        default_storage.delete(name)
