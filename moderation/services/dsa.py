"""DSA statements of reasons: Art. 17 content for the uploader and Art. 24(5) submissions to the
Commission's Transparency Database (API v2; LEGAL.md lists the fields and enum values).

Statements hold no personal data: no names, emails, locations or free text from reporters; the
``puid`` is derived from our own ids, so it is stable and unique per platform.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from moderation.audit import SYSTEM, audit_record
from moderation.models import Decision, Report, ReportedItem, StatementOfReasons

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
    own_initiative = decision.actions.filter(item=item, idempotency_key__contains="-copy-").exists()
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
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def statements_submit(*, endpoint: str | None = None, token: str | None = None,
                      batch_size: int | None = None, timeout: float = 30.0) -> SubmitResult:
    """Send statements not yet submitted, in batches of at most 100, to ``<endpoint>/api/v1/statements``
    with a bearer token. A batch the database refuses is recorded on its statements and retried next run."""
    endpoint = (endpoint if endpoint is not None else settings.TAKEDOWN_DSA_ENDPOINT).rstrip("/")
    token = token if token is not None else settings.TAKEDOWN_DSA_TOKEN
    size = min(batch_size or settings.TAKEDOWN_DSA_BATCH_SIZE, settings.TAKEDOWN_DSA_BATCH_SIZE)
    result = SubmitResult()
    if not endpoint:
        return result
    if not endpoint.startswith(("https://", "http://")):
        raise ValueError("TAKEDOWN_DSA_ENDPOINT must start with https:// (or http:// for a local test server).")
    pending = list(StatementOfReasons.objects.filter(submitted_at__isnull=True).order_by("id"))
    for start in range(0, len(pending), size):
        batch = pending[start:start + size]
        body = json.dumps({"statements": [s.payload for s in batch]}).encode()
        request = urllib.request.Request(f"{endpoint}/api/v1/statements", data=body, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json", "Accept": "application/json",
            "Authorization": f"Bearer {token}"})
        ids = [s.pk for s in batch]
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - endpoint from settings
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            error = f"HTTP {exc.code}: {detail}"[:500]
        except (urllib.error.URLError, OSError) as exc:
            error = f"could not reach the Transparency Database: {getattr(exc, 'reason', exc)}"[:500]
        else:
            now = timezone.now()
            StatementOfReasons.objects.filter(pk__in=ids).update(submitted_at=now, submit_error="")
            audit_record(actor=SYSTEM, action="statements.submitted", object_type="statement",
                         object_id=ids[0], data={"count": len(ids)})
            result.submitted += len(ids)
            continue
        StatementOfReasons.objects.filter(pk__in=ids).update(submit_error=error)
        result.failed += len(ids)
        result.errors.append(error)
    return result


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
