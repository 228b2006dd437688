from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from moderation.models import AuditEvent, Media, Report, ReportedItem
from tests.conftest import make_image_bytes, notice_payload

URL = "/api/v1/reports"


def nothing_saved() -> bool:
    return not (Report.objects.exists() or ReportedItem.objects.exists() or Media.objects.exists()
                or AuditEvent.objects.exists())


@pytest.mark.django_db
def test_it_accepts_a_json_report_and_returns_the_case_number_and_pin(api: APIClient, demo: Any) -> None:
    response = api.post(URL, notice_payload(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"case_number", "pin", "status"}
    assert Report.objects.filter(case_number=body["case_number"]).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["reporter_name", "reporter_email", "relationship", "statement", "good_faith",
                                   "signature", "adult_confirmed"])
def test_it_answers_400_naming_a_missing_field(api: APIClient, field: str) -> None:
    payload = notice_payload()
    del payload[field]
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]
    assert nothing_saved()


@pytest.mark.django_db
def test_it_answers_400_when_good_faith_is_not_affirmed(api: APIClient) -> None:
    response = api.post(URL, notice_payload(good_faith=False), format="json")
    assert response.status_code == 400
    assert "good_faith" in response.json()["errors"]


@pytest.mark.django_db
def test_it_accepts_multipart_with_an_image_file(api: APIClient, demo: Any) -> None:
    payload = notice_payload(locations=[])
    payload["files"] = [SimpleUploadedFile("photo.jpg", make_image_bytes(seed=5), content_type="image/jpeg")]
    response = api.post(URL, payload, format="multipart")
    assert response.status_code == 201, response.content
    report = Report.objects.get(case_number=response.json()["case_number"])
    assert report.items.get().media is not None


@pytest.mark.django_db
@pytest.mark.parametrize("content", [b"", b"%PDF-1.4 not an image", make_image_bytes(seed=6)[:200],
                                     b"<svg xmlns='http://www.w3.org/2000/svg'/>"],
                         ids=["empty", "pdf", "truncated", "svg"])
def test_it_answers_400_for_a_bad_upload_and_saves_nothing(api: APIClient, content: bytes) -> None:
    payload = notice_payload(locations=[])
    payload["files"] = [SimpleUploadedFile("photo.jpg", content, content_type="image/jpeg")]
    response = api.post(URL, payload, format="multipart")
    assert response.status_code == 400, response.content
    assert "files" in response.json()["errors"]
    assert nothing_saved()


@pytest.mark.django_db
@override_settings(TAKEDOWN_MAX_UPLOAD_BYTES=2048)
def test_it_answers_400_for_an_oversized_upload_and_saves_nothing(api: APIClient) -> None:
    payload = notice_payload(locations=[])
    payload["files"] = [SimpleUploadedFile("big.png", make_image_bytes(seed=7, size=(900, 900), fmt="PNG"))]
    response = api.post(URL, payload, format="multipart")
    assert response.status_code == 400
    assert "larger than" in response.json()["errors"]["files"][0]
    assert nothing_saved()


@pytest.mark.django_db
def test_the_reporter_sees_the_status_with_the_right_pin(api: APIClient, demo: Any) -> None:
    created = api.post(URL, notice_payload(), format="json").json()
    response = api.get(f"{URL}/{created['case_number']}", HTTP_X_CASE_PIN=created["pin"])
    assert response.status_code == 200
    body = response.json()
    assert body["case_number"] == created["case_number"]
    assert body["items"][0]["location"] == "demo://content/3"
    assert "reporter_email" not in str(body) and "alex@example.org" not in str(body)


@pytest.mark.django_db
def test_a_wrong_pin_and_an_unknown_case_get_the_same_404(api: APIClient, demo: Any) -> None:
    created = api.post(URL, notice_payload(), format="json").json()
    wrong = api.get(f"{URL}/{created['case_number']}", HTTP_X_CASE_PIN="AAAA-BBBB-CCCC")
    unknown = api.get(f"{URL}/TD-ZZZZ-ZZZZ", HTTP_X_CASE_PIN=created["pin"])
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()


@pytest.mark.django_db
def test_it_takes_the_web_forms_optional_context_and_browser_hashes(api: APIClient, demo: Any) -> None:
    from hashing.models import BankEntry

    fingerprint = "F" * 60 + "0A1B"  # upper case is accepted and stored lower case, as the web form does
    response = api.post(URL, notice_payload(ai_made="yes", first_seen="last spring", other_places="a forum",
                                            client_hashes=[fingerprint]), format="json")
    assert response.status_code == 201, response.content
    report = Report.objects.get(case_number=response.json()["case_number"])
    assert report.context == {"ai_made": "yes", "first_seen": "last spring", "other_places": "a forum"}
    entry = BankEntry.objects.get(source=f"case:{report.case_number}")
    assert entry.value == fingerprint.lower() and entry.status == BankEntry.Status.ACTIVE


@pytest.mark.django_db
def test_it_accepts_a_report_with_only_browser_hashes_in_multipart(api: APIClient) -> None:
    payload = notice_payload(locations=[])
    payload["client_hashes"] = ["0" * 63 + "1", "f" * 64]
    response = api.post(URL, payload, format="multipart")
    assert response.status_code == 201, response.content
    report = Report.objects.get(case_number=response.json()["case_number"])
    assert sorted(report.context) == [] and report.items.count() == 0
    from hashing.models import BankEntry

    assert BankEntry.objects.filter(source=f"case:{report.case_number}").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field", "words"), [
    ({"client_hashes": ["not-a-hash"]}, "client_hashes", "64 hexadecimal"),
    ({"client_hashes": ["a" * 65]}, "client_hashes", "item 1"),
    ({"client_hashes": "a" * 64}, "client_hashes", "list"),
    ({"client_hashes": ["a" * 64] * 51}, "client_hashes", "50"),
    ({"ai_made": "maybe"}, "ai_made", "valid choice"),
    ({"first_seen": "x" * 101}, "first_seen", "100"),
    ({"other_places": "x" * 1001}, "other_places", "1000"),
], ids=["not-hex", "too-long", "not-a-list", "too-many", "ai-made", "first-seen", "other-places"])
def test_it_answers_400_naming_a_bad_context_field_or_hash_and_saves_nothing(
        api: APIClient, change: dict[str, Any], field: str, words: str) -> None:
    response = api.post(URL, notice_payload(**change), format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"} and field in body["errors"]
    assert any(words in message for message in body["errors"][field]), body
    assert nothing_saved()


@pytest.mark.django_db
def test_the_schema_lists_the_context_fields_and_browser_hashes(api: APIClient) -> None:
    schema = api.get("/api/schema/?format=json").json()
    fields = schema["components"]["schemas"]["ReportInputRequest"]["properties"]
    for name in ("ai_made", "first_seen", "other_places", "client_hashes"):
        assert name in fields
    assert fields["client_hashes"]["type"] == "array"
    assert "ReportInputRequest" in str(schema["paths"]["/api/v1/reports"]["post"]["requestBody"])
