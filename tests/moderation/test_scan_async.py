"""/api/v1/scan with detection off the request: the verdict of the hashes at once, the score from a worker.

Celery runs eagerly here (tests/settings.py); the scoring task is sent when the scan's transaction
commits, so each test runs the commit callbacks itself to play the worker's part.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from hashing.algorithms import hash_bytes
from hashing.banks import bank_add_entries, bank_get_or_create
from moderation.models import ApiKey, AuditEvent, ScanTicket
from moderation.security.crypto import MAGIC
from moderation.services import api_keys
from moderation.services.api_keys import api_key_create
from moderation.services.demo import demo_image_bytes
from moderation.services.scan import PENDING_DIR, scan_sweep
from tests.conftest import make_image_bytes
from tests.e2e.test_celery_worker import celery_worker, wait_for  # noqa: F401 - celery_worker: the fixture

pytestmark = pytest.mark.django_db
URL = "/api/v1/scan"


def scan(api: APIClient, key: str, data: bytes, **fields: str) -> Any:
    return api.post(URL, {"file": SimpleUploadedFile("upload.bin", data), **fields}, format="multipart",
                    HTTP_AUTHORIZATION=f"Api-Key {key}")


def result(api: APIClient, key: str, scan_id: str) -> Any:
    return api.get(f"{URL}/{scan_id}", HTTP_AUTHORIZATION=f"Api-Key {key}")


@pytest.fixture(autouse=True)
def _no_waiting_files_from_other_tests() -> None:
    """Media storage lives for the whole test run; uploads other tests left waiting are not this test's."""
    for name in waiting_files():
        default_storage.delete(f"{PENDING_DIR}/{name}")


def waiting_files() -> list[str]:
    return default_storage.listdir(PENDING_DIR)[1] if default_storage.exists(PENDING_DIR) else []


def test_a_scan_answers_from_the_hashes_at_once_and_the_worker_adds_the_score(
        api: APIClient, demo: Any, platform_key: str, django_capture_on_commit_callbacks: Any) -> None:
    data, _mime = demo_image_bytes(11)  # AI-labelled, not in any bank: only the score makes it "review"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = scan(api, platform_key, data)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["verdict"], body["score"], body["detection"]["status"]) == ("allow", None, "pending")
    scan_id = body["detection"]["scan_id"]
    assert result(api, platform_key, scan_id).json()["detection"]["status"] == "pending"

    for callback in callbacks:  # the commit sends the task; eager Celery runs it here
        callback()

    scored = result(api, platform_key, scan_id)
    assert scored.status_code == 200
    scored_body = scored.json()
    assert scored_body["detection"]["status"] == "scored"
    assert scored_body["score"] > 0.5
    assert scored_body["signals"]
    assert scored_body["verdict"] == "review"
    assert scored_body["hashes"] == body["hashes"]
    audit = AuditEvent.objects.get(action="scan.review")
    assert audit.data["scan_id"] == scan_id and audit.data["score"] == scored_body["score"]


def test_the_upload_waits_encrypted_and_is_deleted_once_scored(
        api: APIClient, demo: Any, platform_key: str, django_capture_on_commit_callbacks: Any) -> None:
    data = make_image_bytes(seed=41)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = scan(api, platform_key, data).json()
    ticket = ScanTicket.objects.get(scan_id=body["detection"]["scan_id"])
    with default_storage.open(ticket.blob, "rb") as handle:
        stored = handle.read()
    assert stored.startswith(MAGIC) and data[64:128] not in stored

    for callback in callbacks:
        callback()

    ticket.refresh_from_db()
    assert ticket.status == ScanTicket.Status.SCORED and ticket.blob == ""
    assert not default_storage.exists(f"{PENDING_DIR}/{body['detection']['scan_id']}.bin")
    assert waiting_files() == []


def test_another_key_cannot_read_a_scan_result(api: APIClient, demo: Any, platform_key: str) -> None:
    scan_id = scan(api, platform_key, make_image_bytes(seed=5)).json()["detection"]["scan_id"]
    _row, other = api_key_create(kind="platform", name="another platform")
    assert result(api, other, scan_id).status_code == 404
    assert result(api, platform_key, "not-a-scan-id").status_code == 404
    assert result(api, platform_key, scan_id).status_code == 200


def test_an_exact_copy_of_a_scored_upload_gets_its_score_at_once_and_is_not_kept(
        api: APIClient, demo: Any, platform_key: str, django_capture_on_commit_callbacks: Any) -> None:
    data, _mime = demo_image_bytes(11)
    with django_capture_on_commit_callbacks(execute=True):
        first = scan(api, platform_key, data).json()
    scored = result(api, platform_key, first["detection"]["scan_id"]).json()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        again = scan(api, platform_key, data).json()
    assert again["detection"]["status"] == "scored"
    assert (again["score"], again["verdict"]) == (scored["score"], "review")
    assert callbacks == []  # nothing sent to a worker
    assert waiting_files() == []


def test_the_sweep_deletes_the_bytes_of_a_scan_no_worker_scored(
        api: APIClient, demo: Any, platform_key: str, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # the task is never sent: a lost message
        body = scan(api, platform_key, make_image_bytes(seed=8)).json()
    scan_id = body["detection"]["scan_id"]
    assert len(waiting_files()) == 1
    default_storage.save(f"{PENDING_DIR}/orphan.bin", ContentFile(b"left by a crashed request"))

    assert scan_sweep().expired == 0  # not yet late
    later = timezone.now() + timedelta(hours=1)
    swept = scan_sweep(now=later)

    assert (swept.expired, swept.orphans) == (1, 1)
    assert waiting_files() == []
    expired = result(api, platform_key, scan_id).json()
    assert expired["detection"]["status"] == "unscored"
    assert "in time" in expired["detection"]["note"]
    assert expired["verdict"] == "allow"  # the verdict of the hashes stands

    assert scan_sweep(now=timezone.now() + timedelta(days=2)).deleted == 1
    assert result(api, platform_key, scan_id).status_code == 404


def test_an_image_the_scorer_cannot_read_is_marked_unscored_and_its_bytes_deleted(
        api: APIClient, demo: Any, platform_key: str, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = scan(api, platform_key, make_image_bytes(seed=9)).json()
    ticket = ScanTicket.objects.get(scan_id=body["detection"]["scan_id"])
    default_storage.delete(ticket.blob)  # gone before the worker got to it
    for callback in callbacks:
        callback()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.blob, ticket.verdict) == (ScanTicket.Status.UNSCORED, "", "allow")


def test_a_video_is_answered_from_its_hashes_and_not_queued_for_scoring(
        api: APIClient, demo: Any, platform_key: str) -> None:
    from tests.hashing.videos import make_video

    body = scan(api, platform_key, make_video(2)).json()
    assert body["detection"]["status"] == "skipped"
    assert waiting_files() == []


def test_the_key_records_its_last_use_at_most_once_a_minute(api: APIClient, demo: Any, platform_key: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_image_bytes(seed=12)
    scan(api, platform_key, data)
    key = ApiKey.objects.get(kind="platform")
    first_use = key.last_used_at
    assert first_use is not None

    with CaptureQueriesContext(connection) as queries:
        scan(api, platform_key, data)
    assert not [q for q in queries.captured_queries if "UPDATE" in q["sql"] and "last_used_at" in q["sql"]]
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first_use

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first_use - timedelta(minutes=2))
    # The key is looked up again (and its use recorded) once this process's key cache has expired.
    later = api_keys._clock() + settings.TAKEDOWN_API_KEY_CACHE_SECONDS
    monkeypatch.setattr(api_keys, "_clock", lambda: later)
    scan(api, platform_key, data)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first_use


def test_a_new_bank_entry_shows_in_scans_once_the_refresh_interval_has_passed(
        api: APIClient, demo: Any, platform_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashing.matcher

    # A clock in the past, so the matcher's refresh time stays behind the real clock for the tests after.
    clock = [hashing.matcher.time.monotonic() - 10]
    monkeypatch.setattr(hashing.matcher.time, "monotonic", lambda: clock[0])
    data = make_image_bytes(seed=77)
    with override_settings(TAKEDOWN_MATCH_REFRESH_SECONDS=1):
        hashing.matcher.get_matcher().refresh()
        assert scan(api, platform_key, data).json()["verdict"] == "allow"
        bank = bank_get_or_create(name="fresh-bank", blocks_uploads=False)
        bank_add_entries(bank=bank, hashes=[("pdq", hash_bytes(data).pdq)], source="test")

        with CaptureQueriesContext(connection) as queries:
            assert scan(api, platform_key, data).json()["verdict"] == "allow"  # within the interval: cached
        assert not [q for q in queries.captured_queries if "bankchange" in q["sql"].lower()]

        clock[0] += 1.0  # the interval (1 s, under the 2 s bound) has passed
        body = scan(api, platform_key, data).json()
    assert body["verdict"] == "review"
    assert [m["bank"] for m in body["matches"]] == ["fresh-bank"]


@pytest.mark.celery_worker
def test_a_real_worker_on_the_detection_queue_scores_the_scan_and_deletes_its_bytes(
        celery_worker: Path, demo: Any, platform_key: str) -> None:  # noqa: F811 - the imported fixture
    api = APIClient()
    data, _mime = demo_image_bytes(11)
    body = scan(api, platform_key, data).json()
    assert body["detection"]["status"] == "pending"
    scan_id = body["detection"]["scan_id"]

    def scored() -> bool:
        return bool(result(api, platform_key, scan_id).json()["detection"]["status"] != "pending")

    try:
        wait_for(scored, "the worker to score the scan")
    except AssertionError:
        print(celery_worker.read_text()[-4000:])
        raise
    answer = result(api, platform_key, scan_id).json()
    assert (answer["detection"]["status"], answer["verdict"]) == ("scored", "review")
    assert waiting_files() == []
    assert "Task moderation.tasks.score_scan" in celery_worker.read_text()  # it ran in the worker
