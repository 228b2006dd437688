"""End to end with a real Celery worker process over Redis (not eager): report → decision → removal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from kombu import pools as kombu_pools
from rest_framework.test import APIClient

from moderation.audit import audit_verify
from moderation.celery import app as celery_app
from moderation.models import AuditEvent, DemoContentItem, Media, Report, ReviewTask
from tests.conftest import notice_payload, redis_flushed_or_skip

pytestmark = pytest.mark.celery_worker

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("TAKEDOWN_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _reset_connections() -> None:
    """Drop pooled broker connections so the next send connects to the URL configured now."""
    celery_app.pool.force_close_all()
    kombu_pools.reset()  # kombu keeps producer pools per connection URL, process-wide
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def celery_worker(transactional_db: Any, tmp_path: Path) -> Iterator[Path]:
    """A `celery worker` subprocess on the test database and a real Redis broker."""
    broker = redis_flushed_or_skip(BROKER_URL, "start it or set TAKEDOWN_TEST_BROKER_URL")
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(("file:memorydb", ":memory:")):
        pytest.fail("the SQLite test database must be a file for a worker process to share it")
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": _database_url(),
           "CELERY_BROKER_URL": BROKER_URL, "SECRET_KEY": settings.SECRET_KEY,
           "TAKEDOWN_MEDIA_ROOT": str(settings.MEDIA_ROOT), "DB_CONN_MAX_AGE": "0"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "moderation", "worker", "-Q", "default,detection",
             "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    previous = {"task_always_eager": celery_app.conf.task_always_eager, "broker_url": celery_app.conf.broker_url}
    _reset_connections()
    celery_app.conf.update(task_always_eager=False, broker_url=BROKER_URL)
    try:
        yield log
    finally:
        celery_app.conf.update(**previous)
        _reset_connections()
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        broker.flushdb()


def test_a_report_travels_through_a_real_worker_to_a_takedown(
        celery_worker: Path, demo: Any, moderator: User, client_for: Callable[[User], APIClient]) -> None:
    api = APIClient()
    created = api.post("/api/v1/reports", notice_payload(locations=["demo://content/4"]), format="json",
                       HTTP_X_REQUEST_ID="e2e-intake-0001")
    assert created.status_code == 201, created.content
    case_number, pin = created.json()["case_number"], created.json()["pin"]
    report = Report.objects.get(case_number=case_number)

    def processed() -> bool:
        task = ReviewTask.objects.get(report=report)
        media = Media.objects.filter(reported_items__report=report).first()
        # Triage runs after scoring in the chain, so a triaged task with a score means all steps ran.
        return task.triaged_at is not None and media is not None and media.detections.exists()

    try:
        wait_for(processed, "the worker to fetch, hash, match, score and triage the report")
    except AssertionError:
        print(celery_worker.read_text()[-4000:])
        raise
    media = Media.objects.get(reported_items__report=report)
    assert media.hashes.count() == 5
    assert media.matches.filter(bank_entry__bank__name="demo-known-items").exists()

    task = ReviewTask.objects.get(report=report)
    client = client_for(moderator)
    assert client.post(f"/api/v1/queue/{task.pk}/claim").status_code == 200
    decided = client.post(f"/api/v1/queue/{task.pk}/decide", {"decision": "takedown", "reason": "ncii"},
                          format="json", HTTP_X_REQUEST_ID="e2e-decide-0001")
    assert decided.status_code == 200, decided.content
    wait_for(lambda: DemoContentItem.objects.get(number=4).status == DemoContentItem.Status.REMOVED,
             "the worker to remove the item from the demo platform")
    wait_for(lambda: Report.objects.get(pk=report.pk).status == Report.Status.REMOVED, "the report to close")

    status = api.get(f"/api/v1/reports/{case_number}", HTTP_X_CASE_PIN=pin).json()
    assert status["status"] == "removed" and status["items"][0]["state"] == "removed"
    verification = audit_verify()
    assert verification.ok, verification.problem
    assert "Task moderation.tasks.carry_out_action" in celery_worker.read_text()  # it ran in the worker

    # The request id travelled with the work: request → task headers → the worker's tasks (and the tasks they
    # enqueued: process_report sends process_media) → their audit events and log lines.
    hashed = AuditEvent.objects.get(action="media.hashed", object_id=str(media.pk))
    assert hashed.request_id == "e2e-intake-0001"
    assert AuditEvent.objects.get(action="action.done").request_id == "e2e-decide-0001"
    worker_lines = [json.loads(line) for line in celery_worker.read_text().splitlines() if line.startswith("{")]
    assert {"e2e-intake-0001", "e2e-decide-0001"} <= {line["request_id"] for line in worker_lines}
