"""Faults with the real services: a Celery worker SIGKILLed mid-task, and the broker down at submission.

Each test runs its own redis-server on a free port (never the machine's 6379) and real worker processes on
the test database.
"""

from __future__ import annotations

import logging
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from moderation.audit import audit_verify
from moderation.models import AuditEvent, Match, Media, MediaHash, Report, ReportedItem, ReviewTask
from moderation.services.outbox import unfinished_reports
from tests.conftest import make_image_bytes, notice_payload
from tests.faults.services import redis_server, wait_for
from tests.faults.workers import celery_sends_to, kill_hard, start_worker, stop

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def submit_with_images(api: APIClient, seeds: list[int]) -> str:
    payload = notice_payload(locations=[])
    payload["files"] = [SimpleUploadedFile(f"photo{seed}.jpg", make_image_bytes(seed=seed), content_type="image/jpeg")
                        for seed in seeds]
    response = api.post("/api/v1/reports", payload, format="multipart")
    assert response.status_code == 201, response.content
    return str(response.json()["case_number"])


def fully_processed(report: Report) -> bool:
    media = list(Media.objects.filter(reported_items__report=report))
    task = ReviewTask.objects.filter(report=report).first()
    return bool(media) and all(m.status == Media.Status.PROCESSED and m.detections.exists() for m in media) \
        and task is not None and task.triaged_at is not None


def assert_processed_once(report: Report, count: int) -> None:
    media_ids = list(Media.objects.filter(reported_items__report=report).values_list("id", flat=True))
    assert len(media_ids) == count
    for media_id in media_ids:
        hashed = AuditEvent.objects.filter(action="media.hashed", object_type="media", object_id=str(media_id))
        assert hashed.count() == 1, f"media {media_id} was recorded as hashed {hashed.count()} times"
        algorithms = list(MediaHash.objects.filter(media_id=media_id).values_list("algorithm", flat=True))
        assert len(algorithms) == len(set(algorithms)) >= 3
        assert AuditEvent.objects.filter(action="media.scored", object_id=str(media_id)).count() == 1
    pairs = list(Match.objects.filter(media_id__in=media_ids).values_list("media_hash_id", "bank_entry_id"))
    assert len(pairs) == len(set(pairs))
    verification = audit_verify()
    assert verification.ok, verification.problem


def test_a_worker_killed_mid_task_loses_nothing_and_a_new_worker_processes_every_item_once(
        tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    log = tmp_path / "worker.log"
    with redis_server() as broker, celery_sends_to(broker.url):
        # The first worker stops for 60 s inside the hash step of the first item it takes.
        doomed = start_worker(broker.url, log, slow_hash_seconds=60, marks=marks)
        try:
            case_number = submit_with_images(APIClient(), seeds=[11, 12, 13])
            report = Report.objects.get(case_number=case_number)
            wait_for(lambda: any(marks.iterdir()), "the worker to start hashing an item", timeout=90)
            kill_hard(doomed)  # SIGKILL to the worker and its pool child, mid-task
        finally:
            stop(doomed)
        assert Media.objects.filter(reported_items__report=report, status=Media.Status.PENDING).exists()
        # A new worker takes the killed worker's unacknowledged task back once its visibility timeout passes.
        survivor = start_worker(broker.url, log, CELERY_VISIBILITY_TIMEOUT="2")
        try:
            wait_for(lambda: fully_processed(report), "the new worker to process every item", timeout=120)
        except AssertionError:
            print(log.read_text()[-4000:])
            raise
        finally:
            stop(survivor)
    assert_processed_once(report, count=3)
    assert len(list(marks.iterdir())) == 1  # the killed worker got no further than the one hash step


def test_a_report_sent_while_the_broker_is_down_is_saved_and_processed_once_the_broker_is_back(
        tmp_path: Path, caplog: Any) -> None:
    log = tmp_path / "worker.log"
    with redis_server() as broker, celery_sends_to(broker.url):
        broker.stop()
        with caplog.at_level(logging.WARNING, logger="moderation.services.outbox"):
            case_number = submit_with_images(APIClient(), seeds=[21, 22])  # 201, never a 500
        report = Report.objects.get(case_number=case_number)
        assert Media.objects.filter(reported_items__report=report).count() == 2
        assert not Media.objects.filter(reported_items__report=report).exclude(status=Media.Status.PENDING).exists()
        warning = "\n".join(r.getMessage() for r in caplog.records)
        assert f"report {report.pk} left for the outbox sweeper" in warning
        assert [m.to for m in mail.outbox] == [["alex@example.org"]]  # the receipt, sent in the request instead
        assert "alex@example.org" not in caplog.text and "Alex" not in caplog.text

        # Still down: the sweep sends nothing and raises nothing.
        call_command("sweep_outbox", "--older-than", "0")
        broker.start()  # back, on the same port, empty: the first send never reached it
        worker = start_worker(broker.url, log)
        try:
            call_command("sweep_outbox", "--older-than", "0")
            wait_for(lambda: fully_processed(report), "the worker to process the swept report", timeout=120)
        except AssertionError:
            print(log.read_text()[-4000:])
            raise
        finally:
            stop(worker)
    assert_processed_once(report, count=2)


def test_the_sweeper_finds_unfinished_reports_but_not_fresh_or_finished_ones() -> None:
    case_number = submit_with_images(APIClient(), seeds=[31])  # eager in tests: processed before the answer
    report = Report.objects.get(case_number=case_number)
    later = timezone.now() + timedelta(seconds=1)
    assert unfinished_reports(older_than=later) == []
    Media.objects.filter(reported_items__report=report).update(status=Media.Status.PENDING)
    assert unfinished_reports(older_than=later) == [report.pk]
    assert unfinished_reports(older_than=report.received_at) == []  # still within the grace period
    Media.objects.filter(reported_items__report=report).update(status=Media.Status.PROCESSED)
    ReportedItem.objects.create(report=report, location="https://host.example/p/404")  # a link not yet fetched
    assert unfinished_reports(older_than=later) == [report.pk]  # beside an upload, whose location is empty


def test_a_pool_process_killed_mid_task_is_replaced_and_its_task_runs_again_at_once(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    log = tmp_path / "worker.log"
    with redis_server() as broker, celery_sends_to(broker.url):
        # Each hash step waits 3 s after announcing itself (a file named with the pool process's pid).
        worker = start_worker(broker.url, log, slow_hash_seconds=3, marks=marks)
        try:
            case_number = submit_with_images(APIClient(), seeds=[41])
            report = Report.objects.get(case_number=case_number)
            wait_for(lambda: any(marks.iterdir()), "the pool process to start hashing", timeout=90)
            child = int(next(marks.iterdir()).name.split("-")[2])
            assert child != worker.pid
            os.kill(child, signal.SIGKILL)  # the pool process alone: the worker's main process lives on
            # Redelivered by the main process at once (reject_on_worker_lost), far within the 600 s
            # visibility timeout that a whole lost worker waits for.
            try:
                wait_for(lambda: fully_processed(report), "the replacement pool process to finish", timeout=90)
            except AssertionError:
                print(log.read_text()[-4000:])
                raise
            assert worker.poll() is None
        finally:
            stop(worker)
    pids = {int(mark.name.split("-")[2]) for mark in marks.iterdir()}
    assert child in pids and len(pids) == 2  # the killed process, then its replacement
    assert_processed_once(report, count=1)
