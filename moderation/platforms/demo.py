"""The built-in demo host platform: content items addressed ``demo://content/<n>``, also reported by the
address of their page on this site (``<SITE_URL>/demo/content/<n>``)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from moderation.models import DemoContentItem
from moderation.platforms.base import ContentGone, ContentNotFound, FetchedMedia, LocationRejected
from moderation.platforms.fetch import NotMedia, sniff, spool_dir
from moderation.platforms.locations import host_canonical, path_canonical

LOCATION_RE = re.compile(r"^demo://content/0*(\d{1,9})/?$", re.IGNORECASE)
PAGE_PATH_RE = re.compile(r"^/demo/content/0*(\d{1,9})$")
CHUNK = 1024 * 1024


def parse_location(location: str) -> int:
    match = LOCATION_RE.match(location.strip())
    if not match:
        raise ContentNotFound(f"{location!r} is not a demo platform address (demo://content/<number>).")
    return int(match.group(1))


class DemoPlatform:
    name = "demo"

    def describe(self) -> str:
        return (f"demo platform items: demo://content/<number>, or their page, like "
                f"{settings.SITE_URL.rstrip('/')}/demo/content/1")

    def normalise(self, location: str) -> str:
        text = location.strip()
        match = LOCATION_RE.match(text)
        if match:
            return f"demo://content/{int(match.group(1))}"
        try:
            parts = urlsplit(text)
            host = host_canonical(parts.hostname or "")
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise LocationRejected(f"This is not a web address: we can act on {self.describe()}.") from None
        page = PAGE_PATH_RE.match(path_canonical(parts.path))
        if parts.scheme.lower() not in ("http", "https") or host not in _site_hosts() or page is None:
            raise LocationRejected(f"It is not on this platform: we can act on {self.describe()}.")
        return f"demo://content/{int(page.group(1))}"

    def fetch(self, location: str) -> list[FetchedMedia]:
        number = parse_location(location)
        item = DemoContentItem.objects.filter(number=number).first()
        if item is None:
            raise ContentNotFound(f"There is no content item {number} on the demo platform.")
        if item.status == DemoContentItem.Status.REMOVED:
            raise ContentGone(f"Content item {number} has already been removed from the demo platform.")
        path, size, head = _spool(item)
        content_type = sniff(head)
        if content_type is None:
            path.unlink(missing_ok=True)
            raise NotMedia(f"Content item {number} is not an image or video.")
        return [FetchedMedia(path=path, content_type=content_type, size=size, location=f"demo://content/{number}",
                             uploader=item.uploader or "", source_url=f"demo://content/{number}")]

    def remove(self, *, location: str, reason: str, idempotency_key: str,
               statement: dict[str, Any] | None = None) -> None:
        number = parse_location(location)
        with transaction.atomic():
            item = DemoContentItem.objects.select_for_update().filter(number=number).first()
            if item is None:
                raise ContentNotFound(f"There is no content item {number} on the demo platform.")
            if item.status != DemoContentItem.Status.REMOVED:
                item.status = DemoContentItem.Status.REMOVED
                item.removed_at = timezone.now()
                item.removal_reason = reason[:200]
                item.save(update_fields=["status", "removed_at", "removal_reason"])

    def restore(self, *, location: str, reason: str, idempotency_key: str) -> None:
        number = parse_location(location)
        with transaction.atomic():
            item = DemoContentItem.objects.select_for_update().filter(number=number).first()
            if item is None:
                raise ContentNotFound(f"There is no content item {number} on the demo platform.")
            if item.status != DemoContentItem.Status.LIVE:
                item.status = DemoContentItem.Status.LIVE
                item.removed_at = None
                item.removal_reason = ""
                item.save(update_fields=["status", "removed_at", "removal_reason"])

    def uploader_contact(self, location: str) -> str | None:
        try:
            number = parse_location(location)
        except ContentNotFound:
            return None
        uploader = DemoContentItem.objects.filter(number=number).values_list("uploader", flat=True).first()
        # Demo accounts have no real mailbox: .invalid never delivers (RFC 2606).
        return f"{uploader}@demo.invalid" if uploader else None



def _spool(item: DemoContentItem) -> tuple[Path, int, bytes]:
    """Copy the item's file to a private spool file in chunks: its path, size and first bytes."""
    handle, name = tempfile.mkstemp(dir=spool_dir(), prefix="demo-")
    size, head = 0, b""
    try:
        with os.fdopen(handle, "wb") as out, item.file.open("rb") as source:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                if not head:
                    head = chunk[:64]
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), size, head


def _site_hosts() -> set[str]:
    """This site's own host names: the demo platform's pages live on it (any port: runserver uses 8000)."""
    hosts = {urlsplit(settings.SITE_URL).hostname or "127.0.0.1"}
    hosts.update(h.strip("[]") for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith("."))
    return {host_canonical(h) for h in hosts if h}
