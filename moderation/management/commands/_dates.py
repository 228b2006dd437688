"""Parsing the dates commands take (``YYYY-MM-DD`` or a full ISO timestamp), as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.core.management.base import CommandError


def parse_when(value: str, name: str) -> datetime:
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{name}: {value!r} is not a date; use YYYY-MM-DD (e.g. 2026-05-19).") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
