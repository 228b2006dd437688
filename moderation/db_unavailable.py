"""When the database cannot be reached (a restart, a failover), answer 503 with Retry-After, not 500.

``DatabaseUnavailableMiddleware`` turns a connection-level database error raised by a view into
``503 Service Unavailable`` with ``Retry-After`` and the API's error shape (``{"detail": ...}``);
``server_error`` (``handler500`` in ``moderation/urls.py``) does the same for one raised in another
middleware (a session save, say). Nothing is half-saved: every write is one transaction, so the
request either committed before the error or left nothing. Once the database is back, Django's
``CONN_HEALTH_CHECKS`` (settings) replaces the broken persistent connection at the next request.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DETAIL = "The service is briefly unavailable (its database cannot be reached). Please try again shortly."
# psycopg's and sqlite3's connection failures, as Django wraps them.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    # The class only: a database error message can quote the statement's parameters (personal data).
    logger.warning("database unavailable while serving %s %s: %s", request.method, request.path,
                   type(exc).__name__)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": DETAIL}, status=503)
    else:
        response = HttpResponse(DETAIL, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, UNAVAILABLE_ERRORS):
            return unavailable_response(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: Django calls it while handling the uncaught exception, so ``sys.exc_info`` has it."""
    exc = sys.exc_info()[1]
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return unavailable_response(request, exc)
    return defaults.server_error(request)
