"""SLA figures: time to first claim, to decision and to the action on the platform, per queue and source.

Every time here is fixed by moving the clock (``travel``), never by waiting.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from moderation.models import Action, Decision, Report, ReviewTask
from moderation.selectors.sla import percentile, sla_figures
from moderation.services import claims
from moderation.services.transparency import report_as_csv, transparency_report
from tests.moderation.console_helpers import make_case

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@contextmanager
def travel(when: datetime) -> Iterator[None]:
    """Django's clock (``timezone.now``, which ``auto_now_add`` fields also read) stands at ``when``."""
    with mock.patch("django.utils.timezone.now", return_value=when):
        yield


def _decide(task: ReviewTask, *, at: datetime, acted_at: datetime | None = None, automated: bool = False,
            user: User | None = None) -> Decision:
    with travel(at):
        decision = Decision.objects.create(task=task, report=task.report, outcome=Decision.Outcome.TAKEDOWN,
                                           reason=Decision.Reason.NCII, decided_by=user, automated=automated)
    if acted_at is not None:
        Action.objects.create(decision=decision, item=task.report.items.get(), kind=Action.Kind.REMOVE,
                              enforcer="demo", status=Action.Status.DONE, idempotency_key=f"sla-{decision.pk}",
                              completed_at=acted_at)
    return decision


def _claim(task: ReviewTask, user: User, *, at: datetime) -> None:
    with travel(at):
        claims.task_claim(task_id=task.pk, user=user)


@pytest.fixture
def worked(moderator: User, other_moderator: User) -> dict[str, ReviewTask]:
    """Four cases entered the queue at T0:
    - web report: claimed after 1 h, decided after 3 h, removed on the platform after 5 h;
    - API report: claimed after 2 h, decided after 10 h, nothing removed;
    - web report: never claimed;
    - an appeal (of the first case): claimed after 30 min, decided after 1 h."""
    with travel(T0):
        web = make_case(source=Report.Source.WEB)
        api = make_case(source=Report.Source.API)
        make_case(source=Report.Source.WEB)
        appeal = ReviewTask.objects.create(report=web.report, kind=ReviewTask.Kind.APPEAL)
    _claim(web, moderator, at=T0 + timedelta(hours=1))
    _claim(api, other_moderator, at=T0 + timedelta(hours=2))
    _claim(appeal, other_moderator, at=T0 + timedelta(minutes=30))
    _decide(web, at=T0 + timedelta(hours=3), acted_at=T0 + timedelta(hours=5), user=moderator)
    _decide(api, at=T0 + timedelta(hours=10), user=other_moderator)
    _decide(appeal, at=T0 + timedelta(hours=1), user=other_moderator)
    return {"web": web, "api": api, "appeal": appeal}


def _window() -> tuple[datetime, datetime]:
    return T0, T0 + timedelta(days=1)


def test_nearest_rank_percentiles_are_observed_values() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([float(n) for n in range(1, 11)], 90) == 9.0
    assert percentile([float(n) for n in range(1, 11)], 99) == 10.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_the_first_claim_is_kept_when_the_case_is_released_and_claimed_again(moderator: User,
                                                                              other_moderator: User) -> None:
    with travel(T0):
        task = make_case()
    _claim(task, moderator, at=T0 + timedelta(minutes=10))
    with travel(T0 + timedelta(minutes=20)):
        claims.task_release(task_id=task.pk, user=moderator)
    _claim(task, other_moderator, at=T0 + timedelta(hours=2))
    task.refresh_from_db()
    assert task.first_claimed_at == T0 + timedelta(minutes=10)
    assert task.claimed_at == T0 + timedelta(hours=2)


def test_the_figures_per_queue_give_each_clock_from_the_queue_to_its_stop(worked: dict[str, ReviewTask]) -> None:
    figures = sla_figures(start=T0, end=T0 + timedelta(days=1))
    report = next(r for r in figures.by_queue if r.key == ReviewTask.Kind.REPORT)
    assert (report.first_claim.count, report.first_claim.p50, report.first_claim.p90) == (2, 1.0, 2.0)
    assert (report.decision.count, report.decision.p50, report.decision.p99) == (2, 3.0, 10.0)
    assert (report.action.count, report.action.p50) == (1, 5.0)
    appeal = next(r for r in figures.by_queue if r.key == ReviewTask.Kind.APPEAL)
    assert (appeal.first_claim.p50, appeal.decision.p50, appeal.action.count) == (0.5, 1.0, 0)
    assert figures.overall.first_claim.count == 3 and figures.overall.decision.p90 == 10.0


def test_the_figures_per_source_split_the_cases_by_how_they_were_reported(worked: dict[str, ReviewTask]) -> None:
    figures = sla_figures(start=T0, end=T0 + timedelta(days=1))
    by_source = {row.key: row for row in figures.by_source}
    # The appeal is of the web report, so it counts with the web source.
    assert (by_source["web"].decision.count, by_source["web"].decision.p50, by_source["web"].decision.p99) == (
        2, 1.0, 3.0)
    assert (by_source["api"].first_claim.p50, by_source["api"].decision.p50) == (2.0, 10.0)
    assert by_source["esafety"].decision.count == 0 and by_source["esafety"].decision.p50 is None


def test_a_clock_counts_in_the_period_where_it_stopped(worked: dict[str, ReviewTask]) -> None:
    # Up to 4 h after T0: every claim, two decisions (appeal at 1 h, web at 3 h), no action yet.
    early = sla_figures(start=T0, end=T0 + timedelta(hours=4))
    assert (early.overall.first_claim.count, early.overall.decision.count, early.overall.action.count) == (3, 2, 0)
    late = sla_figures(start=T0 + timedelta(hours=4), end=T0 + timedelta(days=1))
    assert (late.overall.first_claim.count, late.overall.decision.count, late.overall.action.count) == (0, 1, 1)


def test_automated_decisions_and_later_decisions_do_not_count_as_time_to_decision(moderator: User) -> None:
    with travel(T0):
        auto = make_case()
        twice = make_case()
    _decide(auto, at=T0 + timedelta(minutes=1), automated=True)
    _decide(twice, at=T0 + timedelta(hours=2), user=moderator)
    _decide(twice, at=T0 + timedelta(hours=20), user=moderator)  # e.g. after the reporter's appeal
    figures = sla_figures(start=T0, end=T0 + timedelta(days=1))
    assert (figures.overall.decision.count, figures.overall.decision.p99) == (1, 2.0)


def test_the_dashboard_shows_the_percentiles_per_queue_and_source(worked: dict[str, ReviewTask], senior: User,
                                                                  client: Client) -> None:
    client.force_login(senior)
    with travel(T0 + timedelta(days=2)):
        page = client.get("/console/dashboard")
    html = page.content.decode()
    assert page.status_code == 200
    assert ('data-group="queue:report" data-measure="decision"><td></td><td>Time to decision</td><td>2</td>'
            "<td>3.0</td><td>10.0</td><td>10.0</td>") in html
    assert 'data-group="source:api" data-measure="first_claim"><td>API</td>' in html
    assert html.count('data-percentile="p90"') > 0 and "Time to action on the platform (hours" in html


def test_the_transparency_report_carries_the_service_levels(worked: dict[str, ReviewTask]) -> None:
    report = transparency_report(start=T0, end=T0 + timedelta(days=1))
    levels = report["service_levels"]
    assert levels["by_queue"]["report"]["decision"] == {"count": 2, "p50_hours": 3.0, "p90_hours": 10.0,
                                                        "p99_hours": 10.0}
    assert levels["by_source"]["web"]["action"]["p50_hours"] == 5.0
    assert levels["all"]["all"]["first_claim"]["count"] == 3
    rows = list(csv.reader(io.StringIO(report_as_csv(report))))
    assert ["service_levels", "by_source", "api.first_claim.p50_hours", "2.0"] in rows
    assert ["service_levels", "by_source", "esafety.decision.p50_hours", ""] in rows


def test_the_transparency_report_command_prints_the_service_levels(worked: dict[str, ReviewTask]) -> None:
    out = io.StringIO()
    call_command("transparency_report", "--from", "2026-11-02", "--to", "2026-11-03", stdout=out)
    levels: dict[str, Any] = json.loads(out.getvalue())["service_levels"]
    assert levels["by_queue"]["appeal"]["first_claim"]["p50_hours"] == 0.5
