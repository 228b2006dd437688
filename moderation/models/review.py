"""The review queue, decisions, their actions on the platform, and appeals."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ReviewTask(models.Model):
    """A case in the review queue. Claims are leases: an idle claim expires and the case returns."""

    class Kind(models.TextChoices):
        REPORT = "report", "Report"
        APPEAL = "appeal", "Appeal"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLAIMED = "claimed", "Claimed"
        DECIDED = "decided", "Decided"

    report = models.ForeignKey("moderation.Report", on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REPORT)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    priority = models.IntegerField(default=0)
    # [{"code": "deadline", "points": 40, "detail": "12 h left of 48 h"}, ...], largest first.
    priority_reasons = models.JSONField(default=list)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="claimed_tasks")
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    triaged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "kind"], name="one_task_per_report_and_kind")]
        indexes = [models.Index(fields=["state", "-priority", "created_at"], name="task_queue_order")]
        ordering = ["-priority", "created_at"]
        permissions = [
            ("view_queue", "Can see the review queue and cases"),
            ("decide_case", "Can decide cases"),
            ("view_case_media", "Can reveal reported media"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.state})"


class Decision(models.Model):
    class Outcome(models.TextChoices):
        TAKEDOWN = "takedown", "Take down"
        NO_VIOLATION = "no_violation", "No violation"

    class Reason(models.TextChoices):
        NCII = "ncii", "Non-consensual intimate imagery"
        SYNTHETIC_NCII = "synthetic_ncii", "AI-generated or altered intimate imagery (digital forgery)"
        KNOWN_COPY = "known_copy", "Identical or substantially the same as removed content"
        NOT_INTIMATE = "not_intimate", "Not intimate image content"
        NOT_SUBJECT = "not_subject", "Reporter is not the subject or acting for them"
        NOT_FOUND = "not_found", "Content could not be found"
        OTHER = "other", "Other (explained in the note)"

    task = models.ForeignKey(ReviewTask, on_delete=models.PROTECT, related_name="decisions")
    report = models.ForeignKey("moderation.Report", on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    reason = models.CharField(max_length=30, choices=Reason.choices)
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="decisions")
    automated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.outcome} ({self.reason})"


class Action(models.Model):
    """One change on the host platform that carries out a decision, retried until it is done."""

    class Kind(models.TextChoices):
        REMOVE = "remove", "Remove content"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="actions")
    item = models.ForeignKey("moderation.ReportedItem", on_delete=models.PROTECT, related_name="actions")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    enforcer = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"


class Appeal(models.Model):
    """An internal complaint against a decision (DSA Art. 20). Workflow arrives with the legal issue."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        UPHELD = "upheld", "Decision upheld"
        REVERSED = "reversed", "Decision reversed"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="appeals")
    appellant_email = models.EmailField()
    statement = models.TextField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="appeal_decisions")
    outcome_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"appeal {self.pk} ({self.state})"
