"""The built-in demo host platform: content items addressed ``demo://content/<n>``."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from moderation.models import DemoContentItem
from moderation.platforms.base import ContentNotFound

LOCATION_RE = re.compile(r"^demo://content/(\d{1,9})/?$")


def parse_location(location: str) -> int:
    match = LOCATION_RE.match(location.strip())
    if not match:
        raise ContentNotFound(f"{location!r} is not a demo platform address (demo://content/<number>).")
    return int(match.group(1))


class DemoPlatform:
    name = "demo"

    def fetch(self, location: str) -> bytes:
        number = parse_location(location)
        item = DemoContentItem.objects.filter(number=number).first()
        if item is None:
            raise ContentNotFound(f"There is no content item {number} on the demo platform.")
        if item.status == DemoContentItem.Status.REMOVED:
            raise ContentNotFound(f"Content item {number} has already been removed from the demo platform.")
        with item.file.open("rb") as handle:
            return handle.read()

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
