"""/metrics: closed unless a bearer token or an allow-list is configured; the gauges read at scrape time (cases,
deadlines, breaches, the outbox backlog, dead letters, the matcher per shard, queue lengths) in a fixed number
of queries; the counters of events (reports received, scans and their latency), also added up over processes in
prometheus-client's multiprocess mode."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.models import BankEntry
from moderation import jobs
from moderation.models import Report, ReportedItem, WebhookDelivery
from moderation.services.claims import task_claim
from moderation.services.deadlines import deadlines_check
from moderation.services.metrics import metrics_page
from moderation.services.readiness import scheduler_heartbeat_write
from tests.conftest import make_image_bytes, notice_payload, redis_flushed_or_skip
from tests.faults.workers import celery_sends_to
from tests.moderation.console_helpers import make_case
from tests.moderation.observability_helpers import BROKER_DOWN, TOKEN, Samples, parse, scrape

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("TAKEDOWN_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def token(settings: Any) -> str:
    settings.TAKEDOWN_METRICS_TOKEN, settings.TAKEDOWN_METRICS_ALLOW = TOKEN, []
    return TOKEN


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


# --- who may scrape ----------------------------------------------------------------------------------------

def test_metrics_answer_404_when_neither_a_token_nor_an_allow_list_is_set(client: Client, settings: Any) -> None:
    settings.TAKEDOWN_METRICS_TOKEN, settings.TAKEDOWN_METRICS_ALLOW = "", []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-root"))
    assert client.get("/metrics").status_code == 404  # no login opens it either


def test_a_bearer_token_opens_metrics_and_a_missing_or_wrong_one_is_refused(client: Client, token: str) -> None:
    for refused in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Token {token}"},
                    {"Authorization": f"Bearer {token}x"}):
        response = client.get("/metrics", headers=refused)
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer"), refused
        assert b"takedown_" not in response.content
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"].startswith("max-age=0")
    samples = parse(response.content.decode())
    assert value(samples, "takedown_cases_open", status="received") == 0
    assert any(name.startswith("django_http_requests") for name, _labels in samples)  # django-prometheus'


def test_an_allow_list_admits_only_addresses_inside_it(client: Client, settings: Any) -> None:
    settings.TAKEDOWN_METRICS_TOKEN, settings.TAKEDOWN_METRICS_ALLOW = "", ["10.0.0.0/8", "2001:db8::/32"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    # X-Forwarded-For counts only through a trusted proxy (none here): a client cannot claim an address.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 403


def test_with_both_set_a_scrape_needs_the_token_and_an_allowed_address(client: Client, settings: Any) -> None:
    settings.TAKEDOWN_METRICS_TOKEN, settings.TAKEDOWN_METRICS_ALLOW = TOKEN, ["10.0.0.0/8"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", headers=bearer, REMOTE_ADDR="10.0.0.9").status_code == 200
    assert client.get("/metrics", headers=bearer, REMOTE_ADDR="192.0.2.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.9").status_code == 401


# --- what the database knows, read at scrape time ------------------------------------------------------------

def test_the_gauges_count_open_cases_deadlines_breaches_the_outbox_backlog_and_dead_letters(
        client: Client, token: str, moderator: User) -> None:
    now = timezone.now()
    make_case(hours_left=3)  # nobody holds it: 3 h left
    held = make_case(hours_left=1)  # a moderator holds it: 1 h left
    task_claim(task_id=held.pk, user=moderator)
    late = make_case(hours_left=-2)  # passed its deadline two hours ago; nobody holds it
    Report.objects.filter(pk=late.report_id).update(notice_complete_at=now - timedelta(hours=50))
    waiting = make_case(hours_left=None)
    Report.objects.filter(pk=waiting.report_id).update(status=Report.Status.NEEDS_INFORMATION)
    closed = make_case(hours_left=-5)  # closed cases count nowhere, past deadline or not
    Report.objects.filter(pk=closed.report_id).update(status=Report.Status.REMOVED)
    stuck = make_case(hours_left=40)  # an item never fetched, received an hour ago: the outbox's
    ReportedItem.objects.create(report_id=stuck.report_id, location="demo://content/77")
    Report.objects.filter(pk=stuck.report_id).update(received_at=now - timedelta(hours=1))
    fresh = make_case(hours_left=47)  # unfinished too, but within the grace period: not backlog yet
    ReportedItem.objects.create(report_id=fresh.report_id, location="demo://content/78")
    for n, status in enumerate([WebhookDelivery.Status.DEAD, WebhookDelivery.Status.DEAD,
                                WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.PENDING]):
        WebhookDelivery.objects.create(idempotency_key=f"k-{n}", event="content.remove", url="http://127.0.0.1:9",
                                       status=status)
    assert value(scrape(client), "takedown_deadline_breaches_total") == 0
    assert deadlines_check().escalations == [late.report.case_number]

    samples = scrape(client)
    assert {status: value(samples, "takedown_cases_open", status=status) for status in
            ("received", "needs_information", "in_review", "actioning")} == {
        "received": 5, "needs_information": 1, "in_review": 0, "actioning": 0}
    assert value(samples, "takedown_cases_overdue") == 1
    unclaimed = value(samples, "takedown_deadline_nearest_seconds", claimed="false")
    claimed = value(samples, "takedown_deadline_nearest_seconds", claimed="true")
    assert unclaimed is not None and -2 * 3600 - 60 < unclaimed < -2 * 3600 + 60  # the late one: negative
    assert claimed is not None and 3600 - 60 < claimed < 3600 + 60
    assert value(samples, "takedown_deadline_breaches_total") == 1
    assert value(samples, "takedown_outbox_backlog") == 1
    assert value(samples, "takedown_webhook_dead_letters") == 2
    assert value(samples, "takedown_scrape_collector_success", collector="database") == 1
    assert value(samples, "takedown_scheduler_heartbeat_age_seconds") is None  # no broker: no scheduler


def test_a_scrape_costs_the_same_few_queries_however_many_cases_there_are() -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            metrics_page(None)
        return len(captured)

    bank = bank_get_or_create(name="known")
    make_case(hours_left=5)
    bank_add_entries(bank=bank, hashes=[("pdq", "f" * 64)], source="test")
    queries()  # the match index is built by the first
    few = queries()
    for n in range(30):
        task = make_case(hours_left=n - 10)
        ReportedItem.objects.create(report_id=task.report_id, location=f"demo://content/{1000 + n}")
        WebhookDelivery.objects.create(idempotency_key=f"k-{n}", event="content.remove", url="http://127.0.0.1:9",
                                       status=WebhookDelivery.Status.DEAD)
    bank_add_entries(bank=bank, hashes=[("pdq", f"{n:064x}") for n in range(50)], source="test")
    queries()  # the new entries are applied to the index
    many = queries()
    assert many == few, (few, many)
    assert few <= 12, few  # 5 for the database part; the rest is the match index's refresh and status


def test_the_matcher_series_give_each_shard_its_index_size_and_staleness(client: Client, token: str) -> None:
    bank_add_entries(bank=bank_get_or_create(name="known"), hashes=[("pdq", f"{n:064x}") for n in range(1, 41)]
                     + [("phash", f"{n:016x}") for n in range(1, 6)], source="test")
    samples = scrape(client)
    assert value(samples, "takedown_matcher_up", shard="0") == 1
    assert value(samples, "takedown_matcher_stale_seconds", shard="0") == 0
    assert value(samples, "takedown_matcher_entries", shard="0", algorithm="pdq") == 40
    assert value(samples, "takedown_matcher_entries", shard="0", algorithm="phash") == 5
    with override_settings(TAKEDOWN_MATCH_SHARDS=2):
        sharded = scrape(client)
    per_shard = [value(sharded, "takedown_matcher_entries", shard=str(k), algorithm="pdq") for k in (0, 1)]
    assert None not in per_shard and sum(per_shard) == BankEntry.objects.filter(algorithm="pdq").count()  # type: ignore[arg-type]
    assert [value(sharded, "takedown_matcher_up", shard=str(k)) for k in (0, 1)] == [1, 1]


# --- the broker ------------------------------------------------------------------------------------------------

def test_queue_lengths_come_from_the_redis_broker_and_a_broker_that_is_down_leaves_them_out(
        client: Client, token: str) -> None:
    broker = redis_flushed_or_skip(BROKER_URL, "start it or set TAKEDOWN_TEST_BROKER_URL")
    scheduler_heartbeat_write(now=timezone.now() - timedelta(seconds=30))
    try:
        with celery_sends_to(BROKER_URL):
            jobs.media_process(1)
            jobs.media_process(2)
            jobs.scan_score(3)  # routed to the detection queue
            samples = scrape(client)
    finally:
        broker.flushdb()
    assert value(samples, "takedown_celery_queue_length", queue="default") == 2
    assert value(samples, "takedown_celery_queue_length", queue="detection") == 1
    assert value(samples, "takedown_scrape_collector_success", collector="broker") == 1
    age = value(samples, "takedown_scheduler_heartbeat_age_seconds")
    assert age is not None and 30 <= age < 90

    with celery_sends_to(BROKER_DOWN):
        down = scrape(client)
    assert value(down, "takedown_scrape_collector_success", collector="broker") == 0
    assert not [name for name, _labels in down if name == "takedown_celery_queue_length"]
    assert value(down, "takedown_cases_open", status="received") == 0  # the rest of the scrape still answers


def test_without_a_broker_there_are_no_queue_lengths(client: Client, token: str) -> None:
    samples = scrape(client)
    assert not [name for name, _labels in samples if name == "takedown_celery_queue_length"]
    assert value(samples, "takedown_scrape_collector_success", collector="broker") == 1


# --- counters of events ---------------------------------------------------------------------------------------

def test_reports_received_are_counted_by_source_and_scans_by_verdict_with_their_latency(
        client: Client, token: str, demo: Any, platform_key: str) -> None:
    before = scrape(client)
    api = APIClient()
    for _ in range(2):
        assert api.post("/api/v1/reports", notice_payload(), format="json").status_code == 201
    scans = Client(headers={"Authorization": f"Api-Key {platform_key}"})
    assert scans.post("/api/v1/scan", {"file": _upload(make_image_bytes(5))}).json()["verdict"] == "allow"
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert grew("takedown_reports_received_total", source="api") == 2
    assert grew("takedown_reports_received_total", source="web") == 0
    assert grew("takedown_scans_total", verdict="allow") == 1
    assert grew("takedown_scans_total", verdict="block") == 0
    assert grew("takedown_scan_duration_seconds_count", detection="async") == 1
    assert grew("takedown_scan_duration_seconds_sum", detection="async") > 0


def _upload(data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("upload.jpg", data, content_type="image/jpeg")


_MULTIPROCESS = """
import os, django
django.setup()
from moderation.observability import events
from moderation.services.metrics import metrics_page
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:  # a gunicorn worker that files a report, then exits
        events.report_received("web")
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(metrics_page(None)[0].decode())
"""


def test_in_multiprocess_mode_any_process_answers_with_every_process_counts(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "tests.settings", "PROMETHEUS_MULTIPROC_DIR": str(directory),
                # an empty database: the database part is left out of the scrape, and said so
                "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "TAKEDOWN_VAR_DIR": str(tmp_path)})
    done = subprocess.run([sys.executable, "-c", _MULTIPROCESS], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    samples = parse(done.stdout)
    assert value(samples, "takedown_reports_received_total", source="web") == 2  # two processes, one each
    assert value(samples, "takedown_scrape_collector_success", collector="database") == 0
    assert value(samples, "takedown_reports_received_total", source="api") == 0
    assert len(list(directory.glob("counter_*.db"))) == 3  # the parent's and each child's own file


def test_the_gunicorn_hooks_empty_the_multiprocess_directory_at_start_and_drop_an_exited_workers_live_gauges(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    (tmp_path / "counter_111.db").write_bytes(b"left by an earlier run")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    hooks["on_starting"](None)  # multiprocess mode off: nothing touched
    assert (tmp_path / "counter_111.db").exists()

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    hooks["on_starting"](None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    for name in ("gauge_livesum_222.db", "gauge_livesum_333.db", "counter_222.db"):
        (tmp_path / name).write_bytes(b"")
    hooks["child_exit"](None, SimpleNamespace(pid=222))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_222.db", "gauge_livesum_333.db", "notes.txt"]
