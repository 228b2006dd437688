"""Videos through the whole pipeline: intake, hashing and matching, the case page, takedown, the scan API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from hashing.banks import bank_get_or_create
from hashing.models import BankEntry, BankVideo
from hashing.video import hash_video_bytes
from hashing.video_banks import VideoFrame, bank_add_video
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
    VideoFrameHash,
    VideoMatch,
)
from moderation.services.intake import Notice, Upload, report_submit
from tests.conftest import notice_payload
from tests.hashing.videos import cut_clip, make_video


@pytest.fixture(scope="module")
def original() -> bytes:
    """12 seconds of drifting discs, H.264 in MP4."""
    return make_video(12, seed=0)


@pytest.fixture(scope="module")
def clip(original: bytes) -> bytes:
    """Seconds 3 to 9 of ``original``, resized and re-encoded as VP8 in WebM."""
    return cut_clip(original, 3, 9, width=120, height=72)


def submit_upload(data: bytes, name: str = "video.mp4") -> Report:
    notice = Notice(**{**notice_payload(), "locations": []})  # type: ignore[arg-type]
    return report_submit(notice=notice, uploads=[Upload(name=name, data=data)]).report


def bank_known_video(data: bytes, *, bank: str = "known-videos") -> BankVideo:
    hashes = hash_video_bytes(data)
    frames = [VideoFrame(f.index, f.timestamp, f.pdq, f.quality) for f in hashes.frames]
    video, _ = bank_add_video(bank=bank_get_or_create(name=bank), frames=frames, source="test", sha256=hashes.sha256)
    assert video is not None
    return video


def scan(api: APIClient, key: str, data: bytes) -> Any:
    return api.post("/api/v1/scan", {"file": SimpleUploadedFile("upload.bin", data)}, format="multipart",
                    HTTP_AUTHORIZATION=f"Api-Key {key}")


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_video_is_stored_hashed_and_its_frames_kept(original: bytes) -> None:
    report = submit_upload(original)
    item = report.items.get()
    assert item.state == ReportedItem.State.RESOLVED
    media = Media.objects.get(pk=item.media_id)
    assert (media.mime, media.width, media.height) == ("video/mp4", 160, 96)
    assert media.status == Media.Status.PROCESSED and media.file.name.endswith(".mp4")
    assert set(media.hashes.values_list("algorithm", flat=True)) == {"md5", "sha256"}
    frames = list(media.video_frames.all())
    assert [f.timestamp_s for f in frames] == [float(t) for t in range(12)]
    assert not DetectionResult.objects.filter(media=media).exists()  # videos are not scored yet
    event = AuditEvent.objects.get(action="media.hashed", object_id=str(media.pk))
    assert event.data["video_frames"] == 12 and event.data["video_matches"] == []
    assert report.tasks.get().state == ReviewTask.State.OPEN


@pytest.mark.django_db(transaction=True)
def test_a_clip_of_a_known_video_is_matched_and_shown_concealed_on_the_case_page(
        original: bytes, clip: bytes, client: Client, moderator: User) -> None:
    known = bank_known_video(original)
    report = submit_upload(clip, name="clip.webm")
    media = report.items.get().media
    assert media is not None and media.mime == "video/webm"
    match = VideoMatch.objects.get(media=media)
    assert match.bank_video == known
    assert match.query_share >= 0.8 and match.query_matched >= 2
    assert not Match.objects.filter(media=media).exists()  # different bytes: no exact match
    client.force_login(moderator)
    html = client.get(f"/console/case/{report.tasks.get().pk}").content.decode()
    wrap = re.search(r'<div class="media-wrap concealed"[^>]*>\s*(<video[^>]*>)', html)
    assert wrap is not None, "the video sits in the concealed (blurred) wrapper"
    tag = wrap.group(1)
    assert " controls" in tag and " muted" in tag and "autoplay" not in tag
    assert "video frames (vPDQ)" in html and "known-videos" in html
    src = re.search(r'src="([^"]+)"', tag)
    assert src is not None and src.group(1).startswith(f"/console/media/{media.pk}?sig=")
    streamed = client.get(src.group(1))  # the signed link the page made for this moderator
    assert streamed.status_code == 200 and streamed["Content-Type"] == "video/webm"


@pytest.mark.django_db(transaction=True)
def test_a_video_takedown_banks_it_and_the_scan_api_then_blocks_a_re_encoded_clip(
        original: bytes, clip: bytes, moderator: User, client_for: Callable[[User], APIClient],
        api: APIClient, platform_key: str) -> None:
    report = submit_upload(original)
    task = report.tasks.get()
    response = client_for(moderator).post(f"/api/v1/queue/{task.pk}/decide",
                                          {"decision": "takedown", "reason": "ncii", "note": ""}, format="json")
    assert response.status_code == 200, response.content
    confirmed = BankEntry.objects.filter(bank__name="confirmed-takedowns")
    assert set(confirmed.values_list("algorithm", flat=True)) == {"md5", "sha256"}
    video = BankVideo.objects.get(bank__name="confirmed-takedowns")
    assert video.sha256 == report.items.get().media.sha256  # type: ignore[union-attr]
    assert video.source == f"case:{report.case_number}"
    event = AuditEvent.objects.get(action="bank.entries_added")
    assert event.data["videos"] == [video.pk]

    body = scan(api, platform_key, clip).json()
    assert body["verdict"] == "block"
    assert [(m["algorithm"], m["bank"]) for m in body["matches"]] == [("vpdq", "confirmed-takedowns")]
    assert set(body["hashes"]) == {"md5", "sha256"}
    exact = scan(api, platform_key, original).json()
    assert exact["verdict"] == "block"
    assert {m["algorithm"] for m in exact["matches"]} == {"md5", "sha256", "vpdq"}


@pytest.mark.django_db
def test_the_scan_api_allows_an_unrelated_video_and_stores_nothing(original: bytes, api: APIClient,
                                                                   platform_key: str) -> None:
    bank_known_video(original)
    body = scan(api, platform_key, make_video(8, seed=5, fmt="webm", codec="libvpx")).json()
    assert body["verdict"] == "allow" and body["matches"] == []
    assert Media.objects.count() == 0 and VideoFrameHash.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("damage", ["empty", "cut_before_index", "garbage_in_container"])
def test_a_video_that_cannot_be_read_is_refused_with_400_and_nothing_saved(
        original: bytes, damage: str, api: APIClient, platform_key: str) -> None:
    content = {"empty": b"", "cut_before_index": original[: len(original) // 2],
               "garbage_in_container": original[:32] + bytes(range(256)) * 40}[damage]
    payload = notice_payload(locations=[])
    payload["files"] = [SimpleUploadedFile("video.mp4", content, content_type="video/mp4")]
    response = api.post("/api/v1/reports", payload, format="multipart")
    assert response.status_code == 400, response.content
    assert "files" in response.json()["errors"]
    assert Report.objects.count() == 0 and Media.objects.count() == 0
    assert scan(api, platform_key, content).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_video_damaged_after_its_first_frames_becomes_unprocessable_with_the_reason() -> None:
    data = make_video(10, seed=4, fmt="webm", codec="libvpx")
    report = submit_upload(data[: len(data) // 2], name="cut.webm")  # the probe sees an intact start
    item = report.items.get()
    assert item.state == ReportedItem.State.UNPROCESSABLE
    assert "cut off" in item.error
    assert Media.objects.get(pk=item.media_id).status == Media.Status.UNPROCESSABLE
    assert not VideoFrameHash.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_running_every_task_again_changes_nothing_for_a_video(original: bytes, clip: bytes) -> None:
    bank_known_video(original)
    report = submit_upload(clip, name="clip.webm")
    media_id = report.items.get().media_id

    def snapshot() -> dict[str, int]:
        return {m.__name__: m.objects.count() for m in (AuditEvent, MediaHash, VideoFrameHash, VideoMatch,
                                                         DetectionResult, Match)}

    before = snapshot()
    assert before["VideoMatch"] == 1
    tasks.process_report.apply(args=[report.pk])
    tasks.process_media.apply(args=[media_id])
    tasks.score_media.apply(args=[media_id])
    tasks.triage_media.apply(args=[media_id])
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_a_matched_clip_raises_the_case_priority_by_its_share_of_matched_frames(original: bytes,
                                                                                 clip: bytes) -> None:
    plain = submit_upload(make_video(12, seed=7))
    bank_known_video(original)
    matched = submit_upload(clip, name="clip.webm")
    reasons = {r["code"]: r for r in matched.tasks.get().priority_reasons}
    assert "video match" in reasons["match"]["detail"]
    assert reasons["match"]["points"] > 0
    assert "confirmed_bank" in reasons  # the test bank blocks uploads
    assert matched.tasks.get().priority > plain.tasks.get().priority


@pytest.mark.django_db(transaction=True)
def test_withdrawing_a_case_withdraws_its_banked_video_and_logs_the_change_for_matchers(original: bytes) -> None:
    from hashing.models import BankChange
    from moderation.services.appeals import hashes_withdraw

    report = submit_upload(original)
    hashes = hash_video_bytes(original)
    frames = [VideoFrame(f.index, f.timestamp, f.pdq, f.quality) for f in hashes.frames]
    bank = bank_get_or_create(name="confirmed-takedowns")
    source = f"case:{report.case_number}"
    video, _ = bank_add_video(bank=bank, frames=frames, source=source, sha256=hashes.sha256)
    assert video is not None
    entry = BankEntry.objects.create(bank=bank, algorithm="md5", value=hashes.md5, source=source)
    changes_before = BankChange.objects.filter(entry_id=entry.pk).count()

    withdrawn = hashes_withdraw(case_number=report.case_number, actor="reporter", why="test")

    assert withdrawn == 2
    video.refresh_from_db()
    entry.refresh_from_db()
    assert video.status == BankEntry.Status.WITHDRAWN and entry.status == BankEntry.Status.WITHDRAWN
    assert BankChange.objects.filter(entry_id=entry.pk).count() == changes_before + 1
    event = AuditEvent.objects.get(action="bank.entries_withdrawn")
    assert event.data["videos"] == [video.pk] and event.data["entries"] == [entry.pk]
