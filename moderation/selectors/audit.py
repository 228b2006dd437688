"""The audit log viewer: its filters and the events they select."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from moderation.models import AuditEvent


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    role: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_events(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Audit events, newest first, narrowed by the viewer's filters."""
    lookups = {"actor": filters.actor, "role": filters.role, "action__startswith": filters.action,
               "object_type": filters.object_type, "object_id": filters.object_id,
               "created_at__gte": filters.since, "created_at__lt": filters.until}
    return AuditEvent.objects.filter(**{k: v for k, v in lookups.items() if v}).order_by("-id")
