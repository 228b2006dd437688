"""The reporter's appeal (DSA Art. 16(5) and 20: complaint handling covers notifiers too): told of a "no violation"
decision with the redress options, they ask for a review from the status page within the window; a different
senior decides; a reversal is carried out as any takedown (Enforcer, hashes banked, copy sweep, statement of
reasons to the uploader); both sides are told; audited; counted among the Art. 15 complaints."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from hashing.models import BankEntry
from moderation.models import (
    Action,
    Appeal,
    AuditEvent,
    Decision,
    DemoContentItem,
    Report,
    ReportedItem,
    ReviewTask,
    StatementOfReasons,
)
from moderation.services.appeals import AppealError, appeal_decide, reporter_appeal_submit, reporter_review
from moderation.services.decisions import decision_make
from moderation.services.intake import SubmittedReport, report_withdraw
from moderation.services.transparency import transparency_report
from tests.moderation.legal_helpers import scan_verdict, submit, take_down

REPORTER = "alex@example.org"  # notice_payload's reporter


def keep_up(report: Report, user: User, reason: str = "not_intimate") -> Decision:
    task = report.tasks.get(kind=ReviewTask.Kind.REPORT)
    return decision_make(task_id=task.pk, user=user, outcome="no_violation", reason=reason).decision


def demo_bytes(number: int) -> bytes:
    with DemoContentItem.objects.get(number=number).file.open("rb") as handle:
        return bytes(handle.read())


@pytest.fixture
def kept(demo: Any, moderator: User) -> SubmittedReport:
    """A report on demo item 20 that a moderator decided not to act on."""
    submitted = submit(locations=["demo://content/20"])
    keep_up(submitted.report, moderator)
    return submitted


def open_case(client: Client, submitted: SubmittedReport) -> str:
    page = client.post("/status/", {"case_number": submitted.report.case_number, "pin": submitted.pin})
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_reporter_is_told_the_decision_with_how_to_ask_for_a_review(client: Client, kept: SubmittedReport,
                                                                        settings: Any) -> None:
    notice = next(m for m in mail.outbox if m.subject.startswith("Decision on report"))
    assert notice.to == [REPORTER]
    assert "We decided not to remove the content you reported." in notice.body
    assert "Ask for a review" in notice.body and f"{settings.TAKEDOWN_APPEAL_WINDOW_DAYS} days" in notice.body
    assert settings.TAKEDOWN_ODS_BODIES_URL in notice.body and "court" in notice.body
    page = open_case(client, kept)
    deadline = (kept.report.decisions.get().created_at + timedelta(days=settings.TAKEDOWN_APPEAL_WINDOW_DAYS))
    assert 'id="review"' in page and "Ask for a review" in page
    assert deadline.date().isoformat() in page
    assert settings.TAKEDOWN_ODS_BODIES_URL in page


@pytest.mark.django_db(transaction=True)
def test_the_reporter_asks_for_a_review_from_the_status_page_and_a_senior_sees_who_appealed(
        client: Client, kept: SubmittedReport, senior: User) -> None:
    open_case(client, kept)
    mail.outbox.clear()
    empty = client.post("/status/review", {"statement": "   "})
    assert empty.status_code == 400 and 'id="review-errors"' in empty.content.decode()
    assert not Appeal.objects.exists()
    asked = client.post("/status/review", {"statement": "It is me in the image; the face is clearly mine."})
    assert asked.status_code == 200
    page = asked.content.decode()
    assert 'id="review-received"' in page and 'data-state="open"' in page
    assert "Ask for a review</button>" not in page  # one request per decision
    appeal = Appeal.objects.get()
    assert appeal.appellant == Appeal.Appellant.REPORTER and appeal.decision == kept.report.decisions.get()
    assert appeal.appellant_email == REPORTER and appeal.statement_of_reasons is None
    assert [m.subject for m in mail.outbox] == [
        f"We received your request for a review of report {kept.report.case_number}"]
    event = AuditEvent.objects.get(action="appeal.received")
    assert event.data["appellant"] == "reporter" and REPORTER not in str(event.data)
    client.force_login(senior)
    listing = client.get("/console/appeals/").content.decode()
    assert kept.report.case_number in listing and 'data-appellant="reporter"' in listing
    assert "Reporter: asks us to remove" in listing
    detail = client.get(f"/console/appeals/{appeal.pk}").content.decode()
    assert "The reporter asks us to look again" in detail and "demo://content/20" in detail
    assert "face is clearly mine" in detail


@pytest.mark.django_db(transaction=True)
def test_a_second_request_and_a_request_after_the_window_are_refused(kept: SubmittedReport, settings: Any) -> None:
    decided = kept.report.decisions.get().created_at
    late = decided + timedelta(days=settings.TAKEDOWN_APPEAL_WINDOW_DAYS, seconds=1)
    assert not reporter_review(kept.report, late).can_ask
    with pytest.raises(AppealError, match="out-of-court"):
        reporter_appeal_submit(report=kept.report, text="Please look again.", now=late)
    on_time = decided + timedelta(days=settings.TAKEDOWN_APPEAL_WINDOW_DAYS - 1)
    assert reporter_appeal_submit(report=kept.report, text="Please look again.", now=on_time).pk
    with pytest.raises(AppealError, match="already asked"):
        reporter_appeal_submit(report=kept.report, text="And again.")
    assert Appeal.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_takedown_or_an_undecided_case_offers_no_review_request(client: Client, demo: Any,
                                                                  moderator: User) -> None:
    undecided = submit(locations=["demo://content/21"])
    with pytest.raises(AppealError, match="no decision"):
        reporter_appeal_submit(report=undecided.report, text="Please look again.")
    removed = submit(locations=["demo://content/22"])
    take_down(removed.report, moderator)
    with pytest.raises(AppealError, match="no decision"):
        reporter_appeal_submit(report=removed.report, text="Please look again.")
    assert 'id="review"' not in open_case(client, removed)
    assert client.post("/status/review", {"statement": "Please look again."}).status_code == 400
    assert not Appeal.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_only_a_different_senior_decides_a_reporters_appeal(kept: SubmittedReport, moderator: User,
                                                             other_moderator: User, senior: User) -> None:
    appeal = reporter_appeal_submit(report=kept.report, text="Please look again.")
    with pytest.raises(PermissionDenied, match="senior"):
        appeal_decide(appeal_id=appeal.pk, user=other_moderator, reverse_decision=True, note="Remove it.")
    moderator.groups.add(Group.objects.get(name="senior_moderator"))  # promoted, but took the decision
    with pytest.raises(PermissionDenied, match="another senior"):
        appeal_decide(appeal_id=appeal.pk, user=moderator, reverse_decision=True, note="Remove it.")
    with pytest.raises(AppealError, match="reason for removing"):
        appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True, note="Remove it.",
                      takedown_reason="not_intimate")
    assert Appeal.objects.get().state == Appeal.State.OPEN
    assert DemoContentItem.objects.get(number=20).status == DemoContentItem.Status.LIVE


@pytest.mark.django_db(transaction=True)
def test_a_reversal_takes_the_content_down_banks_the_hashes_sweeps_copies_and_tells_both_sides(
        client: Client, demo: Any, moderator: User, senior: User) -> None:
    # Item 20 is re-posted at item 23, which someone else reported too: a known identical copy.
    data = demo_bytes(20)
    DemoContentItem.objects.get(number=23).file.save("repost.jpg", ContentFile(data))
    submitted = submit(locations=["demo://content/20"])
    # With another post in it, so it cannot join the case above (services/joining.py).
    other_case = submit(locations=["demo://content/23", "demo://content/5"]).report
    first = keep_up(submitted.report, moderator)
    assert scan_verdict(data) != "block"
    appeal = reporter_appeal_submit(report=submitted.report, text="It is an intimate image of me.")
    mail.outbox.clear()

    decided = appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True, takedown_reason="ncii",
                            note="The image is intimate and the reporter is the person shown.")

    assert decided.state == Appeal.State.REVERSED and decided.decided_by == senior
    takedown = decided.resulting_decision
    assert takedown is not None and takedown != first
    assert (takedown.outcome, takedown.reason, takedown.decided_by) == ("takedown", "ncii", senior)
    removal = Action.objects.get(decision=takedown, item__report=submitted.report)
    assert removal.kind == Action.Kind.REMOVE and removal.status == Action.Status.DONE
    assert DemoContentItem.objects.get(number=20).status == DemoContentItem.Status.REMOVED
    report = Report.objects.get(pk=submitted.report.pk)
    assert report.status == Report.Status.REMOVED and report.items.get().state == ReportedItem.State.REMOVED
    # The hashes are banked, so re-uploads are blocked ...
    assert BankEntry.objects.filter(source=f"case:{report.case_number}", status=BankEntry.Status.ACTIVE).exists()
    assert scan_verdict(data) == "block"
    # ... and the copy elsewhere is removed by the sweep, as after any takedown.
    copy = Action.objects.get(decision=takedown, item__report=other_case)
    assert copy.status == Action.Status.DONE
    assert DemoContentItem.objects.get(number=23).status == DemoContentItem.Status.REMOVED
    # The uploader gets a statement of reasons; the reporter the reasoned answer with the Art. 21 options.
    assert StatementOfReasons.objects.filter(decision=takedown).count() == 2
    assert any("statement of reasons" in m.subject.lower() for m in mail.outbox)
    answer = next(m for m in mail.outbox if m.subject == f"The outcome of your request for a review of report "
                                                          f"{report.case_number}")
    assert answer.to == [REPORTER]
    assert "we are removing the content you reported" in answer.body
    assert "reporter is the person shown" in answer.body and "out-of-court dispute settlement" in answer.body
    decided_event = AuditEvent.objects.get(action="appeal.decided")
    assert decided_event.data["resulting_decision"] == takedown.pk and decided_event.data["outcome"] == "reversed"
    assert AuditEvent.objects.filter(action="decision.made", data__appeal=appeal.pk).exists()
    # The status page shows the outcome.
    page = open_case(client, submitted)
    assert 'data-state="reversed"' in page and "reporter is the person shown" in page


@pytest.mark.django_db(transaction=True)
def test_an_upheld_request_changes_nothing_and_gives_the_reasons(kept: SubmittedReport, senior: User) -> None:
    appeal = reporter_appeal_submit(report=kept.report, text="Please look again.")
    mail.outbox.clear()
    appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=False,
                  note="The image is not intimate: it shows a face only.")
    assert Appeal.objects.get().state == Appeal.State.UPHELD and Appeal.objects.get().resulting_decision is None
    assert Report.objects.get(pk=kept.report.pk).status == Report.Status.NO_VIOLATION
    assert DemoContentItem.objects.get(number=20).status == DemoContentItem.Status.LIVE
    assert not Action.objects.exists()
    [answer] = mail.outbox
    assert answer.to == [REPORTER] and "kept our decision not to remove" in answer.body
    assert "face only" in answer.body and "out-of-court dispute settlement" in answer.body


@pytest.mark.django_db(transaction=True)
def test_withdrawing_the_case_ends_an_open_request(kept: SubmittedReport, senior: User) -> None:
    appeal = reporter_appeal_submit(report=kept.report, text="Please look again.")
    report_withdraw(report=kept.report)
    withdrawn = Appeal.objects.get(pk=appeal.pk)
    assert withdrawn.state == Appeal.State.WITHDRAWN and withdrawn.decided_at is None  # not a decision
    with pytest.raises(AppealError, match="already been decided"):
        appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True, note="Remove it.")
    assert DemoContentItem.objects.get(number=20).status == DemoContentItem.Status.LIVE


@pytest.mark.django_db(transaction=True)
def test_a_senior_reverses_in_the_console_with_a_takedown_reason(client: Client, kept: SubmittedReport,
                                                                 senior: User) -> None:
    appeal = reporter_appeal_submit(report=kept.report, text="It was made with AI from my photos.")
    client.force_login(senior)
    page = client.get(f"/console/appeals/{appeal.pk}").content.decode()
    assert 'name="takedown_reason"' in page and 'value="synthetic_ncii"' in page
    assert client.post(f"/console/appeals/{appeal.pk}", {"outcome": "reverse", "note": ""}).status_code == 400
    done = client.post(f"/console/appeals/{appeal.pk}", {"outcome": "reverse", "takedown_reason": "synthetic_ncii",
                                                         "note": "An AI-made intimate image of the reporter."})
    assert done.status_code == 302
    takedown = Appeal.objects.get().resulting_decision
    assert takedown is not None and takedown.reason == "synthetic_ncii"
    assert DemoContentItem.objects.get(number=20).status == DemoContentItem.Status.REMOVED


@pytest.mark.django_db(transaction=True)
def test_reporter_appeals_are_counted_among_the_complaints_in_the_transparency_report(
        kept: SubmittedReport, senior: User) -> None:
    appeal = reporter_appeal_submit(report=kept.report, text="Please look again.")
    appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True, note="Intimate; the reporter is shown.")
    now = timezone.now()
    complaints = transparency_report(start=now - timedelta(days=1), end=now + timedelta(days=1))["complaints"]
    assert complaints["received"] == 1 and complaints["reversed"] == 1
    assert complaints["basis"] == {"not_intimate": 1}
    assert complaints["by_outcome"] == {"reversed": 1}
    assert complaints["median_hours_to_decide"] is not None
