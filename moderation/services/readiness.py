"""What ``/readyz`` checks: the match index (``hashing.shards.matcher_readiness``), the broker and the scheduler.

- **Broker.** With a broker configured, one connection to it, given ``CELERY_BROKER_CONNECTION_TIMEOUT``
  seconds (2) and no retry: a broker that is down is reported at once.
- **Scheduler.** Celery beat sends the task ``scheduler_heartbeat`` every
  ``TAKEDOWN_SCHEDULER_HEARTBEAT_SECONDS``; the worker that runs it writes the time to the database
  (:class:`~moderation.models.Heartbeat`, so every web process sees it, whatever the cache). A heartbeat
  older than ``TAKEDOWN_SCHEDULER_STALE_SECONDS`` means beat, or every worker of the default queue, has
  stopped: deadline reminders, the outbox sweeper and the scan sweeper are not running. A heartbeat never
  written is waited for that long after the web process started (a new installation), then reported too.
- Without a broker (tasks run eagerly in-process, the embedded default) both are reported as not used.

A failing check makes ``/readyz`` answer 503 and name it in ``reasons``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from hashing.shards import matcher_readiness
from moderation.jobs import BROKER_ERRORS
from moderation.models import Heartbeat

logger = logging.getLogger(__name__)

SCHEDULER = "scheduler"
NOT_USED = {"status": "not used", "detail": "no broker: tasks run in-process"}
_PROCESS_STARTED = time.monotonic()


def broker_in_use() -> bool:
    return not current_app.conf.task_always_eager


def scheduler_heartbeat_write(*, now: datetime | None = None) -> None:
    """The beat task's one write (``moderation.tasks.scheduler_heartbeat``)."""
    Heartbeat.objects.update_or_create(name=SCHEDULER, defaults={"beat_at": now or timezone.now()})


def scheduler_heartbeat_age(*, now: datetime | None = None) -> float | None:
    """Seconds since the scheduler's last heartbeat; None when it never beat."""
    beat_at = Heartbeat.objects.filter(name=SCHEDULER).values_list("beat_at", flat=True).first()
    return None if beat_at is None else ((now or timezone.now()) - beat_at).total_seconds()


def broker_check() -> dict[str, Any]:
    if not broker_in_use():
        return dict(NOT_USED)
    app = current_app
    try:
        with app.connection_for_write(connect_timeout=app.conf.broker_connection_timeout) as connection:
            connection.ensure_connection(max_retries=0)
    except BROKER_ERRORS as exc:
        logger.warning("readiness: the broker cannot be reached (%s)", type(exc).__name__)
        return {"status": "unavailable", "error": f"the broker cannot be reached ({type(exc).__name__})"}
    return {"status": "ready"}


def scheduler_check(*, now: datetime | None = None) -> dict[str, Any]:
    if not broker_in_use():
        return dict(NOT_USED)
    limit = settings.TAKEDOWN_SCHEDULER_STALE_SECONDS
    try:
        age = scheduler_heartbeat_age(now=now)
    except DatabaseError:
        logger.exception("readiness: the scheduler's heartbeat cannot be read")
        return {"status": "unavailable", "error": "the scheduler's heartbeat cannot be read from the database"}
    if age is None:
        if time.monotonic() - _PROCESS_STARTED <= limit:
            return {"status": "waiting", "detail": "no heartbeat yet; waiting for celery beat's first",
                    "max_age_seconds": limit}
        return {"status": "unavailable", "max_age_seconds": limit,
                "error": f"no scheduler heartbeat in {limit} s: is celery beat running, and a worker on the "
                         f"default queue?"}
    if age > limit:
        return {"status": "stale", "heartbeat_age_seconds": round(age, 1), "max_age_seconds": limit,
                "error": f"the scheduler's last heartbeat is {age:.0f} s old (more than {limit} s): "
                         f"is celery beat running, and a worker on the default queue?"}
    return {"status": "ready", "heartbeat_age_seconds": round(age, 1), "max_age_seconds": limit}


_FINE = ("ready", "waiting", "not used")


def readiness() -> tuple[bool, dict[str, Any]]:
    """``/readyz``: the match index's report (its keys at the top, as before), with ``broker`` and
    ``scheduler`` beside it and, when something fails, ``reasons`` naming each failing check."""
    matcher_ready, body = matcher_readiness()
    broker, scheduler = broker_check(), scheduler_check()
    reasons = [] if matcher_ready else [f"matcher: {body.get('error') or body['status']}"]
    reasons += [f"{name}: {check.get('error', check['status'])}" for name, check
                in (("broker", broker), ("scheduler", scheduler)) if check["status"] not in _FINE]
    ready = not reasons
    status = "ready" if ready else (body["status"] if not matcher_ready else "unavailable")
    body = {**body, "status": status, "broker": broker, "scheduler": scheduler}
    if reasons:
        body["reasons"] = reasons
    return ready, body
