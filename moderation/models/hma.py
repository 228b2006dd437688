"""What HMA keeps about a banked content that a bank entry does not (docs/hma.md, "Contents").

An HMA content is one of our bank entries: its id is the ``BankEntry`` id. HMA also keeps a note, the
caller's metadata and a "disabled until" time; those live here, one row per entry that was banked or
changed through the HMA-compatible routes. Whether the entry matches is still its ``status`` alone.
"""

from __future__ import annotations

from django.db import models

# HMA's magic values of ``disable_until_ts``; any other value is a Unix time in seconds.
DISABLED = 0
ENABLED = 1


class HmaContent(models.Model):
    entry = models.OneToOneField("hashing.BankEntry", on_delete=models.CASCADE, primary_key=True,
                                 related_name="hma")
    note = models.CharField(max_length=255, blank=True)
    # HMA's user metadata: ``content_id``, ``content_uri`` and ``json``, as the caller sent them.
    metadata = models.JSONField(null=True, blank=True)
    # 0: disabled; 1: enabled; a Unix time: disabled until then (re-enabled by moderation.tasks.hma_reenable).
    disable_until_ts = models.BigIntegerField(default=ENABLED, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "HMA content"

    def __str__(self) -> str:
        return f"HMA content {self.pk}"
