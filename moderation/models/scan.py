"""Scan tickets: the result of one ``POST /api/v1/scan``, whose detection score may come later."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from moderation.models.access import ApiKey


def new_scan_id() -> str:
    """An opaque, unguessable id for ``GET /api/v1/scan/<scan_id>`` (128 random bits)."""
    return secrets.token_urlsafe(16)


class ScanTicket(models.Model):
    """What a scan answered from the hashes, and the detection score once a worker has computed it.

    While ``status`` is pending, ``blob`` names the upload's bytes, encrypted in media storage; they are
    deleted as soon as the image is scored, and by ``scan_sweep`` if no worker scores it in time.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a detection worker"
        SCORED = "scored", "Scored"
        UNSCORED = "unscored", "Could not be scored"
        SKIPPED = "skipped", "Not scored: the hashes decided"

    scan_id = models.CharField(max_length=32, unique=True, default=new_scan_id)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="scan_tickets")
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The verdict from the hashes alone, and the current one (raised to "review" by a high score).
    hash_verdict = models.CharField(max_length=10)
    verdict = models.CharField(max_length=10)
    # The response's "matches" and "hashes", as answered.
    result = models.JSONField(default=dict)
    score = models.FloatField(null=True, blank=True)
    signals = models.JSONField(default=list)
    # Why the image was not scored (status unscored), in plain words.
    note = models.CharField(max_length=300, blank=True)
    blob = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"scan {self.scan_id} ({self.status})"
