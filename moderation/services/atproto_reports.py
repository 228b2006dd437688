"""Reports filed inside an AT Protocol app become Takedown cases, and Takedown's decisions close them in Ozone.

A user who reports a post in the app (``com.atproto.moderation.createReport``, addressed to the operator's Ozone
moderation service) with one of the reason types of ``TAKEDOWN_ATPROTO_REPORT_REASONS`` — by default the NCII and
sexual deepfake reasons of the installed lexicons, ``tools.ozone.report.defs#reasonSexualNCII`` and
``#reasonSexualDeepfake``, and the older catch-all ``com.atproto.moderation.defs#reasonSexual`` — gets a case with
the legal clock (``TAKEDOWN_DEADLINE_HOURS_PLATFORM``), fetched, hashed, scored and triaged like a reported link.
:func:`ozone_reports_sync` does both halves on the beat (``moderation.tasks.atproto_reports_sync``):

- **pull**: Ozone's report events (``tools.ozone.moderation.queryEvents``) from where the last pull got to. The
  position kept (``StreamCursor`` ``ozone-reports:<did>``) is the newest report time seen; each pull reads again
  from a little before it (``OVERLAP``), since a report written while a page was being read may carry an
  earlier time, and Ozone's event id (``OzoneReport.event_id``, unique) makes reading one twice harmless.
  Several reports about one post join its open case.
- **resolve**: each case's reports, once the case is closed (taken down, closed without removal, withdrawn), are
  closed in Ozone: a takedown through the atproto enforcer closed them already (Ozone closes the review of a
  subject it takes down); otherwise an acknowledge event, whose comment names the case and its outcome.

Reports about a whole account, or about something other than a post, are left in Ozone for the team there:
Takedown acts on posts and their media.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from moderation import jobs
from moderation.audit import SYSTEM, audit_record
from moderation.models import Decision, OzoneReport, Report, ReportedItem, StreamCursor
from moderation.observability import events
from moderation.platforms.atproto import AtprotoPlatform, parse_post, parse_time
from moderation.platforms.base import LocationRejected
from moderation.services.intake import report_open_without_notice
from moderation.services.triage import task_create

logger = logging.getLogger(__name__)

REPORT_EVENT = "tools.ozone.moderation.defs#modEventReport"
OVERLAP = timedelta(minutes=5)
PAGE = 100
OPEN_STATES = (Report.Status.RECEIVED, Report.Status.IN_REVIEW, Report.Status.NEEDS_INFORMATION)
CLOSED_STATES = (Report.Status.REMOVED, Report.Status.NO_VIOLATION, Report.Status.WITHDRAWN)


@dataclass
class OzoneSync:
    opened: int = 0  # new cases
    joined: int = 0  # reports that joined an open case about the same post
    seen: int = 0  # report events read that were already cases
    left: int = 0  # reports Takedown does not act on (accounts, other records, other reasons)
    resolved: int = 0  # reports closed in Ozone after Takedown's decision


def ozone_platform() -> AtprotoPlatform:
    platform = AtprotoPlatform.from_settings()
    if not platform.ozone_url:
        raise ImproperlyConfigured("Pulling in-app reports needs TAKEDOWN_ATPROTO_OZONE_URL, _OZONE_DID and "
                                   "_OZONE_ADMIN_PASSWORD (docs/platforms.md, \"AT Protocol\").")
    return platform


def ozone_reports_sync(*, max_pages: int = 20, now: datetime | None = None) -> OzoneSync:
    """Pull new in-app reports into cases, then close in Ozone the reports whose case is closed."""
    platform = ozone_platform()
    result = OzoneSync()
    ozone_reports_pull(platform=platform, result=result, max_pages=max_pages, now=now)
    ozone_reports_resolve(platform=platform, result=result)
    return result


def ozone_reports_pull(*, platform: AtprotoPlatform, result: OzoneSync, max_pages: int = 20,
                       now: datetime | None = None) -> None:
    cursor_name = f"ozone-reports:{platform.ozone_did}"
    position, _ = StreamCursor.objects.get_or_create(name=cursor_name)
    newest = parse_time(position.value)
    params: dict[str, object] = {"types": [REPORT_EVENT], "sortDirection": "asc", "limit": PAGE,
                                 "reportTypes": list(settings.TAKEDOWN_ATPROTO_REPORT_REASONS)}
    if newest is not None:
        params["createdAfter"] = _format_time(newest - OVERLAP)
    for _page in range(max_pages):
        answer = platform.ozone_query("tools.ozone.moderation.queryEvents", params)
        found = answer.get("events") if isinstance(answer, dict) else None
        if not found:
            break
        for event in found:
            created = _report_event(event, platform=platform, result=result, now=now)
            when = parse_time(str(event.get("createdAt", "")))
            if when is not None and (newest is None or when > newest):
                newest = when
            if created is not None:
                logger.info("ozone report event %s → case %s", event.get("id"), created)
        cursor = answer.get("cursor")
        if not cursor or len(found) < PAGE:
            break
        params["cursor"] = cursor
    if newest is not None:
        StreamCursor.objects.filter(pk=position.pk).update(value=_format_time(newest), updated_at=timezone.now())


def _report_event(event: dict[str, object], *, platform: AtprotoPlatform, result: OzoneSync,
                  now: datetime | None) -> str | None:
    """Turn one report event into a case (or join one). Returns the case number when a case was opened."""
    event_id = event.get("id")
    body = _object(event.get("event"))
    subject = _object(event.get("subject"))
    reason_type = str(body.get("reportType", ""))
    if not isinstance(event_id, int) or body.get("$type") != REPORT_EVENT:
        result.left += 1
        return None
    if reason_type not in settings.TAKEDOWN_ATPROTO_REPORT_REASONS or not str(subject.get("uri", "")).startswith(
            "at://"):
        result.left += 1
        return None
    try:
        post = parse_post(str(subject["uri"]))
    except LocationRejected:
        result.left += 1  # a report about a profile, a list, a feed: not a post with media
        return None
    if OzoneReport.objects.filter(event_id=event_id).exists():
        result.seen += 1
        return None
    reported_by = str(event.get("createdBy", ""))[:200]
    reported_at = parse_time(str(event.get("createdAt", ""))) or timezone.now()
    comment = str(body.get("comment") or "")[:2000]
    now = now or timezone.now()
    try:
        with transaction.atomic():
            report = (Report.objects.select_for_update()
                      .filter(source=Report.Source.PLATFORM, status__in=OPEN_STATES, items__location=post.uri)
                      .order_by("received_at").first())
            opened = report is None
            if report is None:
                report = _open_case(uri=post.uri, reason_type=reason_type, comment=comment, reported_by=reported_by,
                                    event_id=event_id, now=now)
            else:  # counted by the case it stands in: itself, or the case it joined (services/joining.py)
                Report.objects.filter(pk=report.joined_to_id or report.pk).update(report_count=F("report_count") + 1)
            OzoneReport.objects.create(event_id=event_id, report=report, subject_uri=post.uri,
                                       subject_cid=str(subject.get("cid", ""))[:200], reason_type=reason_type,
                                       reported_by=reported_by, reported_at=reported_at)
            audit_record(actor=SYSTEM, action="report.received" if opened else "report.joined", object_type="report",
                         object_id=report.pk,
                         data={"case_number": report.case_number, "source": report.source, "ozone_event": event_id,
                               "reason_type": reason_type, "location": post.uri,
                               "deadline_at": report.deadline_at.isoformat() if report.deadline_at else None})
            if opened:
                report_id = report.pk
                transaction.on_commit(lambda: jobs.report_process(report_id))
    except IntegrityError:
        result.seen += 1  # another pull recorded this event at the same moment
        return None
    if opened:
        result.opened += 1
        events.report_received(report.source)
        return report.case_number
    result.joined += 1
    return None


def _open_case(*, uri: str, reason_type: str, comment: str, reported_by: str, event_id: int,
               now: datetime) -> Report:
    reason = reason_type.rsplit("#", 1)[-1]
    # The reporter is the platform's account (its DID), not a person's name; they follow it in the app.
    report = report_open_without_notice(
        source=Report.Source.PLATFORM, reporter_name=f"{reported_by} (in-app report)", now=now,
        statement=f"Reported in the app as {reason}." + (f" The reporter wrote: {comment}" if comment else ""),
        context={"ozone": {"event": event_id, "reason_type": reason_type}})
    ReportedItem.objects.create(report=report, location=uri)
    task_create(report, media_ids=[])
    return report


def ozone_reports_resolve(*, platform: AtprotoPlatform, result: OzoneSync) -> None:
    """Close in Ozone the reports whose case is closed here, once each."""
    pending = (OzoneReport.objects.filter(resolved_at=None, report__status__in=CLOSED_STATES)
               .select_related("report").order_by("event_id"))
    done: set[tuple[int, str]] = set()  # one acknowledge per case and post, however many reports joined it
    for row in pending[:500]:
        key = (row.report_id, row.subject_uri)
        if key not in done:
            _close_in_ozone(platform, row)
            done.add(key)
        OzoneReport.objects.filter(report_id=row.report_id, subject_uri=row.subject_uri, resolved_at=None).update(
            resolved_at=timezone.now())
        audit_record(actor=SYSTEM, action="ozone.report_resolved", object_type="report", object_id=row.report_id,
                     data={"ozone_event": row.event_id, "outcome": row.report.status})
        result.resolved += 1


def _close_in_ozone(platform: AtprotoPlatform, row: OzoneReport) -> None:
    report = row.report
    status = platform.ozone_status(row.subject_uri)
    if status and status.get("reviewState") == "tools.ozone.moderation.defs#reviewClosed" and (
            report.status != Report.Status.REMOVED or status.get("takendown")):
        return  # closed there already: by our takedown, or by the team
    decision = report.decisions.order_by("-created_at").first()
    outcomes: dict[str, str] = {Report.Status.REMOVED: "taken down",
                                Report.Status.NO_VIOLATION: "closed without removal",
                                Report.Status.WITHDRAWN: "withdrawn by the reporter"}
    outcome = outcomes.get(report.status, report.status)
    reason = f" ({decision.get_reason_display()})" if isinstance(decision, Decision) else ""
    cid = row.subject_cid or str(_object(_object(status).get("subject")).get("cid", ""))
    types = list(OzoneReport.objects.filter(report=report, subject_uri=row.subject_uri)
                 .values_list("reason_type", flat=True))
    platform.acknowledge(uri=row.subject_uri, cid=cid,
                         comment=f"Takedown case {report.case_number}: {outcome}{reason}.",
                         idempotency_key=f"ozone-report-{row.event_id}-resolved", report_types=types,
                         note="Thank you for your report. We reviewed the content and did not remove it.")


def _object(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _format_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

