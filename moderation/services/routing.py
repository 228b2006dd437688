"""Routing: which named queue a case sits in, from the routing rules (data admins edit, not code).

A case is routed when its task is created and again when it is re-triaged (its media hashed, matched and
scored). Rules are tried in order; the first whose every set condition holds names the queue; a case no
rule matches is in no queue (the seeded rules end with a catch-all for "NCII — adult"). Who may work a
queue: ``queues_workable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, Max, Q
from django.utils import timezone

from detection.versions import shadow_model_versions
from moderation.audit import SYSTEM, audit_record
from moderation.models import DetectionResult, Match, Queue, Report, ReviewTask, RoutingRule
from moderation.roles import role_of
from moderation.services.mutes import mute_lookup


@dataclass
class CaseFacts:
    """What rules look at, each read from the database only when a rule needs it."""

    task_kind: str
    report: Report
    reasons: list[str]
    media_ids: list[int] | None = None
    _banks: list[tuple[int, str]] | None = field(default=None, repr=False)
    _score: float | None = field(default=None, repr=False)
    _score_read: bool = field(default=False, repr=False)
    _muted: bool | None = field(default=None, repr=False)

    def _media(self) -> list[int]:
        if self.media_ids is None:
            self.media_ids = list(self.report.items.exclude(media=None).values_list("media_id", flat=True))
        return self.media_ids

    def banks(self) -> list[tuple[int, str]]:
        """(bank id, bank kind) of every bank the case's media match."""
        if self._banks is None:
            media = self._media()
            self._banks = list(Match.objects.filter(media_id__in=media).values_list(
                "bank_entry__bank_id", "bank_entry__bank__kind").distinct()) if media else []
        return self._banks

    def score(self) -> float | None:
        if not self._score_read:
            media = self._media()
            self._score = (DetectionResult.objects.filter(media_id__in=media)
                           .exclude(model_version__in=shadow_model_versions())
                           .aggregate(top=Max("score"))["top"]) if media else None
            self._score_read = True
        return self._score

    def muted(self) -> bool:
        # Read with the rules (``route``); a report without an address is never muted.
        return bool(self._muted)


def _case_reasons(task: ReviewTask, report: Report) -> list[str]:
    codes = [str(r.get("code", "")) for r in task.priority_reasons or []]
    ozone = (report.context or {}).get("ozone") if isinstance(report.context, dict) else None
    if isinstance(ozone, dict) and ozone.get("reason_type"):
        codes.append(str(ozone["reason_type"]).rsplit("#", 1)[-1])
    return codes


def rule_matches(rule: RoutingRule, facts: CaseFacts) -> bool:
    """Whether every condition the rule sets holds for the case (cheap conditions first)."""
    report = facts.report
    if rule.kind and rule.kind != facts.task_kind:
        return False
    if rule.source and rule.source != report.source:
        return False
    if rule.reason and not any(code.startswith(rule.reason) for code in facts.reasons):
        return False
    if rule.language:
        language = str((report.context or {}).get("language", "")).lower()
        if not language or not language.startswith(rule.language.lower()):
            return False
    if rule.match_bank_id is not None and rule.match_bank_id not in {b for b, _k in facts.banks()}:
        return False
    if rule.match_bank_kind and rule.match_bank_kind not in {k for _b, k in facts.banks()}:
        return False
    if rule.score_min is not None or rule.score_max is not None:
        score = facts.score()
        if score is None or (rule.score_min is not None and score < rule.score_min) or (
                rule.score_max is not None and score > rule.score_max):
            return False
    return rule.muted_reporter is None or rule.muted_reporter == facts.muted()


def route(task: ReviewTask, report: Report, *, media_ids: list[int] | None = None
          ) -> tuple[Queue | None, RoutingRule | None]:
    """The queue the case belongs in now and the rule that put it there (None, None: no rule matched)."""
    facts = CaseFacts(task_kind=task.kind, report=report, reasons=_case_reasons(task, report), media_ids=media_ids)
    rules = RoutingRule.objects.filter(enabled=True).select_related("queue").order_by("order", "id")
    if report.reporter_email:
        # Whether the reporter is muted comes with the rules, in the same query (intake counts its queries).
        rules = rules.annotate(reporter_muted=Exists(mute_lookup(report.reporter_email)))
    for rule in rules:
        facts._muted = bool(getattr(rule, "reporter_muted", False))
        if rule_matches(rule, facts):
            return rule.queue, rule
    return None, None


def task_route(task: ReviewTask, report: Report, *, media_ids: list[int] | None = None) -> bool:
    """Re-route an undecided task (call inside the transaction that holds the report's row). A case escalated
    to a senior or on hold stays where a person put it. Returns whether the queue changed (then audited)."""
    held = task.held_until is not None and task.held_until > timezone.now()
    if task.state not in (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED) or held:
        return False
    queue, rule = route(task, report, media_ids=media_ids)
    queue_id = queue.pk if queue else None
    if queue_id == task.queue_id:
        return False
    before = {"queue": task.queue_id}
    task.queue = queue
    task.save(update_fields=["queue", "updated_at"])
    audit_record(actor=SYSTEM, action="task.routed", object_type="task", object_id=task.pk,
                 data={"queue": queue.slug if queue else None, "rule": rule.pk if rule else None},
                 before=before, after={"queue": queue_id})
    return True


def _may_work(user: Any, role: str, queue: Queue) -> bool:
    users = list(queue.users.all())
    return (not queue.roles and not users) or role == "superuser" or role in queue.roles or any(
        u.pk == user.pk for u in users)


def user_may_work(user: Any, queue: Queue | None) -> bool:
    """Whether ``user`` may claim cases in ``queue`` (every queue role may work a case with no queue)."""
    return queue is None or _may_work(user, role_of(user), queue)


def queues_workable(user: Any) -> Q:
    """A filter on tasks: those in a queue ``user`` may work, or in none."""
    role = role_of(user)
    allowed = [q.pk for q in Queue.objects.prefetch_related("users") if _may_work(user, role, q)]
    return Q(queue=None) | Q(queue_id__in=allowed)
