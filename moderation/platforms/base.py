"""The contract every host-platform adapter implements: the content source and enforcer protocols, what a
fetch returns, and the errors each side may raise.

A deployment names its adapters with ``TAKEDOWN_PLATFORM`` and ``TAKEDOWN_ENFORCER``: a short name
(``demo``, ``http``, ``webhook``) or the dotted path of a class of its own that implements these protocols
(``moderation/platforms/__init__.py``). docs/platforms.md describes the contract for platform engineers.

Errors, and what Takedown does with each:

============================  =========================================================================
``LocationRejected``          ``normalise``: the location is not this platform's. Intake refuses it at
                              once, naming the line, with the message.
``ContentNotFound``           nothing at the location (HTTP 404). The item becomes "unprocessable".
``ContentGone``               the platform removed it already (HTTP 410). "unprocessable" when fetching;
                              a removal of gone content succeeds.
``ContentUnfetchable``        the content cannot be fetched safely (a host not allowed, a private
                              address, too large, too slow, not an image or video). "unprocessable:
                              <reason>"; a moderator may retry.
``PlatformError``             temporarily unavailable (a 5xx, a timeout, no connection): retried with
                              backoff, then "platform unavailable" on the case, fetched again later.
``PlatformRefused``           the platform refused the request as it stands (a 4xx other than 404, 408,
                              410, 429): retrying the same request cannot help.
============================  =========================================================================
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable


class LocationRejected(ValueError):
    """The location is not one of this platform's (a host, scheme or URL shape it does not serve).

    The message is for the reporter: it says what locations this platform has (``ContentSource.describe``).
    """


class ContentNotFound(Exception):
    """The location names nothing on the platform."""


class ContentGone(ContentNotFound):
    """The content was on the platform and has been removed (HTTP 410)."""


class ContentUnfetchable(Exception):
    """The content exists but cannot be fetched safely or usefully. ``reason`` is shown to moderators as
    "unprocessable: <reason>"; the item may be retried by a moderator (the platform may fix it)."""

    def __init__(self, reason: str, *, url: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.url = url  # where it was refused (no query string), for the audit; never shown to reporters


class PlatformError(Exception):
    """The platform could not be reached or failed (a 5xx, a timeout); worth retrying."""


PlatformUnavailable = PlatformError  # the contract's name for it (docs/platforms.md)


class PlatformRefused(Exception):
    """The platform refused the request as it stands (a 4xx other than 404/410/408/429): retrying the same
    request will not help, so the task that carries the action out fails at once. Not a PlatformError.

    ``status`` and ``body`` (the start of the answer, at most a few hundred bytes) are there for adapters that
    read the platform's own error names (an AT Protocol ``{"error": "RecordNotFound"}``); 0 and b"" when the
    refusal was not an HTTP status."""

    def __init__(self, message: str, *, status: int = 0, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class FetchedMedia:
    """One media item fetched from a location, streamed to a private temporary file.

    ``path`` belongs to the caller, who stores it (``media_store_file``) and removes it (:meth:`discard`).
    ``content_type`` is sniffed from the bytes, never taken from the platform's header.
    """

    path: Path
    content_type: str
    size: int
    location: str  # the canonical location (what ``normalise`` returns)
    uploader: str = ""  # the platform's reference for the uploader (an id or handle; never an email)
    posted_at: datetime | None = None
    source_url: str = ""  # where the bytes came from, scheme, host and path only (for the audit)

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        with open(self.path, "rb") as handle:
            yield handle

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@runtime_checkable
class ContentSource(Protocol):
    name: str

    def normalise(self, location: str) -> str:
        """The canonical form of ``location`` if it is this platform's (the same item always gives the same
        string: tracking parameters, ``www.``, fragments and trailing slashes dropped), else
        ``LocationRejected`` with a message for the reporter."""
        ...

    def describe(self) -> str:
        """What this platform's locations look like, for people ("links to posts on platform.example, like
        https://platform.example/p/123")."""
        ...

    def fetch(self, location: str) -> list[FetchedMedia]:
        """The media at the (canonical) location, each streamed to a private temporary file through the safe
        fetcher. ContentNotFound/ContentGone, ContentUnfetchable, PlatformError or PlatformRefused otherwise."""
        ...


@runtime_checkable
class Enforcer(Protocol):
    name: str

    def remove(self, *, location: str, reason: str, idempotency_key: str,
               statement: dict[str, Any] | None = None) -> None:
        """Take the content down. Removing content that is already removed (or gone) succeeds.

        ``statement`` is the statement of reasons (no personal data) the platform may show the uploader.
        """
        ...

    def restore(self, *, location: str, reason: str, idempotency_key: str) -> None:
        """Put content back after an appeal reversed its removal. Restoring live content succeeds."""
        ...

    def uploader_contact(self, location: str) -> str | None:
        """An email address for the uploader of ``location`` (for the statement of reasons), if known."""
        ...
