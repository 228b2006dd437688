"""What every host-platform adapter implements: the content source and enforcer protocols and their errors."""

from __future__ import annotations

from typing import Any, Protocol


class ContentNotFound(Exception):
    """The location names nothing on the platform (or it is already gone)."""


class PlatformError(Exception):
    """The platform could not be reached or failed (a 5xx, a timeout); worth retrying."""


class PlatformRefused(Exception):
    """The platform refused the request as it stands (a 4xx other than 404/410/408/429): retrying the same
    request will not help, so the task that carries the action out fails at once. Not a PlatformError."""


class ContentSource(Protocol):
    name: str

    def fetch(self, location: str) -> bytes:
        """The bytes of the content at ``location``; ContentNotFound, PlatformError or PlatformRefused otherwise."""
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
