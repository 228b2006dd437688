"""Named queues and routing rules: a case is routed on creation and on re-triage; "next" draws only from
queues the moderator may work; the queue page filters by queue; rule and queue edits are audited."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hashing.models import Bank
from moderation.models import AuditEvent, Match, Queue, Report, ReviewTask, RoutingRule
from moderation.roles import ADMIN, MODERATOR, SENIOR
from moderation.services import claims, routing, routing_admin
from moderation.services.intake import Notice, report_submit
from moderation.services.triage import report_triage
from tests.conftest import notice_payload
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db


def queue(slug: str) -> Queue:
    return Queue.objects.get(slug=slug)


def routed(task: ReviewTask) -> ReviewTask:
    """Re-triage the task's report (as after scoring) and read the task back."""
    report_triage(task.report_id)
    return ReviewTask.objects.select_related("queue").get(pk=task.pk)


def test_the_default_queues_and_rules_are_seeded() -> None:
    assert list(Queue.objects.values_list("slug", flat=True)) == [
        "ncii-adult", "child-safety", "appeals", "partner-matches", "low-priority"]
    assert queue("child-safety").roles == ["senior_moderator", "admin"]
    assert RoutingRule.objects.order_by("order").last().queue.slug == "ncii-adult"  # the catch-all


def test_a_filed_report_lands_in_the_ordinary_queue_and_the_audit_says_so(demo: Any) -> None:
    notice = Notice(**{**notice_payload(), "locations": ["demo://content/20"]})  # type: ignore[arg-type]
    task = report_submit(notice=notice).report.tasks.get()
    assert task.queue == queue("ncii-adult")
    created = AuditEvent.objects.get(action="task.created", object_id=str(task.pk))
    assert created.data["queue"] == "ncii-adult"


def test_retriage_moves_a_case_whose_media_match_a_partner_bank() -> None:
    task = make_case(match=True)  # in the local "test-bank"
    assert routed(task).queue == queue("ncii-adult")
    Bank.objects.filter(name="test-bank").update(kind=Bank.Kind.PARTNER)
    assert routed(task).queue == queue("partner-matches")
    event = AuditEvent.objects.filter(action="task.routed", object_id=str(task.pk)).last()
    assert event is not None and event.data["queue"] == "partner-matches"
    assert event.before == {"queue": queue("ncii-adult").pk}


def test_rules_are_tried_in_order_and_the_first_that_matches_wins() -> None:
    RoutingRule.objects.create(order=5, name="eSafety to seniors", queue=queue("child-safety"),
                               source=Report.Source.ESAFETY)
    assert routed(make_case(source=Report.Source.ESAFETY)).queue == queue("child-safety")
    assert routed(make_case(source=Report.Source.WEB)).queue == queue("ncii-adult")


def test_a_rule_can_route_by_a_bank_by_score_band_and_by_known_language() -> None:
    special = Bank.objects.create(name="special")
    RoutingRule.objects.create(order=1, name="high scores", queue=queue("appeals"), score_min=0.9)
    RoutingRule.objects.create(order=2, name="german", queue=queue("partner-matches"), language="de")
    RoutingRule.objects.create(order=3, name="special bank", queue=queue("low-priority"), match_bank=special)
    assert routed(make_case(score=0.95)).queue == queue("appeals")
    assert routed(make_case(score=0.5)).queue == queue("ncii-adult")
    german = make_case()
    Report.objects.filter(pk=german.report_id).update(context={"language": "de-AT"})
    assert routed(german).queue == queue("partner-matches")
    assert routed(make_case()).queue == queue("ncii-adult")  # no language known: the rule does not apply
    in_special = make_case(match=True)
    Match.objects.filter(media__reported_items__report_id=in_special.report_id).update(
        bank_entry=special.entries.create(algorithm="md5", value="0" * 32, source="t"))
    assert routed(in_special).queue == queue("low-priority")


def test_a_child_safety_reason_given_in_the_app_routes_to_the_child_safety_queue() -> None:
    task = make_case(source=Report.Source.PLATFORM)
    Report.objects.filter(pk=task.report_id).update(
        context={"ozone": {"event": 1, "reason_type": "tools.ozone.report.defs#reasonChildSafetyCSAM"}})
    assert routed(task).queue == queue("child-safety")


def test_a_case_escalated_or_on_hold_keeps_its_queue_on_retriage() -> None:
    Bank.objects.create(name="test-bank", kind=Bank.Kind.PARTNER)
    escalated = make_case(match=True, state=ReviewTask.State.ESCALATED)
    held = make_case(match=True)
    ReviewTask.objects.filter(pk=held.pk).update(held_until=timezone.now() + timedelta(hours=2))
    assert routed(escalated).queue is None
    assert routed(held).queue is None
    assert not AuditEvent.objects.filter(action="task.routed").exists()


def test_next_draws_only_from_queues_the_moderator_may_work(moderator: User, senior: User) -> None:
    minor = make_case(priority=90)
    ReviewTask.objects.filter(pk=minor.pk).update(queue=queue("child-safety"))
    ordinary = make_case(priority=10)
    ReviewTask.objects.filter(pk=ordinary.pk).update(queue=queue("ncii-adult"))
    drawn = claims.task_next(user=moderator)
    assert drawn is not None and drawn.pk == ordinary.pk
    assert claims.task_next(user=moderator) is None  # only the child-safety case is left
    taken = claims.task_next(user=senior)
    assert taken is not None and taken.pk == minor.pk


def test_a_moderator_cannot_claim_a_case_in_a_queue_they_may_not_work(moderator: User) -> None:
    minor = make_case()
    ReviewTask.objects.filter(pk=minor.pk).update(queue=queue("child-safety"))
    with pytest.raises(claims.ReviewError, match="does not work"):
        claims.task_claim(task_id=minor.pk, user=moderator)


def test_a_queue_that_names_a_user_lets_them_work_it_whatever_their_role(moderator: User) -> None:
    minor = make_case()
    ReviewTask.objects.filter(pk=minor.pk).update(queue=queue("child-safety"))
    queue("child-safety").users.add(moderator)
    drawn = claims.task_next(user=moderator)
    assert drawn is not None and drawn.pk == minor.pk
    assert routing.user_may_work(moderator, queue("child-safety"))


def _rows(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-task="(\d+)"', html)]


@pytest.fixture
def mod_client(client: Client) -> Client:
    client.force_login(user_with_role("queue-mod", MODERATOR))
    return client


def test_the_queue_page_filters_by_queue_and_names_each_cases_queue(mod_client: Client) -> None:
    minor = make_case()
    ReviewTask.objects.filter(pk=minor.pk).update(queue=queue("child-safety"))
    ordinary = make_case()
    ReviewTask.objects.filter(pk=ordinary.pk).update(queue=queue("ncii-adult"))
    nowhere = make_case()
    html = mod_client.get("/console/?queue=child-safety").content.decode()
    assert _rows(html) == [minor.pk]
    assert "Possible minor — child safety" in html
    assert _rows(mod_client.get("/console/?queue=none").content.decode()) == [nowhere.pk]
    assert set(_rows(mod_client.get("/console/").content.decode())) == {minor.pk, ordinary.pk, nowhere.pk}


def test_the_queue_page_filtered_by_queue_runs_the_same_number_of_queries_for_5_or_60_cases(
        mod_client: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert mod_client.get("/console/?queue=ncii-adult").status_code == 200
        return len(ctx.captured_queries)

    def cases(n: int) -> None:
        for _ in range(n):
            task = make_case(score=0.5)
            ReviewTask.objects.filter(pk=task.pk).update(queue=queue("ncii-adult"))

    cases(5)
    few = queries()
    cases(55)
    assert queries() == few <= 11


def test_an_admin_edits_a_rule_and_the_change_is_audited() -> None:
    admin = user_with_role("rules-admin", ADMIN)
    rule = routing_admin.rule_save(user=admin, rule_id=None, fields=routing_admin.RuleFields(
        name="flaggers first", order=1, queue_id=queue("appeals").pk, source=Report.Source.TRUSTED_FLAGGER))
    created = AuditEvent.objects.get(action="routing_rule.created", object_id=str(rule.pk))
    assert created.after is not None and created.after["source"] == "trusted_flagger"
    routing_admin.rule_save(user=admin, rule_id=rule.pk, fields=routing_admin.RuleFields(
        name="flaggers first", order=1, queue_id=queue("appeals").pk, source=Report.Source.ESAFETY))
    changed = AuditEvent.objects.get(action="routing_rule.changed", object_id=str(rule.pk))
    assert changed.before is not None and changed.before["source"] == "trusted_flagger"
    assert changed.after is not None and changed.after["source"] == "esafety"
    routing_admin.rule_delete(user=admin, rule_id=rule.pk)
    assert AuditEvent.objects.filter(action="routing_rule.deleted", object_id=str(rule.pk)).exists()
    assert not RoutingRule.objects.filter(pk=rule.pk).exists()


def test_a_senior_may_not_edit_rules_and_a_bad_score_band_is_refused() -> None:
    fields = routing_admin.RuleFields(name="x", order=1, queue_id=queue("appeals").pk, score_min=0.8, score_max=0.2)
    with pytest.raises(PermissionDenied):
        routing_admin.rule_save(user=user_with_role("rules-senior", SENIOR), rule_id=None, fields=fields)
    with pytest.raises(routing_admin.RoutingEditError, match="upper score"):
        routing_admin.rule_save(user=user_with_role("rules-admin2", ADMIN), rule_id=None, fields=fields)


def test_an_admin_changes_who_may_work_a_queue_and_the_change_is_audited(moderator: User) -> None:
    admin = user_with_role("queue-admin", ADMIN)
    target = queue("child-safety")
    routing_admin.queue_save(user=admin, queue_id=target.pk, name=target.name, description=target.description,
                             roles=["admin"], user_ids=[moderator.pk], position=target.position)
    event = AuditEvent.objects.get(action="queue.changed", object_id=str(target.pk))
    assert event.before is not None and event.before["roles"] == ["admin", "senior_moderator"]
    assert event.after is not None and event.after["users"] == [moderator.pk]


def test_the_routing_pages_let_an_admin_add_a_rule_through_the_form(client: Client) -> None:
    client.force_login(user_with_role("page-admin", ADMIN))
    assert "Queues and routing" in client.get("/console/routing/").content.decode()
    response = client.post("/console/routing/rule/new", {
        "name": "eSafety notices", "order": "7", "queue": str(queue("appeals").pk), "enabled": "on",
        "source": "esafety", "muted_reporter": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = RoutingRule.objects.get(name="eSafety notices")
    assert rule.source == "esafety" and rule.muted_reporter is None and rule.order == 7
    assert client.get(f"/console/routing/rule/{rule.pk}").status_code == 200
    bad = client.post("/console/routing/rule/new", {"name": "", "order": "1", "queue": str(queue("appeals").pk)})
    assert bad.status_code == 400
