from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from hashing.models import BankEntry
from moderation.models import Action, DemoContentItem, Report, ReviewTask
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload


def reported(location: str = "demo://content/3") -> ReviewTask:
    notice = Notice(**{**notice_payload(), "locations": [location]})  # type: ignore[arg-type]
    return report_submit(notice=notice).report.tasks.get()


@pytest.mark.django_db(transaction=True)
def test_the_queue_lists_open_cases_by_priority(demo: Any, moderator: User,
                                                client_for: Callable[[User], APIClient]) -> None:
    low = reported("demo://content/20")
    high = reported("demo://content/3")
    body = client_for(moderator).get("/api/v1/queue").json()
    ids = [row["id"] for row in body["results"]]
    assert ids == [high.pk, low.pk]
    reasons = body["results"][0]["priority_reasons"]
    assert "deadline" in [r["code"] for r in reasons]
    assert [r["points"] for r in reasons] == sorted((r["points"] for r in reasons), reverse=True)


@pytest.mark.django_db
def test_the_queue_needs_a_login_and_a_role(api: APIClient, outsider: User,
                                            client_for: Callable[[User], APIClient]) -> None:
    assert api.get("/api/v1/queue").status_code in (401, 403)
    assert client_for(outsider).get("/api/v1/queue").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_takedown_removes_the_item_banks_its_hashes_and_the_reporter_sees_it(
        demo: Any, moderator: User, client_for: Callable[[User], APIClient], api: APIClient) -> None:
    created = api.post("/api/v1/reports", notice_payload(locations=["demo://content/7"]), format="json").json()
    task = Report.objects.get(case_number=created["case_number"]).tasks.get()
    client = client_for(moderator)
    assert client.post(f"/api/v1/queue/{task.pk}/claim").status_code == 200
    response = client.post(f"/api/v1/queue/{task.pk}/decide",
                           {"decision": "takedown", "reason": "synthetic_ncii", "note": ""}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["report_status"] == "removed"
    assert DemoContentItem.objects.get(number=7).status == DemoContentItem.Status.REMOVED
    assert Action.objects.get().status == Action.Status.DONE
    confirmed = BankEntry.objects.filter(bank__name="confirmed-takedowns")
    assert set(confirmed.values_list("algorithm", flat=True)) == {"pdq", "md5", "sha256"}
    status = api.get(f"/api/v1/reports/{created['case_number']}", HTTP_X_CASE_PIN=created["pin"]).json()
    assert status["status"] == "removed"
    assert status["items"][0]["state"] == "removed"
    assert status["decision"]["outcome"] == "takedown"


@pytest.mark.django_db(transaction=True)
def test_no_violation_keeps_the_content_and_closes_the_case(demo: Any, moderator: User,
                                                            client_for: Callable[[User], APIClient]) -> None:
    task = reported("demo://content/8")
    response = client_for(moderator).post(f"/api/v1/queue/{task.pk}/decide",
                                          {"decision": "no_violation", "reason": "not_intimate"}, format="json")
    assert response.status_code == 200
    assert DemoContentItem.objects.get(number=8).status == DemoContentItem.Status.LIVE
    assert Report.objects.get(pk=task.report_id).status == Report.Status.NO_VIOLATION


@pytest.mark.django_db(transaction=True)
def test_two_moderators_cannot_hold_the_same_case(demo: Any, moderator: User, other_moderator: User,
                                                  client_for: Callable[[User], APIClient]) -> None:
    task = reported()
    assert client_for(moderator).post(f"/api/v1/queue/{task.pk}/claim").status_code == 200
    second = client_for(other_moderator).post(f"/api/v1/queue/{task.pk}/claim")
    assert second.status_code == 409
    assert "Another moderator" in second.json()["detail"]
    decide = client_for(other_moderator).post(f"/api/v1/queue/{task.pk}/decide",
                                              {"decision": "takedown", "reason": "ncii"}, format="json")
    assert decide.status_code == 409


@pytest.mark.django_db(transaction=True)
def test_triage_can_claim_but_not_decide(demo: Any, triage_user: User,
                                         client_for: Callable[[User], APIClient]) -> None:
    task = reported()
    client = client_for(triage_user)
    assert client.post(f"/api/v1/queue/{task.pk}/claim").status_code == 200
    response = client.post(f"/api/v1/queue/{task.pk}/decide", {"decision": "takedown", "reason": "ncii"},
                           format="json")
    assert response.status_code == 403
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.CLAIMED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("payload", "status"), [
    ({"decision": "takedown", "reason": "not_intimate"}, 400),
    ({"decision": "delete-everything", "reason": "ncii"}, 400),
    ({"decision": "takedown", "reason": "other", "note": ""}, 400),
    ({"reason": "ncii"}, 400),
])
def test_a_decision_that_does_not_fit_is_refused_and_changes_nothing(
        demo: Any, moderator: User, client_for: Callable[[User], APIClient], payload: dict[str, str],
        status: int) -> None:
    task = reported()
    response = client_for(moderator).post(f"/api/v1/queue/{task.pk}/decide", payload, format="json")
    assert response.status_code == status
    assert ReviewTask.objects.get(pk=task.pk).state != ReviewTask.State.DECIDED
    assert DemoContentItem.objects.get(number=3).status == DemoContentItem.Status.LIVE


@pytest.mark.django_db(transaction=True)
def test_an_expired_claim_can_be_taken_over(demo: Any, moderator: User, other_moderator: User) -> None:
    from django.utils import timezone

    from moderation.services.claims import task_claim, task_next

    task = reported()
    task_claim(task_id=task.pk, user=moderator)
    assert task_next(user=other_moderator) is None
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    taken = task_next(user=other_moderator)
    assert taken is not None and taken.pk == task.pk and taken.assignee_id == other_moderator.pk


@pytest.mark.django_db(transaction=True)
def test_a_decided_case_cannot_be_decided_again(demo: Any, moderator: User,
                                                client_for: Callable[[User], APIClient]) -> None:
    task = reported("demo://content/9")
    client = client_for(moderator)
    ok = client.post(f"/api/v1/queue/{task.pk}/decide", {"decision": "takedown", "reason": "ncii"}, format="json")
    assert ok.status_code == 200
    again = client.post(f"/api/v1/queue/{task.pk}/decide", {"decision": "no_violation", "reason": "not_intimate"},
                        format="json")
    assert again.status_code == 409
    assert Report.objects.get(pk=task.report_id).decisions.count() == 1
