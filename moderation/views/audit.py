"""The audit viewer: filters, pages, CSV export. Seniors and admins only."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from moderation.audit import actor_for_user, audit_record
from moderation.console_forms import AuditFilterForm
from moderation.roles import PERM_VIEW_AUDIT, require
from moderation.selectors import audit as audit_selectors

AUDIT_PAGE_SIZE = 100
CSV_COLUMNS = ["id", "created_at", "actor", "role", "source_ip", "action", "object_type", "object_id", "reason",
               "data", "before", "after", "request_id", "prev_hash", "hash"]


def _filters(request: HttpRequest) -> tuple[AuditFilterForm, audit_selectors.AuditFilters]:
    form = AuditFilterForm(request.GET or None)
    d = form.cleaned_data if form.is_bound and form.is_valid() else {}
    return form, audit_selectors.AuditFilters(
        actor=d.get("actor") or "", role=d.get("role") or "", action=d.get("action") or "",
        object_type=d.get("object_type") or "", object_id=d.get("object_id") or "",
        since=d.get("since"), until=d.get("until"))


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    require(request.user, PERM_VIEW_AUDIT, "read the audit log")
    form, filters = _filters(request)
    page = Paginator(audit_selectors.audit_events(filters), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    kept = {k: v for k, v in request.GET.items() if k != "page" and v}
    return render(request, "console/audit.html", {"form": form, "page": page, "query": urlencode(kept)})


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every event the filters select, as CSV, streamed (no size limit in memory)."""
    require(request.user, PERM_VIEW_AUDIT, "export the audit log")
    _form, filters = _filters(request)
    audit_record(actor=actor_for_user(request.user), action="audit.exported", object_type="audit",
                 object_id="-", data={k: v for k, v in request.GET.items() if v})
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for e in audit_selectors.audit_events(filters).order_by("id").iterator(chunk_size=2000):
            yield writer.writerow([e.pk, e.created_at.isoformat(), e.actor, e.role, e.source_ip or "", e.action,
                                   e.object_type, e.object_id, e.reason, _json(e.data), _json(e.before),
                                   _json(e.after), e.request_id or "", e.prev_hash, e.hash])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="takedown-audit.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))
