"""Deciding the cases ticked in the queue in one POST (/console/queue/decide): all or none, one audit event per
case, the queue's filters kept; bad input is refused with a message naming the field, and nothing is decided."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client

from moderation.models import AuditEvent, Decision, Report, ReviewTask
from moderation.roles import MODERATOR, SENIOR, TRIAGE
from moderation.services import claims, decisions
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db

URL = "/console/queue/decide"


@pytest.fixture
def mo(client: Client) -> User:
    user = user_with_role("bulk-mo", MODERATOR)
    client.force_login(user)
    return user


def post(client: Client, tasks: list[Any], **fields: Any) -> tuple[Any, list[str]]:
    data = {"decision": "no_violation", "reason": "not_intimate", **fields, "tasks": [str(t) for t in tasks]}
    response = client.post(URL, data)
    return response, [str(m) for m in get_messages(response.wsgi_request)]


def undecided(*tasks: ReviewTask) -> bool:
    return not ReviewTask.objects.filter(pk__in=[t.pk for t in tasks], state=ReviewTask.State.DECIDED).exists() \
        and not Decision.objects.exists()


def test_a_moderator_decides_three_ticked_cases_no_violation_in_one_post(client: Client, mo: User) -> None:
    cases = [make_case() for _ in range(3)]
    spared = make_case()
    response, said = post(client, [c.pk for c in cases], back="state=open&source=web&page=1")
    assert response.status_code == 302
    assert response["Location"] == "/console/?state=open&source=web&page=1"
    numbers = ", ".join(c.report.case_number for c in cases)
    assert said == [f"Decided 3 cases: {numbers}."]
    for case in cases:
        task = ReviewTask.objects.select_related("report").get(pk=case.pk)
        assert task.state == ReviewTask.State.DECIDED
        assert task.report.status == Report.Status.NO_VIOLATION and task.report.closed_at is not None
        assert Decision.objects.get(task=task).decided_by == mo
    made = AuditEvent.objects.filter(action="decision.made").values_list("object_id", flat=True)
    assert sorted(made) == sorted(str(c.report_id) for c in cases)  # exactly one per case
    assert ReviewTask.objects.get(pk=spared.pk).state == ReviewTask.State.OPEN


def test_a_case_that_needs_a_second_reviewer_is_proposed_and_the_message_says_so(client: Client) -> None:
    senior = user_with_role("bulk-senior", SENIOR)
    client.force_login(senior)
    plain, automated = make_case(), make_case()
    Decision.objects.create(task=automated, report=automated.report, outcome="takedown", reason="known_copy",
                            automated=True)
    _response, said = post(client, [plain.pk, automated.pk])
    assert said == [f"Decided 1 case: {plain.report.case_number}; proposed 1 for a second reviewer: "
                    f"{automated.report.case_number}."]
    assert ReviewTask.objects.get(pk=automated.pk).state == ReviewTask.State.AWAITING_SECOND


def test_a_case_another_moderator_holds_stops_the_whole_batch_and_the_message_names_it(
        client: Client, mo: User) -> None:
    free, held, other_free = make_case(), make_case(), make_case()
    claims.task_claim(task_id=held.pk, user=user_with_role("bulk-other", MODERATOR))
    response, said = post(client, [free.pk, held.pk, other_free.pk])
    assert response.status_code == 302
    assert len(said) == 1 and said[0].startswith(f"Nothing was decided: case {held.report.case_number} cannot")
    assert "Another moderator is working on this case" in said[0]
    assert undecided(free, held, other_free)
    assert not AuditEvent.objects.filter(action="decision.made").exists()
    assert ReviewTask.objects.get(pk=free.pk).assignee is None  # the claims made on the way are undone too


def test_a_case_already_decided_by_someone_else_stops_the_batch_even_when_ticked_first(
        client: Client, mo: User) -> None:
    gone, free = make_case(), make_case()
    decisions.decision_submit(task_id=gone.pk, user=user_with_role("bulk-quick", MODERATOR),
                              outcome="takedown", reason="ncii")
    _response, said = post(client, [gone.pk, free.pk])
    assert said == [f"Nothing was decided: case {gone.report.case_number} cannot be decided (This case has already "
                    "been decided.). Untick it and decide the others again."]
    assert ReviewTask.objects.get(pk=free.pk).state == ReviewTask.State.OPEN
    assert Decision.objects.count() == 1


@pytest.mark.parametrize(("tasks", "fields", "named"), [
    (["12abc"], {}, "Ticked cases: '12abc' is not a case id"),
    ([], {}, "Ticked cases: Tick at least one case"),
    ([999999], {}, "Ticked cases: There is no case with id 999999"),
    ([1], {"reason": ""}, "Reason: Choose a reason."),
    ([1], {"reason": "ncii"}, "Reason: “Non-consensual intimate imagery”"),
    ([1], {"decision": "child_safety", "reason": "possible_minor"}, "Decision: Select a valid choice."),
    ([1], {"reason": "other"}, "Rationale: Explain the decision"),
    ([1], {"reporter_template": "no-such-template"}, "Message to the reporters: There is no reporter message"),
], ids=["not-an-integer", "none-ticked", "no-such-case", "no-reason", "reason-of-the-other-decision",
        "not-a-bulk-outcome", "other-without-rationale", "unknown-template"])
def test_bad_input_is_refused_with_a_message_naming_the_field_and_nothing_is_decided(
        client: Client, mo: User, tasks: list[Any], fields: dict[str, str], named: str) -> None:
    case = make_case()
    response, said = post(client, [case.pk if t == 1 else t for t in tasks], **fields)
    assert response.status_code == 302 and response["Location"] == "/console/"
    assert len(said) == 1 and said[0].startswith("Nothing was decided"), said
    assert named in said[0], said
    assert undecided(case)


def test_more_than_a_hundred_ticked_cases_are_refused_before_any_is_looked_at(client: Client, mo: User) -> None:
    case = make_case()
    _response, said = post(client, [case.pk, *range(10**6, 10**6 + 100)])
    assert said == ["Nothing was decided. Ticked cases: 101 cases are ticked; decide at most 100 at once."]
    assert undecided(case)


def test_the_way_back_to_the_queue_keeps_only_its_filters_and_never_leaves_the_queue(
        client: Client, mo: User) -> None:
    case = make_case()
    response, _said = post(client, [case.pk], back="//evil.example/?x=1&queue=low-priority&sort=reports&next=/x")
    assert response["Location"] == "/console/?queue=low-priority&sort=reports"
    response, _said = post(client, [make_case().pk], back="https://evil.example/")
    assert response["Location"] == "/console/"


def test_a_moderator_may_not_decide_an_escalated_case_in_a_batch_and_learns_which_to_untick(
        client: Client, mo: User) -> None:
    free, escalated = make_case(), make_case(state=ReviewTask.State.ESCALATED)
    _response, said = post(client, [free.pk, escalated.pk])
    assert len(said) == 1 and f"case {escalated.report.case_number} cannot be decided" in said[0]
    assert "decide escalated cases" in said[0] and "Untick it" in said[0]
    assert undecided(free, escalated)


def test_an_escalated_case_ticked_first_is_named_too(client: Client, mo: User) -> None:
    escalated, free = make_case(state=ReviewTask.State.ESCALATED), make_case()
    _response, said = post(client, [escalated.pk, free.pk])
    assert len(said) == 1 and "Untick the escalated cases" in said[0] and escalated.report.case_number in said[0]
    assert undecided(free, escalated)


def test_a_user_without_the_decide_permission_gets_403_and_nothing_is_decided(client: Client) -> None:
    client.force_login(user_with_role("bulk-triage", TRIAGE))
    case = make_case()
    response, _said = post(client, [case.pk])
    assert response.status_code == 403
    assert undecided(case)


def test_the_queue_shows_boxes_only_to_those_who_decide_and_only_on_cases_they_may_tick(
        client: Client, mo: User) -> None:
    mine, free = make_case(), make_case()
    theirs = make_case()
    escalated = make_case(state=ReviewTask.State.ESCALATED)
    claims.task_claim(task_id=mine.pk, user=mo)
    claims.task_claim(task_id=theirs.pk, user=user_with_role("bulk-other", MODERATOR))
    html = client.get("/console/?page=1").content.decode()
    assert 'id="bulk-form"' in html and 'id="bulk-all"' in html
    assert 'name="back" value="page=1"' in html
    for task, shown in ((mine, True), (free, True), (theirs, False), (escalated, False)):
        assert (f'name="tasks" value="{task.pk}"' in html) is shown, task.report.case_number

    client.force_login(user_with_role("bulk-triage", TRIAGE))
    html = client.get("/console/").content.decode()
    assert 'name="tasks"' not in html and 'id="bulk-form"' not in html


def test_a_senior_gets_boxes_on_escalated_cases_except_those_escalated_to_another_senior(client: Client) -> None:
    senior = user_with_role("bulk-senior", SENIOR)
    client.force_login(senior)
    anyone = make_case(state=ReviewTask.State.ESCALATED)
    for_them = make_case(state=ReviewTask.State.ESCALATED)
    ReviewTask.objects.filter(pk=for_them.pk).update(escalated_to=user_with_role("bulk-senior-2", SENIOR))
    html = client.get("/console/").content.decode()
    assert f'name="tasks" value="{anyone.pk}"' in html
    assert f'name="tasks" value="{for_them.pk}"' not in html
