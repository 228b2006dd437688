"""The processing steps for reported media: resolve → hash → match → score.

Each step is idempotent: it looks at what is already stored and does only what is missing, so a
task that runs twice (a retry, a redelivery after a worker died) changes nothing the second time.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from detection.scoring import ScoringError, score_bytes
from detection.versions import active_model, active_probe, model_version_of, shadow_scores
from hashing.algorithms import hash_bytes
from hashing.errors import MediaError
from hashing.matching import match_hashes
from moderation.audit import SYSTEM, audit_record
from moderation.models import DetectionResult, Match, Media, MediaHash, Report, ReportedItem
from moderation.platforms import (
    ContentGone,
    ContentNotFound,
    ContentSource,
    ContentUnfetchable,
    FetchedMedia,
    PlatformError,
    PlatformRefused,
    get_content_source,
)
from moderation.selectors.embedding import nearest_confirmed
from moderation.services.embedding import media_embedding
from moderation.services.media import media_read, media_store_file
from moderation.services.video import is_video, video_hash_and_match

logger = logging.getLogger(__name__)


def report_resolve(report_id: int) -> list[int]:
    """Fetch every pending item of the report from the platform. Returns the ids of the report's media.

    Each item ends resolved (its media stored), "unprocessable" with the reason (nothing there, refused by the
    safe fetcher, not an image or video), or "platform unavailable" (the platform did not answer through the
    fetcher's retries; fetched again later by :func:`items_refetch_due`, or when a moderator asks).
    """
    source = get_content_source()
    pending = ReportedItem.objects.filter(report_id=report_id, state=ReportedItem.State.PENDING).exclude(location="")
    for item in pending:
        item_fetch(item, source)
    return sorted(set(
        ReportedItem.objects.filter(report_id=report_id).exclude(media=None).values_list("media_id", flat=True)
    ))


def item_fetch(item: ReportedItem, source: ContentSource) -> None:
    """Fetch one pending item and record what came of it (see :func:`report_resolve`)."""
    attempts = item.fetch_attempts + 1
    ReportedItem.objects.filter(pk=item.pk).update(fetch_attempts=attempts)
    try:
        fetched = source.fetch(item.location)
    except PlatformError as exc:
        _item_unavailable(item, attempts, str(exc))
        return
    except (ContentNotFound, ContentUnfetchable, PlatformRefused) as exc:
        _item_unprocessable(item, _reason(exc))
        return
    try:
        stored = [(one, media_store_file(path=one.path, origin=Media.Origin.PLATFORM,
                                         max_bytes=settings.TAKEDOWN_FETCH_MAX_BYTES)) for one in fetched]
    except (MediaError, OSError) as exc:
        _item_unprocessable(item, str(exc))
        return
    finally:
        for one in fetched:
            one.discard()
    _item_resolved(item, stored)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ContentGone):
        return f"the platform says this content has been removed ({exc})"
    if isinstance(exc, ContentNotFound):
        return f"the platform has no content at this location ({exc})"
    if isinstance(exc, PlatformRefused):
        return f"the platform refused to give it ({exc})"
    return str(exc)


def _item_resolved(item: ReportedItem, stored: list[tuple[FetchedMedia, Media]]) -> None:
    now = timezone.now()
    with transaction.atomic():
        first, media = stored[0]
        updated = ReportedItem.objects.filter(pk=item.pk, state=ReportedItem.State.PENDING).update(
            state=ReportedItem.State.RESOLVED, media=media, error="", next_fetch_at=None, fetched_at=now,
            location=first.location or item.location, **_facts(first))
        if not updated:
            return  # fetched twice at once: the other fetch recorded it
        for part, (one, more) in enumerate(stored[1:], start=1):  # a location with several media items
            ReportedItem.objects.get_or_create(
                report_id=item.report_id, location=one.location or item.location, part=part,
                defaults={"media": more, "state": ReportedItem.State.RESOLVED, "fetched_at": now, **_facts(one)})
        audit_record(actor=SYSTEM, action="item.resolved", object_type="item", object_id=item.pk,
                     data={"report": item.report_id, "media": [m.pk for _, m in stored],
                           "sources": [one.source_url for one, _ in stored][:10]})


def _facts(one: FetchedMedia) -> dict[str, Any]:
    return {"content_type": one.content_type[:100], "size_bytes": one.size, "uploader_ref": one.uploader[:200],
            "posted_at": one.posted_at}


def _item_unprocessable(item: ReportedItem, reason: str) -> None:
    with transaction.atomic():
        updated = ReportedItem.objects.filter(pk=item.pk, state=ReportedItem.State.PENDING).update(
            state=ReportedItem.State.UNPROCESSABLE, error=reason[:500], next_fetch_at=None)
        if updated:
            audit_record(actor=SYSTEM, action="item.unprocessable", object_type="item", object_id=item.pk,
                         data={"report": item.report_id, "error": reason[:500]})


def _item_unavailable(item: ReportedItem, attempts: int, error: str) -> None:
    """The platform stayed down through the fetcher's retries: fetch again later, waiting longer each time."""
    wait = min(settings.TAKEDOWN_REFETCH_FIRST_SECONDS * 2 ** max(0, attempts - 1),
               settings.TAKEDOWN_REFETCH_MAX_SECONDS)
    when = timezone.now() + timedelta(seconds=wait)
    with transaction.atomic():
        updated = ReportedItem.objects.filter(pk=item.pk, state=ReportedItem.State.PENDING).update(
            state=ReportedItem.State.UNAVAILABLE, error=error[:500], next_fetch_at=when)
        if updated:
            audit_record(actor=SYSTEM, action="item.unavailable", object_type="item", object_id=item.pk,
                         data={"report": item.report_id, "error": error[:300], "attempts": attempts,
                               "next_fetch_at": when.isoformat()})
    logger.warning("item %s: platform unavailable (attempt %d); next fetch in %d s", item.pk, attempts, wait)


def items_refetch_due(*, limit: int = 100) -> list[int]:
    """Put "platform unavailable" items whose next fetch is due back to pending. The ids of their reports,
    for the caller to process again."""
    due = list(ReportedItem.objects.filter(state=ReportedItem.State.UNAVAILABLE, next_fetch_at__lte=timezone.now())
               .order_by("next_fetch_at").values_list("pk", "report_id")[:limit])
    reports = set()
    for item_id, report_id in due:
        if ReportedItem.objects.filter(pk=item_id, state=ReportedItem.State.UNAVAILABLE).update(
                state=ReportedItem.State.PENDING):
            reports.add(report_id)
    return sorted(reports)


class RefetchRefused(Exception):
    """The item cannot be fetched again; the message says why."""


def item_refetch(*, item_id: int, actor: str) -> int:
    """A moderator asks for an unprocessable or unavailable item to be fetched again. Returns its report's id,
    for the caller to process again; ``RefetchRefused`` when fetching again cannot help."""
    with transaction.atomic():
        item = ReportedItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None:
            raise RefetchRefused("There is no such item.")
        if not item.location:
            raise RefetchRefused("This item is an uploaded file: there is nothing to fetch.")
        if item.state not in (ReportedItem.State.UNPROCESSABLE, ReportedItem.State.UNAVAILABLE):
            raise RefetchRefused(f"This item is {item.get_state_display().lower()}: only an unprocessable item or "
                                 "one whose platform was unavailable is fetched again.")
        if item.media_id is not None:
            raise RefetchRefused("The file was fetched but cannot be read; fetching it again gives the same file.")
        previous = item.error
        ReportedItem.objects.filter(pk=item.pk).update(state=ReportedItem.State.PENDING, error="", next_fetch_at=None)
        audit_record(actor=actor, action="item.refetch", object_type="item", object_id=item.pk,
                     data={"report": item.report_id, "previous_state": item.state, "previous_error": previous[:200]})
    return item.report_id


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
    probe = active_probe()  # likewise for the embedding probe
    existing = DetectionResult.objects.filter(media=media, model_version=model_version_of(active, probe)).first()
    if existing is not None:
        return existing
    try:
        data = media_read(media)
        # The embedding is computed once per sha256 (Media is one row per sha256) and reused by every version.
        vector = media_embedding(media=media, data=data)
        nearest = [n.as_detail() for n in nearest_confirmed(media_id=media_id, vector=vector)] if vector is not None \
            else []
        result = score_bytes(data, model=active, probe=probe, embedding=vector, nearest=nearest)
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
    # Shadow scores are stored beside the active score; triage and the case page skip them.
    for shadow in shadow_scores(data, embedding=vector):
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
