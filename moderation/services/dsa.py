"""DSA statements of reasons: Art. 17 content for the uploader and Art. 24(5) submissions to the
Commission's Transparency Database (API v2; LEGAL.md lists the fields and enum values).

Statements hold no personal data: no names, emails, locations or free text from reporters; the
``puid`` is derived from our own ids, so it is stable and unique per platform.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from moderation import http
from moderation.audit import SYSTEM, audit_record
from moderation.models import Decision, Report, ReportedItem, StatementOfReasons

logger = logging.getLogger(__name__)

DECISION_GROUND_ILLEGAL = "DECISION_GROUND_ILLEGAL_CONTENT"
DECISION_GROUND_INCOMPATIBLE = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
DECISION_GROUNDS = (DECISION_GROUND_ILLEGAL, DECISION_GROUND_INCOMPATIBLE)
CONTENT_TYPES = ("CONTENT_TYPE_IMAGE", "CONTENT_TYPE_VIDEO", "CONTENT_TYPE_SYNTHETIC_MEDIA", "CONTENT_TYPE_OTHER")
CATEGORIES = ("STATEMENT_CATEGORY_CYBER_VIOLENCE", "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN")
KEYWORDS = ("KEYWORD_NON_CONSENSUAL_IMAGE_SHARING", "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE")
SOURCE_TYPES = ("SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY")
AUTOMATED_DECISIONS = ("AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED")
VISIBILITY_REMOVED = "DECISION_VISIBILITY_CONTENT_REMOVED"
VISIBILITIES = (VISIBILITY_REMOVED, "DECISION_VISIBILITY_CONTENT_DISABLED")
YES_NO = ("Yes", "No")
PUID_RE = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
MAX_DECISION_FACTS = 5000  # Transparency Database limit on decision_facts
REQUIRED = ("decision_visibility", "decision_ground", "content_type", "category", "category_specification",
            "content_date", "application_date", "decision_facts", "source_type", "automated_detection",
            "automated_decision", "puid")

# The legal ground for each takedown reason (Art. 17(3)(d)); every NCII reason rests on law as well as terms.
LEGAL_GROUND = ("Non-consensual intimate imagery: TAKE IT DOWN Act (US, Pub. L. 119-12); Online Safety Act 2023 "
                "s.10(3A) as amended (UK); national criminal law on image-based sexual abuse (EU Member States)")
REASON_FACTS = {
    Decision.Reason.NCII: "The content is an intimate image shared without the consent of the person depicted.",
    Decision.Reason.SYNTHETIC_NCII: "The content is an AI-generated or altered intimate image (digital forgery) "
                                    "of a real person, shared without their consent.",
    Decision.Reason.KNOWN_COPY: "The content is identical or substantially the same as content already "
                                "removed as non-consensual intimate imagery.",
    Decision.Reason.OTHER: "The content was found to be non-consensual intimate imagery.",
}
SOURCE_TYPE_FOR = {
    Report.Source.WEB: "SOURCE_ARTICLE_16",
    Report.Source.API: "SOURCE_ARTICLE_16",
    Report.Source.TRUSTED_FLAGGER: "SOURCE_TRUSTED_FLAGGER",
    Report.Source.ESAFETY: "SOURCE_TYPE_OTHER_NOTIFICATION",
    Report.Source.PLATFORM: "SOURCE_ARTICLE_16",  # a user's report through the app's own notice mechanism
    Report.Source.SCANNER: "SOURCE_VOLUNTARY",  # found by our own proactive scanning, not notified
}


# Signs the appeal link each statement of reasons carries (Art. 17(3)(f)): the link names the statement.
APPEAL_SALT = "takedown.appeal"


class StatementInvalid(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def statement_puid(*, decision: Decision, item: ReportedItem) -> str:
    return f"{settings.TAKEDOWN_DSA_PUID_PREFIX}-d{decision.pk}-i{item.pk}"


def statement_build(*, decision: Decision, item: ReportedItem, automated_found: bool, synthetic: bool,
                    content_date: date | None = None, own_initiative: bool = False) -> dict[str, Any]:
    """The Transparency Database statement for removing ``item`` under ``decision``. No personal data."""
    report = decision.report
    facts = REASON_FACTS.get(Decision.Reason(decision.reason), REASON_FACTS[Decision.Reason.OTHER])
    origin = ("Found by hash matching as a copy of content removed after a notice." if own_initiative
              else "Removed following a notice from the person depicted or someone acting for them.")
    content_types = ["CONTENT_TYPE_IMAGE"] + (["CONTENT_TYPE_SYNTHETIC_MEDIA"] if synthetic else [])
    keywords = ["KEYWORD_NON_CONSENSUAL_IMAGE_SHARING"] + (
        ["KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE"] if synthetic else [])
    if decision.automated:
        automated = "AUTOMATED_DECISION_FULLY"
    elif automated_found:
        automated = "AUTOMATED_DECISION_PARTIALLY"
    else:
        automated = "AUTOMATED_DECISION_NOT_AUTOMATED"
    return {
        "decision_visibility": [VISIBILITY_REMOVED],
        "decision_ground": DECISION_GROUND_ILLEGAL,
        "illegal_content_legal_ground": LEGAL_GROUND,
        "illegal_content_explanation": facts,
        "incompatible_content_ground": settings.TAKEDOWN_TERMS_CLAUSE,
        "incompatible_content_explanation": "Intimate imagery shared without consent breaks the terms of service.",
        "content_type": content_types,
        "category": "STATEMENT_CATEGORY_CYBER_VIOLENCE",
        "category_specification": keywords,
        "territorial_scope": ["EEA"] if settings.TAKEDOWN_RESTRICTION_TERRITORY == "worldwide" else [],
        "content_date": (content_date or report.received_at.date()).isoformat(),
        "application_date": decision.created_at.date().isoformat(),
        "decision_facts": f"{facts} {origin}"[:MAX_DECISION_FACTS],
        "source_type": "SOURCE_VOLUNTARY" if own_initiative else SOURCE_TYPE_FOR[Report.Source(report.source)],
        "automated_detection": "Yes" if automated_found else "No",
        "automated_decision": automated,
        "puid": statement_puid(decision=decision, item=item),
    }


def statement_validate(payload: dict[str, Any]) -> list[str]:
    """Every way ``payload`` breaks the Transparency Database's rules (empty when valid)."""
    errors = [f"{name} is required" for name in REQUIRED if payload.get(name) in (None, "", [])]

    def one_of(name: str, allowed: tuple[str, ...]) -> None:
        value = payload.get(name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is not None and v not in allowed:
                errors.append(f"{name}: {v!r} is not one of {', '.join(allowed)}")

    one_of("decision_visibility", VISIBILITIES)
    one_of("decision_ground", DECISION_GROUNDS)
    one_of("content_type", CONTENT_TYPES)
    one_of("category", CATEGORIES)
    one_of("category_specification", KEYWORDS)
    one_of("source_type", SOURCE_TYPES)
    one_of("automated_detection", YES_NO)
    one_of("automated_decision", AUTOMATED_DECISIONS)
    ground = payload.get("decision_ground")
    if ground == DECISION_GROUND_ILLEGAL and not (payload.get("illegal_content_legal_ground")
                                                   and payload.get("illegal_content_explanation")):
        errors.append("an illegal-content decision needs illegal_content_legal_ground and its explanation")
    if ground == DECISION_GROUND_INCOMPATIBLE and not (payload.get("incompatible_content_ground")
                                                        and payload.get("incompatible_content_explanation")):
        errors.append("an incompatible-content decision needs incompatible_content_ground and its explanation")
    if len(str(payload.get("decision_facts", ""))) > MAX_DECISION_FACTS:
        errors.append(f"decision_facts is longer than {MAX_DECISION_FACTS} characters")
    if not PUID_RE.match(str(payload.get("puid", ""))):
        errors.append("puid must be 1-500 characters of A-Z, a-z, 0-9, - and _")
    for name in ("content_date", "application_date"):
        try:
            date.fromisoformat(str(payload.get(name)))
        except ValueError:
            errors.append(f"{name} must be a date (YYYY-MM-DD)")
    return errors


def statements_for_decision(*, decision_id: int) -> list[StatementOfReasons]:
    """Create (once) a statement for each item the takedown removes. Returns them all."""
    decision = Decision.objects.select_related("report").get(pk=decision_id)
    if decision.outcome != Decision.Outcome.TAKEDOWN:
        return []
    items = ReportedItem.objects.filter(actions__decision=decision, actions__kind="remove").select_related(
        "media").distinct().order_by("id")
    with transaction.atomic():
        return [statement_ensure(decision=decision, item=item) for item in items]


def statement_ensure(*, decision: Decision, item: ReportedItem) -> StatementOfReasons:
    """The statement for removing ``item`` under ``decision``, created on first use (idempotent)."""
    puid = statement_puid(decision=decision, item=item)
    existing = StatementOfReasons.objects.filter(puid=puid).select_related("item").first()
    if existing is not None:
        return existing
    own_initiative = (decision.report.source == Report.Source.SCANNER
                      or decision.actions.filter(item=item, idempotency_key__contains="-copy-").exists())
    synthetic = decision.reason == Decision.Reason.SYNTHETIC_NCII or decision.report.context.get("ai_made") == "yes"
    found = own_initiative or bool(item.media_id and item.media and item.media.matches.exists())
    payload = statement_build(decision=decision, item=item, automated_found=found, synthetic=synthetic,
                              own_initiative=own_initiative)
    errors = statement_validate(payload)
    if errors:
        raise StatementInvalid(errors)
    with transaction.atomic():
        statement, created = StatementOfReasons.objects.get_or_create(
            puid=puid, defaults={"decision": decision, "item": item, "payload": payload})
        if created:
            audit_record(actor=SYSTEM, action="statement.created", object_type="statement",
                         object_id=statement.pk, data={"puid": statement.puid, "decision": decision.pk})
    return statement


def statements_since(since: datetime) -> list[dict[str, Any]]:
    return list(StatementOfReasons.objects.filter(created_at__gte=since).order_by("id")
                .values_list("payload", flat=True))


@dataclass
class SubmitResult:
    submitted: int = 0
    failed: int = 0  # not sent this time: left pending for the next run, or refused (see ``refused``)
    refused: int = 0  # refused by the database: dead letters, not sent again automatically
    errors: list[str] = field(default_factory=list)


# The Transparency Database's answers that say nothing about the statements but about our set-up (a wrong
# token, a wrong endpoint): the statements stay pending and go out on the next run once it is fixed.
SETUP_STATUSES = frozenset({401, 403, 404, 405})
# Within one run: 4 tries, waits of about 1, 2, 4 s (jittered), Retry-After honoured up to 60 s.
# Then the next beat run (hourly) tries again.
SUBMIT_RETRY = http.Retry(attempts=4, wait_initial=1.0, wait_max=30.0)
SUBMIT_MAX_ANSWER_BYTES = 4 * http.MIB  # the answer echoes each statement of the batch


def submit_client(*, timeout: float = 30.0) -> http.HttpClient:
    return http.HttpClient(purpose="dsa", retry=SUBMIT_RETRY, max_bytes=SUBMIT_MAX_ANSWER_BYTES,
                           timeouts=http.Timeouts(connect=min(timeout, 10.0), read=timeout, total=2 * timeout))


def statements_submit(*, endpoint: str | None = None, token: str | None = None, batch_size: int | None = None,
                      timeout: float = 30.0, retry_refused: bool = False, ids: Iterable[int] | None = None,
                      client: http.HttpClient | None = None) -> SubmitResult:
    """Send statements not yet submitted, in batches of at most 100, to ``<endpoint>/api/v1/statements``
    with a bearer token.

    A batch the database refuses (a 4xx about the statements: 400, 422, ...) becomes a dead letter: each of
    its statements gets ``submit_refused_at`` and the reason in ``submit_error``, and is left out of later
    runs unless ``retry_refused`` (``manage.py dsa_statements --submit --retry-refused``, or the admin's
    "send again"). 5xx, 408/429 and connection errors are retried by the client (:data:`SUBMIT_RETRY`); if
    they persist, or the answer says our token or endpoint is wrong (:data:`SETUP_STATUSES`), the error is
    recorded, the statements stay pending and the run stops: the next run sends them. ``ids`` limits the run
    to those statements."""
    endpoint = (endpoint if endpoint is not None else settings.TAKEDOWN_DSA_ENDPOINT).rstrip("/")
    token = token if token is not None else settings.TAKEDOWN_DSA_TOKEN
    size = min(batch_size or settings.TAKEDOWN_DSA_BATCH_SIZE, settings.TAKEDOWN_DSA_BATCH_SIZE)
    result = SubmitResult()
    if not endpoint:
        return result
    if not endpoint.startswith(("https://", "http://")):
        raise ValueError("TAKEDOWN_DSA_ENDPOINT must start with https:// (or http:// for a local test server).")
    pending = StatementOfReasons.objects.filter(submitted_at__isnull=True)
    if not retry_refused:
        pending = pending.filter(submit_refused_at__isnull=True)
    if ids is not None:
        pending = pending.filter(pk__in=list(ids))
    statements = list(pending.order_by("id"))
    headers = {"Content-Type": "application/json", "Accept": "application/json", "Authorization": f"Bearer {token}"}
    with client or submit_client(timeout=timeout) as http_client:
        for start in range(0, len(statements), size):
            batch = statements[start:start + size]
            ids_sent = [s.pk for s in batch]
            body = json.dumps({"statements": [s.payload for s in batch]}).encode()
            try:
                http_client.post(f"{endpoint}/api/v1/statements", content=body, headers=headers)
            except http.StatusError as exc:
                error = f"HTTP {exc.status}: {http.response_detail(exc.response, chars=480)}"[:500]
                if isinstance(exc, http.Refused) and exc.status not in SETUP_STATUSES:
                    _batch_refused(ids_sent, error, result)
                    continue
                _batch_left_pending(ids_sent, error, result)
                break
            except http.HttpError as exc:
                _batch_left_pending(ids_sent, f"could not reach the Transparency Database: {exc}"[:500], result)
                break
            StatementOfReasons.objects.filter(pk__in=ids_sent).update(
                submitted_at=timezone.now(), submit_error="", submit_refused_at=None)
            audit_record(actor=SYSTEM, action="statements.submitted", object_type="statement",
                         object_id=ids_sent[0], data={"count": len(ids_sent)})
            result.submitted += len(ids_sent)
    return result


def _batch_refused(ids: list[int], error: str, result: SubmitResult) -> None:
    """A dead letter: visible in the admin and ``manage.py dsa_statements --refused``; not sent again by itself."""
    with transaction.atomic():
        StatementOfReasons.objects.filter(pk__in=ids).update(submit_error=error, submit_refused_at=timezone.now())
        audit_record(actor=SYSTEM, action="statements.refused", object_type="statement", object_id=ids[0],
                     data={"count": len(ids), "error": error[:200]})
    logger.warning("the Transparency Database refused %d statements (%s); they wait for someone to send them "
                   "again", len(ids), error[:200])
    result.failed += len(ids)
    result.refused += len(ids)
    result.errors.append(error)


def _batch_left_pending(ids: list[int], error: str, result: SubmitResult) -> None:
    StatementOfReasons.objects.filter(pk__in=ids).update(submit_error=error)
    logger.warning("DSA submission stopped (%s); the rest is sent on the next run", error[:200])
    result.failed += len(ids)
    result.errors.append(error)


def statements_refused() -> list[StatementOfReasons]:
    """The dead letters: statements the database refused, waiting for someone to send them again."""
    return list(StatementOfReasons.objects.filter(submitted_at__isnull=True, submit_refused_at__isnull=False)
                .order_by("id"))


# --- The appeal link in a statement of reasons: the uploader's way to an internal complaint (Art. 20) ---

def appeal_token(statement: StatementOfReasons) -> str:
    return signing.dumps({"s": statement.pk}, salt=APPEAL_SALT)


def appeal_url(statement: StatementOfReasons) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("appeal-new", args=[appeal_token(statement)])


def statement_from_token(token: str) -> StatementOfReasons | None:
    try:
        data = signing.loads(token, salt=APPEAL_SALT)
    except signing.BadSignature:
        return None
    return StatementOfReasons.objects.select_related("decision", "item").filter(pk=data.get("s")).first()
