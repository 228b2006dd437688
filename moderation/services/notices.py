"""Notices by email: receipt, needs information, decision with redress, statement of reasons, appeals,
withdrawal, and deadline reminders to staff. Each is a template triplet under ``templates/emails/<kind>/``
(``subject.txt``, ``body.txt``, ``body.html``) sent through Django's email backend.

Every notice sent is recorded in the audit log by kind and object, never by address or content.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from moderation.audit import SYSTEM, audit_record
from moderation.models import AuditEvent
from moderation.services.message_templates import message_render

logger = logging.getLogger(__name__)

KINDS = frozenset({
    "report_received", "needs_information", "decision", "statement_of_reasons", "statements_of_reasons",
    "appeal_received",
    "appeal_decided", "withdrawn", "deadline_reminder", "deadline_breached", "decision_changed",
})


def notice_send(*, kind: str, to: list[str], context: dict[str, Any], object_type: str, object_id: object) -> bool:
    """Render ``emails/<kind>/`` and send it. Returns False (and sends nothing) when there is nobody to tell."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    recipients = [address for address in to if address]
    if not recipients:
        return False
    ctx = {"site_url": settings.SITE_URL.rstrip("/"), "status_url": settings.SITE_URL.rstrip("/")
           + reverse("status-lookup"), **context}
    subject = " ".join(render_to_string(f"emails/{kind}/subject.txt", ctx).split())
    text = render_to_string(f"emails/{kind}/body.txt", ctx)
    html = render_to_string(f"emails/{kind}/body.html", ctx)
    message = EmailMultiAlternatives(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL,
                                     to=recipients)
    message.attach_alternative(html, "text/html")
    message.send()
    audit_record(actor=SYSTEM, action="notice.sent", object_type=object_type, object_id=object_id,
                 data={"kind": kind, "recipients": len(recipients)})
    logger.info("notice %s sent for %s %s", kind, object_type, object_id)
    return True


def redress_options() -> dict[str, Any]:
    """DSA Art. 16(5), 17(3)(f), 20, 21: the ways to challenge a decision, for notice templates."""
    return {
        "appeal_window_days": settings.TAKEDOWN_APPEAL_WINDOW_DAYS,
        "ods_url": settings.TAKEDOWN_ODS_BODIES_URL,
    }


def statement_context(statement: Any, *, appeal_link: str) -> dict[str, Any]:
    """The Art. 17(3) elements (a)-(f) in words, for the uploader's notice."""
    payload = statement.payload
    automated = {
        "AUTOMATED_DECISION_FULLY": _("The decision was taken by automated means."),
        "AUTOMATED_DECISION_PARTIALLY": _("Automated hash matching helped find the content; a person decided."),
        "AUTOMATED_DECISION_NOT_AUTOMATED": _("No automated means were used in the decision."),
    }[payload["automated_decision"]]
    detection = (_("Automated means detected the content.") if payload["automated_detection"] == "Yes"
                 else _("The content was not detected by automated means."))
    return {
        "puid": statement.puid,
        "restriction": _("The content was removed"),
        "territory": settings.TAKEDOWN_RESTRICTION_TERRITORY,
        "duration": _("indefinitely, unless reversed on appeal"),
        "location": statement.item.location,
        "facts": payload["decision_facts"],
        "automation": f"{detection} {automated}",
        "legal_ground": payload["illegal_content_legal_ground"],
        "legal_explanation": payload["illegal_content_explanation"],
        "contractual_ground": payload["incompatible_content_ground"],
        "appeal_url": appeal_link,
        **redress_options(),
    }


def chosen_message(key: str, case_number: str) -> str:
    """The text of the message template the moderator chose (services/message_templates.py), if any."""
    if not key:
        return ""
    rendered = message_render(key=key, context={"case_number": case_number})
    return rendered.text.strip() if rendered else ""


def already_sent(kind: str, decision_id: int) -> bool:
    """Whether the notice ``kind`` about this decision went out already (the audit log records each one)."""
    return AuditEvent.objects.filter(action="notice.sent", object_type=kind, object_id=str(decision_id),
                                     data__kind=kind).exists()
