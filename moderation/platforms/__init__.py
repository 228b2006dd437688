"""Adapters to the host platform: fetching reported content and carrying out decisions on it.

A deployment picks one with ``TAKEDOWN_PLATFORM``. ``demo`` is the built-in demo platform; the
signed-webhook enforcer arrives with the legal-workflow issue.
"""

from __future__ import annotations

from typing import Protocol

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

    def remove(self, *, location: str, reason: str, idempotency_key: str) -> None:
        """Take the content down. Removing content that is already removed succeeds."""
        ...


def get_content_source() -> ContentSource:
    return _platform()


def get_enforcer() -> Enforcer:
    return _platform()


def _platform() -> DemoPlatform:
    if settings.TAKEDOWN_PLATFORM == "demo":
        return DemoPlatform()
    raise ImproperlyConfigured(f"TAKEDOWN_PLATFORM={settings.TAKEDOWN_PLATFORM!r} is not known; use 'demo'.")


from moderation.platforms.demo import DemoPlatform  # noqa: E402  (the protocol names above come first)
