"""``/metrics``: the page, and the gauges read when it is scraped.

Three kinds of series (every one is listed in docs/operations.md "Metrics", with alert rules):

- HTTP and database series from django-prometheus (``django_http_*``, ``django_db_*``), and Python's
  ``process_*``/``python_*``;
- counters of events, kept by the process where they happen (``moderation/observability/events.py``);
- what the database, the match index and the broker know, read at scrape time by :class:`StateCollector`, so
  each scrape sees the same whichever process answers. Its queries are few, fixed in number and indexed
  (``tests/moderation/test_metrics.py`` counts them); each part that cannot be read (database, matcher,
  broker) is left out of that scrape, logged, and reported as 0 in ``takedown_scrape_collector_success``.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn with several workers) the counters and django-prometheus'
series come from every worker's files (prometheus-client's multiprocess mode), not from this process alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hashing.shards import matcher_readiness, shard_count, shard_queue
from moderation.jobs import BROKER_ERRORS
from moderation.models import AuditEvent, Report, ReviewTask, WebhookDelivery
from moderation.services.deadlines import OPEN_STATUSES
from moderation.services.outbox import unfinished_report_count
from moderation.services.readiness import broker_in_use, scheduler_heartbeat_age

logger = logging.getLogger(__name__)

# Cases not closed: the legal clock runs (OPEN_STATUSES), or waits for the notice to be completed.
CASE_OPEN_STATUSES = (*OPEN_STATUSES, Report.Status.NEEDS_INFORMATION)
# A scrape asks matcher shards for their state with this timeout (a search's is longer; a scrape must not
# hang on a shard that is down).
SHARD_STATUS_TIMEOUT_SECONDS = 2.0
# What leaves a part out of one scrape: the database or the broker cannot be read.
_PART_ERRORS: tuple[type[BaseException], ...] = (DatabaseError, *BROKER_ERRORS)


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class StateCollector(Collector):
    """The gauges read from the database, the match index and the broker when ``/metrics`` is scraped."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        success = _gauge("takedown_scrape_collector_success",
                         "1 when this part of the scrape-time metrics could be read, else 0.", ["collector"])
        parts: list[tuple[str, Callable[[datetime], list[Metric]]]] = [
            ("database", self._database), ("matcher", self._matcher), ("broker", self._broker)]
        now = self.now or timezone.now()
        for name, part in parts:
            try:
                metrics = part(now)
            except _PART_ERRORS as exc:
                logger.warning("metrics: the %s part cannot be read (%s)", name, type(exc).__name__)
                success.add_metric([name], 0)
                continue
            success.add_metric([name], 1)
            yield from metrics
        yield success

    # --- database: cases, deadlines, backlogs, dead letters, the scheduler's heartbeat ---------------------
    def _database(self, now: datetime) -> list[Metric]:
        rows = (Report.objects.filter(status__in=CASE_OPEN_STATUSES).values("status")
                .annotate(cases=Count("id"), overdue=Count("id", filter=Q(deadline_at__lt=now))).order_by())
        by_status = {row["status"]: (int(row["cases"]), int(row["overdue"])) for row in rows}
        cases = _gauge("takedown_cases_open", "Cases not yet closed, by status.", ["status"])
        for status in CASE_OPEN_STATUSES:
            cases.add_metric([status], by_status.get(status, (0, 0))[0])
        overdue = _gauge("takedown_cases_overdue", "Open cases past their removal deadline.")
        overdue.add_metric([], sum(late for _open, late in by_status.values()))

        held = ReviewTask.objects.filter(report=OuterRef("pk"), kind=ReviewTask.Kind.REPORT, assignee__isnull=False,
                                         state__in=(ReviewTask.State.CLAIMED, ReviewTask.State.ESCALATED),
                                         lease_expires_at__gte=now)
        nearest = _gauge("takedown_deadline_nearest_seconds",
                         "Seconds to the nearest removal deadline of an open case (negative: passed), by whether "
                         "a moderator holds the case (claimed) or nobody does.", ["claimed"])
        for row in (Report.objects.filter(status__in=OPEN_STATUSES, deadline_at__isnull=False)
                    .annotate(claimed=Exists(held)).values("claimed").annotate(deadline=Min("deadline_at"))
                    .order_by()):
            nearest.add_metric(["true" if row["claimed"] else "false"], (row["deadline"] - now).total_seconds())

        breaches = CounterMetricFamily("takedown_deadline_breaches",
                                       "Cases escalated for passing their removal deadline (audit events "
                                       "deadline.breached), since the audit log began.")
        breaches.add_metric([], AuditEvent.objects.filter(action="deadline.breached").count())
        backlog = _gauge("takedown_outbox_backlog",
                         "Reports older than TAKEDOWN_OUTBOX_GRACE_SECONDS whose processing has not finished "
                         "(the outbox sweeper sends them again).")
        grace = timedelta(seconds=settings.TAKEDOWN_OUTBOX_GRACE_SECONDS)
        backlog.add_metric([], unfinished_report_count(older_than=now - grace))
        dead = _gauge("takedown_webhook_dead_letters", "Webhook deliveries that failed for good (replay them).")
        dead.add_metric([], WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).count())
        metrics: list[Metric] = [cases, overdue, nearest, breaches, backlog, dead]
        if broker_in_use():
            age = scheduler_heartbeat_age(now=now)
            if age is not None:
                beat = _gauge("takedown_scheduler_heartbeat_age_seconds",
                              "Seconds since celery beat's heartbeat task last ran.")
                beat.add_metric([], age)
                metrics.append(beat)
        return metrics

    # --- the match index: this process's, or every shard's --------------------------------------------------
    def _matcher(self, now: datetime) -> list[Metric]:
        _ready, body = matcher_readiness(timeout=SHARD_STATUS_TIMEOUT_SECONDS)
        states: list[dict[str, Any]] = body["shards"] if "shards" in body else [{"shard": 0, **body}]
        up = _gauge("takedown_matcher_up", "1 when the matcher (shard) answered and its index is built.", ["shard"])
        stale = _gauge("takedown_matcher_stale_seconds",
                       "Age of the oldest bank change the matcher (shard) has not applied (0: fresh).", ["shard"])
        entries = _gauge("takedown_matcher_entries", "Bank entries in the matcher's (shard's) index.",
                         ["shard", "algorithm"])
        for state in states:
            shard = str(state["shard"])
            built = bool(state.get("built")) and state["status"] != "unavailable"
            up.add_metric([shard], 1 if built else 0)
            if built:
                stale.add_metric([shard], float(state["stale_seconds"]))
                for algorithm, count in sorted(state["entries"].items()):
                    entries.add_metric([shard, algorithm], count)
        return [up, stale, entries]

    # --- the broker: messages waiting in each queue (Redis) ---------------------------------------------------
    def _broker(self, now: datetime) -> list[Metric]:
        if not broker_in_use():
            return []
        app = current_app
        lengths = _gauge("takedown_celery_queue_length", "Messages waiting in a Celery queue (not yet taken by a "
                                                         "worker).", ["queue"])
        with app.connection_for_read(connect_timeout=app.conf.broker_connection_timeout) as connection:
            connection.ensure_connection(max_retries=0)
            if connection.transport.driver_type != "redis":
                return []
            channel: Any = connection.default_channel
            for queue in queue_names():
                # On Redis a declaration creates nothing; it answers the queue's length over its priority lists.
                lengths.add_metric([queue], channel.queue_declare(queue=queue, passive=False).message_count)
        return [lengths]


def queue_names() -> list[str]:
    """Every queue tasks are routed to: the default, the routes' (``CELERY_TASK_ROUTES``), the matcher shards'."""
    conf = current_app.conf
    names = {conf.task_default_queue}
    routes = conf.task_routes or {}
    if isinstance(routes, dict):
        names |= {route["queue"] for route in routes.values() if isinstance(route, dict) and route.get("queue")}
    names |= {queue.name for queue in conf.task_queues or ()}
    if shard_count() > 1:
        names |= {shard_queue(k) for k in range(shard_count())}
    return sorted(names)


def metrics_page(accept: str | None) -> tuple[bytes, str]:
    """The exposition (Prometheus text, or OpenMetrics when asked) and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every process's counters, from their files
    else:
        registry.register(REGISTRY)  # this process's counters (a registry is a collector of its collectors)
    registry.register(StateCollector())
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
