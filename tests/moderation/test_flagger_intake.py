"""Notices from trusted flaggers (DSA Art. 22: priority, the flagger's identity recorded) and eSafety (24 h),
filed through ``POST /api/v1/notices`` with a key of kind "flagger" that names the source it files as."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from moderation.models import ApiKey, AuditEvent, Report, ReviewTask
from moderation.services.api_keys import api_key_create
from moderation.services.intake import DuplicateNotice, Notice, report_submit
from moderation.services.triage import TRUSTED_FLAGGER_POINTS
from tests.conftest import AS_ADMIN, notice_payload

URL = "/api/v1/notices"


def flagger(source: str = "trusted_flagger", name: str = "Helpline NGO") -> tuple[ApiKey, APIClient]:
    row, key = api_key_create(kind="flagger", name=name, source=source)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return row, client


def notice(**overrides: Any) -> dict[str, Any]:
    body = notice_payload(relationship="representative", reporter_name="Case officer",
                          reporter_email="notices@helpline.example.org", signature="Case officer")
    body["reference"] = "HL-2026-0001"
    body.update(overrides)
    return body


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_user")
def test_create_api_key_makes_a_flagger_key_for_a_source_and_refuses_one_without() -> None:
    out = StringIO()
    call_command("create_api_key", *AS_ADMIN, "--kind", "flagger", "--name", "eSafety Commissioner", "--source",
                 "esafety", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    row = ApiKey.objects.get()
    assert (row.kind, row.source, row.name) == ("flagger", "esafety", "eSafety Commissioner")
    assert key not in str(AuditEvent.objects.get(action="api_key.created").data)
    with pytest.raises(CommandError, match="--source"):
        call_command("create_api_key", *AS_ADMIN, "--kind", "flagger", "--name", "No source", stdout=StringIO())
    with pytest.raises(CommandError, match="Only flagger keys"):
        call_command("create_api_key", *AS_ADMIN, "--kind", "platform", "--name", "Host", "--source", "esafety",
                     stdout=StringIO())
    with pytest.raises(CommandError):  # a source a flagger may not file as
        call_command("create_api_key", *AS_ADMIN, "--kind", "flagger", "--name", "X", "--source", "web",
                     stdout=StringIO())
    assert ApiKey.objects.count() == 1


@pytest.mark.django_db
def test_a_trusted_flagger_notice_records_the_flagger_and_gets_priority_with_a_stored_reason(demo: Any) -> None:
    row, client = flagger()
    response = client.post(URL, notice(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True and body["pin"] and body["source"] == "trusted_flagger"
    report = Report.objects.get(case_number=body["case_number"])
    assert report.source == Report.Source.TRUSTED_FLAGGER
    assert report.flagger_key == row and report.flagger_reference == "HL-2026-0001"
    assert report.deadline_at == report.notice_complete_at + timedelta(hours=48)
    received = AuditEvent.objects.get(action="report.received", object_id=str(report.pk))
    assert received.data["flagger_key"] == row.pk and received.data["flagger_reference"] == "HL-2026-0001"
    task = ReviewTask.objects.get(report=report)
    reason = next(r for r in task.priority_reasons if r["code"] == "trusted_flagger")
    assert reason["points"] == TRUSTED_FLAGGER_POINTS and "Helpline NGO" in reason["detail"]
    assert "Art. 22" in reason["detail"]


@pytest.mark.django_db
def test_a_trusted_flagger_notice_goes_ahead_of_a_self_report_a_band_closer_to_its_deadline(demo: Any) -> None:
    # The person's own report came in 14 h ago (34 h left: one deadline band more urgent); no match on either.
    ordinary = report_submit(notice=Notice(**notice_payload(locations=["demo://content/21"])),
                             now=timezone.now() - timedelta(hours=14)).report
    _row, client = flagger()
    flagged = client.post(URL, notice(locations=["demo://content/20"]), format="json").json()
    flagged_task = ReviewTask.objects.get(report__case_number=flagged["case_number"])
    ordinary_task = ReviewTask.objects.get(report=ordinary)
    assert {r["code"] for r in ordinary_task.priority_reasons} == {"deadline", "self_report"}
    assert flagged_task.priority > ordinary_task.priority
    assert ReviewTask.objects.order_by("-priority", "created_at").first() == flagged_task


@pytest.mark.django_db
def test_an_esafety_notice_runs_on_the_24_hour_clock(demo: Any) -> None:
    _row, client = flagger(source="esafety", name="eSafety Commissioner")
    body = client.post(URL, notice(reference="ESC-77"), format="json").json()
    report = Report.objects.get(case_number=body["case_number"])
    assert report.source == Report.Source.ESAFETY
    assert report.deadline_at == report.notice_complete_at + timedelta(hours=24)
    reasons = ReviewTask.objects.get(report=report).priority_reasons
    assert "trusted_flagger" not in [r["code"] for r in reasons]
    assert any(r["code"] == "source" and "eSafety" in r["detail"] for r in reasons)


@pytest.mark.django_db
def test_filing_the_same_reference_again_returns_the_first_case_and_changes_nothing(demo: Any) -> None:
    _row, client = flagger()
    first = client.post(URL, notice(), format="json")
    again = client.post(URL, notice(statement="A different text, sent by a retry."), format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["case_number"] == first.json()["case_number"]
    assert again.json()["created"] is False and again.json()["pin"] is None
    assert Report.objects.count() == 1
    # Another flagger may use the same reference for its own notice.
    _other, other_client = flagger(name="Another NGO")
    assert other_client.post(URL, notice(), format="json").status_code == 201
    assert Report.objects.count() == 2


@pytest.mark.django_db
def test_a_reference_filed_at_the_same_moment_by_a_retry_is_caught_by_the_database(demo: Any) -> None:
    row, client = flagger()
    client.post(URL, notice(), format="json")
    payload = {k: v for k, v in notice().items() if k != "reference"}
    # Past the service's look-up, as a concurrent retry would be: the unique constraint answers.
    with pytest.raises(DuplicateNotice) as caught:
        report_submit(notice=Notice(**payload, source="trusted_flagger", flagger_key_id=row.pk,
                                    flagger_reference="HL-2026-0001"))
    assert caught.value.report.flagger_reference == "HL-2026-0001"
    assert Report.objects.count() == 1


@pytest.mark.django_db
def test_a_notice_lacking_deferrable_elements_waits_for_information_without_a_clock(demo: Any) -> None:
    _row, client = flagger()
    response = client.post(URL, notice(reference="HL-2", statement="", signature="", good_faith=False),
                           format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "needs_information" and body["deadline_at"] is None
    assert body["missing_information"] == ["statement", "good_faith", "signature"]


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    ({"reference": ""}, "reference"),
    ({"reference": "x" * 201}, "reference"),
    ({"adult_confirmed": False}, "adult_confirmed"),
    ({"reporter_email": "not-an-address"}, "reporter_email"),
    ({"locations": ["ftp://example.org/x"]}, "locations"),
    ({"client_hashes": ["abc"]}, "client_hashes"),
    ({"ai_made": "maybe"}, "ai_made"),
], ids=["empty-reference", "long-reference", "minor", "email", "location", "hash", "context"])
def test_an_invalid_notice_is_refused_naming_the_field_and_nothing_is_saved(change: dict[str, Any],
                                                                          field: str) -> None:
    _row, client = flagger()
    payload = notice(**change)
    response = client.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_only_a_flagger_key_may_file_notices(platform_key: str) -> None:
    assert APIClient().post(URL, notice(), format="json").status_code in (401, 403)
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Api-Key {platform_key}")
    assert platform.post(URL, notice(), format="json").status_code in (401, 403)
    row, client = flagger()
    ApiKey.objects.filter(pk=row.pk).update(revoked_at=row.created_at)
    assert client.post(URL, notice(), format="json").status_code in (401, 403)
    _row, live = flagger(name="Live NGO")
    assert live.post("/api/v1/scan", {}, format="multipart").status_code in (401, 403)  # not a platform key
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_the_flagger_follows_its_notice_by_its_own_reference(demo: Any) -> None:
    _row, client = flagger()
    created = client.post(URL, notice(), format="json").json()
    status = client.get(f"{URL}/HL-2026-0001")
    assert status.status_code == 200 and status.json()["case_number"] == created["case_number"]
    assert "notices@helpline.example.org" not in status.content.decode()
    _other, other_client = flagger(name="Another NGO")
    assert other_client.get(f"{URL}/HL-2026-0001").status_code == 404
    assert client.get(f"{URL}/HL-unknown").status_code == 404


@pytest.mark.django_db
def test_the_schema_describes_the_notices_route() -> None:
    from django.test import Client

    body = Client().get("/api/schema/").content.decode()
    assert "/api/v1/notices" in body and "/api/v1/notices/{reference}" in body
    assert "FlaggerKeyAuth" in body and "reference" in body


@pytest.mark.django_db(transaction=True)
def test_a_takedown_on_a_trusted_flaggers_notice_is_stated_as_one(demo: Any, moderator: Any) -> None:
    from moderation.models import StatementOfReasons
    from tests.moderation.legal_helpers import take_down

    _row, client = flagger()
    body = client.post(URL, notice(locations=["demo://content/24"]), format="json").json()
    decision = take_down(Report.objects.get(case_number=body["case_number"]), moderator)
    statement = StatementOfReasons.objects.get(decision=decision)
    assert statement.payload["source_type"] == "SOURCE_TRUSTED_FLAGGER"
    assert "Helpline NGO" not in str(statement.payload)  # the Transparency Database gets no names
