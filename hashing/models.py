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
        indexes = [models.Index(fields=["algorithm", "status"], name="bank_entry_algo_status")]
        verbose_name_plural = "bank entries"

    def __str__(self) -> str:
        return f"{self.bank.name}:{self.algorithm}:{self.value[:16]}…"
