"""The request id: taken from a sane X-Request-ID or made, returned, in every log line (JSON by default), carried
in the headers of the tasks a request enqueues and bound while a worker runs them, and stored with every audit
event the request causes, which still verify alongside events written before the field existed."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils.module_loading import import_string

from moderation import jobs
from moderation.audit import audit_record, audit_verify
from moderation.celery import app as celery_app
from moderation.models import AuditEvent, Report
from moderation.observability.request_id import RequestIdFilter, request_id_bound, request_id_get
from tests.conftest import notice_payload
from tests.faults.workers import celery_sends_to
from tests.moderation.observability_helpers import BROKER_DOWN

ROOT = Path(__file__).resolve().parents[2]
MADE = re.compile(r"[0-9a-f]{32}")


def test_a_sane_incoming_request_id_is_kept_and_returned(client: Client) -> None:
    for sane in ("req-1234abcd", "3f2a9c1e-7b7d-4d0e-9a51-0c7f5e0b2d11", "Root=1-67891233+abc/def=="):
        assert client.get("/healthz", headers={"X-Request-ID": sane})["X-Request-ID"] == sane


@pytest.mark.parametrize("insane", ["", "short", "a" * 129, "alex@example.org", "two words here",
                                    "line\nbreak-0001", "<script>alert(1)</script>"])
def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(client: Client, insane: str) -> None:
    headers = {"X-Request-ID": insane} if insane else {}
    first = client.get("/healthz", headers=headers)["X-Request-ID"]
    second = client.get("/healthz", headers=headers)["X-Request-ID"]
    assert MADE.fullmatch(first) and MADE.fullmatch(second) and first != second


@pytest.fixture
def console_output() -> Iterator[io.StringIO]:
    """What the configured console handler writes, as settings.LOGGING set it up."""
    celery_app.loader.import_default_modules()  # (it reconfigures logging once: before the capture, not during)
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_every_log_line_is_one_json_object_with_time_level_logger_message_and_the_request_id(
        client: Client, console_output: io.StringIO) -> None:
    assert settings.TAKEDOWN_LOG_FORMAT == "json"
    with celery_sends_to(BROKER_DOWN):  # /readyz logs a warning that the broker cannot be reached
        response = client.get("/readyz", headers={"X-Request-ID": "probe-0001-abcd"})
    assert response.status_code == 503
    lines = [json.loads(line) for line in console_output.getvalue().splitlines()]
    assert lines, "nothing was logged"
    line = next(line for line in lines if line["logger"] == "moderation.services.readiness")
    assert line["level"] == "WARNING" and "the broker cannot be reached" in line["message"]
    assert line["request_id"] == "probe-0001-abcd" == response["X-Request-ID"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", line["time"])
    logging.getLogger("moderation.test").warning("after the request")
    assert json.loads(console_output.getvalue().splitlines()[-1])["request_id"] is None


def test_the_plain_format_shows_the_request_id_or_a_dash() -> None:
    formatter = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"])
    given = RequestIdFilter(missing="-")

    def line(message: str) -> str:
        record = logging.LogRecord("moderation.test", logging.INFO, __file__, 1, message, None, None)
        given.filter(record)
        return formatter.format(record)

    with request_id_bound("plain-0001-abcd"):
        assert line("inside").endswith("INFO moderation.test [plain-0001-abcd] inside")
    assert line("outside").endswith("INFO moderation.test [-] outside")


def test_logs_are_json_unless_debug_is_on_or_plain_is_asked_for_and_nothing_else_is_accepted(tmp_path: Path) -> None:
    code = "import django; from django.conf import settings; django.setup(); print(settings.TAKEDOWN_LOG_FORMAT)"

    def log_format(**env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("DJANGO_", "TAKEDOWN_LOG"))}
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**clean, "DJANGO_SETTINGS_MODULE": "moderation.settings", "SECRET_KEY": "k" * 50,
                                   "TAKEDOWN_VAR_DIR": str(tmp_path), **env})

    assert log_format().stdout.strip() == "json"
    assert log_format(DJANGO_DEBUG="1").stdout.strip() == "plain"
    assert log_format(TAKEDOWN_LOG_FORMAT="plain").stdout.strip() == "plain"
    refused = log_format(TAKEDOWN_LOG_FORMAT="xml")
    assert refused.returncode != 0 and "TAKEDOWN_LOG_FORMAT must be json or plain" in refused.stderr


def test_tasks_enqueued_while_serving_a_request_carry_its_id_in_their_headers() -> None:
    with celery_sends_to("memory://"):
        with request_id_bound("req-abcdef12"):
            jobs.media_process(42)  # through jobs, as the services enqueue (default queue)
            jobs.scan_score(7)  # routed to the detection queue
        jobs.media_process(43)  # outside a request: no id
        with celery_app.connection_for_read() as connection:
            got = []
            for queue_name in ("default", "default", "detection"):
                queue = connection.SimpleQueue(queue_name)
                message = queue.get(timeout=1)
                got.append((message.headers["task"], message.headers.get("request_id")))
                message.ack()
                queue.close()
    assert got == [(jobs.PROCESS_MEDIA, "req-abcdef12"), (jobs.PROCESS_MEDIA, None),
                   (jobs.SCORE_SCAN, "req-abcdef12")]


class _Task:
    """What the task signals are sent with: a task whose request holds the message's custom headers."""

    def __init__(self, **headers: str) -> None:
        self.request = SimpleNamespace(**headers)


def test_a_worker_binds_the_id_from_the_task_headers_while_the_task_runs_and_unbinds_it_after() -> None:
    task = _Task(request_id="worker-req-0001")
    assert request_id_get() is None
    task_prerun.send(sender=task, task_id="t-1", task=task, args=(), kwargs={})
    assert request_id_get() == "worker-req-0001"
    task_postrun.send(sender=task, task_id="t-1", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")
    assert request_id_get() is None

    untagged = _Task()  # a beat task, or one run eagerly inside a request
    with request_id_bound("outer-req-0001"):
        task_prerun.send(sender=untagged, task_id="t-2", task=untagged, args=(), kwargs={})
        assert request_id_get() == "outer-req-0001"
        task_postrun.send(sender=untagged, task_id="t-2", task=untagged, args=(), kwargs={}, retval=None,
                          state="SUCCESS")
        assert request_id_get() == "outer-req-0001"


@pytest.mark.django_db(transaction=True)  # the pipeline starts on commit, inside the request
def test_audit_events_record_the_request_that_caused_them_and_old_and_new_events_verify(demo: object) -> None:
    before = audit_record(actor="system", action="test.event", object_type="thing", object_id=1)
    created = Client().post("/api/v1/reports", notice_payload(), content_type="application/json",
                            headers={"X-Request-ID": "intake-req-0001"})
    assert created.status_code == 201, created.content
    report = Report.objects.get(case_number=created.json()["case_number"])
    after = audit_record(actor="system", action="test.event", object_type="thing", object_id=2)

    caused = AuditEvent.objects.filter(id__gt=before.pk, id__lt=after.pk)
    assert caused.filter(action="report.received", object_id=str(report.pk)).exists()
    # The pipeline's tasks ran eagerly inside the request: their events carry its id too.
    assert {"report.received", "media.hashed"} <= set(caused.values_list("action", flat=True))
    assert set(caused.values_list("request_id", flat=True)) == {"intake-req-0001"}
    assert AuditEvent.objects.get(pk=before.pk).request_id is None
    assert AuditEvent.objects.get(pk=after.pk).request_id is None

    assert audit_verify().ok
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert f"{AuditEvent.objects.count()} events verified" in out.getvalue()


def test_the_json_formatter_is_the_one_settings_configure() -> None:
    config = dict(settings.LOGGING["formatters"]["json"])
    formatter = import_string(config.pop("()"))(**config)
    record = logging.LogRecord("moderation.test", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
    record.request_id = "fmt-req-0001"
    record.request = object()  # Django's request log lines carry the request: never written out
    line = json.loads(formatter.format(record))
    assert {k: line[k] for k in ("level", "logger", "message", "request_id")} == {
        "level": "ERROR", "logger": "moderation.test", "message": "boom x", "request_id": "fmt-req-0001"}
    assert "request" not in line
