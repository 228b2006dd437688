"""The scan API's logic: should an upload be allowed, reviewed or blocked?

``POST /api/v1/scan`` hashes the upload and matches it against the banks in the request, and answers at
once with the verdict of the hashes (:func:`scan_submit`). The synthetic-media score, which costs far
more CPU than hashing, is computed by a worker on the "detection" queue (:func:`scan_score`, task
``moderation.tasks.score_scan``); the platform reads it from ``GET /api/v1/scan/<scan_id>``. Until then
the upload's bytes wait encrypted in media storage under ``scan-pending/``; they are deleted as soon as
the image is scored, and by :func:`scan_sweep` if no worker scores it in time. ``detection="inline"``
scores in the request instead, for platforms that need the final verdict in one call.

A :class:`~moderation.models.ScanTicket` keeps what was answered (verdict, matches, hashes, score), never
the media, for ``TAKEDOWN_SCAN_RESULT_HOURS``. An exact copy (same SHA-256) of an upload already scored
reuses that score.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from detection.scoring import ScoringError, score_bytes
from hashing.algorithms import ImageHashes, hash_bytes
from hashing.matching import BankMatch, match_hashes
from hashing.video import VideoHashes, hash_video_bytes, looks_like_video
from hashing.video_banks import VideoBankMatch, match_video_frames
from moderation import jobs
from moderation.audit import SYSTEM, audit_record
from moderation.models import ScanTicket
from moderation.observability import events
from moderation.security.crypto import MediaDecryptError, decrypt_media, encrypt_media

logger = logging.getLogger(__name__)

DETECTION_ASYNC = "async"
DETECTION_INLINE = "inline"
DETECTION_MODES = (DETECTION_ASYNC, DETECTION_INLINE)
# Where an upload waits to be scored (media storage, encrypted like every stored file).
PENDING_DIR = "scan-pending"

NOTE_VIDEO = "Videos are matched by their hashes and frames; they are not scored."
NOTE_BLOCKED = "Not scored: the upload matches a blocking bank, so the verdict is final."
NOTE_EXPIRED = "No detection worker scored this upload in time; its copy has been deleted. Scan it again."


def _matches_dict(matches: list[BankMatch], video_matches: list[VideoBankMatch]) -> list[dict[str, Any]]:
    return ([{"bank": m.bank_name, "algorithm": m.algorithm, "distance": m.distance, "threshold": m.threshold,
              "blocks_uploads": m.blocks_uploads} for m in matches]
            + [{"bank": v.bank_name, "algorithm": "vpdq", "distance": v.comparison.median_distance,
                "threshold": v.comparison.radius, "blocks_uploads": v.blocks_uploads} for v in video_matches])


def _hashes_dict(hashes: ImageHashes | VideoHashes) -> dict[str, str]:
    return ({"pdq": hashes.pdq} if isinstance(hashes, ImageHashes) else {}) | {
        "md5": hashes.md5, "sha256": hashes.sha256}


@dataclass(frozen=True)
class _Hashed:
    hashes: ImageHashes | VideoHashes
    matches: list[BankMatch]
    video_matches: list[VideoBankMatch]

    @property
    def is_video(self) -> bool:
        return isinstance(self.hashes, VideoHashes)

    @property
    def verdict(self) -> str:
        """The verdict of the hashes alone: block on a blocking bank, review on any other match."""
        if any(m.blocks_uploads for m in self.matches) or any(v.blocks_uploads for v in self.video_matches):
            return "block"
        return "review" if self.matches or self.video_matches else "allow"


def _hash_and_match(data: bytes) -> _Hashed:
    """Raises ``hashing.errors.MediaError`` for input that is not a readable image or video."""
    if looks_like_video(data):
        video = hash_video_bytes(data)
        frames = match_video_frames([(f.pdq, f.quality) for f in video.frames])
        return _Hashed(video, match_hashes(video.values()), frames)
    image = hash_bytes(data)
    return _Hashed(image, match_hashes(image.values()), [])


def _with_score(verdict: str, score: float | None) -> str:
    if verdict == "allow" and score is not None and score >= settings.TAKEDOWN_SCAN_REVIEW_SCORE:
        return "review"
    return verdict


def _audit(*, actor: str, verdict: str, sha256: str, matches: list[int], score: float | None,
           video_matches: list[int], scan_id: str | None = None) -> None:
    data: dict[str, Any] = {"matches": matches, "score": score, "video_matches": video_matches}
    if scan_id is not None:
        data["scan_id"] = scan_id
    audit_record(actor=actor, action=f"scan.{verdict}", object_type="upload", object_id=sha256[:16], data=data)


def scan_submit(*, data: bytes, api_key_id: int, detection: str = DETECTION_ASYNC) -> ScanTicket:
    """Hash and match the upload now; score it on the detection queue (or here, with ``detection="inline"``).

    Returns the ticket as answered: ``pending`` with the verdict of the hashes, or already ``scored``
    (inline, or an exact copy of an upload scored before), ``skipped`` (a video, or a blocking match: the
    verdict is final) or ``unscored`` (inline scoring failed). Raises ``hashing.errors.MediaError`` for
    input that is not a readable image or video; then nothing is stored.
    """
    if detection not in DETECTION_MODES:
        raise ValueError(f"detection must be one of {', '.join(DETECTION_MODES)}; got {detection!r}")
    started = time.perf_counter()
    hashed = _hash_and_match(data)
    sha256 = hashed.hashes.sha256
    ticket = ScanTicket(api_key_id=api_key_id, sha256=sha256, hash_verdict=hashed.verdict,
                        verdict=hashed.verdict, result={"matches": _matches_dict(hashed.matches, hashed.video_matches),
                                                        "hashes": _hashes_dict(hashed.hashes)})
    if hashed.is_video or hashed.verdict == "block":
        ticket.status, ticket.note = ScanTicket.Status.SKIPPED, NOTE_VIDEO if hashed.is_video else NOTE_BLOCKED
    elif (twin := _scored_twin(sha256)) is not None:
        _set_scored(ticket, score=twin.score, signals=twin.signals)
    elif detection == DETECTION_INLINE:
        try:
            result = score_bytes(data)
        except ScoringError as exc:
            ticket.status, ticket.note, ticket.scored_at = ScanTicket.Status.UNSCORED, str(exc)[:300], timezone.now()
        else:
            _set_scored(ticket, score=result.score, signals=[s.as_dict() for s in result.signals])
    else:
        ticket.blob = default_storage.save(posixpath.join(PENDING_DIR, f"{ticket.scan_id}.bin"),
                                           ContentFile(encrypt_media(data)))
    try:
        if ticket.verdict == "allow":
            ticket.save()  # one INSERT, atomic by itself: no transaction to open and commit around it
        else:
            with transaction.atomic():
                ticket.save()
                _audit(actor=f"api_key:{api_key_id}", verdict=ticket.verdict, sha256=sha256,
                       matches=[m.entry_id for m in hashed.matches], score=ticket.score,
                       video_matches=[v.bank_video_id for v in hashed.video_matches], scan_id=ticket.scan_id)
    except BaseException:
        if ticket.blob:
            default_storage.delete(ticket.blob)
        raise
    if ticket.status == ScanTicket.Status.PENDING:
        ticket_id = ticket.pk
        transaction.on_commit(lambda: _enqueue_score(ticket_id))  # at once, unless a caller's transaction is open
    events.scan_answered(verdict=ticket.verdict, detection=detection, seconds=time.perf_counter() - started)
    return ticket


def _scored_twin(sha256: str) -> ScanTicket | None:
    """A scored ticket for the same bytes, whose score this upload can reuse.

    Plain SQL: it runs on every scan, and building the ORM query cost more than running it.
    """
    table = ScanTicket._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT score, signals FROM {table} WHERE sha256 = %s AND status = %s "  # noqa: S608
                       "AND score IS NOT NULL ORDER BY id DESC LIMIT 1", [sha256, ScanTicket.Status.SCORED])
        row = cursor.fetchone()
    if row is None:
        return None
    signals = json.loads(row[1]) if isinstance(row[1], str) else row[1]  # JSON text, as Django reads it
    return ScanTicket(sha256=sha256, status=ScanTicket.Status.SCORED, score=row[0], signals=signals)


def _set_scored(ticket: ScanTicket, *, score: float | None, signals: list[Any]) -> None:
    ticket.status, ticket.score, ticket.signals = ScanTicket.Status.SCORED, score, signals
    ticket.verdict = _with_score(ticket.hash_verdict, score)
    ticket.scored_at = timezone.now()


def _enqueue_score(ticket_id: int) -> None:
    """Send the scoring task. With the broker down the scan is still answered; the ticket stays pending
    and ``scan_sweep`` expires it (bytes deleted) after ``TAKEDOWN_SCAN_PENDING_SECONDS``."""
    jobs.scan_score(ticket_id)


def scan_score(ticket_id: int) -> None:
    """Score a pending scan, record the result and delete its bytes. Idempotent: a ticket no longer
    pending is left as it is. A verdict raised to "review" by the score is audited."""
    ticket = ScanTicket.objects.filter(pk=ticket_id, status=ScanTicket.Status.PENDING).first()
    if ticket is None:
        return
    twin = _scored_twin(ticket.sha256)
    if twin is not None:
        _set_scored(ticket, score=twin.score, signals=twin.signals)
    else:
        try:
            with default_storage.open(ticket.blob, "rb") as handle:
                data = decrypt_media(handle.read())
        except FileNotFoundError:
            scan_unscored(ticket_id, note=NOTE_EXPIRED)
            return
        except MediaDecryptError:  # its key was dropped from TAKEDOWN_MEDIA_KEYS while it waited
            scan_unscored(ticket_id, note="This upload's stored copy can no longer be read. Scan it again.")
            return
        try:
            result = score_bytes(data)
        except ScoringError as exc:
            scan_unscored(ticket_id, note=str(exc))
            return
        _set_scored(ticket, score=result.score, signals=[s.as_dict() for s in result.signals])
    with transaction.atomic():
        updated = ScanTicket.objects.filter(pk=ticket_id, status=ScanTicket.Status.PENDING).update(
            status=ticket.status, score=ticket.score, signals=ticket.signals, verdict=ticket.verdict,
            scored_at=ticket.scored_at, blob="")
        if updated and ticket.verdict != ticket.hash_verdict:
            _audit(actor=f"api_key:{ticket.api_key_id}", verdict=ticket.verdict, sha256=ticket.sha256,
                   matches=[], score=ticket.score, video_matches=[], scan_id=ticket.scan_id)
    _delete_blob(ticket.blob)


def scan_unscored(ticket_id: int, *, note: str) -> None:
    """Close a pending scan without a score (unreadable for the scorer, out of time) and delete its bytes."""
    blob = ScanTicket.objects.filter(pk=ticket_id).values_list("blob", flat=True).first()
    ScanTicket.objects.filter(pk=ticket_id, status=ScanTicket.Status.PENDING).update(
        status=ScanTicket.Status.UNSCORED, note=note[:300], scored_at=timezone.now(), blob="")
    _delete_blob(blob or "")


def _delete_blob(name: str) -> None:
    if name:
        default_storage.delete(name)


def scan_ticket_for_key(*, scan_id: str, api_key_id: int) -> ScanTicket | None:
    """The scan ``scan_id`` made with this key; None for an unknown id or another key's scan."""
    return ScanTicket.objects.filter(scan_id=scan_id, api_key_id=api_key_id).first()


def scan_as_dict(ticket: ScanTicket) -> dict[str, Any]:
    """The API's answer for a scan, on submission and from ``GET /api/v1/scan/<scan_id>``."""
    return {
        "verdict": ticket.verdict,
        "matches": ticket.result.get("matches", []),
        "score": ticket.score,
        "signals": ticket.signals,
        "hashes": ticket.result.get("hashes", {}),
        "detection": {"status": ticket.status, "scan_id": ticket.scan_id, "note": ticket.note},
    }


@dataclass
class ScanSweep:
    expired: int = 0
    deleted: int = 0
    orphans: int = 0


def scan_sweep(*, now: datetime | None = None) -> ScanSweep:
    """Expire scans no worker scored within ``TAKEDOWN_SCAN_PENDING_SECONDS`` (bytes deleted), delete scan
    results older than ``TAKEDOWN_SCAN_RESULT_HOURS``, and delete any waiting file no pending scan names.
    ``now`` allows time travel."""
    now = now or timezone.now()
    result = ScanSweep()
    pending_cutoff = now - timedelta(seconds=settings.TAKEDOWN_SCAN_PENDING_SECONDS)
    late = ScanTicket.objects.filter(status=ScanTicket.Status.PENDING, created_at__lte=pending_cutoff)
    for ticket_id in list(late.values_list("id", flat=True)):
        scan_unscored(ticket_id, note=NOTE_EXPIRED)
        result.expired += 1
    result.deleted, _ = ScanTicket.objects.filter(
        created_at__lte=now - timedelta(hours=settings.TAKEDOWN_SCAN_RESULT_HOURS)).delete()
    if default_storage.exists(PENDING_DIR):
        waiting = set(ScanTicket.objects.filter(status=ScanTicket.Status.PENDING).exclude(blob="")
                      .values_list("blob", flat=True))
        for name in default_storage.listdir(PENDING_DIR)[1]:
            path = posixpath.join(PENDING_DIR, name)
            if path not in waiting and default_storage.get_modified_time(path) <= pending_cutoff:
                default_storage.delete(path)
                result.orphans += 1
    if result.expired or result.deleted or result.orphans:
        audit_record(actor=SYSTEM, action="scan.swept", object_type="scan", object_id="",
                     data={"expired": result.expired, "deleted": result.deleted, "orphan_files": result.orphans})
    return result
