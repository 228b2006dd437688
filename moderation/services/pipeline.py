"""The processing steps for reported media: resolve → hash → match → score.

Each step is idempotent: it looks at what is already stored and does only what is missing, so a
task that runs twice (a retry, a redelivery after a worker died) changes nothing the second time.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from detection.scoring import ScoringError, score_bytes
from detection.versions import active_model, model_version_of, shadow_scores
from hashing.algorithms import hash_bytes
from hashing.errors import MediaError
from hashing.matching import match_hashes
from moderation.audit import SYSTEM, audit_record
from moderation.models import DetectionResult, Match, Media, MediaHash, Report, ReportedItem
from moderation.platforms import ContentNotFound, get_content_source
from moderation.services.media import media_read, media_store
from moderation.services.video import is_video, video_hash_and_match

logger = logging.getLogger(__name__)


def report_resolve(report_id: int) -> list[int]:
    """Fetch every pending item of the report from the platform. Returns the ids of its media.

    ``PlatformError`` (a platform that is down) propagates so the task retries; an item that does
    not exist or is not an image becomes "unprocessable" with the reason, for moderators to see.
    """
    source = get_content_source()
    pending = ReportedItem.objects.filter(report_id=report_id, state=ReportedItem.State.PENDING).exclude(location="")
    for item in pending:
        try:
            data = source.fetch(item.location)
            media = media_store(data=data, origin=Media.Origin.PLATFORM)
        except (ContentNotFound, MediaError) as exc:
            with transaction.atomic():
                updated = ReportedItem.objects.filter(pk=item.pk, state=ReportedItem.State.PENDING).update(
                    state=ReportedItem.State.UNPROCESSABLE, error=str(exc)[:500])
                if updated:
                    audit_record(actor=SYSTEM, action="item.unprocessable", object_type="item",
                                 object_id=item.pk, data={"report": report_id, "error": str(exc)[:500]})
            continue
        with transaction.atomic():
            updated = ReportedItem.objects.filter(pk=item.pk, state=ReportedItem.State.PENDING).update(
                state=ReportedItem.State.RESOLVED, media=media)
            if updated:
                audit_record(actor=SYSTEM, action="item.resolved", object_type="item", object_id=item.pk,
                             data={"report": report_id, "media": media.pk})
    return sorted(set(
        ReportedItem.objects.filter(report_id=report_id).exclude(media=None).values_list("media_id", flat=True)
    ))


def media_hash_and_match(media_id: int) -> Media:
    """Compute the media's hashes and record its bank matches (once)."""
    media = Media.objects.get(pk=media_id)
    if media.status != Media.Status.PENDING:
        return media
    try:
        if is_video(media):  # file hashes + frame PDQs, matched by the vPDQ rule
            return video_hash_and_match(media)
        hashes = hash_bytes(media_read(media))
    except MediaError as exc:
        _mark_unprocessable(media, str(exc))
        return media
    found = match_hashes(hashes.values())
    with transaction.atomic():
        locked = Media.objects.select_for_update().get(pk=media_id)
        if locked.status != Media.Status.PENDING:
            return locked
        rows = {}
        for algorithm, value in hashes.values():
            quality = hashes.pdq_quality if algorithm == "pdq" else None
            rows[algorithm], _ = MediaHash.objects.get_or_create(
                media=locked, algorithm=algorithm, defaults={"value": value, "quality": quality})
        for m in found:
            Match.objects.get_or_create(
                media_hash=rows[m.algorithm], bank_entry_id=m.entry_id,
                defaults={"media": locked, "algorithm": m.algorithm, "distance": m.distance,
                          "threshold": m.threshold})
        locked.status = Media.Status.PROCESSED
        locked.processed_at = timezone.now()
        locked.save(update_fields=["status", "processed_at"])
        audit_record(actor=SYSTEM, action="media.hashed", object_type="media", object_id=media_id,
                     data={"algorithms": sorted(rows), "pdq_quality": hashes.pdq_quality,
                           "matches": [{"entry": m.entry_id, "bank": m.bank_name, "algorithm": m.algorithm,
                                        "distance": m.distance} for m in found]})
    return locked


def media_score(media_id: int) -> DetectionResult | None:
    """Score the media for signs of synthesis (once per model version)."""
    media = Media.objects.get(pk=media_id)
    if media.status == Media.Status.UNPROCESSABLE or is_video(media):  # no video signals yet
        return None
    active = active_model()  # a promoted version, or None for the shipped weights
    existing = DetectionResult.objects.filter(media=media, model_version=model_version_of(active)).first()
    if existing is not None:
        return existing
    try:
        data = media_read(media)
        result = score_bytes(data, model=active)
    except ScoringError as exc:
        _mark_unprocessable(media, str(exc))
        return None
    with transaction.atomic():
        detection, created = DetectionResult.objects.get_or_create(
            media=media, model_version=result.model_version,
            defaults={"score": result.score, "signals": [s.as_dict() for s in result.signals],
                      "summary": result.summary()[:500]})
        if created:
            audit_record(actor=SYSTEM, action="media.scored", object_type="media", object_id=media_id,
                         data={"score": result.score, "model_version": result.model_version})
    for shadow in shadow_scores(data):  # stored beside the active score; triage and the case page skip them
        DetectionResult.objects.get_or_create(
            media=media, model_version=shadow.model_version,
            defaults={"score": shadow.score, "signals": [s.as_dict() for s in shadow.signals],
                      "summary": shadow.summary()[:500]})
    return detection


def media_out_of_time(media_id: int, *, seconds: int) -> None:
    """Hashing the media hit its task's time limit: mark it "unprocessable" with the reason, once.

    Retrying would only hit the limit again (a file built to make a decoder spin), so the item goes to
    the moderators as it is, like any other file that cannot be read.
    """
    _stopped(media_id, f"Processing this file took longer than the {seconds} s limit, so it was stopped. The "
                       "file may be damaged or made to overload image decoders")


def media_out_of_memory(media_id: int, *, megabytes: int) -> None:
    """Hashing the media needed more memory than a worker may use (``TAKEDOWN_TASK_MEMORY_MB``): mark it
    "unprocessable" with the reason, once. Retrying would fail the same way."""
    _stopped(media_id, f"Decoding this file needed more than the {megabytes} MB a worker may use, so it was "
                       "stopped. The file may be made to exhaust memory")


def _stopped(media_id: int, why: str) -> None:
    media = Media.objects.get(pk=media_id)
    if media.status == Media.Status.PENDING:
        _mark_unprocessable(media, f"{why}: review the reported link directly, or ask the reporter for a "
                                   "screenshot.")


def reports_for_media(media_id: int) -> list[int]:
    return sorted(set(Report.objects.filter(items__media_id=media_id).values_list("id", flat=True)))


def _mark_unprocessable(media: Media, message: str) -> None:
    with transaction.atomic():
        updated = Media.objects.filter(pk=media.pk).exclude(status=Media.Status.UNPROCESSABLE).update(
            status=Media.Status.UNPROCESSABLE, error=message[:500], processed_at=timezone.now())
        if updated:
            ReportedItem.objects.filter(media=media).exclude(state=ReportedItem.State.REMOVED).update(
                state=ReportedItem.State.UNPROCESSABLE, error=message[:500])
            audit_record(actor=SYSTEM, action="media.unprocessable", object_type="media", object_id=media.pk,
                         data={"error": message[:500]})
    media.refresh_from_db()
    logger.info("media %s is unprocessable", media.pk)
