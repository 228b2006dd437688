"""Many reports, one item (services/joining.py): reports of content an open case holds join it, the queue
counts them, one decision applies to all of them, every reporter hears the outcome, and each uploader gets one
message for decisions made together."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone
from PIL import Image

from moderation.models import Action, AuditEvent, Decision, Report, ReportedItem, ReviewTask
from moderation.selectors.reporter import report_public_status
from moderation.services import claims, deadlines, decisions, enforcement, joining, mutes, pipeline, triage
from moderation.services.intake import Notice, Upload, report_submit, report_withdraw
from tests.conftest import make_image_bytes, notice_payload

pytestmark = pytest.mark.django_db


def submit(capture: Any = None, uploads: list[Upload] | None = None, **overrides: Any) -> Report:
    notice = Notice(**notice_payload(**overrides))
    if capture is None:
        return report_submit(notice=notice, uploads=uploads).report
    with capture(execute=True):
        return report_submit(notice=notice, uploads=uploads).report


def case_task(report: Report) -> ReviewTask:
    return ReviewTask.objects.get(report=report, kind=ReviewTask.Kind.REPORT)


def fresh(report: Report) -> Report:
    return Report.objects.get(pk=report.pk)


def test_a_second_report_of_the_same_link_joins_the_open_case_instead_of_opening_a_review(demo: Any) -> None:
    first = submit(locations=["demo://content/3"])
    second = submit(locations=["demo://content/3"], reporter_email="sam@example.org")
    second = fresh(second)
    assert second.joined_to_id == first.pk
    assert second.join_basis == joining.SAME_LOCATION
    assert not ReviewTask.objects.filter(report=second).exists()
    assert second.case_number != first.case_number  # the reporter follows their own case number
    assert second.status == Report.Status.IN_REVIEW
    assert fresh(first).report_count == 2
    joined = AuditEvent.objects.get(action="report.joined")
    assert joined.object_id == str(second.pk) and joined.data["case"] == first.pk


def test_the_case_counts_its_reports_in_its_priority(demo: Any) -> None:
    first = submit()
    before = case_task(first).priority
    submit(reporter_email="b@example.org")
    submit(reporter_email="c@example.org")
    task = case_task(first)
    reasons = {r["code"]: r for r in task.priority_reasons}
    assert reasons["reports"]["detail"] == "reported 3 times"
    assert task.priority == before + reasons["reports"]["points"]


def test_a_report_naming_a_link_the_case_does_not_hold_opens_its_own_case(demo: Any) -> None:
    first = submit(locations=["demo://content/3"])
    second = fresh(submit(locations=["demo://content/3", "demo://content/4"], reporter_email="b@example.org"))
    assert second.joined_to_id is None
    assert ReviewTask.objects.filter(report=second).exists()
    assert fresh(first).report_count == 1


def test_a_report_does_not_join_a_case_already_decided(demo: Any, moderator: User) -> None:
    first = submit()
    decisions.decision_make(task_id=case_task(first).pk, user=moderator, outcome="no_violation",
                            reason="not_intimate")
    second = fresh(submit(reporter_email="b@example.org"))
    assert second.joined_to_id is None
    assert case_task(second).state == ReviewTask.State.OPEN


def test_a_muted_reporters_report_never_joins_and_never_adds_to_the_count(demo: Any, senior: User) -> None:
    first = submit()
    mutes.reporter_mute(user=senior, email="troll@example.org", reason="dozens of bad-faith reports")
    muted = fresh(submit(reporter_email="troll@example.org"))
    assert muted.joined_to_id is None
    assert fresh(first).report_count == 1


def test_a_joined_report_with_an_earlier_deadline_brings_the_case_deadline_forward(demo: Any, settings: Any) -> None:
    first = submit()
    submit(reporter_email="b@example.org")
    # A notice whose source has a shorter clock (10 h here) joins: the case must now be decided by then.
    settings.TAKEDOWN_DEADLINE_HOURS = {**settings.TAKEDOWN_DEADLINE_HOURS, "web": 10}
    third = fresh(submit(reporter_email="c@example.org"))
    assert third.joined_to_id == first.pk
    assert fresh(first).deadline_at == third.deadline_at
    assert AuditEvent.objects.get(action="report.joined", object_id=str(third.pk)).data["deadline_advanced_to"]
    # The clock runs once, on the case: a breach escalates the case, not each joined report.
    run = deadlines.deadlines_check(now=timezone.now() + timedelta(hours=11))
    assert run.escalations == [first.case_number]


def test_deciding_no_violation_closes_every_joined_report_and_tells_every_reporter(
        demo: Any, moderator: User, django_capture_on_commit_callbacks: Any) -> None:
    first = submit(django_capture_on_commit_callbacks)
    second = submit(django_capture_on_commit_callbacks, reporter_email="sam@example.org")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        decisions.decision_make(task_id=case_task(first).pk, user=moderator, outcome="no_violation",
                                reason="not_intimate")
    for report in (first, second):
        report = fresh(report)
        assert report.status == Report.Status.NO_VIOLATION and report.closed_at is not None
        decision = Decision.objects.get(report=report)
        assert decision.outcome == "no_violation" and decision.decided_by == moderator
        assert AuditEvent.objects.filter(action="decision.made", object_id=str(report.pk)).count() == 1
        assert report_public_status(report)["decision"]["outcome"] == "no_violation"
    # Each reporter hears the outcome of their own case, by their own case number.
    for report, address in ((first, "alex@example.org"), (second, "sam@example.org")):
        assert any(m.to == [address] and fresh(report).case_number in m.subject + m.body for m in mail.outbox)


def test_a_takedown_removes_the_shared_link_once_and_both_reports_end_removed(
        demo: Any, moderator: User, django_capture_on_commit_callbacks: Any) -> None:
    first = submit(django_capture_on_commit_callbacks)
    second = submit(django_capture_on_commit_callbacks, reporter_email="sam@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        decisions.decision_make(task_id=case_task(first).pk, user=moderator, outcome="takedown", reason="ncii")
    removals = Action.objects.filter(kind=Action.Kind.REMOVE, item__location="demo://content/3")
    assert removals.count() == 1  # the platform is asked once, not once per report
    assert removals.get().status == Action.Status.DONE
    for report in (first, second):
        report = fresh(report)
        assert report.status == Report.Status.REMOVED
        assert set(report.items.values_list("state", flat=True)) == {ReportedItem.State.REMOVED}
        assert Decision.objects.get(report=report).outcome == "takedown"
    # One statement of reasons for the one item removed, not one per report.
    assert sum(d.statements.count() for d in Decision.objects.all()) == 1


def test_the_same_picture_uploaded_in_two_reports_joins_by_sha256_once_hashed(demo: Any) -> None:
    data = make_image_bytes(seed=11)
    first = submit(locations=[], uploads=[Upload("a.jpg", data)])
    second = submit(locations=[], uploads=[Upload("b.jpg", data)], reporter_email="b@example.org")
    assert ReviewTask.objects.filter(report=second).exists()  # not joined before its media are known
    joining.report_join_by_media(second.pk)
    second = fresh(second)
    assert second.joined_to_id == first.pk and second.join_basis == "same media (SHA-256)"
    assert not ReviewTask.objects.filter(report=second).exists()


def _reencoded(data: bytes, quality: int) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_a_re_encoded_copy_joins_by_pdq_within_the_radius_and_a_different_picture_does_not(demo: Any) -> None:
    original = make_image_bytes(seed=21)
    first = submit(locations=[], uploads=[Upload("a.jpg", original)])
    copy = submit(locations=[], uploads=[Upload("b.jpg", _reencoded(original, 75))], reporter_email="b@example.org")
    other = submit(locations=[], uploads=[Upload("c.jpg", make_image_bytes(seed=99))], reporter_email="c@example.org")
    for report in (first, copy, other):
        for media_id in report.items.values_list("media_id", flat=True):
            pipeline.media_hash_and_match(media_id)
    assert joining.report_join_by_media(copy.pk) == first
    assert fresh(copy).join_basis.startswith("same media (PDQ distance ")
    assert joining.report_join_by_media(other.pk) is None
    assert fresh(first).report_count == 2


def test_a_report_someone_has_started_on_is_never_joined(demo: Any, moderator: User) -> None:
    data = make_image_bytes(seed=12)
    submit(locations=[], uploads=[Upload("a.jpg", data)])
    second = submit(locations=[], uploads=[Upload("b.jpg", data)], reporter_email="b@example.org")
    claims.task_claim(task_id=case_task(second).pk, user=moderator)
    assert joining.report_join_by_media(second.pk) is None
    assert case_task(second).assignee == moderator


def test_triage_of_a_joined_report_reprioritises_the_case_and_makes_no_task(demo: Any) -> None:
    first = submit()
    second = submit(reporter_email="b@example.org")
    assert triage.report_triage(second.pk) == case_task(first)
    assert not ReviewTask.objects.filter(report=second).exists()


def test_withdrawing_the_case_hands_its_joined_reports_to_the_oldest_of_them(demo: Any) -> None:
    first = submit()
    second = submit(reporter_email="b@example.org")
    third = submit(reporter_email="c@example.org")
    assert fresh(first).report_count == 3
    report_withdraw(report=fresh(first))
    second, third = fresh(second), fresh(third)
    assert second.joined_to_id is None and second.report_count == 2
    assert third.joined_to_id == second.pk
    assert case_task(second).state == ReviewTask.State.OPEN
    assert fresh(first).report_count == 1
    assert AuditEvent.objects.filter(action="report.promoted", object_id=str(second.pk)).exists()


def test_withdrawing_a_joined_report_takes_it_out_of_the_count(demo: Any) -> None:
    first = submit()
    second = submit(reporter_email="b@example.org")
    report_withdraw(report=fresh(second))
    assert fresh(first).report_count == 1
    assert fresh(second).status == Report.Status.WITHDRAWN


def test_asking_the_first_reporter_for_information_gives_the_others_a_case_of_their_own(
        demo: Any, moderator: User) -> None:
    first = submit()
    second = submit(reporter_email="b@example.org")
    decisions.decision_make(task_id=case_task(first).pk, user=moderator, outcome="needs_information",
                            reason="needs_information", note="Which post?")
    assert fresh(second).joined_to_id is None
    assert case_task(second).state == ReviewTask.State.OPEN
    assert not Decision.objects.filter(report=second).exists()


def test_a_group_decision_sends_each_uploader_one_message_with_a_statement_per_item(
        demo: Any, moderator: User, django_capture_on_commit_callbacks: Any) -> None:
    # demo content 1 and 8 were posted by the same account (demo-user-2); 3 by another (demo-user-4).
    reports = [submit(django_capture_on_commit_callbacks, locations=[f"demo://content/{n}"],
                      reporter_email=f"r{n}@example.org") for n in (1, 8, 3)]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        results = decisions.decision_submit_group(task_ids=[case_task(r).pk for r in reports], user=moderator,
                                                  outcome="takedown", reason="ncii")
    batches = {d.batch for d in Decision.objects.filter(pk__in=[r.decision.pk for r in results.values()])}
    assert len(batches) == 1 and "" not in batches
    to_two = [m for m in mail.outbox if m.to == ["demo-user-2@demo.invalid"]]
    to_four = [m for m in mail.outbox if m.to == ["demo-user-4@demo.invalid"]]
    assert len(to_two) == 1 and len(to_four) == 1
    puids = [s.puid for r in reports[:2] for s in Decision.objects.get(report=r).statements.all()]
    assert len(puids) == 2 and all(puid in to_two[0].body for puid in puids)
    assert "2 items you posted were removed" in to_two[0].subject
    assert "demo://content/3" not in to_two[0].body
    # Each reporter still hears their own decision.
    assert {address for m in mail.outbox for address in m.to} >= {"r1@example.org", "r8@example.org",
                                                                   "r3@example.org"}


def test_the_case_page_lists_the_reports_that_joined_it(demo: Any, moderator: User) -> None:
    first = submit()
    second = fresh(submit(reporter_email="sam@example.org"))
    client = Client()
    client.force_login(moderator)
    page = client.get(f"/console/case/{case_task(first).pk}").content.decode()
    assert "Reports of this item: 2" in page
    assert second.case_number in page
    assert "sam@example.org" not in page  # contact details stay out of the console


def test_the_reporter_of_a_joined_report_is_told_it_is_reviewed_with_others(demo: Any) -> None:
    submit()
    second = fresh(submit(reporter_email="b@example.org"))
    status = report_public_status(second)
    assert status["reviewed_with_other_reports"] is True
    assert status["status"] == Report.Status.IN_REVIEW


def test_enforcement_groups_only_decisions_of_the_same_case(demo: Any, moderator: User) -> None:
    first = submit()
    submit(reporter_email="b@example.org")
    lone = submit(locations=["demo://content/5"], reporter_email="c@example.org")
    made = decisions.decision_make(task_id=case_task(first).pk, user=moderator, outcome="no_violation",
                                   reason="not_intimate").decision
    alone = decisions.decision_make(task_id=case_task(lone).pk, user=moderator, outcome="no_violation",
                                    reason="not_intimate").decision
    assert len(enforcement.decision_group(made)) == 2
    assert enforcement.decision_group(alone) == [alone.pk]
