"""Report intake: validating a notice and saving it, with its items and deadline, in one transaction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.errors import MediaError
from hashing.models import Bank
from moderation import jobs
from moderation.audit import SYSTEM, audit_batch, audit_record
from moderation.models import ApiKey, Appeal, Media, MediaHash, Report, ReportedItem, ReviewTask
from moderation.observability import events
from moderation.platforms import LocationRejected, get_content_source
from moderation.security.secrets import hash_pin, new_case_number, new_pin
from moderation.services import joining
from moderation.services.api_keys import FLAGGER_SOURCES
from moderation.services.banking import hashes_withdraw
from moderation.services.claims import task_reopen
from moderation.services.deadlines import deadline_for
from moderation.services.enforcement import COPY_PDQ_DISTANCE
from moderation.services.media import MediaInfo, media_store, media_validate
from moderation.services.notices import notice_send
from moderation.services.triage import task_create, task_ensure

logger = logging.getLogger(__name__)

MAX_ITEMS = 50  # one report names at most this many locations and files together
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
    # Optional context (CONTEXT_FIELDS) and PDQ hashes computed in the person's browser.
    context: dict[str, str] = field(default_factory=dict)
    client_hashes: list[str] = field(default_factory=list)
    # Set by flagger_notice_submit: the sender's key (identity, DSA Art. 22) and its own reference.
    flagger_key_id: int | None = None
    flagger_reference: str = ""


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True)
class SubmittedReport:
    report: Report
    pin: str  # shown to the reporter once; only its hash is stored


class DuplicateNotice(Exception):
    """A flagger filed this reference before; ``report`` is the case it opened."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__(f"notice already filed as {report.case_number}")


@dataclass(frozen=True)
class FlaggerNotice:
    report: Report
    pin: str | None  # None when the reference was filed before: the PIN was shown then, and only then
    created: bool


# Notice elements that an organisation's notice (trusted flagger, eSafety) may still lack: the case is then
# kept as "needs information", the sender is told what is missing, and the clock starts once complete.
DEFERRABLE = ("reporter_name", "relationship", "statement", "good_faith", "signature")
SOURCES_MAY_BE_INCOMPLETE = (Report.Source.TRUSTED_FLAGGER, Report.Source.ESAFETY)
PDQ_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
CONTEXT_FIELDS = {"ai_made": 10, "first_seen": 100, "other_places": 1000, "note": 2000}  # name: max characters
MISSING_TEXT = {
    "reporter_name": gettext_noop("your name"),
    "relationship": gettext_noop("whether you are the person depicted or act for them"),
    "statement": gettext_noop("a short statement of why the content is intimate and shared without consent"),
    "good_faith": gettext_noop("your statement of good faith"),
    "signature": gettext_noop("your signature (your full name typed)"),
}


def notice_check(notice: Notice, uploads: list[Upload]) -> tuple[dict[str, list[str]], list[MediaInfo]]:
    """Every problem with the notice, by field, and the probed uploads. Writes nothing."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not notice.adult_confirmed:
        add("adult_confirmed",
            _("We can only take reports about adults. If the person shown is or may be under 18, please use "
              "NCMEC's Take It Down (%(url)s), which handles images of minors; nothing was stored here.")
            % {"url": TAKE_IT_DOWN_URL})
    if not notice.reporter_name.strip():
        add("reporter_name", _("Please give your name."))
    elif len(notice.reporter_name) > 200:
        add("reporter_name", _("Please keep the name under 200 characters."))
    try:
        validate_email(notice.reporter_email.strip())
    except ValidationError:
        add("reporter_email", _("Please give an email address we can write to, like name@example.org."))
    if notice.relationship not in Report.Relationship.values:
        add("relationship", _("Say whether you are the person depicted ('self') or act for them ('representative')."))
    if not notice.statement.strip():
        add("statement", _("Please say briefly why this content is intimate and shared without consent."))
    if notice.good_faith is not True:
        add("good_faith", _("Please confirm you believe in good faith that the content is shared without consent."))
    if not notice.signature.strip():
        add("signature", _("Please sign by typing your full name."))
    elif len(notice.signature) > 200:
        add("signature", _("Please keep the signature under 200 characters."))
    if notice.source not in Report.Source.values:
        add("source", _("Unknown source %(source)r.") % {"source": notice.source})
    if not notice.locations and not uploads and not notice.client_hashes:
        add("locations", _("Please give at least one link to the content, or attach the image."))
    if len(notice.locations) + len(uploads) + len(notice.client_hashes) > MAX_ITEMS:
        add("locations", _("Please send at most %(n)d links and files in one report.") % {"n": MAX_ITEMS})
    for message in locations_normalise(notice.locations)[1]:
        add("locations", message)
    for index, value in enumerate(notice.client_hashes, start=1):
        if not PDQ_HEX_RE.match(value):
            add("client_hashes", _("Fingerprint %(n)d is not a PDQ hash (64 hexadecimal characters).") % {"n": index})
    for name, value in notice.context.items():
        if name not in CONTEXT_FIELDS:
            add("context", _("Unknown context field %(name)r.") % {"name": name})
        elif len(str(value)) > CONTEXT_FIELDS[name]:
            add(name, _("Please keep this under %(n)d characters.") % {"n": CONTEXT_FIELDS[name]})
    infos: list[MediaInfo] = []
    for index, upload in enumerate(uploads, start=1):
        if len(upload.data) > settings.TAKEDOWN_MAX_UPLOAD_BYTES:
            limit_mb = settings.TAKEDOWN_MAX_UPLOAD_BYTES // (1024 * 1024)
            add("files", _("File %(n)d is larger than %(mb)d MB; please send a smaller copy.")
                % {"n": index, "mb": limit_mb})
            continue
        try:
            infos.append(media_validate(upload.data))
        except MediaError as exc:
            add("files", _("File %(n)d: %(error)s") % {"n": index, "error": exc})
    return errors, infos


def locations_normalise(locations: list[str]) -> tuple[list[str], list[str]]:
    """The locations in the platform's canonical form, each once (in the order given), and a message for each
    one that is not on this platform, naming its line (``ContentSource.normalise``)."""
    source = get_content_source()
    canonical: dict[str, None] = {}
    problems: list[str] = []
    for index, location in enumerate(locations, start=1):
        try:
            canonical[source.normalise(location)] = None
        except LocationRejected as exc:
            shown = location.strip()
            shown = shown if len(shown) <= 100 else f"{shown[:97]}..."
            problems.append(_("Link %(n)d (%(link)s): %(why)s") % {"n": index, "link": shown, "why": exc})
    return list(canonical), problems


def report_submit(*, notice: Notice, uploads: list[Upload] | None = None,
                  now: datetime | None = None) -> SubmittedReport:
    """Validate and save a report; the processing pipeline starts once the transaction commits.

    Raises ``IntakeError`` (and saves nothing) when any notice element is missing or invalid, except that
    a notice from an organisation (trusted flagger, eSafety) lacking only deferrable elements is saved as
    "needs information", without a deadline, and the sender is emailed the list of what is missing.
    A notice about a possible minor is never stored: ``IntakeError`` routes the person to Take It Down.
    """
    uploads = uploads or []
    errors, infos = notice_check(notice, uploads)
    missing: list[str] = []
    if notice.source in SOURCES_MAY_BE_INCOMPLETE and errors and set(errors) <= set(DEFERRABLE):
        missing = sorted(errors, key=DEFERRABLE.index)
        errors = {}
    if errors:
        raise IntakeError(errors)
    now = now or timezone.now()
    pin = new_pin()
    hours = settings.TAKEDOWN_DEADLINE_HOURS[notice.source]
    # The audit events are appended together at the end (audit_batch): the chain head's lock is held from
    # there to the commit only, so concurrent reports queue on it for a moment rather than for the whole
    # transaction.
    with transaction.atomic(), audit_batch():
        report = _create_report(notice, pin_hash=hash_pin(pin), now=now, deadline_hours=hours, missing=missing)
        locations = locations_normalise(notice.locations)[0]
        ReportedItem.objects.bulk_create([ReportedItem(report=report, location=location) for location in locations])
        media_ids: list[int] = []
        for upload, info in zip(uploads, infos, strict=True):
            media = media_store(data=upload.data, origin=Media.Origin.UPLOAD, info=info)
            ReportedItem.objects.create(report=report, media=media, state=ReportedItem.State.RESOLVED)
            media_ids.append(media.pk)
        flagger = {"flagger_key": notice.flagger_key_id, "flagger_reference": notice.flagger_reference} \
            if notice.flagger_key_id else {}
        audit_record(actor=f"flagger:{notice.flagger_key_id}" if notice.flagger_key_id else "reporter",
                     action="report.received", object_type="report", object_id=report.pk,
                     data={"case_number": report.case_number, "source": report.source,
                           "locations": len(notice.locations), "files": len(uploads),
                           "client_hashes": len(notice.client_hashes), "missing": missing,
                           "deadline_at": report.deadline_at.isoformat() if report.deadline_at else None,
                           **flagger})
        if notice.client_hashes:
            client_hashes_add(report=report, hashes=notice.client_hashes)
        report_id = report.pk
        if missing:
            transaction.on_commit(lambda: _send_needs_information(report_id))
            transaction.on_commit(lambda: _enqueue_receipt(report_id))
        elif uploads or notice.client_hashes or not joining.report_join_by_location(
                report=report, locations=locations, now=now):
            # A report naming only links an open case holds joins it (services/joining.py) and has no review
            # of its own. Copies found through client hashes are links, not media: the case's media are the
            # uploads.
            task_create(report, media_ids=media_ids)
        if not missing:
            # One message to the broker: processing starts by queueing the receipt (receipt_queue).
            transaction.on_commit(lambda: _enqueue(report_id))
    events.report_received(report.source)
    return SubmittedReport(report=report, pin=pin)


FLAGGER_REFERENCE_MAX = 200


def flagger_notice_submit(*, api_key: ApiKey, reference: str, notice: Notice, uploads: list[Upload] | None = None,
                          now: datetime | None = None) -> FlaggerNotice:
    """A notice from a trusted flagger (DSA Art. 22) or a regulator (eSafety), filed with a flagger key.

    The case takes the key's source (and so its deadline, ``TAKEDOWN_DEADLINE_HOURS``) and records the
    sender; triage gives trusted flaggers priority. Idempotent by the sender's own ``reference``: filing
    it again returns the first case (``created`` False, no PIN) and changes nothing.
    Raises ``IntakeError`` naming the field when the notice or the reference is invalid.
    """
    if api_key.kind != ApiKey.Kind.FLAGGER or api_key.source not in FLAGGER_SOURCES:
        raise IntakeError({"source": [_("This key may not file notices; ask for a flagger key.")]})
    reference = reference.strip()
    if not reference:
        raise IntakeError({"reference": [_("Give your own reference for this notice, e.g. your case number.")]})
    if len(reference) > FLAGGER_REFERENCE_MAX:
        raise IntakeError({"reference": [_("Please keep the reference under %(n)d characters.")
                                         % {"n": FLAGGER_REFERENCE_MAX}]})
    existing = Report.objects.filter(flagger_key=api_key, flagger_reference=reference).first()
    if existing is not None:
        return FlaggerNotice(report=existing, pin=None, created=False)
    notice = replace(notice, source=api_key.source, flagger_key_id=api_key.pk, flagger_reference=reference)
    try:
        submitted = report_submit(notice=notice, uploads=uploads, now=now)
    except DuplicateNotice as exc:  # the same reference filed at the same moment by a retry
        return FlaggerNotice(report=exc.report, pin=None, created=False)
    return FlaggerNotice(report=submitted.report, pin=submitted.pin, created=True)


def report_complete(*, report: Report, reporter_name: str = "", relationship: str = "", statement: str = "",
                    good_faith: bool = False, signature: str = "", now: datetime | None = None) -> Report:
    """Add the missing notice elements to a "needs information" case; once complete the clock starts.

    Raises ``IntakeError`` naming what is still missing or invalid.
    """
    now = now or timezone.now()
    given: dict[str, str] = {"reporter_name": reporter_name.strip(), "relationship": relationship,
                             "statement": statement.strip(), "signature": signature.strip()}
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.status != Report.Status.NEEDS_INFORMATION:
            raise IntakeError({"status": [_("This case is not waiting for information.")]})
        merged = Notice(
            reporter_name=given["reporter_name"] or report.reporter_name,
            reporter_email=report.reporter_email,
            relationship=given["relationship"] or report.relationship,
            statement=given["statement"] or report.statement,
            good_faith=bool(good_faith or report.good_faith),
            signature=given["signature"] or report.signature,
            adult_confirmed=report.adult_confirmed, locations=["demo://content/1"], source=report.source)
        errors, _infos = notice_check(merged, [])
        if errors:
            raise IntakeError(errors)
        report.reporter_name, report.relationship = merged.reporter_name, merged.relationship
        report.statement, report.good_faith, report.signature = merged.statement, merged.good_faith, merged.signature
        report.missing_information = []
        report.notice_complete_at = now
        report.deadline_at = deadline_for(source=report.source, complete_at=now)
        report.status = Report.Status.RECEIVED
        report.save()
        audit_record(actor="reporter", action="report.completed", object_type="report", object_id=report.pk,
                     data={"deadline_at": report.deadline_at.isoformat()})
        task = task_ensure(report)
        if task.state == ReviewTask.State.DECIDED:  # a moderator asked for this information: back to the queue
            task_reopen(task_id=task.pk, actor="reporter", reason="the reporter sent the information asked for")
        report_id = report.pk
        transaction.on_commit(lambda: _enqueue(report_id))
    return report


WITHDRAWABLE = (Report.Status.RECEIVED, Report.Status.NEEDS_INFORMATION, Report.Status.IN_REVIEW,
                Report.Status.ACTIONING, Report.Status.REMOVED, Report.Status.NO_VIOLATION)


def report_withdraw(*, report: Report, now: datetime | None = None) -> int:
    """The reporter withdraws the case: its hashes are withdrawn from every bank and partner feed (they
    stop matching at once), open review work closes, and the reporter gets a confirmation.

    Content already removed stays removed (the platform's own rules apply). Returns the hashes withdrawn.
    """
    now = now or timezone.now()
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.status not in WITHDRAWABLE:
            raise IntakeError({"status": [_("This case cannot be withdrawn now.")]})
        withdrawn = hashes_withdraw(case_number=report.case_number, actor="reporter", why="withdrawn by reporter")
        report.status = Report.Status.WITHDRAWN
        report.withdrawn_at = now
        report.closed_at = report.closed_at or now
        report.save(update_fields=["status", "withdrawn_at", "closed_at", "updated_at"])
        ReviewTask.objects.filter(report=report).exclude(state=ReviewTask.State.DECIDED).update(
            state=ReviewTask.State.DECIDED, closed_at=now, assignee=None, lease_expires_at=None)
        # Many reports, one item: a joined report leaves its case's count; a case with joined reports hands
        # them to the oldest of them, which becomes a case of its own (services/joining.py).
        joining.report_leaves(report=report)
        joining.joined_promote(case=report, why="the case was withdrawn by its reporter")
        # The reporter's own request for a review ends with the case; an uploader's appeal stands.
        appeals = list(Appeal.objects.filter(decision__report=report, appellant=Appeal.Appellant.REPORTER,
                                             state=Appeal.State.OPEN).values_list("pk", flat=True))
        Appeal.objects.filter(pk__in=appeals).update(state=Appeal.State.WITHDRAWN)  # not decided: no decided_at
        audit_record(actor="reporter", action="report.withdrawn", object_type="report", object_id=report.pk,
                     data={"hashes_withdrawn": withdrawn, "appeals_withdrawn": appeals})
        context = {"case_number": report.case_number, "withdrawn_hashes": withdrawn}
        email = report.reporter_email
        report_id = report.pk
        transaction.on_commit(lambda: notice_send(kind="withdrawn", to=[email], context=context,
                                                  object_type="report", object_id=report_id))
    return withdrawn


def client_hashes_add(*, report: Report, hashes: list[str]) -> list[ReportedItem]:
    """Hashes the person computed in their own browser: banked against the case (blocking future uploads
    through the scan API) and matched against stored media, whose copies join the case as items."""
    bank = bank_get_or_create(name=settings.TAKEDOWN_VICTIM_BANK, kind=Bank.Kind.LOCAL,
                              description="PDQ hashes people computed on their own device; tied to their case.")
    values = list(dict.fromkeys(h.lower() for h in hashes))
    added = bank_add_entries(bank=bank, hashes=[("pdq", v) for v in values], source=f"case:{report.case_number}")
    audit_record(actor="reporter", action="bank.entries_added", object_type="bank", object_id=bank.pk,
                 data={"entries": [e.pk for e in added], "case_number": report.case_number, "client_side": True})
    queries = [int(v, 16) for v in values]
    found: list[ReportedItem] = []
    seen: set[str] = set(report.items.values_list("location", flat=True))
    for media_id, value in MediaHash.objects.filter(algorithm="pdq").values_list("media_id", "value").iterator():
        if not any((int(value, 16) ^ q).bit_count() <= COPY_PDQ_DISTANCE for q in queries):
            continue
        for location in (ReportedItem.objects.filter(media_id=media_id).exclude(location="")
                         .exclude(state=ReportedItem.State.REMOVED).values_list("location", flat=True).distinct()):
            if location in seen:
                continue
            seen.add(location)
            found.append(ReportedItem.objects.create(report=report, location=location))
    if found:
        audit_record(actor=SYSTEM, action="copies.found", object_type="report", object_id=report.pk,
                     data={"items": [i.pk for i in found], "by": "client_hashes"})
    return found


def receipt_send(report_id: int) -> None:
    """Send the "we received your report" email now (the task ``send_receipt`` calls this)."""
    report = Report.objects.get(pk=report_id)
    notice_send(kind="report_received", to=[report.reporter_email], object_type="report", object_id=report.pk,
                context={"case_number": report.case_number, "deadline_at": report.deadline_at})


def _send_needs_information(report_id: int) -> None:
    report = Report.objects.get(pk=report_id)
    missing = [_(MISSING_TEXT[name]) for name in report.missing_information]
    notice_send(kind="needs_information", to=[report.reporter_email], object_type="report", object_id=report.pk,
                context={"case_number": report.case_number, "missing": missing})


def _create_report(notice: Notice, *, pin_hash: str, now: datetime, deadline_hours: int,
                   missing: list[str]) -> Report:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Report.objects.create(
                    flagger_key_id=notice.flagger_key_id, flagger_reference=notice.flagger_reference,
                    case_number=new_case_number(), pin_hash=pin_hash, source=notice.source,
                    reporter_name=notice.reporter_name.strip(), reporter_email=notice.reporter_email.strip(),
                    relationship=notice.relationship, statement=notice.statement.strip(),
                    good_faith=notice.good_faith, signature=notice.signature.strip(),
                    adult_confirmed=notice.adult_confirmed, received_at=now, context=notice.context,
                    # A complete notice starts the clock now; an incomplete one when it is completed.
                    status=Report.Status.NEEDS_INFORMATION if missing else Report.Status.RECEIVED,
                    missing_information=missing,
                    # An incomplete notice's receipt is queued now; a complete one's by its processing.
                    receipt_queued_at=now if missing else None,
                    notice_complete_at=None if missing else now,
                    deadline_at=None if missing else now + timedelta(hours=deadline_hours),
                )
        except IntegrityError:
            if notice.flagger_key_id is not None:
                filed = Report.objects.filter(flagger_key_id=notice.flagger_key_id,
                                              flagger_reference=notice.flagger_reference).first()
                if filed is not None:
                    raise DuplicateNotice(filed) from None
            continue  # case number collision (about 1 in 10^12); draw another
    raise RuntimeError("could not allocate a unique case number")


def report_open_without_notice(*, source: str, statement: str, context: dict[str, Any], now: datetime,
                               reporter_name: str = "") -> Report:
    """A case that no person's signed notice opened (a report filed in the platform's app, a scanner's finding):
    a fresh case number, a PIN nobody holds, the notice elements empty and false (nobody stated them), no
    receipt (there is no address to send it to), and the legal clock of ``source`` running from ``now``.
    Call inside a transaction with the case's items and task."""
    hours = settings.TAKEDOWN_DEADLINE_HOURS[source]
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Report.objects.create(
                    case_number=new_case_number(), pin_hash=hash_pin(new_pin()), source=source,
                    status=Report.Status.RECEIVED, reporter_name=reporter_name[:200], reporter_email="",
                    relationship="", signature="", good_faith=False, adult_confirmed=False,
                    statement=statement[:4000], received_at=now, notice_complete_at=now,
                    deadline_at=now + timedelta(hours=hours), receipt_queued_at=now, context=context)
        except IntegrityError:
            continue  # case number collision (about 1 in 10^12); draw another
    raise RuntimeError("could not allocate a unique case number")


def _enqueue_receipt(report_id: int) -> None:
    """The receipt email goes out from a worker (retried there if the mail server is down), off the person's
    request. With the broker down it is sent here instead; a failure then is logged, never a 500."""
    if jobs.receipt_send(report_id):
        return
    try:
        receipt_send(report_id)
    except Exception as exc:  # a mail server that is down too; the case page still shows the case
        logger.warning("receipt for report %s not sent (%s)", report_id, type(exc).__name__)


def _enqueue(report_id: int) -> None:
    """Send the report to the broker. If the broker is down the report stays saved and unprocessed, and
    the outbox sweeper (services/outbox.py) sends it once the broker is back: never a 500 for a saved report.
    The receipt is then sent from here, since processing, which would queue it, has to wait."""
    if jobs.report_process(report_id):
        return
    if Report.objects.filter(pk=report_id, receipt_queued_at=None).update(receipt_queued_at=timezone.now()):
        try:
            receipt_send(report_id)
        except Exception as exc:  # a mail server that is down too; the case page still shows the case
            logger.warning("receipt for report %s not sent (%s)", report_id, type(exc).__name__)


def receipt_queue(report_id: int) -> None:
    """Queue the report's receipt email, once per report however often its processing is sent (retries,
    the outbox sweeper). ``process_report`` calls it first, so the request that files a report sends one
    message to the broker instead of two."""
    now = timezone.now()
    if not Report.objects.filter(pk=report_id, receipt_queued_at=None).update(receipt_queued_at=now):
        return
    try:
        jobs.send(jobs.SEND_RECEIPT, report_id)
    except BaseException:
        Report.objects.filter(pk=report_id, receipt_queued_at=now).update(receipt_queued_at=None)
        raise
