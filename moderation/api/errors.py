"""One error shape for the whole API: ``{"detail": "...", "errors": {"field": ["..."]}}``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hashing.errors import MediaError
from hashing.shards import ShardUnavailable
from moderation.services.claims import InvalidDecision, ReviewError
from moderation.services.intake import IntakeError


def _messages(value: Any, prefix: str = "") -> list[str]:
    """Plain messages from a field's errors; a list item's errors (``{0: [...]}``) say which item, from 1."""
    if isinstance(value, dict):
        return [m for k, v in value.items()
                for m in _messages(v, f"{prefix}item {k + 1}: " if isinstance(k, int) else f"{prefix}{k}: ")]
    if isinstance(value, list):
        return [m for v in value for m in _messages(v, prefix)]
    return [prefix + str(value)]


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(k): _messages(v) for k, v in detail.items()}
    return {"non_field_errors": [str(m) for m in (detail if isinstance(detail, list) else [detail])]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, IntakeError):
        return Response({"detail": "The report is incomplete or invalid.", "errors": exc.errors},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, MediaError):
        return Response({"detail": str(exc), "errors": {"file": [str(exc)]}, "code": exc.code},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, InvalidDecision):
        return Response({"detail": str(exc), "errors": {exc.field: [str(exc)]}}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ReviewError):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ShardUnavailable):  # a matcher shard did not answer: try again shortly, not a 500
        return Response({"detail": "The match index is not available right now; try again shortly."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
    if isinstance(exc, RequestDataTooBig):  # Django's own answer would be an HTML 400 page
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        message = f"The request body is larger than {limit_mb:.1f} MB. Send less text, and files as multipart uploads."
        return Response({"detail": message, "errors": {"body": [message]}},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        errors = _flatten(exc.detail)
        fields = ", ".join(sorted(errors))
        response.data = {"detail": f"Invalid or missing: {fields}.", "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    return response
