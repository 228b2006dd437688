"""Report intake: validating a notice and saving it, with its items and deadline, in one transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from hashing.decode import ImageInfo
from hashing.errors import MediaError
from moderation.models import Media, Report, ReportedItem
from moderation.services.audit import audit_record
from moderation.services.media import media_store, media_validate
from moderation.services.secrets import hash_pin, new_case_number, new_pin
from moderation.services.triage import task_ensure

MAX_ITEMS = 50  # one report names at most this many locations and files together
LOCATION_RE = re.compile(r"^(demo://content/\d{1,9}/?|https?://\S{1,2000})$")
TAKE_IT_DOWN_URL = "https://takeitdown.ncmec.org/"


class IntakeError(Exception):
    """The notice is incomplete or invalid. ``errors`` maps each field to messages a person can act on."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


@dataclass
class Notice:
    reporter_name: str
    reporter_email: str
    relationship: str
    statement: str
    good_faith: bool
    signature: str
    adult_confirmed: bool
    locations: list[str] = field(default_factory=list)
    source: str = Report.Source.WEB


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True)
class SubmittedReport:
    report: Report
    pin: str  # shown to the reporter once; only its hash is stored


def notice_check(notice: Notice, uploads: list[Upload]) -> tuple[dict[str, list[str]], list[ImageInfo]]:
    """Every problem with the notice, by field, and the probed uploads. Writes nothing."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not notice.adult_confirmed:
        add("adult_confirmed",
            "We can only take reports about adults. If the person shown is or may be under 18, please use "
            f"NCMEC's Take It Down ({TAKE_IT_DOWN_URL}), which handles images of minors; nothing was stored here.")
    if not notice.reporter_name.strip():
        add("reporter_name", "Please give your name.")
    elif len(notice.reporter_name) > 200:
        add("reporter_name", "Please keep the name under 200 characters.")
    try:
        validate_email(notice.reporter_email.strip())
    except ValidationError:
        add("reporter_email", "Please give an email address we can write to, like name@example.org.")
    if notice.relationship not in Report.Relationship.values:
        add("relationship", "Say whether you are the person depicted ('self') or act for them ('representative').")
    if not notice.statement.strip():
        add("statement", "Please say briefly why this content is intimate and shared without consent.")
    if notice.good_faith is not True:
        add("good_faith", "Please confirm you believe in good faith that the content is shared without consent.")
    if not notice.signature.strip():
        add("signature", "Please sign by typing your full name.")
    elif len(notice.signature) > 200:
        add("signature", "Please keep the signature under 200 characters.")
    if notice.source not in Report.Source.values:
        add("source", f"Unknown source {notice.source!r}.")
    if not notice.locations and not uploads:
        add("locations", "Please give at least one link to the content, or attach the image.")
    if len(notice.locations) + len(uploads) > MAX_ITEMS:
        add("locations", f"Please send at most {MAX_ITEMS} links and files in one report.")
    for index, location in enumerate(notice.locations, start=1):
        if not LOCATION_RE.match(location.strip()):
            add("locations", f"Link {index} is not a web address (https://...) or demo://content/<number>.")
    infos: list[ImageInfo] = []
    for index, upload in enumerate(uploads, start=1):
        if len(upload.data) > settings.TAKEDOWN_MAX_UPLOAD_BYTES:
            limit_mb = settings.TAKEDOWN_MAX_UPLOAD_BYTES // (1024 * 1024)
            add("files", f"File {index} is larger than {limit_mb} MB; please send a smaller copy.")
            continue
        try:
            infos.append(media_validate(upload.data))
        except MediaError as exc:
            add("files", f"File {index}: {exc}")
    return errors, infos


def report_submit(*, notice: Notice, uploads: list[Upload] | None = None) -> SubmittedReport:
    """Validate and save a report; the processing pipeline starts once the transaction commits.

    Raises ``IntakeError`` (and saves nothing) when any notice element is missing or invalid.
    """
    uploads = uploads or []
    errors, infos = notice_check(notice, uploads)
    if errors:
        raise IntakeError(errors)
    now = timezone.now()
    pin = new_pin()
    hours = settings.TAKEDOWN_DEADLINE_HOURS[notice.source]
    with transaction.atomic():
        report = _create_report(notice, pin_hash=hash_pin(pin), now=now, deadline_hours=hours)
        for location in dict.fromkeys(loc.strip() for loc in notice.locations):
            ReportedItem.objects.create(report=report, location=location)
        for upload, info in zip(uploads, infos, strict=True):
            media = media_store(data=upload.data, origin=Media.Origin.UPLOAD, info=info)
            ReportedItem.objects.create(report=report, media=media, state=ReportedItem.State.RESOLVED)
        audit_record(actor="reporter", action="report.received", object_type="report", object_id=report.pk,
                     data={"case_number": report.case_number, "source": report.source,
                           "locations": len(notice.locations), "files": len(uploads),
                           "deadline_at": report.deadline_at.isoformat() if report.deadline_at else None})
        task_ensure(report)
        report_id = report.pk
        transaction.on_commit(lambda: _enqueue(report_id))
    return SubmittedReport(report=report, pin=pin)


def _create_report(notice: Notice, *, pin_hash: str, now: datetime, deadline_hours: int) -> Report:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Report.objects.create(
                    case_number=new_case_number(), pin_hash=pin_hash, source=notice.source,
                    reporter_name=notice.reporter_name.strip(), reporter_email=notice.reporter_email.strip(),
                    relationship=notice.relationship, statement=notice.statement.strip(),
                    good_faith=notice.good_faith, signature=notice.signature.strip(),
                    adult_confirmed=notice.adult_confirmed, received_at=now,
                    # Every notice element was checked above, so the clock starts now.
                    notice_complete_at=now, deadline_at=now + timedelta(hours=deadline_hours),
                )
        except IntegrityError:
            continue  # case number collision (about 1 in 10^12); draw another
    raise RuntimeError("could not allocate a unique case number")


def _enqueue(report_id: int) -> None:
    from moderation.tasks import process_report

    process_report.delay(report_id)
