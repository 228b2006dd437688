"""Hostile media through the decode path and the pipeline: a hash or a typed error, never a crash; an
accepted report is never lost, and media that cannot be read ends "unprocessable" with a reason that the
console case page and the reporter's status page show."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image, TiffImagePlugin

from detection.scoring import ScoringError, score_bytes
from hashing.algorithms import hash_bytes
from hashing.decode import MAX_FRAMES, iter_frames, open_for_hashing, open_image, probe
from hashing.errors import MediaError, MediaTooLarge, TooManyFrames
from moderation.models import AuditEvent, DemoContentItem, Media, MediaHash, Report, ReportedItem, ReviewTask
from moderation.services import pipeline
from moderation.services.intake import IntakeError, Notice, Upload, report_submit
from moderation.services.media import media_validate
from tests.conftest import notice_payload
from tests.moderation.console_helpers import user_with_role
from tests.security.hostile_corpus import (
    HostileItem,
    corpus,
    gif_frame_flood,
    many_frames_gif,
    png_raw,
    tiff_pages,
)

ITEMS = corpus()
ACCEPTED = [item for item in ITEMS if item.outcome != "refused"]
REFUSED = [item for item in ITEMS if item.outcome == "refused"]


def by_id(item_id: str) -> HostileItem:
    return next(item for item in ITEMS if item.id == item_id)


def media_error(call: Callable[[], Any]) -> MediaError | None:
    """None when the call succeeds; the typed error when it fails. Any other exception fails the test."""
    try:
        call()
    except MediaError as exc:
        message = str(exc)
        assert message.strip() and "site-packages" not in message and "Traceback" not in message, message
        return exc
    return None


# --- the decode path -----------------------------------------------------------------------------


@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_every_hostile_file_gives_a_hash_or_a_typed_error_at_every_decode_step(item: HostileItem) -> None:
    at_intake = media_error(lambda: media_validate(item.data))
    when_hashed = media_error(lambda: hash_bytes(item.data))
    media_error(lambda: open_image(item.data))
    media_error(lambda: open_for_hashing(item.data))
    media_error(lambda: list(iter_frames(item.data)))

    if item.outcome == "refused":
        assert at_intake is not None, "the header check must refuse this file"
        # Hashing decodes only the first frame, so a long animation is refused at intake but still hashable
        # (the scan API can then block a known frame bomb like any other file).
        assert when_hashed is not None or item.code == "too_many_frames"
        if item.code:
            assert at_intake.code == item.code, str(at_intake)
    elif item.outcome == "unprocessable":
        assert at_intake is None, f"accepted at intake, found when hashed; got {at_intake}"
        assert when_hashed is not None and when_hashed.code == item.code, str(when_hashed)
    elif item.outcome == "processed":
        assert at_intake is None and when_hashed is None, (at_intake, when_hashed)
        assert probe(item.data).mime == item.mime  # sniffed from the bytes, never the name or claimed type
    else:
        assert at_intake is None


@pytest.mark.parametrize("item", ACCEPTED, ids=[i.id for i in ACCEPTED])
def test_every_file_the_intake_accepts_gets_a_score_or_a_scoring_error(item: HostileItem) -> None:
    try:
        result = score_bytes(item.data)
    except ScoringError as exc:
        assert str(exc)
    else:
        assert 0.0 <= result.score <= 1.0


@pytest.fixture
def decoders_started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every pixel decoder Pillow starts, by name: proof of how much decoding a refusal cost."""
    started: list[str] = []
    real = Image._getdecoder

    def counting(mode: str, decoder_name: str, *args: Any, **kwargs: Any) -> Any:
        started.append(decoder_name)
        return real(mode, decoder_name, *args, **kwargs)

    monkeypatch.setattr(Image, "_getdecoder", counting)
    yield started


def test_the_decoder_counter_sees_an_ordinary_decode(decoders_started: list[str]) -> None:
    hash_bytes(by_id("1x1-png").data)
    assert decoders_started, "the counter must see decodes, or the tests below prove nothing"


@pytest.mark.parametrize("item_id", ["png-bomb-100-megapixels", "png-declaring-20000x20000", "100000x1-png",
                                     "jpeg-declaring-65000x65000", "gif-screen-65535x65535",
                                     "bmp-declaring-60000x60000"])
def test_a_decompression_bomb_or_absurd_shape_is_refused_before_a_single_pixel_is_decoded(
        item_id: str, decoders_started: list[str]) -> None:
    data = by_id(item_id).data
    for step in (probe, hash_bytes, open_image):
        with pytest.raises(MediaTooLarge) as caught:
            step(data)
        assert "Please upload" in str(caught.value)
    assert decoders_started == []


@pytest.mark.parametrize("item_id", ["gif-1000-frames", "apng-1000-frames"])
def test_a_1000_frame_animation_is_refused_at_intake_without_decoding_a_frame(
        item_id: str, decoders_started: list[str]) -> None:
    data = by_id(item_id).data
    with pytest.raises(TooManyFrames) as caught:
        media_validate(data)
    assert f"has 1000 frames; the limit is {MAX_FRAMES}" in str(caught.value)
    with pytest.raises(TooManyFrames):
        next(iter_frames(data))
    assert decoders_started == []


def test_a_gif_of_100000_frames_is_refused_after_counting_only_past_the_limit(
        decoders_started: list[str]) -> None:
    data = gif_frame_flood(100_000)
    with pytest.raises(TooManyFrames) as caught:
        media_validate(data)
    assert f"more than {4 * MAX_FRAMES} frames; the limit is {MAX_FRAMES}" in str(caught.value)
    assert decoders_started == []
    assert len(list(iter_frames(gif_frame_flood(4)))) == 4  # the bounded count is still exact below it


@pytest.mark.parametrize(("pages", "tags"), [(100_000, 0), (300, 5000)], ids=["100000-pages", "fat-pages"])
def test_a_many_page_tiff_is_checked_and_hashed_from_its_first_page_only(
        pages: int, tags: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Counting a TIFF's pages parses every page's tags (Pillow's walk is quadratic in pages): 155 s for the
    # first file and 18 s for the second before the fix, inside the web request.
    data = tiff_pages(pages, tags)
    loads: list[int] = []
    real = TiffImagePlugin.ImageFileDirectory_v2.load

    def counting(self: Any, fp: Any) -> None:
        loads.append(1)
        real(self, fp)

    monkeypatch.setattr(TiffImagePlugin.ImageFileDirectory_v2, "load", counting)
    assert media_validate(data).mime == "image/tiff"
    hash_bytes(data)
    assert len(loads) < 10


def test_the_frame_limit_is_the_callers_and_counts_without_decoding(decoders_started: list[str]) -> None:
    data = many_frames_gif(6)
    assert probe(data, max_frames=6).mime == "image/gif"
    decoders_started.clear()
    with pytest.raises(TooManyFrames, match="6 frames; the limit is 5"):
        probe(data, max_frames=5)
    assert decoders_started == []


def test_a_long_thin_image_under_the_limits_is_still_read() -> None:
    # The refusals above are about size, not shape: 20000 x 1 is an odd but legal panorama strip.
    assert probe(png_raw(20_000, 1)).width == 20_000


# --- the pipeline, the console and the status page -----------------------------------------------


def submit_upload(item: HostileItem) -> tuple[Report, str]:
    notice = Notice(**{**notice_payload(), "locations": []})  # type: ignore[arg-type]
    submitted = report_submit(notice=notice, uploads=[Upload(item.filename, item.data)])
    return submitted.report, submitted.pin


@pytest.fixture
def moderator_client(db: Any) -> Client:
    client = Client()
    client.force_login(user_with_role("hostile-media-moderator", "moderator"))
    return client


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.django_db
@pytest.mark.parametrize("item", ACCEPTED, ids=[i.id for i in ACCEPTED])
def test_an_accepted_hostile_upload_ends_processed_or_visibly_unprocessable_and_the_report_is_never_lost(
        item: HostileItem, moderator_client: Client, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report, pin = submit_upload(item)

    report.refresh_from_db()
    stored = report.items.get()
    media = Media.objects.get(pk=stored.media_id)
    assert media.status != Media.Status.PENDING, "every accepted file is finished one way or the other"
    if item.mime:
        assert media.mime == item.mime
    task = ReviewTask.objects.get(report=report)  # in the queue whatever happened to the media
    case_page = moderator_client.get(f"/console/case/{task.pk}")
    assert case_page.status_code == 200
    case_text = visible_text(case_page.content.decode())
    status_page = Client().post("/status/", {"case_number": report.case_number, "pin": pin})
    assert status_page.status_code == 200
    assert report.case_number in status_page.content.decode()

    if media.status == Media.Status.UNPROCESSABLE:
        assert item.outcome in ("unprocessable", "either"), media.error
        assert stored.state == ReportedItem.State.UNPROCESSABLE
        assert media.error and stored.error == media.error
        assert not MediaHash.objects.filter(media=media).exists()  # no half-finished set of hashes
        assert f"Unprocessable: {media.error}" in case_text
        assert "We could not process this item" in status_page.content.decode()
        assert AuditEvent.objects.filter(action="media.unprocessable", object_id=str(media.pk)).exists()
    else:
        assert item.outcome in ("processed", "either"), item.outcome
        assert media.status == Media.Status.PROCESSED
        assert {h.algorithm for h in media.hashes.all()} >= {"pdq", "md5", "sha256"}
        assert "Unprocessable" not in case_text


@pytest.mark.django_db
@pytest.mark.parametrize("item", REFUSED, ids=[i.id for i in REFUSED])
def test_a_refused_hostile_upload_names_the_file_and_saves_nothing(item: HostileItem) -> None:
    with pytest.raises(IntakeError) as caught:
        submit_upload(item)
    assert list(caught.value.errors) == ["files"]
    message = caught.value.errors["files"][0]
    assert message.startswith("File 1: ") and "upload" in message.lower()  # says what to do instead
    assert not (Report.objects.exists() or Media.objects.exists() or ReportedItem.objects.exists()
                or AuditEvent.objects.exists())


# --- time limits ---------------------------------------------------------------------------------


def test_the_media_tasks_carry_their_own_soft_and_hard_time_limits() -> None:
    from moderation.celery import app

    for name in ("process_media", "score_media"):
        task = app.tasks[f"moderation.tasks.{name}"]
        assert task.soft_time_limit == settings.TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT
        assert task.time_limit == settings.TAKEDOWN_MEDIA_TASK_TIME_LIMIT
        assert task.time_limit > task.soft_time_limit  # time left to record why the task stopped


@pytest.mark.django_db
def test_a_file_that_runs_past_the_soft_time_limit_ends_unprocessable_and_its_case_is_still_queued(
        monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any) -> None:
    # In a worker, Celery's timer raises SoftTimeLimitExceeded inside the running task; eager tasks have no
    # timer, so the decoder raises it here at the same point.
    def spinning_decoder(data: bytes) -> Any:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(pipeline, "hash_bytes", spinning_decoder)
    with django_capture_on_commit_callbacks(execute=True):
        report, _pin = submit_upload(by_id("1x1-png"))

    media = report.items.get().media
    assert media is not None
    media.refresh_from_db()
    assert media.status == Media.Status.UNPROCESSABLE
    assert f"took longer than the {settings.TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT} s limit" in media.error
    assert report.items.get().state == ReportedItem.State.UNPROCESSABLE
    assert ReviewTask.objects.get(report=report).triaged_at is not None


# --- hostile content fetched from the platform ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("item", ITEMS, ids=[i.id for i in ITEMS])
def test_hostile_content_fetched_from_the_platform_is_processed_or_shown_unprocessable_with_the_reason(
        item: HostileItem, moderator_client: Client, django_capture_on_commit_callbacks: Any) -> None:
    DemoContentItem.objects.create(number=9001, title="hostile", mime=item.content_type,
                                   file=ContentFile(item.data, name="hostile.bin"))
    notice = Notice(**{**notice_payload(), "locations": ["demo://content/9001"]})  # type: ignore[arg-type]
    with django_capture_on_commit_callbacks(execute=True):
        report = report_submit(notice=notice).report

    stored = report.items.get()
    assert stored.state != ReportedItem.State.PENDING
    task = ReviewTask.objects.get(report=report)
    case_text = visible_text(moderator_client.get(f"/console/case/{task.pk}").content.decode())
    if item.outcome == "refused":  # the header check refuses it when fetched: no media row, the reason shown
        assert stored.state == ReportedItem.State.UNPROCESSABLE and stored.media_id is None
        assert stored.error and f"Unprocessable: {stored.error}" in case_text
        assert task.triaged_at is not None
        return
    media = Media.objects.get(pk=stored.media_id)
    if item.outcome == "processed":
        assert media.status == Media.Status.PROCESSED
    elif item.outcome == "unprocessable":
        assert media.status == Media.Status.UNPROCESSABLE
        assert stored.state == ReportedItem.State.UNPROCESSABLE
        assert f"Unprocessable: {media.error}" in case_text
