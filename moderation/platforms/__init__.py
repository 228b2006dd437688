"""Adapters to the host platform: fetching reported content and carrying out decisions on it.

A deployment picks the content source with ``TAKEDOWN_PLATFORM`` (``demo`` is the built-in demo
platform) and the enforcer with ``TAKEDOWN_ENFORCER``: the platform itself, or ``webhook`` (signed JSON
POSTs to ``TAKEDOWN_WEBHOOK_URL``, see ``platforms/webhook.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class ContentNotFound(Exception):
    """The location names nothing on the platform (or it is already gone)."""


class PlatformError(Exception):
    """The platform could not be reached or refused; worth retrying."""


class ContentSource(Protocol):
    name: str

    def fetch(self, location: str) -> bytes:
        """The bytes of the content at ``location``; ContentNotFound or PlatformError otherwise."""
        ...


class Enforcer(Protocol):
    name: str

    def remove(self, *, location: str, reason: str, idempotency_key: str,
               statement: dict[str, Any] | None = None) -> None:
        """Take the content down. Removing content that is already removed succeeds.

        ``statement`` is the statement of reasons (no personal data) the platform may show the uploader.
        """
        ...

    def restore(self, *, location: str, reason: str, idempotency_key: str) -> None:
        """Put content back after an appeal reversed its removal. Restoring live content succeeds."""
        ...

    def uploader_contact(self, location: str) -> str | None:
        """An email address for the uploader of ``location`` (for the statement of reasons), if known."""
        ...


def get_content_source() -> ContentSource:
    return _platform()


def get_enforcer() -> Enforcer:
    if settings.TAKEDOWN_ENFORCER == "webhook":
        from moderation.platforms.webhook import WebhookEnforcer

        return WebhookEnforcer.from_settings()
    if settings.TAKEDOWN_ENFORCER == settings.TAKEDOWN_PLATFORM:
        return _platform()
    raise ImproperlyConfigured(f"TAKEDOWN_ENFORCER={settings.TAKEDOWN_ENFORCER!r} is not known; use "
                               f"'webhook' or the platform's name ({settings.TAKEDOWN_PLATFORM!r}).")


def _platform() -> DemoPlatform:
    if settings.TAKEDOWN_PLATFORM == "demo":
        return DemoPlatform()
    raise ImproperlyConfigured(f"TAKEDOWN_PLATFORM={settings.TAKEDOWN_PLATFORM!r} is not known; use 'demo'.")


from moderation.platforms.demo import DemoPlatform  # noqa: E402  (the protocol names above come first)
