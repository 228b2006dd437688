"""The worker memory limit (TAKEDOWN_TASK_MEMORY_MB, moderation/worker_limits.py) with a real worker.

An image within every declared limit (64 MP, a small file) that still needs more memory to decode than a
worker may use is marked unprocessable with the reason; the worker is not killed and goes on with the
next item.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from moderation.models import Media, Report, ReportedItem
from moderation.worker_limits import data_segment_bytes, memory_limit_apply
from tests.conftest import make_image_bytes, notice_payload
from tests.faults.services import redis_server, wait_for
from tests.faults.workers import celery_sends_to, start_worker, stop
from tests.security.hostile_corpus import png_raw


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_an_image_needing_more_memory_than_a_worker_may_use_is_unprocessable_and_the_worker_goes_on(
        tmp_path: Path) -> None:
    big = png_raw(7999, 7999, colour_type=2)  # 64.0 MP of RGB: 192 MB once decoded, from a small file
    assert len(big) < 1024 * 1024
    log = tmp_path / "worker.log"
    with redis_server() as broker, celery_sends_to(broker.url):
        worker = start_worker(broker.url, log, TAKEDOWN_TASK_MEMORY_MB="128")
        try:
            payload = notice_payload(locations=[])
            payload["files"] = [SimpleUploadedFile("big.png", big, content_type="image/png"),
                                SimpleUploadedFile("photo.jpg", make_image_bytes(seed=31), content_type="image/jpeg")]
            response = APIClient().post("/api/v1/reports", payload, format="multipart")
            assert response.status_code == 201, response.content
            report = Report.objects.get(case_number=response.json()["case_number"])
            media = Media.objects.filter(reported_items__report=report)
            try:
                wait_for(lambda: not media.filter(status=Media.Status.PENDING).exists()
                         and media.filter(status=Media.Status.PROCESSED, detections__isnull=False).exists(),
                         "the worker to finish both items", timeout=180)
            except AssertionError:
                print(log.read_text()[-4000:])
                raise
        finally:
            stop(worker)
    big_media = media.get(reported_items__state=ReportedItem.State.UNPROCESSABLE)
    assert big_media.status == Media.Status.UNPROCESSABLE
    assert "more than the 128 MB a worker may use" in big_media.error
    item = ReportedItem.objects.get(media=big_media)
    assert "128 MB" in item.error  # what the moderator sees on the case page
    assert media.filter(status=Media.Status.PROCESSED).count() == 1


def test_no_limit_is_set_when_the_headroom_is_zero() -> None:
    assert memory_limit_apply(0) is None


def test_the_process_data_size_is_read_from_proc() -> None:
    size = data_segment_bytes()
    assert size is not None and size > 10 * 1024 * 1024
