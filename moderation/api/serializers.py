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


class ReportCreated(serializers.Serializer):
    case_number = serializers.CharField()
    pin = serializers.CharField(help_text="Shown once. Keep it: it cannot be recovered.")
    status = serializers.CharField()


class PublicItem(serializers.Serializer):
    number = serializers.IntegerField()
    location = serializers.CharField()
    state = serializers.CharField()
    state_text = serializers.CharField()
    removed_at = serializers.DateTimeField(allow_null=True)


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
    decision = PublicDecision(allow_null=True)
    items = PublicItem(many=True)


class ScanInput(serializers.Serializer):
    file = serializers.FileField()


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
