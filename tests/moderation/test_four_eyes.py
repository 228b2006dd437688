"""Escalation, four-eyes decisions and overrides of automation, enforced in the services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client

from moderation.models import (
    AuditEvent,
    CaseNote,
    ChildSafetyReferral,
    Decision,
    ProposedDecision,
    Report,
    ReviewTask,
)
from moderation.roles import MODERATOR, SENIOR, TRIAGE
from moderation.services import claims, decisions
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def people() -> dict[str, User]:
    return {"triage": user_with_role("tri", TRIAGE), "mo": user_with_role("mo", MODERATOR),
            "senior": user_with_role("sen", SENIOR), "senior2": user_with_role("sen2", SENIOR)}


def test_triage_escalates_with_a_note_and_only_seniors_decide_the_escalated_case(people: dict[str, User]) -> None:
    task = make_case()
    with pytest.raises(claims.InvalidDecision) as err:
        claims.task_escalate(task_id=task.pk, user=people["triage"], note="  ")
    assert err.value.field == "note"
    claims.task_escalate(task_id=task.pk, user=people["triage"], note="Looks like a celebrity fake; unsure.")
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.ESCALATED
    assert CaseNote.objects.get(task=task).kind == CaseNote.Kind.ESCALATION
    with pytest.raises(PermissionDenied):
        decisions.decision_make(task_id=task.pk, user=people["mo"], outcome="takedown", reason="ncii")
    with pytest.raises(claims.ReviewError):
        claims.task_claim(task_id=task.pk, user=people["mo"])
    result = decisions.decision_make(task_id=task.pk, user=people["senior"], outcome="no_violation",
                                  reason="not_intimate", note="A clothed portrait.")
    assert result.decision.decided_by == people["senior"]
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.DECIDED


def test_a_senior_claiming_an_escalated_case_keeps_it_escalated(people: dict[str, User]) -> None:
    task = make_case(state=ReviewTask.State.ESCALATED)
    claimed = claims.task_claim(task_id=task.pk, user=people["senior"])
    assert claimed.state == ReviewTask.State.ESCALATED and claimed.assignee == people["senior"]
    with pytest.raises(claims.ReviewError, match="Another moderator"):
        claims.task_claim(task_id=task.pk, user=people["senior2"])


def test_next_case_gives_seniors_escalated_cases_and_moderators_never(people: dict[str, User]) -> None:
    escalated = make_case(priority=90, state=ReviewTask.State.ESCALATED)
    ordinary = make_case(priority=10)
    assert claims.task_next(user=people["mo"]).pk == ordinary.pk
    assert claims.task_next(user=people["senior"]).pk == escalated.pk


def test_triage_comments_and_the_text_stays_out_of_the_audit_log(people: dict[str, User]) -> None:
    task = make_case()
    note = claims.case_comment(task_id=task.pk, user=people["triage"], text="Second item is a crop of the first.")
    event = AuditEvent.objects.get(action="task.commented")
    assert event.data == {"note": note.pk}
    assert "crop" not in str(event.data) + event.reason


def test_a_possible_minor_leaves_ordinary_handling_at_once_and_waits_for_a_second_senior(
        people: dict[str, User], client: Client) -> None:
    task = make_case(pdq="f" * 64)
    media_id = task.report.items.get().media_id
    with pytest.raises(decisions.FourEyesRequired):
        decisions.decision_make(task_id=task.pk, user=people["mo"], outcome="child_safety", reason="possible_minor")
    result = decisions.decision_submit(task_id=task.pk, user=people["mo"], outcome="child_safety",
                                    reason="possible_minor", note="School uniform, looks young.")
    assert result.decision is None and result.proposal is not None
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.AWAITING_SECOND
    assert ChildSafetyReferral.objects.get(task=task).state == ChildSafetyReferral.State.PENDING
    client.force_login(people["senior"])
    from moderation.services.media import media_signed_url

    signed = media_signed_url(media_id=media_id, user_id=people["senior"].pk)
    assert client.get(signed).status_code == 403  # withheld from everyone now, even with a valid link
    assert client.post(f"/console/media/{media_id}/reveal").status_code == 403
    with pytest.raises(claims.ReviewError):
        claims.task_claim(task_id=task.pk, user=people["mo"])

    decided = decisions.proposal_confirm(proposal_id=result.proposal.pk, user=people["senior"])
    assert decided.decision.outcome == Decision.Outcome.CHILD_SAFETY
    assert decided.decision.decided_by == people["mo"] and decided.decision.confirmed_by == people["senior"]
    assert decided.actions == []  # never an ordinary takedown
    referral = ChildSafetyReferral.objects.get(task=task)
    assert referral.state == ChildSafetyReferral.State.REFERRED and referral.confirmed_by == people["senior"]
    report = Report.objects.get(pk=task.report_id)
    assert report.closed_at is not None and report.status != Report.Status.REMOVED


def test_the_proposer_cannot_be_the_second_reviewer(people: dict[str, User]) -> None:
    task = make_case()
    proposal = decisions.decision_propose(task_id=task.pk, user=people["senior"], outcome="child_safety",
                                       reason="possible_minor")
    with pytest.raises(claims.ReviewError, match="different senior"):
        decisions.proposal_confirm(proposal_id=proposal.pk, user=people["senior"])
    with pytest.raises(PermissionDenied):
        decisions.proposal_confirm(proposal_id=proposal.pk, user=people["mo"])
    assert ProposedDecision.objects.get(pk=proposal.pk).state == ProposedDecision.State.PENDING


def test_a_proposal_is_confirmed_once_even_if_two_seniors_press_at_once(people: dict[str, User]) -> None:
    task = make_case()
    proposal = decisions.decision_propose(task_id=task.pk, user=people["mo"], outcome="child_safety",
                                       reason="possible_minor")
    decisions.proposal_confirm(proposal_id=proposal.pk, user=people["senior"])
    with pytest.raises(claims.ReviewError, match="already been reviewed"):
        decisions.proposal_confirm(proposal_id=proposal.pk, user=people["senior2"])
    assert Decision.objects.filter(task=task).count() == 1


def test_a_rejected_proposal_escalates_the_case_and_shows_the_media_again(people: dict[str, User]) -> None:
    task = make_case()
    proposal = decisions.decision_propose(task_id=task.pk, user=people["mo"], outcome="child_safety",
                                       reason="possible_minor")
    with pytest.raises(claims.InvalidDecision):
        decisions.proposal_reject(proposal_id=proposal.pk, user=people["senior"], note="")
    decisions.proposal_reject(proposal_id=proposal.pk, user=people["senior"], note="Clearly an adult (ID on file).")
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.ESCALATED
    assert ChildSafetyReferral.objects.get(task=task).state == ChildSafetyReferral.State.RETURNED
    assert not Decision.objects.filter(task=task).exists()


def test_overriding_an_automatic_decision_needs_a_senior_proposal_and_a_second_senior(
        people: dict[str, User]) -> None:
    task = make_case()
    Decision.objects.create(task=task, report=task.report, outcome="takedown", reason="known_copy", automated=True)
    with pytest.raises(decisions.FourEyesRequired, match="overrides an automatic decision"):
        decisions.decision_make(task_id=task.pk, user=people["senior"], outcome="no_violation", reason="not_intimate")
    with pytest.raises(PermissionDenied):
        decisions.decision_propose(task_id=task.pk, user=people["mo"], outcome="no_violation", reason="not_intimate")
    proposal = decisions.decision_propose(task_id=task.pk, user=people["senior"], outcome="no_violation",
                                       reason="not_intimate", note="The automatic match was a false positive.")
    result = decisions.proposal_confirm(proposal_id=proposal.pk, user=people["senior2"])
    assert result.decision.overrides_automation and result.decision.confirmed_by == people["senior2"]


def test_ordinary_decisions_need_no_second_reviewer(people: dict[str, User]) -> None:
    task = make_case()
    with pytest.raises(claims.ReviewError, match="does not need a second reviewer"):
        decisions.decision_propose(task_id=task.pk, user=people["mo"], outcome="takedown", reason="ncii")
    result = decisions.decision_submit(task_id=task.pk, user=people["mo"], outcome="takedown", reason="ncii")
    assert result.decision is not None and result.decision.confirmed_by is None


def test_needs_information_closes_the_task_and_the_case_can_be_reopened(people: dict[str, User]) -> None:
    task = make_case()
    decisions.decision_make(task_id=task.pk, user=people["mo"], outcome="needs_information",
                         reason="needs_information", note="Which of the three posts?")
    assert Report.objects.get(pk=task.report_id).status == Report.Status.NEEDS_INFORMATION
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.DECIDED
    claims.task_reopen(task_id=task.pk, actor="system", reason="the reporter replied")
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.OPEN


def test_a_reason_that_does_not_fit_the_outcome_and_an_unknown_template_are_refused(
        people: dict[str, User]) -> None:
    task = make_case()
    with pytest.raises(claims.InvalidDecision) as err:
        decisions.decision_make(task_id=task.pk, user=people["mo"], outcome="takedown", reason="possible_minor")
    assert err.value.field == "reason"
    with pytest.raises(claims.InvalidDecision) as err:
        decisions.decision_make(task_id=task.pk, user=people["mo"], outcome="takedown", reason="ncii",
                             reporter_template="uploader-removed")
    assert err.value.field == "reporter_template"
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.OPEN


def test_the_chosen_message_templates_are_stored_and_render_subject_text_and_html(
        people: dict[str, User]) -> None:
    from moderation.services.message_templates import message_choices, message_render

    task = make_case()
    result = decisions.decision_make(task_id=task.pk, user=people["mo"], outcome="takedown", reason="synthetic_ncii",
                                  reporter_template="reporter-removed-synthetic",
                                  uploader_template="uploader-removed-synthetic")
    assert result.decision.reporter_template == "reporter-removed-synthetic"
    assert {c.key for c in message_choices(reason="synthetic_ncii")} == {"reporter-removed-synthetic",
                                                                         "uploader-removed-synthetic"}
    message = message_render(key="reporter-removed-synthetic", context={"case_number": "TD-<b>"})
    assert message is not None
    assert message.subject == "We removed the content you reported (TD-<b>)"
    assert "TD-&lt;b&gt;" in message.html and "<p>" in message.html


def test_the_console_proposes_when_four_eyes_apply_and_a_second_senior_confirms(
        people: dict[str, User], client: Client) -> None:
    task = make_case()
    client.force_login(people["mo"])
    client.post(f"/console/case/{task.pk}/decide", {"decision": "child_safety", "reason": "possible_minor",
                                                    "note": "Looks young."})
    proposal = ProposedDecision.objects.get(task=task)
    client.force_login(people["senior"])
    html = client.get(f"/console/case/{task.pk}").content.decode()
    assert "Awaiting a second reviewer" in html and "Confirm the decision" in html
    client.post(f"/console/proposal/{proposal.pk}/confirm")
    assert ReviewTask.objects.get(pk=task.pk).state == ReviewTask.State.DECIDED
