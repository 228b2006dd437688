"""The built-in demo host platform's content."""

from __future__ import annotations

from django.db import models


class DemoContentItem(models.Model):
    """A piece of content on the demo host platform, addressed ``demo://content/<number>``."""

    class Status(models.TextChoices):
        LIVE = "live", "Live"
        REMOVED = "removed", "Removed"

    number = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to="demo/", max_length=300)
    mime = models.CharField(max_length=100)
    uploader = models.CharField(max_length=100, default="demo-user")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.LIVE)
    removed_at = models.DateTimeField(null=True, blank=True)
    removal_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.location

    @property
    def location(self) -> str:
        return f"demo://content/{self.number}"
