from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from moderation.models import AuditEvent, Media
from moderation.services.demo import demo_image_bytes
from tests.conftest import make_image_bytes

URL = "/api/v1/scan"


def scan(api: APIClient, key: str | None, data: bytes) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    return api.post(URL, {"file": SimpleUploadedFile("upload.bin", data)}, format="multipart", **headers)


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
def test_it_allows_an_unknown_ordinary_image_and_stores_nothing(api: APIClient, demo: Any,
                                                                platform_key: str) -> None:
    body = scan(api, platform_key, make_image_bytes(seed=99)).json()
    assert body["verdict"] == "allow"
    assert body["matches"] == []
    assert Media.objects.count() == 0


@pytest.mark.django_db
def test_it_asks_for_review_of_an_image_labelled_as_ai_made(api: APIClient, demo: Any, platform_key: str) -> None:
    data, _mime = demo_image_bytes(11)  # AI-labelled, not in the bank
    body = scan(api, platform_key, data).json()
    assert body["verdict"] == "review"
    assert body["score"] > 0.5


@pytest.mark.django_db
def test_it_answers_400_for_a_file_that_is_not_an_image(api: APIClient, demo: Any, platform_key: str) -> None:
    response = scan(api, platform_key, b"#!/bin/sh\necho hi\n")
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
