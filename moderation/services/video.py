"""Video media: hashing and matching it in the pipeline, and banking it when it is taken down.

A video's MD5/SHA-256 are stored as ``MediaHash`` rows and matched exactly like an image's (``Match``
rows); its sampled frames are ``VideoFrameHash`` rows, matched against known videos in the banks by
the vPDQ rule of ``hashing.video`` (``VideoMatch`` rows). Like the image path, each step is
idempotent.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from hashing.matching import match_hashes
from hashing.models import Bank, BankVideo
from hashing.video import hash_video_bytes
from hashing.video_banks import VideoFrame, bank_add_video, match_video_frames
from moderation.audit import SYSTEM, audit_record
from moderation.models import Match, Media, MediaHash, Report, VideoFrameHash, VideoMatch
from moderation.services.media import media_read


def is_video(media: Media) -> bool:
    return media.mime.startswith("video/")


def video_hash_and_match(media: Media) -> Media:
    """Hash a pending video's file and frames and record its bank matches (once).

    Raises ``hashing.errors.MediaError``, having written nothing, when the file cannot be decoded;
    the pipeline then marks the media unprocessable with the reason, as for images.
    """
    media_id = media.pk
    hashes = hash_video_bytes(media_read(media))
    exact = match_hashes(hashes.values())
    similar = match_video_frames([(f.pdq, f.quality) for f in hashes.frames])
    with transaction.atomic():
        locked = Media.objects.select_for_update().get(pk=media_id)
        if locked.status != Media.Status.PENDING:
            return locked
        rows = {}
        for algorithm, value in hashes.values():
            rows[algorithm], _ = MediaHash.objects.get_or_create(
                media=locked, algorithm=algorithm, defaults={"value": value})
        for m in exact:
            Match.objects.get_or_create(
                media_hash=rows[m.algorithm], bank_entry_id=m.entry_id,
                defaults={"media": locked, "algorithm": m.algorithm, "distance": m.distance,
                          "threshold": m.threshold})
        VideoFrameHash.objects.bulk_create([
            VideoFrameHash(media=locked, index=f.index, timestamp_s=f.timestamp, pdq=f.pdq, quality=f.quality)
            for f in hashes.frames])
        for v in similar:
            c = v.comparison
            VideoMatch.objects.get_or_create(
                media=locked, bank_video_id=v.bank_video_id,
                defaults={"query_frames": c.query_frames, "query_matched": c.query_matched,
                          "stored_frames": c.stored_frames, "stored_matched": c.stored_matched,
                          "median_distance": c.median_distance or 0, "radius": c.radius})
        locked.status = Media.Status.PROCESSED
        locked.processed_at = timezone.now()
        locked.save(update_fields=["status", "processed_at"])
        usable = len(hashes.usable())
        audit_record(actor=SYSTEM, action="media.hashed", object_type="media", object_id=media_id,
                     data={"algorithms": sorted(rows), "video_frames": len(hashes.frames), "usable_frames": usable,
                           "matches": [{"entry": m.entry_id, "bank": m.bank_name, "algorithm": m.algorithm,
                                        "distance": m.distance} for m in exact],
                           "video_matches": [{"bank_video": v.bank_video_id, "bank": v.bank_name,
                                              "query_matched": v.comparison.query_matched,
                                              "query_frames": v.comparison.query_frames,
                                              "stored_matched": v.comparison.stored_matched,
                                              "stored_frames": v.comparison.stored_frames} for v in similar]})
    return locked


def report_videos_to_bank(*, report: Report, bank: Bank, source: str) -> list[BankVideo]:
    """Bank the frame signatures of the report's hashed videos. Returns those created or re-activated."""
    changed = []
    media_ids = Media.objects.filter(reported_items__report=report, mime__startswith="video/").values_list(
        "id", flat=True).distinct()
    for media_id in media_ids:
        frames = [VideoFrame(index=f.index, timestamp=f.timestamp_s, pdq=f.pdq, quality=f.quality)
                  for f in VideoFrameHash.objects.filter(media_id=media_id).order_by("index")]
        sha256 = Media.objects.filter(pk=media_id).values_list("sha256", flat=True).first() or ""
        duration = frames[-1].timestamp if frames else None
        video, was_changed = bank_add_video(bank=bank, frames=frames, source=source, sha256=sha256,
                                            duration_s=duration)
        if video is not None and was_changed:
            changed.append(video)
    return changed
