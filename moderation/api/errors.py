"""One error shape for the whole API: ``{"detail": "...", "errors": {"field": ["..."]}}``."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hashing.errors import MediaError
from moderation.services.intake import IntakeError
from moderation.services.review import InvalidDecision, ReviewError


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
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
