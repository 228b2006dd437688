"""/readyz covers the broker and the scheduler beside the match index: a broker that cannot be reached or a
scheduler heartbeat that is too old answers 503 naming it; time travels by writing an old heartbeat."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from moderation import tasks
from moderation.celery import app as celery_app
from moderation.services import readiness
from moderation.services.readiness import scheduler_heartbeat_write
from tests.faults.workers import celery_sends_to
from tests.moderation.observability_helpers import BROKER_DOWN

pytestmark = pytest.mark.django_db


def test_without_a_broker_readyz_reports_the_broker_and_the_scheduler_as_not_used(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready" and "reasons" not in body
    assert body["broker"]["status"] == body["scheduler"]["status"] == "not used"


def test_a_broker_that_cannot_be_reached_makes_readyz_503_naming_the_broker(client: Client) -> None:
    scheduler_heartbeat_write()
    with celery_sends_to(BROKER_DOWN):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["broker"]["status"] == "unavailable"
    assert [reason.split(":")[0] for reason in body["reasons"]] == ["broker"]
    assert "cannot be reached" in body["broker"]["error"] and "127.0.0.1" not in response.content.decode()


def test_a_stale_scheduler_heartbeat_makes_readyz_503_naming_the_scheduler(client: Client) -> None:
    limit = settings.TAKEDOWN_SCHEDULER_STALE_SECONDS
    scheduler_heartbeat_write(now=timezone.now() - timedelta(seconds=limit + 60))
    with celery_sends_to("memory://"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["broker"]["status"] == "ready" and body["scheduler"]["status"] == "stale"
    assert body["scheduler"]["heartbeat_age_seconds"] >= limit + 60
    assert [reason.split(":")[0] for reason in body["reasons"]] == ["scheduler"]
    assert "celery beat" in body["reasons"][0]


def test_the_beat_task_writes_a_fresh_heartbeat_and_readyz_answers_200(client: Client) -> None:
    scheduler_heartbeat_write(now=timezone.now() - timedelta(hours=3))
    with celery_sends_to("memory://"):
        assert client.get("/readyz").status_code == 503
        tasks.scheduler_heartbeat()  # what the worker runs when beat sends it
        response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready" and "reasons" not in body
    assert body["broker"]["status"] == body["scheduler"]["status"] == "ready"
    assert body["scheduler"]["heartbeat_age_seconds"] < settings.TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS


def test_a_heartbeat_never_written_is_waited_for_after_start_then_reported(client: Client,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    limit = settings.TAKEDOWN_SCHEDULER_STALE_SECONDS
    with celery_sends_to("memory://"):
        monkeypatch.setattr(readiness, "_PROCESS_STARTED", time.monotonic())  # the web process just started
        waiting = client.get("/readyz")
        monkeypatch.setattr(readiness, "_PROCESS_STARTED", time.monotonic() - limit - 1)  # started long ago
        missing = client.get("/readyz")
    assert waiting.status_code == 200 and waiting.json()["scheduler"]["status"] == "waiting"
    assert missing.status_code == 503
    assert missing.json()["reasons"] == [f"scheduler: {missing.json()['scheduler']['error']}"]
    assert f"no scheduler heartbeat in {limit} s" in missing.json()["scheduler"]["error"]


def test_the_beat_schedule_sends_the_heartbeat_task_every_interval_and_the_limit_is_a_few_intervals() -> None:
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["scheduler-heartbeat"]
    assert entry["schedule"] == settings.TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS
    celery_app.loader.import_default_modules()
    assert entry["task"] in celery_app.tasks
    assert settings.TAKEDOWN_SCHEDULER_STALE_SECONDS >= 2 * settings.TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS
