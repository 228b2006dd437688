"""What the firehose scanner found (``services/atproto_scan.py``, docs/platforms.md "Proactive scanning")."""

from __future__ import annotations

from django.db import models


class ScannerFinding(models.Model):
    """One image of a post on the platform that matched a bank, and the case opened for it.

    The unique ``(uri, blob_cid)`` is what makes scanning idempotent: an event processed again after a
    restart (the cursor is saved after the event, so a crash in between replays it) finds the row and opens
    no second case and no second takedown. ``policy`` is what the matched banks asked for: ``case`` (a case
    for moderators) or ``takedown`` (an automated takedown, the case reviewed afterwards when sampled).
    """

    class Policy(models.TextChoices):
        CASE = "case", "Case for moderators"
        TAKEDOWN = "takedown", "Automated takedown"

    uri = models.CharField(max_length=500)  # at://<did>/app.bsky.feed.post/<rkey>
    blob_cid = models.CharField(max_length=200)
    report = models.ForeignKey("moderation.Report", on_delete=models.PROTECT, related_name="scanner_findings")
    item = models.ForeignKey("moderation.ReportedItem", on_delete=models.PROTECT, related_name="scanner_findings")
    policy = models.CharField(max_length=20, choices=Policy.choices)
    banks = models.JSONField(default=list)  # names of the banks matched
    seq = models.BigIntegerField(null=True, blank=True)  # the firehose event that carried the post
    event_time = models.DateTimeField(null=True, blank=True)  # when the platform emitted that event
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["uri", "blob_cid"], name="scanner_finding_once_per_image")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.uri} {self.blob_cid[:16]}… ({self.policy})"
