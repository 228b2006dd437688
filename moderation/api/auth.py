"""``Authorization: Api-Key <key>`` authentication for the host platform and partners."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from moderation.models import ApiKey
from moderation.services.api_keys import api_key_authenticate

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    kind = ApiKey.Kind.PLATFORM

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{KEYWORD} "):
            return None
        key = header[len(KEYWORD) + 1:].strip()
        if not key:
            raise exceptions.AuthenticationFailed("The Api-Key header is empty.")
        row = api_key_authenticate(key, kind=self.kind)
        if row is None:
            raise exceptions.AuthenticationFailed("This API key is not valid or has been revoked.")
        return row, row

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class HasPlatformKey(permissions.BasePermission):
    message = "Send the platform's key as 'Authorization: Api-Key <key>'."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey) and request.auth.kind == ApiKey.Kind.PLATFORM


class FlaggerKeyAuthentication(ApiKeyAuthentication):
    """A notice sender's key (trusted flagger, eSafety): ``kind`` flagger, with the source it files as."""

    kind = ApiKey.Kind.FLAGGER


class HasFlaggerKey(permissions.BasePermission):
    message = "Send your flagger key as 'Authorization: Api-Key <key>'."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey) and request.auth.kind == ApiKey.Kind.FLAGGER


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "moderation.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Api-Key <key> (create one with manage.py create_api_key)"}


class FlaggerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "moderation.api.auth.FlaggerKeyAuthentication"
    name = "FlaggerKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Api-Key <key> of kind flagger (manage.py create_api_key --kind flagger --source ...)"}
