"""Adapters to the host platform: fetching reported content and carrying out decisions on it.

A deployment picks the content source with ``TAKEDOWN_PLATFORM`` (``demo`` is the built-in demo
platform) and the enforcer with ``TAKEDOWN_ENFORCER``: the platform itself, or ``webhook`` (JSON POSTs to
``TAKEDOWN_WEBHOOK_URL`` signed per Standard Webhooks, see ``platforms/webhook.py`` and docs/webhooks.md).
The protocols every adapter implements and their errors are in ``platforms/base.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from moderation.platforms.base import ContentNotFound, ContentSource, Enforcer, PlatformError, PlatformRefused
from moderation.platforms.demo import DemoPlatform
from moderation.platforms.webhook import WebhookEnforcer

__all__ = ["ContentNotFound", "ContentSource", "Enforcer", "PlatformError", "PlatformRefused", "get_content_source",
           "get_enforcer"]


def get_content_source() -> ContentSource:
    return _platform()


def get_enforcer() -> Enforcer:
    if settings.TAKEDOWN_ENFORCER == "webhook":
        return WebhookEnforcer.from_settings()
    if settings.TAKEDOWN_ENFORCER == settings.TAKEDOWN_PLATFORM:
        return _platform()
    raise ImproperlyConfigured(f"TAKEDOWN_ENFORCER={settings.TAKEDOWN_ENFORCER!r} is not known; use "
                               f"'webhook' or the platform's name ({settings.TAKEDOWN_PLATFORM!r}).")


def _platform() -> DemoPlatform:
    if settings.TAKEDOWN_PLATFORM == "demo":
        return DemoPlatform()
    raise ImproperlyConfigured(f"TAKEDOWN_PLATFORM={settings.TAKEDOWN_PLATFORM!r} is not known; use 'demo'.")
