"""Known videos in hash banks: adding and withdrawing their frame signatures, and matching against them.

The exact MD5/SHA-256 of a known video are ordinary ``BankEntry`` rows (``hashing.banks``, matched by
``hashing.matching.match_hashes``); this module keeps the frame hashes that find re-encoded copies
and clips by the vPDQ rule in ``hashing.video``. Matching is a linear scan over the active videos of
enabled banks, vectorised in blocks of bounded memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from hashing.models import Bank, BankEntry, BankVideo, BankVideoFrame
from hashing.video import FRAME_MATCH_RADIUS, MIN_FRAME_QUALITY, VideoComparison, compare_to_many, usable_pdqs


@dataclass(frozen=True)
class VideoFrame:
    """One sampled frame to bank: ``(index, timestamp, pdq, quality)`` as ``hashing.video.FrameHash``."""

    index: int
    timestamp: float
    pdq: str
    quality: int


@dataclass(frozen=True)
class VideoBankMatch:
    """A known video in a bank that the query matches, with the comparison that says why."""

    bank_video_id: int
    bank_id: int
    bank_name: str
    blocks_uploads: bool
    source: str
    comparison: VideoComparison

    def as_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"bank_video_id": self.bank_video_id, "bank": self.bank_name, "blocks_uploads": self.blocks_uploads,
                "source": self.source, "query_matched": c.query_matched, "query_frames": c.query_frames,
                "stored_matched": c.stored_matched, "stored_frames": c.stored_frames,
                "median_distance": c.median_distance, "radius": c.radius}


def signature_digest(pdqs: Sequence[str]) -> str:
    """SHA-256 over the usable frame hashes in order: the same video's signature, whatever its file."""
    return hashlib.sha256("\n".join(p.lower() for p in pdqs).encode()).hexdigest()


@transaction.atomic
def bank_add_video(*, bank: Bank, frames: Sequence[VideoFrame], source: str, sha256: str = "",
                   duration_s: float | None = None) -> tuple[BankVideo | None, bool]:
    """Bank a video's usable frames (quality >= MIN_FRAME_QUALITY, repeats dropped).

    Returns ``(video, changed)``: the banked video (None when no frame is usable, so there is nothing
    that could match) and whether it was created or re-activated. Banking the same signature again
    changes nothing.
    """
    seen: set[str] = set()
    usable = []
    for frame in frames:
        pdq = frame.pdq.lower()
        if frame.quality >= MIN_FRAME_QUALITY and pdq not in seen:
            seen.add(pdq)
            usable.append(VideoFrame(frame.index, frame.timestamp, pdq, frame.quality))
    if not usable:
        return None, False
    digest = signature_digest([f.pdq for f in usable])
    video, created = BankVideo.objects.select_for_update().get_or_create(
        bank=bank, digest=digest,
        defaults={"sha256": sha256.lower(), "duration_s": duration_s, "frame_count": len(usable), "source": source})
    if created:
        BankVideoFrame.objects.bulk_create([
            BankVideoFrame(video=video, index=f.index, timestamp_s=f.timestamp, pdq=f.pdq, quality=f.quality)
            for f in usable])
        return video, True
    if video.status != BankEntry.Status.ACTIVE:
        video.status = BankEntry.Status.ACTIVE
        video.source = source
        video.save(update_fields=["status", "source", "updated_at"])
        return video, True
    return video, False


def bank_withdraw_video(*, video_id: int) -> bool:
    """Withdraw a banked video so it stops matching at once. True when it changed."""
    return bool(BankVideo.objects.filter(pk=video_id, status=BankEntry.Status.ACTIVE)
                .update(status=BankEntry.Status.WITHDRAWN))


def bank_withdraw_videos_by_source(*, source: str) -> list[int]:
    """Withdraw every active banked video that came from ``source`` (e.g. "case:TD-…"), in every bank.

    For a withdrawn case or an upheld appeal, beside withdrawing the case's ``BankEntry`` rows.
    Returns the ids of the videos that changed.
    """
    ids = list(BankVideo.objects.filter(source=source, status=BankEntry.Status.ACTIVE).values_list("pk", flat=True))
    BankVideo.objects.filter(pk__in=ids).update(status=BankEntry.Status.WITHDRAWN)
    return ids


def match_video_frames(frames: Sequence[tuple[str, int]], *,
                       radius: int = FRAME_MATCH_RADIUS) -> list[VideoBankMatch]:
    """Every active video of an enabled bank that ``(pdq, quality)`` frames match by the vPDQ rule.

    Low-quality and repeated frames are left out first (``hashing.video.usable_pdqs``). Ordered by
    the share of the query matched, largest first.
    """
    query = usable_pdqs(frames)
    if not query:
        return []
    videos = list(BankVideo.objects.filter(status=BankEntry.Status.ACTIVE, bank__enabled=True)
                  .values_list("id", "bank_id", "bank__name", "bank__blocks_uploads", "source").order_by("id"))
    if not videos:
        return []
    by_video: dict[int, list[str]] = {row[0]: [] for row in videos}
    rows = (BankVideoFrame.objects.filter(video__status=BankEntry.Status.ACTIVE, video__bank__enabled=True)
            .order_by("video_id", "index").values_list("video_id", "pdq"))
    for video_id, pdq in rows.iterator(chunk_size=5000):
        if video_id in by_video:  # skips a video banked between the two reads
            by_video[video_id].append(pdq)
    comparisons = compare_to_many(query, [by_video[row[0]] for row in videos], radius=radius)
    found = [VideoBankMatch(video_id, bank_id, bank_name, blocks, source, comparison)
             for (video_id, bank_id, bank_name, blocks, source), comparison in zip(videos, comparisons, strict=True)
             if comparison.is_match]
    found.sort(key=lambda m: (-m.comparison.query_share, -m.comparison.stored_share, m.bank_video_id))
    return found
