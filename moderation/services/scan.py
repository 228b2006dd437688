"""The scan API's logic: should an upload be allowed, reviewed or blocked?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from detection.scoring import ScoreResult, ScoringError, score_bytes
from hashing.algorithms import ImageHashes, hash_bytes
from hashing.matching import BankMatch, match_hashes
from hashing.video import VideoHashes, hash_video_bytes, looks_like_video
from hashing.video_banks import VideoBankMatch, match_video_frames
from moderation.services.audit import audit_record


@dataclass(frozen=True)
class ScanResult:
    verdict: str  # "allow" | "review" | "block"
    hashes: ImageHashes | VideoHashes
    matches: list[BankMatch]
    score: ScoreResult | None
    # A video's frames against known videos (vPDQ); shown in "matches" with algorithm "vpdq", the median
    # frame distance and the frame radius.
    video_matches: list[VideoBankMatch] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "matches": [{"bank": m.bank_name, "algorithm": m.algorithm, "distance": m.distance,
                         "threshold": m.threshold, "blocks_uploads": m.blocks_uploads} for m in self.matches]
            + [{"bank": v.bank_name, "algorithm": "vpdq", "distance": v.comparison.median_distance,
                "threshold": v.comparison.radius, "blocks_uploads": v.blocks_uploads} for v in self.video_matches],
            "score": self.score.score if self.score else None,
            "signals": [s.as_dict() for s in self.score.signals] if self.score else [],
            "hashes": ({"pdq": self.hashes.pdq} if isinstance(self.hashes, ImageHashes) else {})
            | {"md5": self.hashes.md5, "sha256": self.hashes.sha256},
        }


def scan_media(*, data: bytes, api_key_id: int | None) -> ScanResult:
    """Hash the upload, match it against the banks and score it. Nothing of the upload is stored.

    Raises ``hashing.errors.MediaError`` for input that is not a readable image or video. A video is
    matched by its exact hashes and by its frames (``hashing.video``); it is not scored yet.
    """
    hashes: ImageHashes | VideoHashes
    video_matches: list[VideoBankMatch] = []
    score: ScoreResult | None = None
    if looks_like_video(data):
        hashes = hash_video_bytes(data)
        video_matches = match_video_frames([(f.pdq, f.quality) for f in hashes.frames])
    else:
        hashes = hash_bytes(data)
        try:
            score = score_bytes(data)
        except ScoringError:
            score = None
    matches = match_hashes(hashes.values())
    if any(m.blocks_uploads for m in matches) or any(v.blocks_uploads for v in video_matches):
        verdict = "block"
    elif matches or video_matches or (score is not None and score.score >= settings.TAKEDOWN_SCAN_REVIEW_SCORE):
        verdict = "review"
    else:
        verdict = "allow"
    if verdict != "allow":
        audit_record(actor=f"api_key:{api_key_id}", action=f"scan.{verdict}", object_type="upload",
                     object_id=hashes.sha256[:16],
                     data={"matches": [m.entry_id for m in matches], "score": score.score if score else None,
                           "video_matches": [v.bank_video_id for v in video_matches]})
    return ScanResult(verdict, hashes, matches, score, video_matches)
