"""Muted reporters: a senior mutes an address; its new reports are still stored and acknowledged but routed to
the low-priority queue; only a keyed hash of the address is kept; muting and unmuting are audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client, override_settings

from moderation.models import AuditEvent, Report, ReporterMute
from moderation.services import mutes
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload


def file_report(email: str = "alex@example.org", location: str = "demo://content/3") -> Report:
    return report_submit(notice=Notice(**notice_payload(reporter_email=email, locations=[location]))).report


@pytest.mark.django_db(transaction=True)
def test_a_muted_reporters_report_is_stored_acknowledged_and_routed_to_the_low_priority_queue(
        demo: Any, senior: User) -> None:
    mutes.reporter_mute(user=senior, email="Alex@Example.org ", reason="forty bad-faith reports in a day")
    report = file_report("alex@example.org")
    assert Report.objects.filter(pk=report.pk).exists()
    assert [m.to for m in mail.outbox] == [["alex@example.org"]]  # the receipt, as for anyone
    task = report.tasks.get()
    assert task.queue is not None and task.queue.slug == "low-priority"
    other = file_report("someone@example.org")
    assert other.tasks.get().queue.slug == "ncii-adult"  # type: ignore[union-attr]


@pytest.mark.django_db
def test_only_a_keyed_hash_of_the_lower_cased_address_is_stored(senior: User) -> None:
    mute = mutes.reporter_mute(user=senior, email="Alex@Example.org", reason="abuse")
    assert "alex" not in mute.email_hash and len(mute.email_hash) == 64
    assert mute.email_hash == mutes.email_hash("alex@example.org")
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        assert mutes.email_hash("alex@example.org") != mute.email_hash


@pytest.mark.django_db
def test_a_mute_made_under_a_rotated_key_still_holds_while_the_old_key_is_a_fallback(senior: User) -> None:
    from django.conf import settings

    old = settings.SECRET_KEY
    mutes.reporter_mute(user=senior, email="alex@example.org", reason="abuse")
    with override_settings(SECRET_KEY="rotated-secret-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[old]):
        assert mutes.reporter_is_muted("alex@example.org")
    with override_settings(SECRET_KEY="rotated-secret-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[]):
        assert not mutes.reporter_is_muted("alex@example.org")


@pytest.mark.django_db
def test_muting_and_unmuting_are_audited_with_the_reason_and_unmuting_routes_as_before(
        demo: Any, senior: User) -> None:
    mute = mutes.reporter_mute(user=senior, email="alex@example.org", reason="threatening messages")
    muted = AuditEvent.objects.get(action="reporter.muted", object_id=str(mute.pk))
    assert muted.reason == "threatening messages" and muted.actor == f"user:{senior.pk}"
    assert "alex" not in str(muted.data) + str(muted.after)
    assert file_report().tasks.get().queue.slug == "low-priority"  # type: ignore[union-attr]
    mutes.reporter_unmute(user=senior, mute_id=mute.pk)
    assert AuditEvent.objects.filter(action="reporter.unmuted", object_id=str(mute.pk)).exists()
    assert not ReporterMute.objects.exists()
    # (Another post: a report of the same one would join the open case, services/joining.py.)
    assert file_report(location="demo://content/4").tasks.get().queue.slug == "ncii-adult"  # type: ignore[union-attr]


@pytest.mark.django_db
def test_only_seniors_may_mute_and_a_mute_needs_a_reason(moderator: User, senior: User) -> None:
    with pytest.raises(PermissionDenied):
        mutes.reporter_mute(user=moderator, email="alex@example.org", reason="x")
    with pytest.raises(mutes.MuteError, match="reason"):
        mutes.reporter_mute(user=senior, email="alex@example.org", reason="  ")
    assert not ReporterMute.objects.exists()


@pytest.mark.django_db
def test_the_mutes_page_lists_mutes_and_unmutes_them(client: Client, senior: User) -> None:
    client.force_login(senior)
    response = client.post("/console/mutes", {"email": "alex@example.org", "reason": "spam reports"}, follow=True)
    html = response.content.decode()
    assert "spam reports" in html and "alex@example.org" not in html
    mute = ReporterMute.objects.get()
    client.post(f"/console/mutes/{mute.pk}/unmute")
    assert not ReporterMute.objects.exists()
    assert client.post("/console/mutes", {"email": "not-an-address", "reason": "x"}).status_code == 400


@pytest.mark.django_db
def test_a_senior_mutes_a_cases_reporter_from_the_case_page_without_seeing_the_address(
        client: Client, senior: User) -> None:
    from tests.moderation.console_helpers import make_case

    task = make_case()  # filed by a@example.org
    client.force_login(senior)
    assert 'id="mute-reporter-form"' in client.get(f"/console/case/{task.pk}").content.decode()
    html = client.post(f"/console/case/{task.pk}/mute-reporter", {"reason": "harassing reports"},
                       follow=True).content.decode()
    assert "The reporter is muted" in html
    assert mutes.reporter_is_muted("a@example.org")
    event = AuditEvent.objects.get(action="reporter.muted")
    assert event.data == {"task": task.pk} and event.reason == "harassing reports"
