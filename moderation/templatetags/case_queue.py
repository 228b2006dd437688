"""``{% case_queue_controls %}``: the queue, hold and escalate-to controls on a case page.

``part`` picks what to render: "status" (the queue, the hold and a delayed takedown, with lifting and carrying
out now), "actions" (the forms that put on hold, escalate to a senior, delay a takedown, mute the reporter) or
both. The case page shows the status in its decision panel and the actions under its "More".
"""

from __future__ import annotations

from typing import Any

from django import template

from moderation.models import Decision
from moderation.roles import PERM_DECIDE, PERM_ESCALATE, PERM_SECOND_REVIEW
from moderation.selectors.queues import case_queue_state
from moderation.services.decisions import REASONS_BY_OUTCOME

register = template.Library()


@register.inclusion_tag("console/_case_queue_controls_body.html", takes_context=True)
def case_queue_controls(context: Any, task_id: int, part: str = "all") -> dict[str, Any]:
    user = context["request"].user
    return {"state": case_queue_state(task_id), "csrf_token": context.get("csrf_token"), "part": part,
            "can_hold": user.has_perm(PERM_DECIDE), "can_escalate": user.has_perm(PERM_ESCALATE),
            "can_mute": user.has_perm(PERM_SECOND_REVIEW),
            "takedown_reasons": [(value, label) for value, label in Decision.Reason.choices
                                 if value in REASONS_BY_OUTCOME[Decision.Outcome.TAKEDOWN]],
            "deadline": context["case"].report.deadline_at if "case" in context else None}
