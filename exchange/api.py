"""The partner exchange API: pull the feed, push hashes, send feedback. Thin: feed, push and feedback do the work.

Partners authenticate with ``Authorization: Api-Key <key>`` (a partner key, scoped by ``KeyScope``).
Every feed page carries ``X-Takedown-Signature`` over its exact bytes (this instance's Ed25519 key);
every pushed batch and feedback batch must carry one by a key pinned in the partner's policy.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.feed import BadCursor, feed_page
from exchange.feedback import feedback_submit
from exchange.partners import partner_policy
from exchange.push import hashes_push
from exchange.selectors import key_readable_banks
from exchange.signing import SIGNATURE_HEADER, SIGNATURE_META, sign, verify
from exchange.validation import ExchangeError, signature_rejected
from moderation.api.auth import ApiKeyAuthentication
from moderation.models import ApiKey

logger = logging.getLogger(__name__)


class PartnerKeyAuthentication(ApiKeyAuthentication):
    kind = ApiKey.Kind.PARTNER


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "exchange.api.PartnerKeyAuthentication"
    name = "PartnerApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Api-Key <partner key> (manage.py partner key NAME ...); POST bodies are also signed "
                               "in X-Takedown-Signature (docs/exchange.md)"}


class HasPartnerKey(permissions.BasePermission):
    message = "Send a partner key as 'Authorization: Api-Key <key>'; this partner may be disabled."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        return (isinstance(key, ApiKey) and key.kind == ApiKey.Kind.PARTNER and key.partner is not None
                and key.partner.enabled)


def _key(request: Request) -> ApiKey:
    assert isinstance(request.auth, ApiKey)
    return request.auth


def _invalid(error: ExchangeError) -> exceptions.ValidationError:
    return exceptions.ValidationError({k: [v] for k, v in error.errors.items()})


def _signed_json(request: Request, what: str) -> Any:
    """The request body, after its signature verified against the partner's pinned keys; else 401, audited."""
    key = _key(request)
    body: bytes = request.body
    pinned = partner_policy(key.partner).public_keys if key.partner else []
    if not verify(body, request.META.get(SIGNATURE_META), pinned):
        signature_rejected(partner=key.partner, what=what,
                           detail={"key": key.prefix, "signed": SIGNATURE_META in request.META,
                                   "pinned_keys": len(pinned)})
        raise exceptions.AuthenticationFailed(
            f"The {SIGNATURE_HEADER} header is missing or does not verify against a public key pinned for "
            "your partner account. Sign the exact body bytes with your Ed25519 key.")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise exceptions.ValidationError({"body": ["must be JSON"]}) from exc


class HashesView(APIView):
    """GET: the feed of changes to the banks this key may read. POST: a batch into this key's write bank."""

    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [HasPartnerKey]

    @extend_schema(parameters=[OpenApiParameter("cursor", str), OpenApiParameter("limit", int)],
                   responses={200: dict})
    def get(self, request: Request) -> HttpResponse:
        key = _key(request)
        banks = key_readable_banks(key)
        if not banks:
            raise exceptions.PermissionDenied("This key may not read any bank.")
        raw_limit = request.query_params.get("limit", str(settings.TAKEDOWN_EXCHANGE_PAGE_SIZE))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= settings.TAKEDOWN_EXCHANGE_MAX_PAGE_SIZE:
            raise exceptions.ValidationError(
                {"limit": [f"a whole number from 1 to {settings.TAKEDOWN_EXCHANGE_MAX_PAGE_SIZE}"]})
        try:
            page = feed_page(banks=banks, cursor=request.query_params.get("cursor", ""), limit=int(raw_limit))
        except BadCursor as exc:
            raise exceptions.ValidationError({"cursor": [str(exc)]}) from exc
        body = json.dumps({"records": page.records, "next_cursor": page.next_cursor, "has_more": page.has_more},
                          separators=(",", ":")).encode()
        try:
            signature = sign(body)
        except ImproperlyConfigured as exc:  # no signing key on this instance: an operator's fix, not a 500
            logger.error("exchange feed refused: %s", exc)
            return HttpResponse(json.dumps({"detail": "This instance cannot sign its feed yet: its operator must "
                                                      "create the exchange signing key. Try again later."}),
                                status=503, content_type="application/json", headers={"Retry-After": "300"})
        response = HttpResponse(body, content_type="application/json")
        response[SIGNATURE_HEADER] = signature
        return response

    @extend_schema(request=dict, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = _signed_json(request, "push")
        rows = data.get("records") if isinstance(data, dict) else None
        try:
            result = hashes_push(api_key=_key(request), rows=rows)
        except PermissionError as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        except ExchangeError as exc:
            raise _invalid(exc) from exc
        return Response({"added": result.added, "withdrawn": result.withdrawn, "unchanged": result.unchanged})


class FeedbackView(APIView):
    """POST: verdicts (blocked / not_blocked / pending_review, with tags) on hashes this instance shares."""

    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [HasPartnerKey]

    @extend_schema(request=dict, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = _signed_json(request, "feedback")
        rows = data.get("feedback") if isinstance(data, dict) else None
        try:
            recorded = feedback_submit(api_key=_key(request), rows=rows)
        except PermissionError as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        except ExchangeError as exc:
            raise _invalid(exc) from exc
        return Response({"recorded": len(recorded)})
