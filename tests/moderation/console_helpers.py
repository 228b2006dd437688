"""Helpers for the console tests: cases made directly in the database (fast), and role personas."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group, User
from django.utils import timezone

from hashing.models import Bank, BankEntry
from moderation.models import DetectionResult, Match, Media, MediaHash, Report, ReportedItem, ReviewTask
from moderation.roles import roles_sync

_numbers = itertools.count(1)


def make_case(*, priority: int = 10, state: str = ReviewTask.State.OPEN, hours_left: float | None = 40,
              source: str = Report.Source.WEB, reasons: list[dict[str, Any]] | None = None,
              pdq: str | None = None, sha256: str | None = None, score: float | None = None,
              match: bool = False) -> ReviewTask:
    """A report with one item and its task; optionally media with a PDQ hash, a score and a bank match."""
    n = next(_numbers)
    now = timezone.now()
    report = Report.objects.create(
        case_number=f"TD-TEST-{n:04d}", pin_hash="x", source=source, reporter_name="A", reporter_email="a@example.org",
        relationship=Report.Relationship.SELF, statement="s", good_faith=True, signature="A", adult_confirmed=True,
        deadline_at=None if hours_left is None else now + timedelta(hours=hours_left))
    media = None
    if pdq or sha256 or score is not None or match:
        digest = sha256 or f"{n:064x}"
        media = Media.objects.filter(sha256=digest).first() or Media.objects.create(
            sha256=digest, md5=f"{n:032x}", mime="image/jpeg", size_bytes=10, origin=Media.Origin.PLATFORM)
        if pdq and not media.hashes.filter(algorithm="pdq").exists():
            MediaHash.objects.create(media=media, algorithm="pdq", value=pdq, quality=100)
        if score is not None:
            DetectionResult.objects.create(media=media, model_version=f"test-{n}", score=score)
        if match:
            mh = media.hashes.first() or MediaHash.objects.create(media=media, algorithm="md5", value=media.md5)
            bank, _ = Bank.objects.get_or_create(name="test-bank", defaults={"kind": Bank.Kind.LOCAL})
            entry = BankEntry.objects.create(bank=bank, algorithm=mh.algorithm, value=mh.value, source="test")
            Match.objects.create(media=media, media_hash=mh, bank_entry=entry, algorithm=mh.algorithm, distance=0,
                                 threshold=0)
    ReportedItem.objects.create(report=report, location=f"demo://content/{n}", media=media,
                                state=ReportedItem.State.RESOLVED)
    return ReviewTask.objects.create(report=report, priority=priority, state=state,
                                     priority_reasons=reasons or [{"code": "deadline", "points": priority,
                                                                   "detail": "test"}])


def user_with_role(username: str, role: str | None) -> User:
    roles_sync()
    user = User.objects.create_user(username=username, password="pw-" + username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
