"""Who may call the API: partner organisations and the API keys of platforms, partners and notice senders."""

from __future__ import annotations

from django.db import models


class Partner(models.Model):
    """A partner platform that exchanges hashes (the exchange app holds its policy, keys and feedback)."""

    class Trust(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    name = models.CharField(max_length=100, unique=True)
    organisation = models.CharField(max_length=200)
    contact_email = models.EmailField(blank=True)
    trust_level = models.CharField(max_length=10, choices=Trust.choices, default=Trust.LOW)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A key for the host platform or a partner. Only its SHA-256 is stored; the key is shown once."""

    class Kind(models.TextChoices):
        PLATFORM = "platform", "Host platform"
        PARTNER = "partner", "Partner"
        # A trusted flagger (DSA Art. 22) or a regulator (eSafety) filing notices through /api/v1/notices.
        FLAGGER = "flagger", "Notice sender (trusted flagger, regulator)"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # For a flagger key: the report source its notices are filed as (Report.Source, e.g. "trusted_flagger").
    source = models.CharField(max_length=30, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys")
    # A platform key that may also change banks through the HMA-compatible curation routes (/c/...); without
    # it a platform key may hash and match only (docs/hma.md).
    curation = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_authenticated(self) -> bool:  # lets DRF treat a key as an authenticated principal
        return True
