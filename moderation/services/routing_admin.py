"""Admins edit the named queues (who may work them) and the routing rules; every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.forms.models import model_to_dict

from hashing.models import Bank
from moderation.audit import actor_for_user, audit_record
from moderation.models import Queue, Report, RoutingRule
from moderation.roles import PERM_MANAGE_SETTINGS, ROLE_ORDER, require


class RoutingEditError(ValueError):
    """The change does not fit; ``field`` names what to correct."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class RuleFields:
    """A routing rule's settings as an admin gives them (empty / None: the condition is not used)."""

    name: str
    order: int
    queue_id: int
    enabled: bool = True
    kind: str = ""
    source: str = ""
    reason: str = ""
    match_bank_id: int | None = None
    match_bank_kind: str = ""
    score_min: float | None = None
    score_max: float | None = None
    language: str = ""
    muted_reporter: bool | None = None


_RULE_FIELDS = ("name", "order", "queue", "enabled", "kind", "source", "reason", "match_bank", "match_bank_kind",
                "score_min", "score_max", "language", "muted_reporter")


def _rule_state(rule: RoutingRule) -> dict[str, Any]:
    return model_to_dict(rule, fields=_RULE_FIELDS)


def _rule_check(f: RuleFields) -> None:
    if not f.name.strip():
        raise RoutingEditError("name", "Give the rule a name that says what it catches.")
    if not Queue.objects.filter(pk=f.queue_id).exists():
        raise RoutingEditError("queue", "Choose the queue the rule sends cases to.")
    if f.kind and f.kind not in RoutingRule.Kind.values:
        raise RoutingEditError("kind", "Choose report, appeal or any.")
    if f.source and f.source not in Report.Source.values:
        raise RoutingEditError("source", "Choose one of the report sources, or any.")
    if f.match_bank_kind and f.match_bank_kind not in Bank.Kind.values:
        raise RoutingEditError("match_bank_kind", "Choose a bank kind (local, partner, demo), or any.")
    if f.match_bank_id is not None and not Bank.objects.filter(pk=f.match_bank_id).exists():
        raise RoutingEditError("match_bank", "That bank does not exist any more; choose another.")
    for name, value in (("score_min", f.score_min), ("score_max", f.score_max)):
        if value is not None and not 0 <= value <= 1:
            raise RoutingEditError(name, "Scores run from 0 to 1.")
    if f.score_min is not None and f.score_max is not None and f.score_min > f.score_max:
        raise RoutingEditError("score_max", "The upper score must not be below the lower one.")


def rule_save(*, user: Any, rule_id: int | None, fields: RuleFields) -> RoutingRule:
    """Create (``rule_id`` None) or change a routing rule. It applies to cases routed from now on."""
    require(user, PERM_MANAGE_SETTINGS, "edit routing rules")
    _rule_check(fields)
    values = {**{k: v for k, v in vars(fields).items()}, "name": fields.name.strip(),
              "reason": fields.reason.strip(), "language": fields.language.strip()}
    with transaction.atomic():
        if rule_id is None:
            rule = RoutingRule.objects.create(**values)
            audit_record(actor=actor_for_user(user), action="routing_rule.created", object_type="routing_rule",
                         object_id=rule.pk, after=_rule_state(rule))
            return rule
        rule = RoutingRule.objects.select_for_update().get(pk=rule_id)
        before = _rule_state(rule)
        for key, value in values.items():
            setattr(rule, key, value)
        rule.save()
        after = _rule_state(rule)
        if after != before:
            audit_record(actor=actor_for_user(user), action="routing_rule.changed", object_type="routing_rule",
                         object_id=rule.pk, before=before, after=after)
    return rule


def rule_delete(*, user: Any, rule_id: int) -> None:
    require(user, PERM_MANAGE_SETTINGS, "edit routing rules")
    with transaction.atomic():
        rule = RoutingRule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None:
            return
        audit_record(actor=actor_for_user(user), action="routing_rule.deleted", object_type="routing_rule",
                     object_id=rule.pk, before=_rule_state(rule))
        rule.delete()


def _queue_state(queue: Queue) -> dict[str, Any]:
    return {"name": queue.name, "description": queue.description, "roles": sorted(queue.roles),
            "users": sorted(u.pk for u in queue.users.all()), "position": queue.position}


def queue_save(*, user: Any, queue_id: int | None, name: str, slug: str = "", description: str = "",
               roles: list[str], user_ids: list[int], position: int = 100) -> Queue:
    """Create or change a named queue and who may work it (no role and no user: every console role)."""
    require(user, PERM_MANAGE_SETTINGS, "edit queues")
    if not name.strip():
        raise RoutingEditError("name", "Give the queue a name.")
    unknown = sorted(set(roles) - set(ROLE_ORDER))
    if unknown:
        raise RoutingEditError("roles", f"Unknown role: {', '.join(unknown)}.")
    members = list(get_user_model().objects.filter(pk__in=user_ids))
    with transaction.atomic():
        if queue_id is None:
            if not slug.strip() or Queue.objects.filter(slug=slug.strip()).exists():
                raise RoutingEditError("slug", "Give the queue a short name for links that no other queue has.")
            queue = Queue.objects.create(name=name.strip(), slug=slug.strip(), description=description.strip(),
                                         roles=sorted(set(roles)), position=position)
            queue.users.set(members)
            audit_record(actor=actor_for_user(user), action="queue.created", object_type="queue",
                         object_id=queue.pk, after=_queue_state(queue))
            return queue
        queue = Queue.objects.select_for_update().get(pk=queue_id)
        before = _queue_state(queue)
        queue.name, queue.description = name.strip(), description.strip()
        queue.roles, queue.position = sorted(set(roles)), position
        queue.save()
        queue.users.set(members)
        after = _queue_state(queue)
        if after != before:
            audit_record(actor=actor_for_user(user), action="queue.changed", object_type="queue",
                         object_id=queue.pk, before=before, after=after)
    return queue
