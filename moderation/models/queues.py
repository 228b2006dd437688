"""Named review queues, the routing rules that put cases in them, and muted reporter addresses."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Queue(models.Model):
    """A named queue of cases (e.g. "NCII — adult"), worked by the roles and users it names.

    A queue that names no role and no user is open to everyone who may see the review queue.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    description = models.TextField(blank=True)
    # Role group names (moderation.roles: triage, moderator, senior_moderator, admin).
    roles = models.JSONField(default=list, blank=True)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="work_queues")
    # Lower first: the order the queues are listed and the order "next" prefers at equal case priority.
    position = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class RoutingRule(models.Model):
    """Route a case that meets every set condition to ``queue``; rules are tried in ``order``, first match wins.

    An empty or null condition matches anything, so a rule with none catches every case; a case no rule
    matches sits in no queue (any console role may work it).
    """

    class Kind(models.TextChoices):
        REPORT = "report", "Report"
        APPEAL = "appeal", "Appeal"

    order = models.PositiveIntegerField(default=100)
    name = models.CharField(max_length=100)
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="rules")
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, blank=True)
    source = models.CharField(max_length=30, blank=True)  # a Report.Source value
    # Prefix of one of the case's reason codes: its priority reasons (trusted_flagger, match, partner_blocked...)
    # or the reason type given in the platform's app (e.g. "reasonChildSafety" catches reasonChildSafetyCSAM).
    reason = models.CharField(max_length=100, blank=True)
    match_bank = models.ForeignKey("hashing.Bank", on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    match_bank_kind = models.CharField(max_length=20, blank=True)  # a hashing Bank.Kind value
    score_min = models.FloatField(null=True, blank=True)
    score_max = models.FloatField(null=True, blank=True)
    # Matched against the language recorded with the report (``Report.context["language"]``), when one is.
    language = models.CharField(max_length=20, blank=True)
    muted_reporter = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.order}: {self.name} → {self.queue_id}"


class ReporterMute(models.Model):
    """A reporter address a senior muted: its reports are still stored and acknowledged, but routed low.

    Only a keyed hash (HMAC with the secret key) of the lower-cased address is stored, never the address.
    """

    email_hash = models.CharField(max_length=64, unique=True)
    reason = models.TextField()
    muted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"mute {self.pk}"
