"""The scan API's logic: should an upload be allowed, reviewed or blocked?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from detection.scoring import ScoreResult, ScoringError, score_bytes
from hashing.algorithms import ImageHashes, hash_bytes
from hashing.matching import BankMatch, match_hashes
from moderation.services.audit import audit_record


@dataclass(frozen=True)
class ScanResult:
    verdict: str  # "allow" | "review" | "block"
    hashes: ImageHashes
    matches: list[BankMatch]
    score: ScoreResult | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "matches": [{"bank": m.bank_name, "algorithm": m.algorithm, "distance": m.distance,
                         "threshold": m.threshold, "blocks_uploads": m.blocks_uploads} for m in self.matches],
            "score": self.score.score if self.score else None,
            "signals": [s.as_dict() for s in self.score.signals] if self.score else [],
            "hashes": {"pdq": self.hashes.pdq, "md5": self.hashes.md5, "sha256": self.hashes.sha256},
        }


def scan_media(*, data: bytes, api_key_id: int | None) -> ScanResult:
    """Hash the upload, match it against the banks and score it. Nothing of the upload is stored.

    Raises ``hashing.errors.MediaError`` for input that is not a readable image.
    """
    hashes = hash_bytes(data)
    matches = match_hashes(hashes.values())
    try:
        score: ScoreResult | None = score_bytes(data)
    except ScoringError:
        score = None
    if any(m.blocks_uploads for m in matches):
        verdict = "block"
    elif matches or (score is not None and score.score >= settings.TAKEDOWN_SCAN_REVIEW_SCORE):
        verdict = "review"
    else:
        verdict = "allow"
    if verdict != "allow":
        audit_record(actor=f"api_key:{api_key_id}", action=f"scan.{verdict}", object_type="upload",
                     object_id=hashes.sha256[:16],
                     data={"matches": [m.entry_id for m in matches], "score": score.score if score else None})
    return ScanResult(verdict, hashes, matches, score)
