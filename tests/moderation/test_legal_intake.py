"""Intake under LEGAL.md: notice elements, minors routed to Take It Down, receipt, optional context,
needs information, in-browser hashes tied to the case, PIN lockout, withdrawal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from hashing.algorithms import hash_bytes
from hashing.models import BankEntry
from moderation.models import AuditEvent, Report, ReportedItem
from moderation.services.intake import IntakeError, Notice, report_complete, report_submit, report_withdraw
from tests.conftest import make_image_bytes, notice_payload
from tests.moderation.legal_helpers import scan_verdict, submit

FORM = {
    "reporter_name": "Alex Example", "reporter_email": "alex@example.org", "relationship": "self",
    "locations": "demo://content/3\n", "statement": "An AI-made intimate image of me, posted without consent.",
    "good_faith": "on", "adult_confirmed": "on", "signature": "Alex Example",
}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_a_minor_flagged_report_is_never_stored_by_any_channel(client: Client, api: APIClient) -> None:
    with pytest.raises(IntakeError) as raised:
        report_submit(notice=Notice(**notice_payload(adult_confirmed=False)))
    assert "takeitdown.ncmec.org" in " ".join(raised.value.errors["adult_confirmed"])
    page = client.post("/report/", {**FORM, "adult_confirmed": ""})
    assert page.status_code == 400 and "Take It Down" in page.content.decode()
    api_answer = api.post("/api/v1/reports", notice_payload(adult_confirmed=False), format="json")
    assert api_answer.status_code == 400
    # Even an organisation's notice that may stay incomplete is refused outright for a possible minor.
    with pytest.raises(IntakeError):
        report_submit(notice=Notice(**notice_payload(adult_confirmed=False, source="esafety", signature="")))
    assert Report.objects.count() == 0 and ReportedItem.objects.count() == 0
    assert not AuditEvent.objects.filter(action="report.received").exists()


@pytest.mark.django_db(transaction=True)
def test_a_complete_report_gets_a_receipt_email_with_the_case_number_and_no_pin(demo: Any) -> None:
    submitted = submit()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alex@example.org"]
    assert submitted.report.case_number in message.subject
    assert submitted.pin not in message.body
    html = message.alternatives[0][0]  # type: ignore[index]
    assert submitted.report.case_number in str(html)
    assert "person makes the decision" in message.body  # Art. 16(6): automated means disclosed


@pytest.mark.django_db
def test_optional_context_is_stored_with_the_report(client: Client, demo: Any) -> None:
    response = client.post("/report/", {**FORM, "ai_made": "yes", "first_seen": "last week",
                                        "other_places": "also on a forum"})
    assert response.status_code == 200
    report = Report.objects.get()
    assert report.context == {"ai_made": "yes", "first_seen": "last week", "other_places": "also on a forum"}


@pytest.mark.django_db
def test_the_report_form_works_without_any_optional_context(client: Client, demo: Any) -> None:
    assert client.post("/report/", FORM).status_code == 200
    assert Report.objects.get().context == {}


@pytest.mark.django_db(transaction=True)
def test_an_incomplete_esafety_notice_needs_information_and_the_email_lists_what_is_missing(demo: Any) -> None:
    submitted = submit(source="esafety", signature="", good_faith=False)
    report = Report.objects.get(pk=submitted.report.pk)
    assert report.status == Report.Status.NEEDS_INFORMATION
    assert report.missing_information == ["good_faith", "signature"]
    assert report.deadline_at is None and report.notice_complete_at is None  # the clock has not started
    assert not report.tasks.exists()
    needs = [m for m in mail.outbox if "more information" in m.subject]
    assert len(needs) == 1
    assert "your statement of good faith" in needs[0].body
    assert "your signature" in needs[0].body


@pytest.mark.django_db(transaction=True)
def test_completing_the_notice_starts_the_clock_from_that_moment(demo: Any) -> None:
    from datetime import UTC, datetime, timedelta

    submitted = submit(source="esafety", signature="")
    completed_at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with pytest.raises(IntakeError) as still_missing:
        report_complete(report=submitted.report, now=completed_at)
    assert "signature" in still_missing.value.errors
    report = report_complete(report=submitted.report, signature="Alex Example", now=completed_at)
    assert report.status == Report.Status.RECEIVED
    assert report.notice_complete_at == completed_at
    assert report.deadline_at == completed_at + timedelta(hours=24)  # eSafety: 24 h
    assert report.tasks.count() == 1


@pytest.mark.django_db
def test_a_web_report_missing_an_element_is_refused_with_every_problem_not_stored() -> None:
    with pytest.raises(IntakeError) as raised:
        report_submit(notice=Notice(**notice_payload(signature="", statement="")))
    assert {"signature", "statement"} <= set(raised.value.errors)
    assert Report.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_browser_hashes_are_banked_against_the_case_and_find_stored_copies(demo: Any) -> None:
    first = submit(locations=["demo://content/5"])  # the pipeline stores and hashes item 5
    stored = first.report.items.get().media
    assert stored is not None
    pdq = stored.hashes.get(algorithm="pdq").value
    near = f"{int(pdq, 16) ^ 0b111:064x}"  # three bits off, as a browser decode might give
    second = submit(locations=[], client_hashes=[near])
    entries = BankEntry.objects.filter(source=f"case:{second.report.case_number}")
    assert list(entries.values_list("bank__name", "algorithm", "value")) == [("victim-submitted", "pdq", near)]
    assert list(second.report.items.values_list("location", flat=True)) == ["demo://content/5"]


@pytest.mark.django_db
def test_browser_hashes_that_are_not_pdq_are_refused() -> None:
    with pytest.raises(IntakeError) as raised:
        report_submit(notice=Notice(**notice_payload(client_hashes=["not-a-hash"])))
    assert "client_hashes" in raised.value.errors


@pytest.mark.django_db
def test_the_web_form_sends_only_hashes_for_picked_images(client: Client) -> None:
    pdq = hash_bytes(make_image_bytes(3)).pdq
    response = client.post("/report/", {**FORM, "locations": "", "client_hashes": f'["{pdq}"]'})
    assert response.status_code == 200, response.content.decode()[:2000]
    report = Report.objects.get()
    assert BankEntry.objects.get(source=f"case:{report.case_number}").value == pdq
    assert 'id="hashes-received"' in response.content.decode()
    assert report.items.count() == 0  # no image was uploaded


@pytest.mark.django_db
def test_the_report_page_says_the_images_never_leave_the_device_and_serves_its_own_script(client: Client) -> None:
    html = client.get("/report/").content.decode()
    assert "Your images never leave this device." in html
    assert 'id="own-images"' in html and 'name="own-images"' not in html  # the picker is never submitted
    assert "/static/takedown/pdq.js" in html
    assert "<script src=\"http" not in html  # no third-party scripts


@pytest.mark.django_db
def test_wrong_pins_lock_the_status_page_out_even_for_the_right_pin(client: Client, settings: Any) -> None:
    settings.TAKEDOWN_PIN_MAX_FAILURES = 3
    submitted = submit()
    case = submitted.report.case_number
    for _ in range(3):
        assert client.post("/status/", {"case_number": case, "pin": "AAAA-AAAA-AAAA"}).status_code == 404
    locked = client.post("/status/", {"case_number": case, "pin": submitted.pin})
    assert locked.status_code == 429
    assert "Too many attempts" in locked.content.decode()
    assert case not in locked.content.decode().split("<main")[1].split("value=")[0]


@pytest.mark.django_db
def test_the_status_api_locks_out_after_too_many_wrong_pins(api: APIClient, settings: Any) -> None:
    settings.TAKEDOWN_PIN_MAX_FAILURES = 2
    submitted = submit()
    url = f"/api/v1/reports/{submitted.report.case_number}"
    assert api.get(url, HTTP_X_CASE_PIN=submitted.pin).status_code == 200
    assert api.get(url, HTTP_X_CASE_PIN="wrong").status_code == 404
    assert api.get(url, HTTP_X_CASE_PIN="wrong").status_code == 404
    locked = api.get(url, HTTP_X_CASE_PIN=submitted.pin)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0


@pytest.mark.django_db
def test_guessing_across_many_case_numbers_from_one_address_is_locked_out(client: Client, settings: Any) -> None:
    settings.TAKEDOWN_PIN_MAX_FAILURES = 3
    submitted = submit()
    for n in range(3):
        client.post("/status/", {"case_number": f"TD-AAAA-AAA{n + 2}", "pin": "AAAA-AAAA-AAAA"})
    answer = client.post("/status/", {"case_number": submitted.report.case_number, "pin": submitted.pin})
    assert answer.status_code == 429


@pytest.mark.django_db(transaction=True)
def test_withdrawing_withdraws_the_case_hashes_from_every_bank(demo: Any, moderator: Any) -> None:
    from hashing.banks import bank_add_entries, bank_get_or_create

    image = make_image_bytes(42)
    submitted = submit(locations=[], client_hashes=[hash_bytes(image).pdq])
    case = submitted.report.case_number
    partner_feed = bank_get_or_create(name="outbound-partners")
    bank_add_entries(bank=partner_feed, hashes=[("pdq", hash_bytes(image).pdq)], source=f"case:{case}")
    assert scan_verdict(image) == "block"
    withdrawn = report_withdraw(report=submitted.report)
    assert withdrawn == 2
    assert set(BankEntry.objects.filter(source=f"case:{case}").values_list("status", flat=True)) == {"withdrawn"}
    assert scan_verdict(image) != "block"
    report = Report.objects.get(pk=submitted.report.pk)
    assert report.status == Report.Status.WITHDRAWN and report.withdrawn_at is not None
    assert any("withdrawn" in m.subject for m in mail.outbox)


@pytest.mark.django_db(transaction=True)
def test_withdrawal_goes_through_the_banks_own_service_and_logs_a_change_per_entry(
        demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashing.banks
    from hashing.banks import bank_add_entries, bank_get_or_create
    from hashing.models import BankChange

    real = hashing.banks.bank_withdraw_entries
    calls: list[str] = []

    def recording(**kwargs: Any) -> int:  # the real service, with a note of which bank it was asked about
        calls.append(kwargs["bank"].name)
        return real(**kwargs)

    monkeypatch.setattr(hashing.banks, "bank_withdraw_entries", recording)
    image = make_image_bytes(43)
    submitted = submit(locations=[], client_hashes=[hash_bytes(image).pdq])
    case = submitted.report.case_number
    feed = bank_get_or_create(name="outbound-partners")
    bank_add_entries(bank=feed, hashes=[("pdq", hash_bytes(image).pdq)], source=f"case:{case}")
    entries = list(BankEntry.objects.filter(source=f"case:{case}"))
    before = {e.pk: (BankChange.objects.filter(entry_id=e.pk).count(), e.updated_at) for e in entries}
    assert report_withdraw(report=submitted.report) == 2
    assert sorted(calls) == sorted({e.bank.name for e in entries})  # once per bank holding the case's hashes
    for entry in BankEntry.objects.filter(pk__in=before):
        changes, updated_at = before[entry.pk]
        assert entry.status == BankEntry.Status.WITHDRAWN
        assert BankChange.objects.filter(entry_id=entry.pk).count() == changes + 1  # matchers and feeds replay it
        assert entry.updated_at > updated_at
    assert AuditEvent.objects.get(action="bank.entries_withdrawn").data["entries"] == sorted(before)


@pytest.mark.django_db
def test_the_status_page_withdraws_only_after_the_case_was_opened_and_confirmed(client: Client) -> None:
    submitted = submit()
    assert client.post("/status/withdraw", {"confirm": "on"}).status_code == 302  # not opened: back to lookup
    opened = client.post("/status/", {"case_number": submitted.report.case_number, "pin": submitted.pin})
    assert 'id="withdraw"' in opened.content.decode()
    assert client.post("/status/withdraw", {}).status_code == 400  # the box was not ticked
    done = client.post("/status/withdraw", {"confirm": "on"})
    assert done.status_code == 200 and 'id="withdrawn-notice"' in done.content.decode()
    assert Report.objects.get().status == Report.Status.WITHDRAWN
