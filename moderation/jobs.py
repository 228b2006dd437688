"""The one place that puts work on the broker.

Services, tasks and the other apps ask for work here by what it is (``jobs.report_process(report_id)``);
this module sends the task by its name, so nothing imports a tasks module to enqueue and calls go one way
(views, API, commands and tasks call services; services call this module; no module below the tasks
imports them). The names are the contract with the tasks modules (``moderation/tasks.py``,
``hashing/tasks.py``, ``exchange/tasks.py``): renaming a task means renaming it here too, and
``tests/moderation/test_jobs.py`` checks that every name below is a registered task.

Two kinds of send:
- :func:`send` raises the broker's error. Callers send after their transaction commits
  (``transaction.on_commit``), so a saved record is never rolled back by a broker outage.
- :func:`send_or_defer` logs a broker error and returns False, leaving the work to the outbox: the
  database itself records unfinished work (a report not yet processed, a scan not yet scored) and the beat
  tasks ``outbox_sweep`` and ``scan_sweep`` pick it up again (``services/outbox.py``, ``services/scan.py``).
  A saved report or scan is never answered with a 500 because the broker is down.

Every task is idempotent, so a job sent twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import chain, current_app
from celery.canvas import Signature
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a send raises when the broker is down or refuses: kombu's OperationalError (a KombuError), the
# redis client's own errors (ConnectionError, TimeoutError) and plain socket errors (OSError).
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, RedisError, OSError)

# Task names. The tasks keep the names they were first deployed with: queued messages and beat
# schedules name them.
PROCESS_REPORT = "moderation.tasks.process_report"
PROCESS_MEDIA = "moderation.tasks.process_media"
SCORE_MEDIA = "moderation.tasks.score_media"
TRIAGE_MEDIA = "moderation.tasks.triage_media"
CARRY_OUT_ACTION = "moderation.tasks.carry_out_action"
DECISION_FOLLOWUP = "moderation.tasks.decision_followup"
DECISIONS_FOLLOWUP_BATCH = "moderation.tasks.decisions_followup_batch"
RETROACTIVE_SWEEP = "moderation.tasks.retroactive_sweep"
SEND_RECEIPT = "moderation.tasks.send_receipt"
SCORE_SCAN = "moderation.tasks.score_scan"
TASK_NAMES = (PROCESS_REPORT, PROCESS_MEDIA, SCORE_MEDIA, TRIAGE_MEDIA, CARRY_OUT_ACTION, DECISION_FOLLOWUP,
              DECISIONS_FOLLOWUP_BATCH, RETROACTIVE_SWEEP, SEND_RECEIPT, SCORE_SCAN)

# Bank entry ids per retroactive sweep task: each task streams every stored media hash past these entries.
SWEEP_ENTRIES_PER_TASK = 10_000


def signature(name: str, *args: object) -> Signature:
    """The task ``name`` with ``args``, immutable (a chain does not pass results along).

    A process that has not imported the tasks modules (a web process) imports them once here, as a
    worker's autodiscovery does, so eager mode (``CELERY_TASK_ALWAYS_EAGER``) runs them in-process and
    routing and retry options are the task's own.
    """
    app = current_app
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.signature(name, args=args, immutable=True)


def send(name: str, *args: object) -> None:
    """Send the task now. A broker error propagates."""
    signature(name, *args).apply_async()


def send_or_defer(name: str, *args: object, what: str, object_id: int) -> bool:
    """Send the task; on a broker error log it (ids and the exception class only, never personal data) and
    return False, leaving the work to the outbox sweepers."""
    try:
        send(name, *args)
    except BROKER_ERRORS as exc:
        logger.warning("broker unavailable: %s %s left for the outbox sweeper (%s)", what, object_id,
                       type(exc).__name__)
        return False
    return True


# --- Named jobs: what the rest of the code asks for ------------------------------------------------------

def report_process(report_id: int) -> bool:
    """Fetch, hash, match, score and triage a report (False: the broker is down, the outbox has it)."""
    return send_or_defer(PROCESS_REPORT, report_id, what="report", object_id=report_id)


def receipt_send(report_id: int) -> bool:
    """The "we received your report" email, from a worker (False: the broker is down)."""
    return send_or_defer(SEND_RECEIPT, report_id, what="receipt", object_id=report_id)


def scan_score(ticket_id: int) -> bool:
    """Score a pending scan on the detection queue (False: the broker is down; ``scan_sweep`` expires it)."""
    return send_or_defer(SCORE_SCAN, ticket_id, what="scan", object_id=ticket_id)


def media_process(media_id: int) -> None:
    send(PROCESS_MEDIA, media_id)


def media_score_then_triage(media_id: int) -> None:
    """Score on the detection queue, then re-triage the media's cases, in that order."""
    chain(signature(SCORE_MEDIA, media_id), signature(TRIAGE_MEDIA, media_id)).apply_async()


def media_triage(media_ids: Iterable[int]) -> None:
    """Re-rank the cases that contain these media (new evidence: a match, a partner's verdict)."""
    for media_id in media_ids:
        send(TRIAGE_MEDIA, media_id)


def actions_carry_out(action_ids: Iterable[int]) -> None:
    """Carry out removals and restorations on the platform, each retried by its task until done."""
    for action_id in action_ids:
        send(CARRY_OUT_ACTION, action_id)


def decision_followup(decision_id: int) -> None:
    """The copy sweep, statements of reasons and notices that follow a committed decision."""
    send(DECISION_FOLLOWUP, decision_id)


def decisions_followup_batch(batch: str) -> None:
    """The follow-up of decisions made together: one message per uploader for the whole batch."""
    send(DECISIONS_FOLLOWUP_BATCH, batch)


def retroactive_sweep(entry_ids: list[int], after_id: int = 0) -> None:
    send(RETROACTIVE_SWEEP, list(entry_ids), after_id)


def retroactive_sweep_enqueue(entry_ids: list[int]) -> None:
    """Match stored media against bank entries that just became active, in tasks of a bounded size.

    The ``TAKEDOWN_BANK_ENTRIES_ADDED_HOOK`` (``hashing/banks.py`` calls it on commit)."""
    for start in range(0, len(entry_ids), SWEEP_ENTRIES_PER_TASK):
        retroactive_sweep(list(entry_ids[start:start + SWEEP_ENTRIES_PER_TASK]))
