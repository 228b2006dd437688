from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from moderation.models import DemoContentItem, Report, ReviewTask
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload

FORM = {
    "reporter_name": "Alex Example", "reporter_email": "alex@example.org", "relationship": "self",
    "locations": "demo://content/3\n", "statement": "An AI-made intimate image of me, posted without consent.",
    "good_faith": "on", "adult_confirmed": "on", "signature": "Alex Example",
}


@pytest.mark.django_db(transaction=True)
def test_the_report_form_shows_the_case_number_and_pin_once(client: Client, demo: Any) -> None:
    response = client.post("/report/", FORM)
    assert response.status_code == 200
    html = response.content.decode()
    case_number = re.search(r'id="case-number">([^<]+)<', html).group(1)  # type: ignore[union-attr]
    pin = re.search(r'id="pin">([^<]+)<', html).group(1)  # type: ignore[union-attr]
    assert Report.objects.filter(case_number=case_number).exists()
    status = client.post("/status/", {"case_number": case_number, "pin": pin})
    assert status.status_code == 200
    assert case_number in status.content.decode()
    assert pin not in status.content.decode()


@pytest.mark.django_db
def test_the_report_form_lists_every_problem_in_an_error_summary(client: Client) -> None:
    response = client.post("/report/", {**FORM, "good_faith": "", "reporter_email": "nope"})
    assert response.status_code == 400
    html = response.content.decode()
    summary = html.split('id="error-summary"')[1].split("</div>")[0]
    assert 'href="#id_reporter_email"' in summary
    assert 'href="#id_good_faith"' in summary  # both problems listed in one round
    assert Report.objects.count() == 0


@pytest.mark.django_db
def test_a_report_about_a_minor_is_routed_to_take_it_down(client: Client) -> None:
    response = client.post("/report/", {**FORM, "adult_confirmed": ""})
    assert response.status_code == 400
    assert "takeitdown.ncmec.org" in response.content.decode()
    assert Report.objects.count() == 0


@pytest.mark.django_db
def test_a_wrong_pin_on_the_status_page_reveals_nothing(client: Client, demo: Any) -> None:
    notice = Notice(**notice_payload())  # type: ignore[arg-type]
    report = report_submit(notice=notice).report
    response = client.post("/status/", {"case_number": report.case_number, "pin": "AAAA-AAAA-AAAA"})
    assert response.status_code == 404
    assert "could not find" in response.content.decode()


@pytest.mark.django_db
def test_the_console_needs_a_login(client: Client) -> None:
    response = client.get("/console/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_the_case_page_shows_evidence_with_media_concealed_by_default(client: Client, demo: Any,
                                                                       moderator: User) -> None:
    task = report_submit(notice=Notice(**notice_payload())).report.tasks.get()  # type: ignore[arg-type]
    client.force_login(moderator)
    queue = client.get("/console/").content.decode()
    assert task.report.case_number in queue
    html = client.get(f"/console/case/{task.pk}").content.decode()
    assert 'class="media-wrap concealed"' in html
    assert "demo-known-items" in html  # the bank match beside the media
    assert "Stable Diffusion" in html  # the detection evidence
    media_id = re.search(r'data-media="(\d+)"', html).group(1)  # type: ignore[union-attr]
    link = re.search(rf'src="(/console/media/{media_id}\?sig=[^"]+)"', html).group(1)  # type: ignore[union-attr]
    media = client.get(link)  # the link the page signed for this moderator (tests/security/test_media_protection.py)
    assert media.status_code == 200 and "private, no-store" in media["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_triage_cannot_see_media_and_outsiders_cannot_see_the_queue(client: Client, demo: Any,
                                                                    triage_user: User, outsider: User) -> None:
    report_submit(notice=Notice(**notice_payload()))  # type: ignore[arg-type]
    client.force_login(outsider)
    assert client.get("/console/").status_code == 403
    client.force_login(triage_user)
    assert client.get("/console/").status_code == 200
    media_id = ReviewTask.objects.get().report.items.get().media_id
    assert client.get(f"/console/media/{media_id}").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_deciding_takedown_in_the_console_removes_the_demo_item(client: Client, demo: Any, moderator: User) -> None:
    notice = Notice(**{**notice_payload(), "locations": ["demo://content/12"]})  # type: ignore[arg-type]
    task = report_submit(notice=notice).report.tasks.get()
    client.force_login(moderator)
    client.post(f"/console/case/{task.pk}/claim")
    response = client.post(f"/console/case/{task.pk}/decide", {"decision": "takedown", "reason": "ncii"})
    assert response.status_code == 302
    assert DemoContentItem.objects.get(number=12).status == DemoContentItem.Status.REMOVED
    assert client.get("/demo/content/12").status_code == 410
    assert client.get("/demo/content/12/file").status_code == 404


@pytest.mark.django_db
def test_the_api_schema_and_docs_are_served(client: Client) -> None:
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    body = schema.content.decode()
    for path in ("/api/v1/reports", "/api/v1/scan", "/api/v1/queue/{task_id}/decide"):
        assert path in body
    assert client.get("/api/docs/").status_code == 200
