"""The queue's "Reports" column (how many reports a case stands for) and its order: most reports first, then the
usual queue order; the default order is unchanged and the page still costs the same number of queries."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from moderation.models import Report, ReviewTask
from moderation.roles import MODERATOR
from moderation.selectors.queue import SORT_REPORTS, QueueFilters, queue_page, queue_tasks
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db


def case_with_reports(n: int, *, priority: int = 10) -> ReviewTask:
    task = make_case(priority=priority)
    Report.objects.filter(pk=task.report_id).update(report_count=n)
    return task


@pytest.fixture
def cases() -> dict[str, ReviewTask]:
    return {"top_single": case_with_reports(1, priority=90), "mid_many": case_with_reports(7, priority=50),
            "low_many": case_with_reports(7, priority=20), "low_some": case_with_reports(3, priority=10)}


@pytest.fixture
def mo() -> User:
    return user_with_role("sort-mo", MODERATOR)


def ids(page: object) -> list[int]:
    return [t.pk for t in page]  # type: ignore[attr-defined]


def test_sorting_by_reports_puts_the_most_reported_cases_first_then_keeps_queue_order(
        cases: dict[str, ReviewTask], mo: User) -> None:
    page = queue_page(filters=QueueFilters(sort=SORT_REPORTS), user=mo, number=1, size=50)
    expected = [cases[k].pk for k in ("mid_many", "low_many", "low_some", "top_single")]
    assert ids(page) == expected
    assert [t.pk for t in queue_tasks(filters=QueueFilters(sort=SORT_REPORTS))] == expected


def test_the_default_order_is_still_priority_then_age(cases: dict[str, ReviewTask], mo: User) -> None:
    page = queue_page(filters=QueueFilters(), user=mo, number=1, size=50)
    assert ids(page) == [cases[k].pk for k in ("top_single", "mid_many", "low_many", "low_some")]


def test_sorting_pages_through_the_same_order_and_keeps_the_total(cases: dict[str, ReviewTask], mo: User) -> None:
    counts = {"open": 4}
    first = queue_page(filters=QueueFilters(sort=SORT_REPORTS), user=mo, number=1, size=3, counts=counts)
    second = queue_page(filters=QueueFilters(sort=SORT_REPORTS), user=mo, number=2, size=3, counts=counts)
    assert ids(first) + ids(second) == [cases[k].pk for k in ("mid_many", "low_many", "low_some", "top_single")]
    assert first.total == 4  # an order filters nothing: the count per state still applies


def test_the_queue_page_shows_each_cases_report_count_and_links_to_either_order(
        client: Client, cases: dict[str, ReviewTask], mo: User) -> None:
    client.force_login(mo)
    html = client.get("/console/?source=web").content.decode()
    row = html[html.index(f'<tr data-task="{cases["mid_many"].pk}"'):]
    assert re.search(r'<td class="report-count">7</td>\s*</tr>', row[:row.index("</tr>") + 5])
    assert 'href="?source=web&amp;sort=reports" id="sort-reports"' in html
    sorted_html = client.get("/console/?source=web&sort=reports").content.decode()
    assert [int(x) for x in re.findall(r'<tr data-task="(\d+)"', sorted_html)][:2] == [
        cases["mid_many"].pk, cases["low_many"].pk]
    assert 'aria-sort="descending"' in sorted_html
    assert 'href="?source=web" id="sort-reports"' in sorted_html  # back to queue order
    assert '<option value="reports" selected>most reports first</option>' in sorted_html


def test_the_sorted_queue_page_runs_the_same_number_of_queries_for_5_or_60_cases(client: Client, mo: User) -> None:
    client.force_login(mo)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/console/?sort=reports").status_code == 200
        return len(ctx.captured_queries)

    for n in range(5):
        case_with_reports(n + 1)
    few = queries()
    for n in range(55):
        case_with_reports(n % 4 + 1)
    assert queries() == few <= 10
