"""What Takedown keeps about the AT Protocol services it works with (docs/platforms.md, "AT Protocol")."""

from __future__ import annotations

from django.db import models


class StreamCursor(models.Model):
    """Where a long-running reader of another service's stream has got to, so that it resumes there after a
    restart: the firehose scanner's last fully processed ``seq`` (``name="firehose:<host>"``), the Ozone
    report puller's last report event id (``name="ozone-reports:<did>"``)."""

    name = models.CharField(max_length=200, unique=True)
    value = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class OzoneReport(models.Model):
    """A report filed inside the platform (``com.atproto.moderation.createReport``) that became a Takedown case.

    ``event_id`` is Ozone's moderation event id of the report, so pulling it twice opens one case. Several
    in-app reports about the same post join the one open case for it. ``resolved_at`` is set once the
    decision was sent back to Ozone (an acknowledge or takedown event that closes the report there).
    """

    event_id = models.BigIntegerField(unique=True)
    report = models.ForeignKey("moderation.Report", on_delete=models.PROTECT, related_name="ozone_reports")
    subject_uri = models.CharField(max_length=500)
    subject_cid = models.CharField(max_length=200, blank=True)
    reason_type = models.CharField(max_length=200)
    reported_by = models.CharField(max_length=200)  # the reporter's DID: the platform's id, not a person's name
    reported_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_id"]

    def __str__(self) -> str:
        return f"ozone report event {self.event_id}"
