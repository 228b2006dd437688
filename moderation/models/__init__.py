from moderation.models.audit import AuditChainHead, AuditEvent
from moderation.models.media import DetectionResult, Match, Media, MediaHash
from moderation.models.platform import ApiKey, DemoContentItem, Partner
from moderation.models.reports import Report, ReportedItem
from moderation.models.review import Action, Appeal, Decision, ReviewTask

__all__ = [
    "Action", "ApiKey", "Appeal", "AuditChainHead", "AuditEvent", "Decision", "DemoContentItem",
    "DetectionResult", "Match", "Media", "MediaHash", "Partner", "Report", "ReportedItem", "ReviewTask",
]
