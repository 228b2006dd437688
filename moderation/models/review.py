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
        # Ozone's open / escalated / closed, with two sub-states: a claimed case is open with a lease,
        # and a case awaiting a second reviewer (four-eyes) is escalated with a proposed decision.
        OPEN = "open", "Open"
        CLAIMED = "claimed", "Claimed"
        ESCALATED = "escalated", "Escalated"
        AWAITING_SECOND = "awaiting_second", "Awaiting second review"
        DECIDED = "decided", "Closed"

    report = models.ForeignKey("moderation.Report", on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REPORT)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    priority = models.IntegerField(default=0)
    # [{"code": "deadline", "points": 40, "detail": "12 h left of 48 h"}, ...], largest first.
    priority_reasons = models.JSONField(default=list)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="claimed_tasks")
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The first claim ever (``claimed_at`` is cleared on release and moves on re-claim): the SLA figures'
    # "time to first claim" (moderation/selectors/sla.py).
    first_claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Routing (services/routing.py): the named queue the case sits in, set on creation and on re-triage.
    queue = models.ForeignKey("moderation.Queue", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="tasks")
    # A hold (services/holds.py): "next" skips the case until ``held_until``; the legal deadline runs on.
    held_until = models.DateTimeField(null=True, blank=True)
    hold_reason = models.CharField(max_length=500, blank=True)
    # Escalated to one named senior: only they draw it with "next" or claim it.
    escalated_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="escalations_to_me")
    triaged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "kind"], name="one_task_per_report_and_kind")]
        indexes = [
            models.Index(fields=["state", "-priority", "created_at"], name="task_queue_order"),
            # The default queue (every undecided case) in queue order: an index scan that stops at one page.
            models.Index(fields=["-priority", "created_at", "id"], condition=~models.Q(state="decided"),
                         name="task_undecided_order"),
        ]
        ordering = ["-priority", "created_at"]
        permissions = [
            ("view_queue", "Can see the review queue and cases"),
            ("decide_case", "Can decide cases"),
            ("view_case_media", "Can reveal reported media"),
            ("comment_case", "Can comment on cases"),
            ("escalate_case", "Can escalate cases to a senior moderator"),
            ("second_review", "Can decide escalated cases and confirm four-eyes decisions"),
            ("decide_appeal", "Can decide appeals"),
            ("override_automation", "Can propose overriding an automatic action"),
            ("view_audit", "Can read and export the audit log"),
            ("view_team_exposure", "Can see every moderator's exposure counts"),
            ("view_dashboard", "Can see the queue dashboard"),
            ("manage_banks", "Can manage hash banks"),
            ("manage_partners", "Can manage partner platforms"),
            ("manage_users", "Can manage console users and roles"),
            ("manage_settings", "Can manage settings and message templates"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.state})"


class Decision(models.Model):
    class Outcome(models.TextChoices):
        TAKEDOWN = "takedown", "Take down"
        NO_VIOLATION = "no_violation", "No violation"
        NEEDS_INFORMATION = "needs_information", "Ask the reporter for information"
        # Never an ordinary takedown: the case leaves ordinary handling for the child-safety procedure.
        CHILD_SAFETY = "child_safety", "Child-safety procedure"

    class Reason(models.TextChoices):
        NCII = "ncii", "Non-consensual intimate imagery"
        SYNTHETIC_NCII = "synthetic_ncii", "AI-generated or altered intimate imagery (digital forgery)"
        KNOWN_COPY = "known_copy", "Identical or substantially the same as removed content"
        NOT_INTIMATE = "not_intimate", "Not intimate image content"
        NOT_SUBJECT = "not_subject", "Reporter is not the subject or acting for them"
        NOT_FOUND = "not_found", "Content could not be found"
        NEEDS_INFORMATION = "needs_information", "Needs information from the reporter"
        POSSIBLE_MINOR = "possible_minor", "The person depicted may be a minor"
        OTHER = "other", "Other (explained in the note)"

    task = models.ForeignKey(ReviewTask, on_delete=models.PROTECT, related_name="decisions")
    report = models.ForeignKey("moderation.Report", on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    reason = models.CharField(max_length=30, choices=Reason.choices)
    note = models.TextField(blank=True)  # the rationale
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="decisions")
    automated = models.BooleanField(default=False)
    # Four-eyes: the second (senior) reviewer who confirmed it, when the decision needed one.
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="confirmed_decisions")
    overrides_automation = models.BooleanField(default=False)
    # Keys of the message templates chosen for the reporter and the uploader (services/message_templates.py).
    reporter_template = models.CharField(max_length=60, blank=True)
    uploader_template = models.CharField(max_length=60, blank=True)
    # A delayed takedown (services/delayed_takedowns.py): its removals and notices wait until ``effective_at``,
    # then a beat task sends them and sets ``released_at``. Null for a decision that took effect at once.
    effective_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    # Decisions made together (a bulk decision from the queue, a near-duplicate group, a case and the reports
    # that joined it) share a batch: their uploaders get one message each for the whole batch.
    batch = models.CharField(max_length=40, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # The beat's "which delayed takedowns are due": only the few still waiting are in the index.
        indexes = [models.Index(fields=["effective_at"], name="decision_delayed_waiting",
                                condition=models.Q(effective_at__isnull=False, released_at__isnull=True))]

    def __str__(self) -> str:
        return f"{self.outcome} ({self.reason})"


class Action(models.Model):
    """One change on the host platform that carries out a decision, retried until it is done."""

    class Kind(models.TextChoices):
        REMOVE = "remove", "Remove content"
        RESTORE = "restore", "Restore content"

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
    """An internal complaint against a decision (DSA Art. 20), by the uploader or by the reporter (notifier)."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        UPHELD = "upheld", "Decision upheld"
        REVERSED = "reversed", "Decision reversed"
        WITHDRAWN = "withdrawn", "Withdrawn with the case"

    class Appellant(models.TextChoices):
        # Art. 20 covers both sides: the uploader against a removal, the notifier against "no action".
        UPLOADER = "uploader", "Uploader"
        REPORTER = "reporter", "Reporter"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="appeals")
    appellant = models.CharField(max_length=20, choices=Appellant.choices, default=Appellant.UPLOADER)
    statement_of_reasons = models.ForeignKey("moderation.StatementOfReasons", on_delete=models.PROTECT, null=True,
                                             blank=True, related_name="appeals")
    appellant_email = models.EmailField()
    statement = models.TextField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="appeal_decisions")
    outcome_note = models.TextField(blank=True)
    # A reporter's appeal that is granted is carried out by a new takedown decision, recorded here.
    resulting_decision = models.ForeignKey(Decision, on_delete=models.PROTECT, null=True, blank=True,
                                           related_name="granted_appeals")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"appeal {self.pk} ({self.state})"


class StatementOfReasons(models.Model):
    """A DSA Art. 17 statement of reasons for one restricted item, as sent to the uploader.

    ``payload`` is the Art. 24(5) Transparency Database statement: no personal data, stable ``puid``.
    """

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="statements")
    item = models.ForeignKey("moderation.ReportedItem", on_delete=models.PROTECT, related_name="statements")
    puid = models.CharField(max_length=500, unique=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    uploader_notified_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    submit_error = models.CharField(max_length=500, blank=True)
    submit_refused_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="When the Transparency Database refused this statement (a dead letter: not resent "
                  "automatically; see submit_error for the reason).")

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "statements of reasons"

    def __str__(self) -> str:
        return self.puid


class WebhookDelivery(models.Model):
    """One signed webhook to the host platform. Dead deliveries form the list admins replay."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    action = models.ForeignKey(Action, on_delete=models.PROTECT, null=True, blank=True, related_name="deliveries")
    idempotency_key = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=50)
    url = models.CharField(max_length=2000)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.status}"
