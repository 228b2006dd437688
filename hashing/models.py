"""Hash banks: named sets of hashes of known items that media is matched against."""

from __future__ import annotations

from django.db import models


class Bank(models.Model):
    """A named collection of hashes, e.g. confirmed takedowns or a partner's shared bank."""

    class Kind(models.TextChoices):
        LOCAL = "local", "Local"
        PARTNER = "partner", "From a partner"
        DEMO = "demo", "Demo"

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LOCAL)
    enabled = models.BooleanField(default=True)
    # A match against a bank that blocks makes the scan API answer "block"; others answer "review".
    blocks_uploads = models.BooleanField(default=True)
    # Per-algorithm match distance for this bank, e.g. {"pdq": 24}; an algorithm not named here uses its
    # default (hashing.algorithms). The matcher searches at the widest threshold and filters per bank.
    thresholds = models.JSONField(default=dict, blank=True)
    # The share of HMA-compatible lookups this bank takes part in (HMA's ``matching_enabled_ratio``, 0.0 to 1.0:
    # each lookup draws one number and the banks whose ratio reaches it take part). Only the HMA-compatible
    # routes read it (moderation/hma, docs/hma.md); the scan API and case matching ignore it.
    enabled_ratio = models.FloatField(default=1.0)

    class OnStreamMatch(models.TextChoices):
        CASE = "case", "Open a case for moderators"
        TAKEDOWN = "takedown", "Take down at once (automated; sampled for review)"

    # What proactive scanning (the AT Protocol firehose scanner, docs/platforms.md "Proactive scanning") does
    # when a new post matches this bank: open a case, or, for a bank of confirmed NCII only, take the post down
    # with no human step (an automated decision, audited, a share sampled for human review afterwards).
    on_stream_match = models.CharField(max_length=20, choices=OnStreamMatch.choices, default=OnStreamMatch.CASE)
    # Set when the bank was deleted through the HMA-compatible API: its entries are deleted (tombstones for
    # partners' feeds; cases keep their matches as evidence), the bank is disabled, and HMA's routes no longer
    # show it. Creating it again there brings the same bank back, empty.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BankEntry(models.Model):
    """One hash in a bank. Withdrawn and deleted entries never match."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        WITHDRAWN = "withdrawn", "Withdrawn"
        DELETED = "deleted", "Deleted"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="entries")
    algorithm = models.CharField(max_length=20)
    value = models.CharField(max_length=128)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    # Where the entry came from: "case:TD-…", "seed_demo", "import:<file>", "partner:<name>".
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "algorithm", "value"], name="bank_entry_unique_value"),
        ]
        indexes = [models.Index(fields=["algorithm", "status"], name="bank_entry_algo_status"),
                   models.Index(fields=["algorithm", "value"], name="bank_entry_algo_value")]
        verbose_name_plural = "bank entries"

    def __str__(self) -> str:
        return f"{self.bank.name}:{self.algorithm}:{self.value[:16]}…"


class BankVideo(models.Model):
    """A known video in a bank, as the PDQ hashes of its frames (vPDQ); see ``hashing.video``.

    Its exact MD5/SHA-256 live as ordinary ``BankEntry`` rows beside it; this holds what matches
    re-encoded copies and clips. Withdrawn and deleted videos never match.
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="videos")
    # SHA-256 of the usable frame hashes in order: identifies the same signature within a bank.
    digest = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64, blank=True)  # of the file, when it is known
    duration_s = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=BankEntry.Status.choices, default=BankEntry.Status.ACTIVE,
                              db_index=True)
    source = models.CharField(max_length=200, blank=True)  # as BankEntry.source
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bank", "digest"], name="bank_video_unique_digest")]

    def __str__(self) -> str:
        return f"{self.bank.name}:video:{self.digest[:16]}…"


class BankVideoFrame(models.Model):
    """One usable frame of a known video: its place in the sample, time, PDQ hash and quality."""

    video = models.ForeignKey(BankVideo, on_delete=models.CASCADE, related_name="frames")
    index = models.PositiveIntegerField()
    timestamp_s = models.FloatField()
    pdq = models.CharField(max_length=64)
    quality = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["video", "index"], name="bank_video_frame_unique_index")]
        ordering = ["video", "index"]

    def __str__(self) -> str:
        return f"frame {self.index} at {self.timestamp_s:.1f} s"


class BankChange(models.Model):
    """One row per change to a bank entry, in commit-ish order: what matcher processes replay.

    Matchers keep the highest id they applied (their checkpoint) and read only rows above it. Ids are
    handed out before commit, so a slow transaction can leave a gap below rows already seen; the
    matcher re-reads open gaps until they fill or are older than any transaction (hashing.matcher).
    """

    # A plain id, not a foreign key: the change must outlive the entry's row.
    entry_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"change {self.pk} of entry {self.entry_id}"
