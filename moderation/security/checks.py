"""System checks for deployments (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from moderation.security.crypto import parse_media_keys


@register(Tags.security)
def media_keys_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Bad media keys are an error always; no media key at all is a deployment warning."""
    try:
        parse_media_keys(list(settings.TAKEDOWN_MEDIA_KEYS))
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="takedown.E001")]
    return []


@register(Tags.security, deploy=True)
def media_encryption_deploy_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    try:
        keys = parse_media_keys(list(settings.TAKEDOWN_MEDIA_KEYS))
    except ImproperlyConfigured:
        return []  # reported by media_keys_check
    if not keys:
        return [Warning("Reported media is stored unencrypted: TAKEDOWN_MEDIA_KEYS is not set.",
                        hint="Set TAKEDOWN_MEDIA_KEYS (or TAKEDOWN_MEDIA_KEYS_FILE) to 'key-id:base64-32-bytes'; "
                             "see docs/security.md.", id="takedown.W001")]
    return []
