"""Celery tasks: each takes ids, calls one service and owns its retries. All are idempotent.

Tasks are entry points: they import services, never the other way round. Work is put on the broker only
through ``moderation/jobs.py``, which names these tasks; keep a task's name when moving it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from moderation import http, jobs
from moderation.db_unavailable import UNAVAILABLE_ERRORS
from moderation.platforms import PlatformError
from moderation.services import (
    atproto_reports,
    deadlines,
    decisions,
    delayed_takedowns,
    dsa,
    enforcement,
    hma,
    intake,
    joining,
    outbox,
    pipeline,
    probe_training,
    readiness,
    retention,
    scan,
    sweep,
    triage,
)

logger = logging.getLogger(__name__)

# Transient failures worth retrying with exponential backoff: the database unreachable (OperationalError,
# InterfaceError: a restart, a failover), the platform unavailable, OSError (sockets, SMTP, timeouts) and the
# HTTP client's retryable errors. Anything else is a bug or a final refusal (an IntegrityError, a
# PlatformRefused, a 4xx): retrying it only repeats it, so the task fails at once.
TRANSIENT: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, PlatformError, OSError, http.Transient)


def retrying_task(name: str, **extra: Any) -> Any:
    """``shared_task`` with our delivery rules: acknowledged after the work (a killed worker's task
    is redelivered), retried on transient errors with exponential backoff and jitter."""
    return shared_task(name=name, autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=300,
                       retry_jitter=True, max_retries=8, acks_late=True, reject_on_worker_lost=True, **extra)


@retrying_task("moderation.tasks.process_report")
def process_report(report_id: int) -> list[int]:
    """Queue the receipt (once), fetch the report's items, then process each media item."""
    intake.receipt_queue(report_id)
    media_ids = pipeline.report_resolve(report_id)
    for media_id in media_ids:
        jobs.media_process(media_id)
    if not media_ids:
        triage.report_triage(report_id)  # nothing to hash: still place the case in the queue
    return media_ids


# Media tasks decode untrusted files: their own time limits (settings), and at the soft limit the media is
# marked unprocessable (or left unscored) and the case still goes to triage, so nothing waits for ever.
MEDIA_TIME_LIMITS = {"soft_time_limit": settings.TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT,
                     "time_limit": settings.TAKEDOWN_MEDIA_TASK_TIME_LIMIT}


@retrying_task("moderation.tasks.process_media", **MEDIA_TIME_LIMITS)
def process_media(media_id: int) -> None:
    """Hash and match here, then score on the detection queue, then triage."""
    try:
        pipeline.media_hash_and_match(media_id)
    except SoftTimeLimitExceeded:
        pipeline.media_out_of_time(media_id, seconds=settings.TAKEDOWN_MEDIA_TASK_SOFT_TIME_LIMIT)
    except MemoryError:
        pipeline.media_out_of_memory(media_id, megabytes=settings.TAKEDOWN_TASK_MEMORY_MB)
    jobs.media_score_then_triage(media_id)


@retrying_task("moderation.tasks.score_media", **MEDIA_TIME_LIMITS)  # routed to the "detection" queue
def score_media(media_id: int) -> None:
    try:
        pipeline.media_score(media_id)
    except SoftTimeLimitExceeded:  # the hashes stand; the case is triaged without a score
        logger.warning("scoring media %s stopped at the time limit", media_id)
    except MemoryError:  # the same: TAKEDOWN_TASK_MEMORY_MB (moderation/worker_limits.py)
        logger.warning("scoring media %s stopped at the worker's memory limit", media_id)


@retrying_task("moderation.tasks.triage_media")
def triage_media(media_id: int) -> None:
    for report_id in pipeline.reports_for_media(media_id):
        # A report whose media an open case already holds joins it (services/joining.py) before triage.
        joining.report_join_by_media(report_id)
        triage.report_triage(report_id)


class _ActionTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        enforcement.action_failed(int(args[0]), f"{type(exc).__name__}: {exc}")


@retrying_task("moderation.tasks.carry_out_action", base=_ActionTask)
def carry_out_action(action_id: int) -> None:
    enforcement.action_carry_out(action_id)


# --- Legal workflow (issue 7): follow-up of decisions and the beat schedule (settings.CELERY_BEAT_SCHEDULE).

@retrying_task("moderation.tasks.decision_followup")
def decision_followup(decision_id: int) -> None:
    """Copy sweep, statements of reasons and notices after a decision (each step idempotent)."""
    decisions.decision_followup(decision_id=decision_id)


@retrying_task("moderation.tasks.decisions_followup_batch")
def decisions_followup_batch(batch: str) -> None:
    """The same for decisions made together (a group, a bulk decision, a case and its joined reports)."""
    decisions.decisions_followup_batch(batch=batch)


@retrying_task("moderation.tasks.deadlines_check")
def deadlines_check() -> None:
    deadlines.deadlines_check()


@retrying_task("moderation.tasks.dsa_submit")
def dsa_submit() -> None:
    dsa.statements_submit()


@retrying_task("moderation.tasks.media_purge")
def media_purge() -> None:
    retention.media_purge()


@retrying_task("moderation.tasks.retroactive_sweep")
def retroactive_sweep(entry_ids: list[int], after_id: int = 0) -> None:
    """Match stored media against new bank entries, a bounded number of batches per run, then go on."""
    progress = sweep.sweep_bank_entries(entry_ids=entry_ids, after_id=after_id)
    jobs.media_triage(sorted(progress.matched_media))
    if progress.next_after is not None:
        jobs.retroactive_sweep(entry_ids, progress.next_after)


# --- Faults (issue 9): reports saved while the broker was down are sent again by this beat task.

@retrying_task("moderation.tasks.send_receipt")
def send_receipt(report_id: int) -> None:
    """The "we received your report" email, off the request path (smtplib errors are OSErrors: retried)."""
    intake.receipt_send(report_id)


@retrying_task("moderation.tasks.outbox_sweep")
def outbox_sweep() -> int:
    return len(outbox.outbox_sweep())


# --- Scan API (issue 9): detection runs here, off the request; the request hashed and matched already.

@retrying_task("moderation.tasks.score_scan", **MEDIA_TIME_LIMITS)  # routed to the "detection" queue
def score_scan(ticket_id: int) -> None:
    try:
        scan.scan_score(ticket_id)
    except SoftTimeLimitExceeded:  # the verdict of the hashes stands; the bytes are deleted
        scan.scan_unscored(ticket_id, note="Scoring this image ran out of time; the verdict of the hashes stands.")
    except MemoryError:
        scan.scan_unscored(ticket_id, note="Scoring this image needed more memory than a worker may use; "
                                           "the verdict of the hashes stands.")


@retrying_task("moderation.tasks.scan_sweep")
def scan_sweep() -> None:
    scan.scan_sweep()


@retrying_task("moderation.tasks.items_refetch")
def items_refetch() -> None:
    """Fetch again the "platform unavailable" items that are due (beat, every minute; backoff per item)."""
    for report_id in pipeline.items_refetch_due():
        jobs.report_process(report_id)


@retrying_task("moderation.tasks.atproto_reports_sync")
def atproto_reports_sync() -> dict[str, int]:
    """In-app AT Protocol reports from Ozone become cases; closed cases close their reports there (beat)."""
    return asdict(atproto_reports.ozone_reports_sync())


@retrying_task("moderation.tasks.hma_reenable")
def hma_reenable() -> int:
    """Re-enable HMA contents whose "disabled until" time has passed (beat, every minute; docs/hma.md)."""
    return hma.hma_reenable_due()


@retrying_task("moderation.tasks.delayed_takedowns_release")
def delayed_takedowns_release() -> list[int]:
    """Carry out delayed takedowns whose time has come (beat, every minute; services/delayed_takedowns.py)."""
    return delayed_takedowns.delayed_takedowns_release()


@shared_task(name="moderation.tasks.scheduler_heartbeat", ignore_result=True)
def scheduler_heartbeat() -> None:
    """Beat's heartbeat (``CELERY_BEAT_SCHEDULE``): ``/readyz`` names the scheduler when it stops. Not retried:
    the next beat writes a newer one."""
    readiness.scheduler_heartbeat_write()


@retrying_task("moderation.tasks.probe_retrain")
def probe_retrain() -> str | None:
    """Train a shadow candidate of the embedding probe when enough new cases were confirmed (beat, weekly by
    default: TAKEDOWN_PROBE_RETRAIN_SECONDS). Returns the candidate's version, or None when skipped."""
    row = probe_training.probe_retrain()
    return row.version if row else None
