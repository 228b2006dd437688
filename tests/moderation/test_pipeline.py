from __future__ import annotations

from typing import Any

import pytest

from moderation import tasks
from moderation.models import (
    AuditEvent,
    DetectionResult,
    Match,
    Media,
    MediaHash,
    Report,
    ReportedItem,
    ReviewTask,
)
from moderation.services.intake import Notice, Upload, report_submit
from tests.conftest import make_image_bytes, notice_payload


def submit(locations: list[str], uploads: list[Upload] | None = None) -> Report:
    notice = Notice(**{**notice_payload(), "locations": locations})  # type: ignore[arg-type]
    return report_submit(notice=notice, uploads=uploads).report


def snapshot() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (AuditEvent, DetectionResult, Match, Media, MediaHash,
                                                     ReportedItem, ReviewTask)}


@pytest.mark.django_db(transaction=True)
def test_a_reported_demo_item_is_fetched_hashed_matched_scored_and_triaged(demo: Any) -> None:
    report = submit(["demo://content/3"])
    item = report.items.get()
    assert item.state == ReportedItem.State.RESOLVED and item.media is not None
    media = item.media
    assert media.status == Media.Status.PROCESSED
    assert {h.algorithm for h in media.hashes.all()} == {"pdq", "phash", "dhash", "md5", "sha256"}
    pdq = media.hashes.get(algorithm="pdq")
    assert len(pdq.value) == 64 and pdq.quality is not None
    banks = {m.bank_entry.bank.name for m in media.matches.all()}
    assert banks == {"demo-known-items"}
    assert media.matches.get(algorithm="pdq").distance == 0
    detection = media.detections.get()
    assert detection.score > 0.9  # item 3 carries a Stable Diffusion "parameters" chunk
    assert detection.signals[0]["name"] == "metadata"
    task = report.tasks.get()
    codes = [r["code"] for r in task.priority_reasons]
    assert {"deadline", "match", "score", "confirmed_bank", "self_report"} <= set(codes)
    assert task.priority == sum(r["points"] for r in task.priority_reasons)
    report.refresh_from_db()
    assert report.status == Report.Status.IN_REVIEW


@pytest.mark.django_db(transaction=True)
def test_a_matched_and_ai_labelled_item_outranks_a_plain_one(demo: Any) -> None:
    plain = submit(["demo://content/20"])
    strong = submit(["demo://content/3"])
    assert strong.tasks.get().priority > plain.tasks.get().priority


@pytest.mark.django_db(transaction=True)
def test_running_every_task_again_changes_nothing(demo: Any) -> None:
    report = submit(["demo://content/3", "demo://content/404"])
    media_id = report.items.exclude(media=None).get().media_id
    before = snapshot()
    tasks.process_report.apply(args=[report.pk])
    tasks.process_media.apply(args=[media_id])
    tasks.score_media.apply(args=[media_id])
    tasks.triage_media.apply(args=[media_id])
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_a_location_that_does_not_exist_becomes_unprocessable_with_a_reason(demo: Any) -> None:
    report = submit(["demo://content/404"])
    item = report.items.get()
    assert item.state == ReportedItem.State.UNPROCESSABLE
    assert "no content item 404" in item.error
    assert report.tasks.get().triaged_at is not None  # still in the queue for a person to see


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_image_is_processed_like_a_fetched_one(demo: Any) -> None:
    # Smaller than the learned model's 64 px patch: make_image_bytes upsamples an 8 x 6 picture, which
    # the model rightly reads as upsampled (docs/model-card.md); this test is about the prior.
    report = submit([], [Upload("mine.jpg", make_image_bytes(seed=77, size=(60, 45)))])
    media = report.items.get().media
    assert media is not None
    media.refresh_from_db()
    assert media.status == Media.Status.PROCESSED
    assert not media.matches.exists()
    assert media.detections.get().score == pytest.approx(0.2)
    codes = [r["code"] for r in report.tasks.get().priority_reasons]
    assert "score" not in codes  # a score at the prior is no evidence and adds no priority


def test_detection_runs_on_its_own_queue_and_the_rest_on_default() -> None:
    from moderation.celery import app

    router = app.amqp.router
    assert router.route({}, "moderation.tasks.score_media")["queue"].name == "detection"
    assert router.route({}, "moderation.tasks.process_media")["queue"].name == "default"
    for name in ("process_report", "process_media", "score_media", "triage_media", "carry_out_action"):
        task = app.tasks[f"moderation.tasks.{name}"]
        assert task.acks_late and task.reject_on_worker_lost and task.max_retries == 8
