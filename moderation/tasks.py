"""Celery tasks: each takes ids, calls one service and owns its retries. All are idempotent."""

from __future__ import annotations

from typing import Any

from celery import Task, chain, shared_task
from django.db import DatabaseError, InterfaceError

from moderation.platforms import PlatformError
from moderation.services import enforcement, pipeline, sweep, triage

# Transient failures worth retrying with exponential backoff (a database restart, a platform outage).
TRANSIENT = (DatabaseError, InterfaceError, PlatformError, OSError)


def retrying_task(name: str, **extra: Any) -> Any:
    """``shared_task`` with our delivery rules: acknowledged after the work (a killed worker's task
    is redelivered), retried on transient errors with exponential backoff and jitter."""
    return shared_task(name=name, autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=300,
                       retry_jitter=True, max_retries=8, acks_late=True, reject_on_worker_lost=True, **extra)


@retrying_task("moderation.tasks.process_report")
def process_report(report_id: int) -> list[int]:
    """Fetch the report's items, then process each media item."""
    media_ids = pipeline.report_resolve(report_id)
    for media_id in media_ids:
        process_media.delay(media_id)
    if not media_ids:
        triage.report_triage(report_id)  # nothing to hash: still place the case in the queue
    return media_ids


@retrying_task("moderation.tasks.process_media")
def process_media(media_id: int) -> None:
    """Hash and match here, then score on the detection queue, then triage."""
    pipeline.media_hash_and_match(media_id)
    chain(score_media.si(media_id), triage_media.si(media_id)).apply_async()


@retrying_task("moderation.tasks.score_media")  # routed to the "detection" queue
def score_media(media_id: int) -> None:
    pipeline.media_score(media_id)


@retrying_task("moderation.tasks.triage_media")
def triage_media(media_id: int) -> None:
    for report_id in pipeline.reports_for_media(media_id):
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
    from moderation.services.notices import decision_followup as followup

    followup(decision_id=decision_id)


@retrying_task("moderation.tasks.deadlines_check")
def deadlines_check() -> None:
    from moderation.services.deadlines import deadlines_check as check

    check()


@retrying_task("moderation.tasks.dsa_submit")
def dsa_submit() -> None:
    from moderation.services.dsa import statements_submit

    statements_submit()


@retrying_task("moderation.tasks.media_purge")
def media_purge() -> None:
    from moderation.services.retention import media_purge as purge

    purge()


# Entry ids per sweep task: each task streams every stored media hash past these entries.
SWEEP_ENTRIES_PER_TASK = 10_000


def enqueue_retroactive_sweep(entry_ids: list[int]) -> None:
    """Called on commit when bank entries become active (``TAKEDOWN_BANK_ENTRIES_ADDED_HOOK``)."""
    for start in range(0, len(entry_ids), SWEEP_ENTRIES_PER_TASK):
        retroactive_sweep.delay(list(entry_ids[start:start + SWEEP_ENTRIES_PER_TASK]))


@retrying_task("moderation.tasks.retroactive_sweep")
def retroactive_sweep(entry_ids: list[int], after_id: int = 0) -> None:
    """Match stored media against new bank entries, a bounded number of batches per run, then go on."""
    progress = sweep.sweep_bank_entries(entry_ids=entry_ids, after_id=after_id)
    for media_id in sorted(progress.matched_media):
        triage_media.delay(media_id)
    if progress.next_after is not None:
        retroactive_sweep.delay(entry_ids, progress.next_after)
