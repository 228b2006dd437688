"""Getting work onto the broker even when the broker is down.

A report is saved first; the processing task is sent to the broker after the transaction commits
(``intake._enqueue``). When the broker cannot be reached at that moment the report stays saved, the
person still gets their case number, and ``jobs.send_or_defer`` logs the failure (ids and the
exception class only, never personal data). The database itself is the outbox: a report with an
item not yet fetched, or with media not yet hashed, is unfinished work. :func:`outbox_sweep` (the beat
task ``moderation.tasks.outbox_sweep`` and ``manage.py sweep_outbox``) sends such reports again once
they are older than a grace period. Every task is idempotent, so a report sent twice (its first send
did reach the broker after all, or a worker already has it) changes nothing the second time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from moderation import jobs
from moderation.models import Media, Report, ReportedItem

logger = logging.getLogger(__name__)

def _unfinished(older_than: datetime) -> QuerySet[Report]:
    # One Q per condition pair, so both refer to the same item (a negated Q would exclude the whole report
    # when any of its items is an upload, whose location is empty).
    waiting = Q(items__state=ReportedItem.State.PENDING, items__location__gt="")
    waiting |= Q(items__media__status=Media.Status.PENDING)
    return (Report.objects.filter(waiting, received_at__lt=older_than)
            .exclude(status__in=(Report.Status.NEEDS_INFORMATION, Report.Status.WITHDRAWN)))


def unfinished_reports(*, older_than: datetime) -> list[int]:
    """Ids of reports received before ``older_than`` whose processing has not finished: an item still
    waiting to be fetched from the platform, or media still waiting to be hashed."""
    return sorted(set(_unfinished(older_than).values_list("id", flat=True)))


def unfinished_report_count(*, older_than: datetime) -> int:
    """How many :func:`unfinished_reports` there are, in one counting query (the backlog on /metrics)."""
    return _unfinished(older_than).values("id").distinct().count()


def outbox_sweep(*, grace_seconds: int | None = None, now: datetime | None = None) -> list[int]:
    """Send every unfinished report older than the grace period to the broker again. Returns their ids.

    The grace period (``TAKEDOWN_OUTBOX_GRACE_SECONDS``) leaves fresh reports to the normal path.
    Stops at the first broker error (it is still down; the next sweep tries again).
    """
    grace = settings.TAKEDOWN_OUTBOX_GRACE_SECONDS if grace_seconds is None else grace_seconds
    cutoff = (now or timezone.now()) - timedelta(seconds=grace)
    sent: list[int] = []
    for report_id in unfinished_reports(older_than=cutoff):
        if not jobs.report_process(report_id):
            break
        sent.append(report_id)
    if sent:
        logger.info("outbox sweep: sent %d unfinished reports to the broker again", len(sent))
    return sent
