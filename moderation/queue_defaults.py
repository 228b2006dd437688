"""The default named queues and routing rules, seeded on a fresh database (migration 0019 and after every
migrate or flush that leaves no queue at all, as ``roles_sync`` does for the roles). Admins change them in the
console (/console/routing/); once any queue exists, nothing here touches them again."""

from __future__ import annotations

from typing import Any

QUEUES: list[tuple[str, str, str, list[str], int]] = [
    # (slug, name, description, roles, position); no roles: every console role may work it.
    ("ncii-adult", "NCII — adult", "Reports of intimate imagery of adults: the ordinary queue.", [], 10),
    ("child-safety", "Possible minor — child safety",
     "Cases that may show a minor: senior moderators only, for the child-safety procedure.",
     ["senior_moderator", "admin"], 20),
    ("appeals", "Appeals", "Appeals against decisions: decided by a different, senior reviewer.",
     ["senior_moderator", "admin"], 30),
    ("partner-matches", "Partner matches", "Cases whose media match a bank shared by a partner platform.", [], 40),
    ("low-priority", "Low priority", "Reports from muted reporter addresses: stored and acknowledged, worked last.",
     [], 90),
]
RULES: list[tuple[int, str, str, dict[str, Any]]] = [
    # (order, name, queue slug, conditions); the last one catches every case no other rule took.
    (10, "Muted reporters", "low-priority", {"muted_reporter": True}),
    (20, "Child-safety reason given in the app", "child-safety", {"reason": "reasonChildSafety"}),
    (30, "Appeals", "appeals", {"kind": "appeal"}),
    (40, "Match in a partner's bank", "partner-matches", {"match_bank_kind": "partner"}),
    (1000, "Everything else", "ncii-adult", {}),
]


def queues_seed_into(queue_model: Any, rule_model: Any) -> None:
    """Create the default queues and rules when there is no queue at all (models passed in, for migrations)."""
    if queue_model.objects.exists():
        return
    by_slug = {slug: queue_model.objects.create(slug=slug, name=name, description=description, roles=roles,
                                                position=position)
               for slug, name, description, roles, position in QUEUES}
    for order, name, slug, conditions in RULES:
        rule_model.objects.create(order=order, name=name, queue=by_slug[slug], **conditions)


def queues_seed(**_kwargs: Any) -> None:
    """post_migrate: the defaults on a database that has none (also after a test's flush)."""
    from moderation.models import Queue, RoutingRule

    queues_seed_into(Queue, RoutingRule)
