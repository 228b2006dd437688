"""The console's own records: per-user preferences, exposure, notes, proposed decisions, templates."""

from __future__ import annotations

from django.conf import settings
from django.db import models

# Coop and the wellness literature: conceal by default, let each moderator tune how much.
DEFAULT_BLUR_PX = 24
MAX_BLUR_PX = 64


class ConsolePreference(models.Model):
    """How one moderator wants reported media shown. Defaults conceal: blurred, greyscale, no autoplay."""

    class RevealMode(models.TextChoices):
        CLICK = "click", "Click to reveal, click again to hide"
        HOLD = "hold", "Reveal only while held"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_pref")
    blur_px = models.PositiveSmallIntegerField(default=DEFAULT_BLUR_PX)
    greyscale = models.BooleanField(default=True)
    video_autoplay = models.BooleanField(default=False)
    reveal_mode = models.CharField(max_length=10, choices=RevealMode.choices, default=RevealMode.CLICK)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of user {self.user_id}"


class MediaExposure(models.Model):
    """One reveal of one media item by one moderator (exposure counts and the optional daily cap)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exposures")
    media = models.ForeignKey("moderation.Media", on_delete=models.CASCADE, related_name="exposures")
    task = models.ForeignKey("moderation.ReviewTask", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="exposures")
    revealed_at = models.DateTimeField(db_index=True)
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "media", "day"], name="exposure_once_per_day")]
        indexes = [models.Index(fields=["day", "user"], name="exposure_day_user")]

    def __str__(self) -> str:
        return f"user {self.user_id} saw media {self.media_id} on {self.day}"


class CaseNote(models.Model):
    """A comment on a case, or the note that goes with an escalation or a rejected proposal."""

    class Kind(models.TextChoices):
        COMMENT = "comment", "Comment"
        ESCALATION = "escalation", "Escalation"
        SECOND_REVIEW = "second_review", "Second review"

    task = models.ForeignKey("moderation.ReviewTask", on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_notes")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.COMMENT)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on task {self.task_id}"


class ProposedDecision(models.Model):
    """A decision that needs a second reviewer (four-eyes): proposed by one, confirmed by a different senior."""

    class State(models.TextChoices):
        PENDING = "pending", "Awaiting a second reviewer"
        CONFIRMED = "confirmed", "Confirmed"
        REJECTED = "rejected", "Rejected"

    task = models.ForeignKey("moderation.ReviewTask", on_delete=models.CASCADE, related_name="proposals")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="proposed_decisions")
    outcome = models.CharField(max_length=20)
    reason = models.CharField(max_length=30)
    note = models.TextField(blank=True)
    reporter_template = models.CharField(max_length=60, blank=True)
    uploader_template = models.CharField(max_length=60, blank=True)
    why_four_eyes = models.CharField(max_length=200)
    overrides_automation = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="reviewed_proposals")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["task"], condition=models.Q(state="pending"),
                                               name="one_pending_proposal_per_task")]

    def __str__(self) -> str:
        return f"proposed {self.outcome} on task {self.task_id} ({self.state})"


class MessageTemplate(models.Model):
    """An editable message to the reporter or the uploader (subject / text / HTML), chosen per reason.

    Built-in defaults live in ``services/message_templates.py``; a row with the same key overrides one.
    """

    class Audience(models.TextChoices):
        REPORTER = "reporter", "Reporter"
        UPLOADER = "uploader", "Uploader"

    key = models.SlugField(max_length=60, unique=True)
    audience = models.CharField(max_length=20, choices=Audience.choices)
    reason = models.CharField(max_length=30, help_text="The decision reason this template fits.")
    title = models.CharField(max_length=200, help_text="What moderators see in the picker.")
    rationale = models.TextField(blank=True, help_text="Canned rationale text offered to the moderator.")
    subject = models.CharField(max_length=200)
    text = models.TextField()
    html = models.TextField()
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reason", "audience", "key"]

    def __str__(self) -> str:
        return self.key


class ChildSafetyReferral(models.Model):
    """A case taken out of ordinary handling because the person depicted may be a minor."""

    class State(models.TextChoices):
        PENDING = "pending", "Awaiting confirmation by a second reviewer"
        REFERRED = "referred", "Handed to the child-safety procedure"
        RETURNED = "returned", "Returned to ordinary handling"

    report = models.ForeignKey("moderation.Report", on_delete=models.PROTECT, related_name="child_safety_referrals")
    task = models.ForeignKey("moderation.ReviewTask", on_delete=models.PROTECT, related_name="child_safety_referrals")
    flagged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    referred_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"child-safety referral {self.pk} ({self.state})"
