"""Hostile uploads through the two front doors, the web report form and ``POST /api/v1/reports``: each file
gets a 4xx naming the file field (and nothing is saved) or is accepted and ends processed or visibly
unprocessable. File names are never trusted: media is stored under its SHA-256, and the name sent is
neither used as a path nor shown unescaped."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from rest_framework.test import APIClient

from hashing.errors import MediaError
from moderation.models import AuditEvent, Media, Report, ReportedItem, ReviewTask
from moderation.services.media import media_validate
from tests.conftest import make_image_bytes, notice_payload
from tests.moderation.console_helpers import user_with_role
from tests.security.hostile_corpus import HOSTILE_FILE_NAMES, HostileItem, corpus

ITEMS = corpus()
API = "/api/v1/reports"
FORM = "/report/"
# Under the storage's dated folder, then the SHA-256 (Django adds "_xxxxxxx" if that name is taken).
CONTENT_ADDRESSED = re.compile(r"^media/\d{4}/\d{2}/[0-9a-f]{2}/[0-9a-f]{64}(_[A-Za-z0-9]{7})?\.[a-z0-9]{2,5}$")
BOUNDARY = "----takedown-hostile-7d3f9a"


def nothing_saved() -> bool:
    return not (Report.objects.exists() or ReportedItem.objects.exists() or Media.objects.exists()
                or AuditEvent.objects.exists())


def form_fields() -> dict[str, str]:
    """The web form's fields for a complete notice with no link (the upload is the only item)."""
    payload = notice_payload(locations=[])
    return {"reporter_name": payload["reporter_name"], "reporter_email": payload["reporter_email"],
            "relationship": payload["relationship"], "statement": payload["statement"], "good_faith": "on",
            "adult_confirmed": "on", "signature": payload["signature"], "locations": ""}


def api_fields() -> dict[str, str]:
    payload = notice_payload(locations=[])
    del payload["locations"]
    return {k: ("true" if v is True else str(v)) for k, v in payload.items()}


def multipart(fields: dict[str, str], file_field: str, file_name: str, data: bytes,
              content_type: str = "image/jpeg") -> bytes:
    """A multipart body written by hand, so the file name goes out exactly as given (a test client would
    take its basename first, as a browser does; an attacker's script need not)."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; filename="'.encode()
                 + file_name.encode("utf-8", "surrogatepass") + f'"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
                 + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def visible_text(page: bytes) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.decode()))


def assert_error_shape(body: dict[str, Any], field: str) -> None:
    assert isinstance(body["detail"], str) and body["detail"]
    assert field in body["errors"], body
    assert all(isinstance(m, str) and m for m in body["errors"][field])


# --- the corpus through the API and the form -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_the_report_api_refuses_a_hostile_file_naming_the_field_or_accepts_it_and_finishes_it(
        item: HostileItem, django_capture_on_commit_callbacks: Any) -> None:
    payload: dict[str, Any] = {**api_fields(), "files": [SimpleUploadedFile(item.filename, item.data,
                                                                             content_type=item.content_type)]}
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(API, payload, format="multipart")

    if item.outcome == "refused":
        assert response.status_code == 400, response.content
        assert_error_shape(response.json(), "files")
        assert nothing_saved()
        return
    assert response.status_code == 201, response.content
    report = Report.objects.get(case_number=response.json()["case_number"])
    media = report.items.get().media
    assert media is not None
    media.refresh_from_db()
    expected = {"processed": {Media.Status.PROCESSED}, "unprocessable": {Media.Status.UNPROCESSABLE},
                "either": {Media.Status.PROCESSED, Media.Status.UNPROCESSABLE}}[item.outcome]
    assert media.status in expected, (media.status, media.error)
    assert ReviewTask.objects.filter(report=report).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_the_web_form_shows_why_a_hostile_file_was_refused_or_gives_a_case_number(
        item: HostileItem, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(FORM, data=multipart(form_fields(), "image", item.filename, item.data,
                                                      item.content_type),
                                 content_type=f"multipart/form-data; boundary={BOUNDARY}")

    text = visible_text(response.content)
    if item.outcome == "refused":
        assert response.status_code == 400
        assert "Or attach the image or video:" in text  # the summary links the error to the file field
        if item.code not in (None, "empty"):  # an empty file is refused by the form field itself
            with pytest.raises(MediaError) as caught:
                media_validate(item.data)
            assert str(caught.value) in text
        assert nothing_saved()
        return
    assert response.status_code == 200, text[:2000]
    report = Report.objects.get()
    assert report.case_number in text
    assert report.items.get().media is not None


# --- file names ----------------------------------------------------------------------------------


def media_files() -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.django_db
@pytest.mark.parametrize("name", HOSTILE_FILE_NAMES, ids=[ascii(n)[:40] for n in HOSTILE_FILE_NAMES])
@pytest.mark.parametrize("door", ["api", "form"])
def test_a_hostile_file_name_is_never_used_as_a_path_nor_shown_unescaped(
        name: str, door: str, django_capture_on_commit_callbacks: Any) -> None:
    data = make_image_bytes(seed=HOSTILE_FILE_NAMES.index(name) + (1000 if door == "form" else 0))
    before = media_files()
    with django_capture_on_commit_callbacks(execute=True):
        if door == "api":
            response = Client().post(API, data=multipart(api_fields(), "files", name, data),
                                     content_type=f"multipart/form-data; boundary={BOUNDARY}")
        else:
            response = Client().post(FORM, data=multipart(form_fields(), "image", name, data),
                                     content_type=f"multipart/form-data; boundary={BOUNDARY}")

    if not Report.objects.exists():
        # Django drops a part whose name is empty once cleaned ("..", NUL): then there is no file, and the
        # answer says an image or link is needed. A part header over Django's limit (a 5000-character
        # name) is a parse error of the whole body.
        assert response.status_code == 400
        if door == "api":
            body = response.json()
            if "errors" in body:
                assert_error_shape(body, "locations")
            else:
                assert body["detail"].startswith("Multipart form parse error"), body
        assert nothing_saved()
        return
    assert response.status_code in (200, 201), response.content[:500]
    media = Media.objects.get()
    assert CONTENT_ADDRESSED.match(media.file.name), media.file.name
    root = Path(settings.MEDIA_ROOT).resolve()
    assert Path(media.file.path).resolve().is_relative_to(root)
    created = media_files() - before
    assert created == {media.file.name}, created  # one file, under its SHA-256, and nothing else
    assert "<script>alert(1)</script>" not in response.content.decode()

    client = Client()
    client.force_login(user_with_role("names-moderator", "moderator"))
    task = ReviewTask.objects.get()
    page = client.get(f"/console/case/{task.pk}").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "passwd" not in page and "\u202e" not in page  # the name sent is not kept, so not shown


# --- the scan API (the host platform's upload check) ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_the_scan_api_hashes_a_hostile_file_or_answers_400_naming_the_file(item: HostileItem,
                                                                          platform_key: str) -> None:
    response = APIClient().post("/api/v1/scan", {"file": SimpleUploadedFile(item.filename, item.data,
                                                                             content_type=item.content_type)},
                                format="multipart", HTTP_AUTHORIZATION=f"Api-Key {platform_key}")
    # The scan hashes only the first frame, so an animation too long to take as a report is still checked.
    hashable = item.outcome == "processed" or item.code == "too_many_frames"
    if item.outcome == "either":
        assert response.status_code in (200, 400), response.content
    elif hashable:
        assert response.status_code == 200, response.content
        assert len(response.json()["hashes"]["sha256"]) == 64
    else:
        assert response.status_code == 400, response.content
        assert_error_shape(response.json(), "file")
    assert not Media.objects.exists()  # nothing of a scanned upload is stored


# --- polyglots are served as the image they decode as --------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("item_id", ["polyglot-png-html", "polyglot-jpeg-zip"])
def test_a_polyglot_is_served_to_moderators_as_its_image_type_and_never_sniffed(
        item_id: str, django_capture_on_commit_callbacks: Any) -> None:
    item = next(i for i in ITEMS if i.id == item_id)
    payload: dict[str, Any] = {**api_fields(), "files": [SimpleUploadedFile(item.filename, item.data,
                                                                             content_type=item.content_type)]}
    with django_capture_on_commit_callbacks(execute=True):
        assert APIClient().post(API, payload, format="multipart").status_code == 201
    client = Client()
    client.force_login(user_with_role("polyglot-moderator", "moderator"))
    page = client.get(f"/console/case/{ReviewTask.objects.get().pk}").content.decode()
    src = re.search(r'<img src="([^"]+)"', page)
    assert src is not None, "the case page shows the image"
    response = client.get(html.unescape(src.group(1)))
    assert response.status_code == 200
    assert response["Content-Type"] == item.mime
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == item.data  # the bytes as sent: nothing re-encoded, nothing executed


# --- bodies that crashed the API or the form before (found by test_fuzz_report_api.py) -------------


@pytest.mark.django_db
def test_json_nested_100000_deep_is_a_400_not_a_500() -> None:
    response = Client().post(API, data="[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - the document is nested too deeply."}
    assert nothing_saved()


@pytest.mark.django_db
def test_deeply_nested_image_fingerprints_on_the_web_form_are_a_form_error_not_a_500() -> None:
    response = Client().post(FORM, data={**form_fields(), "locations": "demo://content/3",
                                         "client_hashes": "[" * 50_000})
    assert response.status_code == 400
    assert "The image fingerprints could not be read" in visible_text(response.content)
    assert nothing_saved()


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_a_json_body_over_the_memory_limit_is_a_413_in_the_error_shape() -> None:
    response = Client().post(API, data=json.dumps(notice_payload(statement="x" * 20_000)),
                             content_type="application/json")
    assert response.status_code == 413
    assert_error_shape(response.json(), "body")
    assert "larger than" in response.json()["detail"]
    assert nothing_saved()
