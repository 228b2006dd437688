"""Retention: media files are purged a configurable number of days after a case closes; hashes and audit kept."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone

from moderation.models import AuditEvent, Media, MediaHash, Report
from moderation.services.retention import media_purge
from tests.moderation.legal_helpers import submit


def closed(location: str, days_ago: float) -> Report:
    report = submit(locations=[location]).report
    Report.objects.filter(pk=report.pk).update(status=Report.Status.NO_VIOLATION,
                                               closed_at=timezone.now() - timedelta(days=days_ago))
    return Report.objects.get(pk=report.pk)


def media_path(report: Report) -> Path:
    media = Media.objects.get(reported_items__report=report)
    return Path(django_settings.MEDIA_ROOT) / media.file.name


@pytest.mark.django_db(transaction=True)
def test_media_of_a_case_closed_past_retention_is_deleted_but_hashes_and_audit_stay(demo: Any, settings: Any) -> None:
    settings.TAKEDOWN_MEDIA_RETENTION_DAYS = 30
    old = closed("demo://content/21", days_ago=31)
    recent = closed("demo://content/22", days_ago=5)
    old_file, recent_file = media_path(old), media_path(recent)
    assert old_file.exists() and recent_file.exists()
    hashes_before = MediaHash.objects.count()
    result = media_purge()
    assert result.reports == [old.case_number] and result.media_purged == 1
    assert not old_file.exists() and recent_file.exists()
    assert Media.objects.get(reported_items__report=old).file.name == ""
    assert MediaHash.objects.count() == hashes_before  # hashes are kept
    assert Report.objects.get(pk=old.pk).media_purged_at is not None
    assert AuditEvent.objects.filter(action="media.purged", object_id=str(old.pk)).exists()
    assert media_purge().media_purged == 0  # idempotent


@pytest.mark.django_db(transaction=True)
def test_time_travel_purges_the_recent_case_once_its_period_ends(demo: Any) -> None:
    recent = closed("demo://content/23", days_ago=5)
    assert media_purge(days=30).media_purged == 0
    assert media_purge(days=30, now=timezone.now() + timedelta(days=26)).reports == [recent.case_number]


@pytest.mark.django_db(transaction=True)
def test_media_still_named_by_an_open_case_is_kept(demo: Any) -> None:
    old = closed("demo://content/24", days_ago=90)
    still_open = submit(locations=["demo://content/24"]).report  # the same image, deduplicated by SHA-256
    assert Media.objects.get(reported_items__report=still_open) == Media.objects.get(reported_items__report=old)
    assert media_purge(days=30).media_purged == 0
    assert media_path(old).exists()
    assert Report.objects.get(pk=old.pk).media_purged_at is None


@pytest.mark.django_db(transaction=True)
def test_the_command_has_a_dry_run_and_the_beat_runs_it_daily(demo: Any, settings: Any) -> None:
    old = closed("demo://content/25", days_ago=40)
    path = media_path(old)
    out = io.StringIO()
    call_command("purge_media", "--days", "30", "--dry-run", stdout=out)
    assert "would purge 1 media files from 1 closed cases" in out.getvalue()
    assert path.exists()
    call_command("purge_media", "--days", "30", stdout=io.StringIO())
    assert not path.exists()
    assert settings.CELERY_BEAT_SCHEDULE["media-purge"]["schedule"] == 24 * 3600.0
