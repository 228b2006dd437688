"""Hash exchange with partner platforms: per-partner policy, key scopes, feedback and sync remotes.

Partners and their API keys live in ``moderation`` (``Partner``, ``ApiKey``); this app adds what the
exchange needs beside them, without changing those tables.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from hashing.models import Bank, BankEntry
from moderation.models import ApiKey, Partner


class PartnerPolicy(models.Model):
    """What a partner may see and what its hashes do here."""

    class AutoAction(models.TextChoices):
        # Hashes from the partner put matching uploads in front of a reviewer (the scan API answers "review").
        QUEUE_FOR_REVIEW = "queue_for_review", "Queue for review"
        # Hashes from the partner block matching uploads (the scan API answers "block").
        BLOCK_ON_MATCH = "block_on_match", "Block on match"
        # Hashes from the partner are kept but never match.
        IGNORE = "ignore", "Ignore"

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="exchange_policy")
    auto_action = models.CharField(max_length=20, choices=AutoAction.choices, default=AutoAction.QUEUE_FOR_REVIEW)
    # Banks this partner may ever be given read access to; a key's read scope is cut down to these.
    allowed_banks = models.ManyToManyField(Bank, blank=True, related_name="+")
    # The partner's Ed25519 public keys (base64 of the 32 raw bytes) that its signed batches must verify
    # against: pinned here, never taken from the request. More than one while a partner rotates its key.
    public_keys = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "partner policies"

    def __str__(self) -> str:
        return f"policy of {self.partner.name}"


class KeyScope(models.Model):
    """What one partner API key may do: read these banks, write into one bank, send feedback."""

    api_key = models.OneToOneField(ApiKey, on_delete=models.CASCADE, related_name="exchange_scope")
    read_banks = models.ManyToManyField(Bank, blank=True, related_name="+")
    write_bank = models.ForeignKey(Bank, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    feedback = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"scope of {self.api_key}"


class SharedEntry(models.Model):
    """Exchange metadata of a bank entry: the partner it came from, its tags and the origin's case reference."""

    entry = models.OneToOneField(BankEntry, on_delete=models.CASCADE, related_name="exchange")
    partner = models.ForeignKey(Partner, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    # The opaque reference the origin gave (never a case number of ours or theirs).
    case_ref = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"exchange data of entry {self.entry_id}"


class HashFeedback(models.Model):
    """A verdict on a bank entry: from a partner (``partner`` set) or this instance's own (``partner`` null),
    which the sync client sends to the remote the entry came from."""

    class Verdict(models.TextChoices):
        BLOCKED = "blocked", "Blocked"
        NOT_BLOCKED = "not_blocked", "Not blocked"
        PENDING_REVIEW = "pending_review", "Pending review"

    entry = models.ForeignKey(BankEntry, on_delete=models.CASCADE, related_name="feedback")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="feedback")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entry", "partner"], name="hash_feedback_unique_partner"),
            models.UniqueConstraint(fields=["entry"], condition=Q(partner=None), name="hash_feedback_unique_own"),
        ]
        verbose_name_plural = "hash feedback"

    def __str__(self) -> str:
        who = self.partner.name if self.partner is not None else "us"
        return f"{who}: {self.verdict} on entry {self.entry_id}"


class Remote(models.Model):
    """Another Takedown instance this one pulls hashes from (``manage.py sync_partners``)."""

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="remote")
    base_url = models.URLField(help_text="e.g. https://takedown.partner.example (no /api/v1)")
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="+",
                             help_text="Local bank the remote's hashes are written to.")
    # The remote instance's Ed25519 public key (base64, 32 raw bytes): every page must verify against it.
    public_key = models.CharField(max_length=64)
    # The API key the remote issued to us. Stored here (database access = instance access); never logged,
    # never shown in the admin after it is set.
    api_key = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    page_size = models.PositiveIntegerField(default=1000)
    # Opaque cursor of the remote's feed after the last applied page; moves in the transaction that applies it.
    cursor = models.TextField(blank=True)
    # Our own feedback changed after this was pushed to the remote already.
    feedback_pushed_until = models.DateTimeField(null=True, blank=True)
    records_applied = models.BigIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"remote {self.partner.name}"
