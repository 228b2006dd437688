"""Input and output shapes of the API. Validation of meaning lives in the services."""

from __future__ import annotations

from rest_framework import serializers

from moderation.models import Decision, Report, ReviewTask


class ReportInput(serializers.Serializer):
    reporter_name = serializers.CharField(max_length=200, allow_blank=False)
    reporter_email = serializers.EmailField()
    relationship = serializers.ChoiceField(choices=Report.Relationship.choices)
    locations = serializers.ListField(child=serializers.CharField(max_length=2048), required=False,
                                      default=list, max_length=50)
    statement = serializers.CharField(max_length=10000)
    good_faith = serializers.BooleanField()
    signature = serializers.CharField(max_length=200)
    adult_confirmed = serializers.BooleanField()
    files = serializers.ListField(child=serializers.FileField(), required=False, default=list, max_length=20,
                                  help_text="Images (multipart only).")
    # Optional context, as on the web form (services/intake.py CONTEXT_FIELDS).
    ai_made = serializers.ChoiceField(choices=[("yes", "Yes"), ("no", "No"), ("unsure", "Not sure")],
                                      required=False, help_text="Was it made or changed with AI?")
    first_seen = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                       help_text="When the content was first seen; a rough date is fine.")
    other_places = serializers.CharField(max_length=1000, required=False, allow_blank=True,
                                         help_text="Anything else that helps, e.g. other sites where it appears.")
    client_hashes = serializers.ListField(
        child=serializers.CharField(max_length=64, allow_blank=False), required=False, default=list, max_length=50,
        help_text="PDQ hashes (64 hexadecimal characters) computed on the person's own device, as the web form "
                  "sends them: banked against the case to block uploads and find copies. No image is sent.")

    CONTEXT = ("ai_made", "first_seen", "other_places")

    def validate_client_hashes(self, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]

    def context_fields(self) -> dict[str, str]:
        data = self.validated_data
        return {name: str(data[name]).strip() for name in self.CONTEXT if str(data.get(name) or "").strip()}


class ReportCreated(serializers.Serializer):
    case_number = serializers.CharField()
    pin = serializers.CharField(help_text="Shown once. Keep it: it cannot be recovered.")
    status = serializers.CharField()


class NoticeInput(ReportInput):
    """A notice from a trusted flagger or eSafety. Elements the sender may add later are optional here:
    a notice lacking them is kept as "needs information" and the clock starts once it is complete."""

    reference = serializers.CharField(max_length=200, help_text="Your own reference for this notice. Filing "
                                                                "the same reference again returns the first case.")
    reporter_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                          help_text="The person at your organisation responsible for the notice.")
    relationship = serializers.ChoiceField(choices=Report.Relationship.choices, required=False, allow_blank=True,
                                           default="")
    statement = serializers.CharField(max_length=10000, required=False, allow_blank=True, default="")
    good_faith = serializers.BooleanField(required=False, default=False)
    signature = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class NoticeCreated(serializers.Serializer):
    case_number = serializers.CharField()
    pin = serializers.CharField(allow_null=True, help_text="Shown once, on the first filing; null on a repeat.")
    status = serializers.CharField()
    created = serializers.BooleanField(help_text="False when this reference was filed before.")
    # The API's word for the report source; mypy sees Field.source (the attribute path), DRF a declared field.
    source = serializers.CharField()  # type: ignore[assignment]
    deadline_at = serializers.DateTimeField(allow_null=True)
    missing_information = serializers.ListField(child=serializers.CharField())


class PublicItem(serializers.Serializer):
    number = serializers.IntegerField()
    location = serializers.CharField()
    state = serializers.CharField()
    state_text = serializers.CharField()
    removed_at = serializers.DateTimeField(allow_null=True)
    problem = serializers.CharField(allow_null=True, help_text='Why the item could not be fetched: "unprocessable: '
                                    '<reason>" or "platform unavailable: <reason>"; null otherwise.')


class PublicDecision(serializers.Serializer):
    outcome = serializers.CharField()
    reason = serializers.CharField()
    decided_at = serializers.DateTimeField()
    automated = serializers.BooleanField()


class ReportStatus(serializers.Serializer):
    case_number = serializers.CharField()
    status = serializers.CharField()
    status_text = serializers.CharField()
    received_at = serializers.DateTimeField()
    deadline_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    reviewed_with_other_reports = serializers.BooleanField(
        help_text="Other people reported the same content first; it is reviewed once, together with theirs, "
                  "and this report gets the same decision.")
    decision = PublicDecision(allow_null=True)
    items = PublicItem(many=True)


class ScanInput(serializers.Serializer):
    file = serializers.FileField()
    # "async" (default): answer from the hashes now, score on the detection queue (GET /api/v1/scan/<scan_id>).
    # "inline": score in this request too (slower), for platforms that need the final verdict in one call.
    detection = serializers.ChoiceField(choices=["async", "inline"], default="async", required=False)


class ScanMatch(serializers.Serializer):
    bank = serializers.CharField()
    algorithm = serializers.CharField()
    distance = serializers.IntegerField()
    threshold = serializers.IntegerField()
    blocks_uploads = serializers.BooleanField()


class ScanOutput(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["allow", "review", "block"])
    matches = ScanMatch(many=True)
    score = serializers.FloatField(allow_null=True)
    signals = serializers.ListField(child=serializers.DictField())
    hashes = serializers.DictField(child=serializers.CharField())


class ScanDetection(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pending", "scored", "unscored", "skipped"])
    scan_id = serializers.CharField()
    note = serializers.CharField(allow_blank=True)


class ScanTicketOutput(ScanOutput):
    detection = ScanDetection()


class TaskOutput(serializers.ModelSerializer):
    case_number = serializers.CharField(source="report.case_number")
    report_status = serializers.CharField(source="report.status")
    deadline_at = serializers.DateTimeField(source="report.deadline_at")
    assignee = serializers.CharField(source="assignee.username", default=None)
    item_count = serializers.IntegerField(default=None)
    match_count = serializers.IntegerField(default=None)

    class Meta:
        model = ReviewTask
        fields = ["id", "case_number", "kind", "state", "priority", "priority_reasons", "assignee",
                  "lease_expires_at", "deadline_at", "report_status", "item_count", "match_count", "created_at"]


class DecideInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.Outcome.choices)
    reason = serializers.ChoiceField(choices=Decision.Reason.choices)
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class DecisionOutput(serializers.Serializer):
    decision_id = serializers.IntegerField()
    outcome = serializers.CharField()
    reason = serializers.CharField()
    actions = serializers.IntegerField()
    report_status = serializers.CharField()
