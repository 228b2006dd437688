"""Reports (legal notices) and the items they name."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Report(models.Model):
    """A removal request: the notice elements of TAKE IT DOWN, OSA s.20A and DSA Art. 16 (LEGAL.md)."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        NEEDS_INFORMATION = "needs_information", "Needs information"
        IN_REVIEW = "in_review", "In review"
        ACTIONING = "actioning", "Removal in progress"
        REMOVED = "removed", "Content removed"
        NO_VIOLATION = "no_violation", "Closed without removal"
        WITHDRAWN = "withdrawn", "Withdrawn"
        RESTORED = "restored", "Restored after an appeal"

    class Relationship(models.TextChoices):
        SELF = "self", "I am the person depicted"
        REPRESENTATIVE = "representative", "I am authorised to act for the person depicted"

    class Source(models.TextChoices):
        WEB = "web", "Web form"
        API = "api", "API"
        TRUSTED_FLAGGER = "trusted_flagger", "Trusted flagger"
        ESAFETY = "esafety", "eSafety removal notice"
        # A report a user filed inside the platform's own app (an AT Protocol moderation report pulled from
        # Ozone, services/atproto_reports.py): the reporter is the platform's account, with no email.
        PLATFORM = "platform", "Reported in the platform's app"
        # Found by proactive scanning (the AT Protocol firehose scanner): no reporter at all.
        SCANNER = "scanner", "Found by proactive scanning"

    case_number = models.CharField(max_length=20, unique=True)
    pin_hash = models.CharField(max_length=200)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    source = models.CharField(max_length=30, choices=Source.choices, default=Source.WEB)
    # Notice elements. Contact details are personal data: never logged, never exported.
    reporter_name = models.CharField(max_length=200)
    reporter_email = models.EmailField()
    relationship = models.CharField(max_length=20, choices=Relationship.choices)
    statement = models.TextField(help_text="Why the content is non-consensual intimate imagery.")
    good_faith = models.BooleanField(help_text="Good-faith statement that the depiction is not consensual.")
    signature = models.CharField(max_length=200, help_text="Electronic signature: the full name typed.")
    adult_confirmed = models.BooleanField(help_text="The person depicted is 18 or over.")
    received_at = models.DateTimeField(default=timezone.now)
    notice_complete_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Optional context the reporter chose to give (e.g. {"ai_made": "yes", "first_seen": "..."}).
    context = models.JSONField(default=dict, blank=True)
    # Notice elements still missing while the status is "needs information" (field names).
    missing_information = models.JSONField(default=list, blank=True)
    # Deadline clock (services/deadlines.py): each step happens once, by conditional update.
    reminder_50_at = models.DateTimeField(null=True, blank=True)
    reminder_80_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # When the "we received your report" email was handed on (services/intake.receipt_queue): once per report,
    # however often its processing is sent to the broker.
    receipt_queued_at = models.DateTimeField(null=True, blank=True)
    # Retention (services/retention.py): when the case's media files were deleted.
    media_purged_at = models.DateTimeField(null=True, blank=True)
    # A notice filed with a flagger key (trusted flagger, eSafety): who sent it, and their own reference,
    # which makes filing the same notice twice return the first case.
    flagger_key = models.ForeignKey("moderation.ApiKey", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="notices")
    flagger_reference = models.CharField(max_length=200, blank=True)
    # Many reports, one item (services/joining.py): a report naming only content an open case already holds
    # joins that case instead of opening its own review. It keeps its own case number, PIN, legal clock and
    # notice; the case it joined is decided once, and the decision is applied to it and its reporter told.
    joined_to = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="joined_reports")
    joined_at = models.DateTimeField(null=True, blank=True)
    join_basis = models.CharField(max_length=100, blank=True)  # e.g. "same location", "same media (PDQ 4)"
    # How many reports this case stands for: itself, the reports that joined it and, for a case opened by
    # in-app reports, each further in-app report about the same post. The queue shows and sorts by it.
    report_count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["flagger_key", "flagger_reference"],
                                               condition=models.Q(flagger_key__isnull=False),
                                               name="one_report_per_flagger_reference")]

    def __str__(self) -> str:
        return self.case_number


class ReportedItem(models.Model):
    """One piece of content a report names: a location on the platform and/or an uploaded file."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be fetched"
        RESOLVED = "resolved", "Fetched"
        UNPROCESSABLE = "unprocessable", "Could not be processed"
        # The platform did not answer after the fetch's retries: fetched again on a schedule (with backoff) or
        # when a moderator asks; the deadline runs on.
        UNAVAILABLE = "unavailable", "Platform unavailable"
        REMOVED = "removed", "Removed"
        KEPT = "kept", "Not removed"

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="items")
    location = models.CharField(max_length=2048, blank=True)
    media = models.ForeignKey("moderation.Media", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="reported_items")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    # Shown to moderators when the item is unprocessable: what went wrong, in plain words.
    error = models.CharField(max_length=500, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    # What the platform said about the content when it was fetched (ContentSource.fetch's FetchedMedia): one
    # location may hold several media items, each its own row with the same location and its ``part``.
    part = models.PositiveSmallIntegerField(default=0)
    content_type = models.CharField(max_length=100, blank=True)  # sniffed from the bytes, not the header
    size_bytes = models.BigIntegerField(null=True, blank=True)
    uploader_ref = models.CharField(max_length=200, blank=True)  # the platform's id or handle, never an email
    posted_at = models.DateTimeField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    fetch_attempts = models.PositiveIntegerField(default=0)
    next_fetch_at = models.DateTimeField(null=True, blank=True)  # when an unavailable item is fetched again
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.location or f"upload #{self.pk}"
