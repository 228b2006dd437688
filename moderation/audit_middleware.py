"""Gives audit events recorded while serving a request the acting user's role and source IP."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from moderation.audit import audit_request_context
from moderation.security.client import client_ip


class AuditContextMiddleware:
    """Must come after ``AuthenticationMiddleware``. The user is read when an event is recorded, so a
    DRF token user (which DRF sets on the underlying request once it authenticates) is seen too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # X-Forwarded-For only through TAKEDOWN_TRUSTED_PROXIES; the IP is kept only on staff users' events.
        with audit_request_context(user=_LazyRequestUser(request), source_ip=client_ip(request.META)):
            return self.get_response(request)


class _LazyRequestUser:
    """Resolves ``request.user`` when an event is recorded, after DRF has authenticated a token."""

    def __init__(self, request: HttpRequest):
        self._request = request

    def resolve(self) -> object:
        return getattr(self._request, "user", None)
