from moderation.models.access import ApiKey, Partner
from moderation.models.atproto import OzoneReport, StreamCursor
from moderation.models.atproto_scan import ScannerFinding
from moderation.models.audit import AuditChainHead, AuditEvent
from moderation.models.console import (
    CaseNote,
    ChildSafetyReferral,
    ConsolePreference,
    MediaExposure,
    MessageTemplate,
    ProposedDecision,
)
from moderation.models.hma import HmaContent
from moderation.models.media import DetectionResult, Match, Media, MediaHash, VideoFrameHash, VideoMatch
from moderation.models.operations import Heartbeat
from moderation.models.platform import DemoContentItem
from moderation.models.queues import Queue, ReporterMute, RoutingRule
from moderation.models.reports import Report, ReportedItem
from moderation.models.review import Action, Appeal, Decision, ReviewTask, StatementOfReasons, WebhookDelivery
from moderation.models.scan import ScanTicket

__all__ = [
    "Action", "ApiKey", "Appeal", "AuditChainHead", "AuditEvent", "CaseNote", "ChildSafetyReferral",
    "ConsolePreference", "Decision", "DemoContentItem", "DetectionResult", "Heartbeat", "HmaContent", "Match",
    "Media", "MediaExposure", "MediaHash", "MessageTemplate", "OzoneReport", "Partner", "ProposedDecision", "Report",
    "ReportedItem", "ReviewTask", "ScanTicket", "ScannerFinding", "StatementOfReasons", "StreamCursor",
    "VideoFrameHash", "VideoMatch", "WebhookDelivery",
]

from moderation.models.embedding import MediaEmbedding

__all__ += ["MediaEmbedding"]

__all__ += ["Queue", "ReporterMute", "RoutingRule"]
