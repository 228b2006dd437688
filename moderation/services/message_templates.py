"""Message templates: canned rationales and the messages to reporter and uploader, per decision reason.

The console offers them when deciding; the chosen keys are stored on the ``Decision``. The emails
themselves are sent by ``services/notices.py``, which calls ``message_render`` for the chosen key.
Defaults live here; an admin can override or add templates as ``MessageTemplate`` rows (same key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.template import Context, Template
from django.utils.html import escape

from moderation.audit import actor_for_user, audit_record
from moderation.models import Decision, MessageTemplate
from moderation.roles import PERM_MANAGE_SETTINGS, require

R = Decision.Reason


@dataclass(frozen=True)
class MessageChoice:
    key: str
    audience: str  # "reporter" | "uploader"
    reason: str
    title: str
    rationale: str
    subject: str
    text: str
    html: str


def _d(key: str, audience: str, reason: str, title: str, rationale: str, subject: str, text: str) -> MessageChoice:
    html = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
    return MessageChoice(key, audience, reason, title, rationale, subject, text, html)


DEFAULTS: tuple[MessageChoice, ...] = (
    _d("reporter-removed-ncii", "reporter", R.NCII, "Removed: intimate image shared without consent",
       "The content is an intimate image shared without the consent of the person depicted.",
       "We removed the content you reported ({{ case_number }})",
       "We reviewed your report {{ case_number }} and removed the content: it is an intimate image shared "
       "without consent.\n\nWe also block copies of it from being uploaded again."),
    _d("reporter-removed-synthetic", "reporter", R.SYNTHETIC_NCII, "Removed: AI-made or altered intimate image",
       "The content is an AI-generated or altered intimate depiction (a digital forgery) made without consent.",
       "We removed the content you reported ({{ case_number }})",
       "We reviewed your report {{ case_number }} and removed the content: it is an AI-made or altered intimate "
       "image of you, shared without consent.\n\nWe also block copies of it from being uploaded again."),
    _d("reporter-removed-copy", "reporter", R.KNOWN_COPY, "Removed: copy of content removed before",
       "The content is identical or substantially the same as content already removed.",
       "We removed the content you reported ({{ case_number }})",
       "We reviewed your report {{ case_number }} and removed the content: it is a copy of content we "
       "removed before."),
    _d("reporter-kept-not-intimate", "reporter", R.NOT_INTIMATE, "Not removed: not intimate image content",
       "The content does not show an intimate image.",
       "Your report {{ case_number }}: we did not remove the content",
       "We reviewed your report {{ case_number }}. The content does not show an intimate image, so we did not "
       "remove it.\n\nYou can ask us to look again, and you have the other options listed below."),
    _d("reporter-kept-not-subject", "reporter", R.NOT_SUBJECT, "Not removed: reporter not depicted or authorised",
       "The reporter is neither the person depicted nor authorised to act for them.",
       "Your report {{ case_number }}: we need the person depicted",
       "We reviewed your report {{ case_number }}. We can act on a report from the person depicted or someone "
       "authorised to act for them. If that is you, please reply with how you are authorised."),
    _d("reporter-kept-not-found", "reporter", R.NOT_FOUND, "Not removed: content not found",
       "The content could not be found at the locations given.",
       "Your report {{ case_number }}: we could not find the content",
       "We could not find the content named in report {{ case_number }}. If it is still online, please send "
       "a new report with its exact link."),
    _d("reporter-needs-information", "reporter", R.NEEDS_INFORMATION, "Ask the reporter for information",
       "The report does not yet let us identify or assess the content.",
       "Your report {{ case_number }}: we need a little more information",
       "To act on report {{ case_number }} we need more information. Please reply with the details asked "
       "for below; the case stays open while we wait."),
    _d("reporter-child-safety", "reporter", R.POSSIBLE_MINOR, "Routed to the child-safety procedure",
       "The person depicted may be under 18; the case follows the child-safety procedure.",
       "Your report {{ case_number }}",
       "Thank you for report {{ case_number }}. Because the person shown may be under 18, it is handled by our "
       "child-safety procedure. You can also use NCMEC's Take It Down service: https://takeitdown.ncmec.org/"),
    _d("uploader-removed", "uploader", R.NCII, "Statement of reasons: removed (NCII)",
       "", "Content you shared was removed",
       "Content you shared was removed because it is an intimate image shared without the consent of the "
       "person depicted.\n\nYou can appeal this decision; the options are listed below."),
    _d("uploader-removed-synthetic", "uploader", R.SYNTHETIC_NCII, "Statement of reasons: removed (digital forgery)",
       "", "Content you shared was removed",
       "Content you shared was removed because it is an AI-generated or altered intimate depiction of a real "
       "person, shared without their consent.\n\nYou can appeal this decision; the options are listed below."),
)


def message_choices(*, reason: str = "") -> list[MessageChoice]:
    """Active templates (defaults overridden by rows with the same key), optionally for one reason."""
    by_key = {c.key: c for c in DEFAULTS}
    for row in MessageTemplate.objects.filter(active=True):
        by_key[row.key] = MessageChoice(row.key, row.audience, row.reason, row.title, row.rationale, row.subject,
                                        row.text, row.html)
    for inactive_key in MessageTemplate.objects.filter(active=False).values_list("key", flat=True):
        by_key.pop(inactive_key, None)
    choices = sorted(by_key.values(), key=lambda c: (c.reason, c.audience, c.key))
    return [c for c in choices if not reason or c.reason == reason]


def message_choice(key: str) -> MessageChoice | None:
    return next((c for c in message_choices() if c.key == key), None)


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def message_render(*, key: str, context: dict[str, Any]) -> RenderedMessage | None:
    """Fill a template with ``context`` (e.g. ``case_number``); None for an unknown key."""
    choice = message_choice(key)
    if choice is None:
        return None
    ctx = Context(context, autoescape=False)
    html_ctx = Context(context)  # escaped: the HTML part never trusts the context
    return RenderedMessage(subject=Template(choice.subject).render(ctx).strip(),
                           text=Template(choice.text).render(ctx), html=Template(choice.html).render(html_ctx))


def message_template_save(*, user: Any, key: str, audience: str, reason: str, title: str, subject: str, text: str,
                          html: str, rationale: str = "", active: bool = True) -> MessageTemplate:
    """Add or override a template (admins: settings). Raises ``ValueError`` naming the field."""
    require(user, PERM_MANAGE_SETTINGS, "edit message templates")
    if audience not in MessageTemplate.Audience.values:
        raise ValueError(f"audience: use one of {', '.join(MessageTemplate.Audience.values)}.")
    if reason not in Decision.Reason.values:
        raise ValueError(f"reason: use one of {', '.join(Decision.Reason.values)}.")
    for name, value in (("key", key), ("title", title), ("subject", subject), ("text", text)):
        if not value.strip():
            raise ValueError(f"{name}: this field is required.")
    with transaction.atomic():
        before = MessageTemplate.objects.filter(key=key).values("audience", "reason", "title", "active").first()
        row, _ = MessageTemplate.objects.update_or_create(key=key, defaults={
            "audience": audience, "reason": reason, "title": title, "rationale": rationale, "subject": subject,
            "text": text, "html": html or "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n")),
            "active": active})
        audit_record(actor=actor_for_user(user), action="template.saved", object_type="message_template",
                     object_id=key, before=dict(before) if before else None,
                     after={"audience": audience, "reason": reason, "title": title, "active": active})
    return row
