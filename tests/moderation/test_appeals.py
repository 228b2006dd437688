"""Appeals (DSA Art. 20): the uploader appeals within the window; a different senior decides; a reversal
restores the content through the Enforcer and withdraws the hashes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from hashing.models import BankEntry
from moderation.models import Action, Appeal, DemoContentItem, Report, StatementOfReasons
from moderation.services.appeals import AppealError, appeal_decide, appeal_submit
from moderation.services.dsa import appeal_url
from tests.moderation.legal_helpers import scan_verdict, submit, take_down


@pytest.fixture
def statement(demo: Any, moderator: User) -> StatementOfReasons:
    report = submit(locations=["demo://content/14"]).report
    decision = take_down(report, moderator)
    return StatementOfReasons.objects.get(decision=decision)


def _demo_bytes(number: int) -> bytes:
    with DemoContentItem.objects.get(number=number).file.open("rb") as handle:
        return bytes(handle.read())


def test_the_appeal_window_is_at_least_six_months(settings: Any) -> None:
    assert settings.TAKEDOWN_APPEAL_WINDOW_DAYS >= 183


@pytest.mark.django_db(transaction=True)
def test_the_uploader_appeals_through_the_link_in_the_statement(client: Client, statement: StatementOfReasons) -> None:
    sor_mail = next(m for m in mail.outbox if "statement of reasons" in m.subject)
    link = appeal_url(statement)
    assert link in sor_mail.body
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = client.get(f"/{path}")
    assert page.status_code == 200 and "Appeals are free" in page.content.decode()
    sent = client.post(f"/{path}", {"email": "uploader@example.org", "statement": "This is a photo of me, posted "
                                                                                  "with my own consent."})
    assert sent.status_code == 200 and 'id="appeal-received"' in sent.content.decode()
    appeal = Appeal.objects.get()
    assert appeal.statement_of_reasons == statement and appeal.state == Appeal.State.OPEN
    assert any(m.subject == "We received your appeal" and m.to == ["uploader@example.org"] for m in mail.outbox)


@pytest.mark.django_db
def test_a_tampered_appeal_link_is_refused(client: Client) -> None:
    assert client.get("/appeal/not-a-signed-token/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_an_appeal_after_the_window_is_refused_with_the_other_options(statement: StatementOfReasons,
                                                                      settings: Any) -> None:
    late = statement.decision.created_at + timedelta(days=settings.TAKEDOWN_APPEAL_WINDOW_DAYS, seconds=1)
    with pytest.raises(AppealError, match="out-of-court"):
        appeal_submit(statement=statement, email="u@example.org", text="Please look again.", now=late)
    on_time = statement.decision.created_at + timedelta(days=settings.TAKEDOWN_APPEAL_WINDOW_DAYS - 1)
    assert appeal_submit(statement=statement, email="u@example.org", text="Please look again.", now=on_time).pk


@pytest.mark.django_db(transaction=True)
def test_only_a_different_senior_decides(statement: StatementOfReasons, moderator: User, other_moderator: User,
                                         senior: User) -> None:
    appeal = appeal_submit(statement=statement, email="u@example.org", text="Please look again.")
    with pytest.raises(PermissionDenied, match="senior"):
        appeal_decide(appeal_id=appeal.pk, user=other_moderator, reverse_decision=True, note="Looks fine.")
    from django.contrib.auth.models import Group

    moderator.groups.add(Group.objects.get(name="senior_moderator"))  # even promoted, they took the decision
    with pytest.raises(PermissionDenied, match="another senior"):
        appeal_decide(appeal_id=appeal.pk, user=moderator, reverse_decision=True, note="Looks fine.")
    with pytest.raises(AppealError, match="reasons"):
        appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=False, note="  ")
    decided = appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=False,
                            note="The image is intimate and the person depicted did not consent.")
    assert decided.state == Appeal.State.UPHELD and decided.decided_by == senior
    assert DemoContentItem.objects.get(number=14).status == DemoContentItem.Status.REMOVED  # nothing changed
    answer = next(m for m in mail.outbox if m.subject == "The outcome of your appeal")
    assert "kept our decision" in answer.body and "did not consent" in answer.body
    assert "out-of-court dispute settlement" in answer.body  # Art. 21
    with pytest.raises(AppealError, match="already"):
        appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True, note="again")


@pytest.mark.django_db(transaction=True)
def test_a_reversal_restores_the_content_through_the_enforcer_and_withdraws_the_hashes(
        statement: StatementOfReasons, senior: User) -> None:
    case = statement.decision.report.case_number
    image = _demo_bytes(14)
    assert scan_verdict(image) == "block"
    appeal = appeal_submit(statement=statement, email="u@example.org", text="It is not me.")
    appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True,
                  note="The person shown is not the reporter; the content is allowed.")
    assert DemoContentItem.objects.get(number=14).status == DemoContentItem.Status.LIVE
    restore = Action.objects.get(kind=Action.Kind.RESTORE)
    assert restore.status == Action.Status.DONE and restore.decision == statement.decision
    assert not BankEntry.objects.filter(source=f"case:{case}", status=BankEntry.Status.ACTIVE).exists()
    assert scan_verdict(image) != "block"
    report = Report.objects.get(case_number=case)
    assert report.status == Report.Status.RESTORED
    assert report.items.get().state == "kept"
    subjects = [m.subject for m in mail.outbox]
    assert "The outcome of your appeal" in subjects
    assert f"An appeal changed the decision on report {case}" in subjects  # the reporter is told


@pytest.mark.django_db(transaction=True)
def test_a_senior_decides_an_appeal_in_the_console(client: Client, statement: StatementOfReasons,
                                                   senior: User) -> None:
    appeal = appeal_submit(statement=statement, email="u@example.org", text="Please look again.")
    client.force_login(senior)
    listing = client.get("/console/appeals/")
    assert listing.status_code == 200 and statement.decision.report.case_number in listing.content.decode()
    assert client.post(f"/console/appeals/{appeal.pk}", {"outcome": "reverse", "note": ""}).status_code == 400
    done = client.post(f"/console/appeals/{appeal.pk}", {"outcome": "reverse", "note": "Consent was shown."})
    assert done.status_code == 302
    assert Appeal.objects.get().state == Appeal.State.REVERSED
    assert Appeal.objects.get().decided_at is not None and Appeal.objects.get().decided_at <= timezone.now()
