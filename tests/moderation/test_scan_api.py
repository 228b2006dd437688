from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from moderation.models import AuditEvent, Media, ScanTicket
from moderation.services.demo import demo_image_bytes
from tests.conftest import make_image_bytes

URL = "/api/v1/scan"


def scan(api: APIClient, key: str | None, data: bytes, url: str = URL, **fields: str) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    return api.post(url, {"file": SimpleUploadedFile("upload.bin", data), **fields}, format="multipart", **headers)


@pytest.mark.django_db
def test_it_refuses_a_call_without_a_valid_key(api: APIClient, demo: Any) -> None:
    assert scan(api, None, make_image_bytes()).status_code in (401, 403)
    assert scan(api, "td_nope_nope", make_image_bytes()).status_code in (401, 403)


@pytest.mark.django_db
def test_it_blocks_an_upload_of_banked_content(api: APIClient, demo: Any, platform_key: str) -> None:
    data, _mime = demo_image_bytes(4)
    response = scan(api, platform_key, data)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verdict"] == "block"
    assert {m["bank"] for m in body["matches"]} == {"demo-known-items"}
    assert AuditEvent.objects.filter(action="scan.block").count() == 1
    # The verdict is final: nothing is kept for a detection worker.
    assert body["detection"]["status"] == "skipped"
    assert ScanTicket.objects.get(scan_id=body["detection"]["scan_id"]).blob == ""


@pytest.mark.django_db
def test_it_blocks_a_recompressed_copy_by_pdq(api: APIClient, demo: Any, platform_key: str) -> None:
    import io

    from PIL import Image

    data, _mime = demo_image_bytes(5)
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").resize((300, 300)).save(buf, "JPEG", quality=60)
    body = scan(api, platform_key, buf.getvalue()).json()
    assert body["verdict"] == "block"
    assert [m["algorithm"] for m in body["matches"]] == ["pdq"]


@pytest.mark.django_db
def test_it_allows_an_unknown_ordinary_image_and_stores_no_media(api: APIClient, demo: Any,
                                                                 platform_key: str) -> None:
    body = scan(api, platform_key, make_image_bytes(seed=99)).json()
    assert body["verdict"] == "allow"
    assert body["matches"] == []
    assert body["detection"]["status"] == "pending"  # scored by a worker: tests/moderation/test_scan_async.py
    assert Media.objects.count() == 0


@pytest.mark.django_db
def test_it_asks_for_review_of_an_image_labelled_as_ai_made_when_scoring_inline(api: APIClient, demo: Any,
                                                                               platform_key: str) -> None:
    data, _mime = demo_image_bytes(11)  # AI-labelled, not in the bank
    body = scan(api, platform_key, data, detection="inline").json()
    assert body["verdict"] == "review"
    assert body["score"] > 0.5
    assert body["detection"]["status"] == "scored"
    assert AuditEvent.objects.filter(action="scan.review").count() == 1


@pytest.mark.django_db
def test_the_inline_option_may_be_given_in_the_query_string(api: APIClient, demo: Any, platform_key: str) -> None:
    data, _mime = demo_image_bytes(11)
    body = scan(api, platform_key, data, url=f"{URL}?detection=inline").json()
    assert (body["verdict"], body["detection"]["status"]) == ("review", "scored")
    assert ScanTicket.objects.get().blob == ""  # scored in the request: no copy waits anywhere


@pytest.mark.django_db
def test_it_answers_400_naming_the_field_for_an_unknown_detection_mode(api: APIClient, demo: Any,
                                                                      platform_key: str) -> None:
    response = scan(api, platform_key, make_image_bytes(seed=3), detection="later")
    assert response.status_code == 400
    assert "detection" in response.json()["errors"]
    assert ScanTicket.objects.count() == 0


@pytest.mark.django_db
def test_it_answers_400_naming_the_field_when_no_file_is_sent(api: APIClient, demo: Any, platform_key: str) -> None:
    response = api.post(URL, {}, format="multipart", HTTP_AUTHORIZATION=f"Api-Key {platform_key}")
    assert response.status_code == 400
    assert "file" in response.json()["errors"]


@pytest.mark.django_db
def test_it_answers_400_for_a_file_that_is_not_an_image(api: APIClient, demo: Any, platform_key: str) -> None:
    response = scan(api, platform_key, b"#!/bin/sh\necho hi\n")
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
    assert ScanTicket.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("detection", ["async", "inline"])
def test_the_answer_is_exactly_what_its_documented_serializer_gives(api: APIClient, demo: Any, platform_key: str,
                                                                   detection: str) -> None:
    # The view returns the service's dict without the serializer; the schema (OpenAPI) is the serializer's.
    from moderation.api.serializers import ScanTicketOutput

    for data in (demo_image_bytes(4)[0], make_image_bytes(seed=77)):  # a blocking match, and an unknown image
        body = scan(api, platform_key, data, detection=detection).json()
        assert body == ScanTicketOutput(body).data
        assert set(body) == {"verdict", "matches", "score", "signals", "hashes", "detection"}


@pytest.mark.django_db
def test_a_scan_with_a_key_used_a_moment_ago_costs_three_statements(api: APIClient, demo: Any, platform_key: str,
                                                                   django_assert_max_num_queries: Any) -> None:
    # The exact-hash lookup, the exact-copy lookup and the ticket insert; the key, the bank settings and the
    # matcher come from this process's caches between refreshes. 7 before the scan path was trimmed.
    from django.test.utils import override_settings

    scan(api, platform_key, make_image_bytes(seed=81))  # the key and the matcher are now fresh here
    with override_settings(TAKEDOWN_MATCH_REFRESH_SECONDS=60), django_assert_max_num_queries(3):
        body = scan(api, platform_key, make_image_bytes(seed=82), detection="inline").json()
    assert body["verdict"] in ("allow", "review") and body["detection"]["status"] == "scored"
