"""Queue page server time with 100k open tasks: ours against the foundation's aggregate query.

    python benchmarks/bench_queue.py                        # SQLite (a throwaway test database)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/takedown python benchmarks/bench_queue.py

Generates ``--tasks`` open review tasks (default 100 000) with reports, items, and for a share of
them media with a synthetic-media score and a bank match, in a throwaway test database. Then, as a
logged-in moderator through Django's test client (the whole server stack in-process: middleware,
view, queries, template; no network), it times the queue page:

- **ours**: ``selectors.queue.queue_page`` (the page's ids by an index walk over the partial index
  ``task_undecided_order``, then those 50 rows with per-row subqueries; no count for filtered
  views) for the first page, a deep page, and two filtered pages;
- **baseline "foundation aggregate"**: the queue query as the foundation wrote it, ``COUNT(DISTINCT)``
  over joins of every undecided task, grouped, then counted and sliced by Django's ``Paginator`` —
  the same view and template.

Prints the median and p95 of ``--repeat`` requests each, and the number of SQL queries per request.
Target: under 150 ms for the first page.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, QuerySet  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

TARGET_MS = 150.0
BATCH = 5000


def generate(n_tasks: int, seed: int = 1) -> None:
    from hashing.models import Bank, BankEntry
    from moderation.models import DetectionResult, Match, Media, MediaHash, Report, ReportedItem, ReviewTask

    rng = random.Random(seed)
    now = timezone.now()
    bank = Bank.objects.create(name="bench-bank")
    sources = ["web", "web", "web", "api", "trusted_flagger", "esafety"]
    for start in range(0, n_tasks, BATCH):
        count = min(BATCH, n_tasks - start)
        reports = Report.objects.bulk_create([Report(
            case_number=f"TD-B{start + i:08d}", pin_hash="x", source=rng.choice(sources), reporter_name="A",
            reporter_email="a@example.org", relationship="self", statement="s", good_faith=True, signature="A",
            adult_confirmed=True, status="in_review",
            deadline_at=now + timezone.timedelta(hours=rng.uniform(-6, 48))) for i in range(count)])
        media_for: dict[int, Media] = {}
        with_media = [r for r in reports if rng.random() < 0.2]
        made = Media.objects.bulk_create([Media(
            sha256=f"{start:08x}{r.pk:056x}", md5=f"{r.pk:032x}", mime="image/jpeg", size_bytes=1000,
            origin="platform", status="processed") for r in with_media])
        for report, media in zip(with_media, made, strict=True):
            media_for[report.pk] = media
        DetectionResult.objects.bulk_create([DetectionResult(media=m, model_version="bench", score=rng.random())
                                             for m in made])
        matched = [m for m in made if rng.random() < 0.25]
        hashes = MediaHash.objects.bulk_create([MediaHash(media=m, algorithm="md5", value=m.md5) for m in matched])
        entries = BankEntry.objects.bulk_create([BankEntry(bank=bank, algorithm="md5", value=h.value, source="bench")
                                                 for h in hashes])
        Match.objects.bulk_create([Match(media=h.media, media_hash=h, bank_entry=e, algorithm="md5", distance=0,
                                         threshold=0) for h, e in zip(hashes, entries, strict=True)])
        ReportedItem.objects.bulk_create([ReportedItem(report=r, location=f"demo://content/{r.pk}",
                                                       media=media_for.get(r.pk), state="resolved")
                                          for r in reports])
        tasks = []
        for r in reports:
            priority = rng.randint(0, 150)
            reasons = [{"code": "deadline", "points": min(priority, 60), "detail": "bench"}]
            if r.pk in media_for and rng.random() < 0.5:
                reasons.append({"code": "score", "points": 10, "detail": "synthetic-media score 0.7"})
            tasks.append(ReviewTask(report=r, priority=priority, priority_reasons=reasons))
        ReviewTask.objects.bulk_create(tasks)
    with connection.cursor() as cursor:
        # What autovacuum (PostgreSQL) or PRAGMA optimize (SQLite) keeps up to date in a running system.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def foundation_queue_tasks(*, state: str | None = None, assignee: Any = None, **_: Any) -> QuerySet[Any]:
    """The foundation's queue query (commit 56e69e9), kept verbatim as the baseline."""
    from moderation.models import ReviewTask

    qs = ReviewTask.objects.select_related("report", "assignee")
    if state:
        qs = qs.filter(state=state)
    else:
        qs = qs.exclude(state=ReviewTask.State.DECIDED)
    return qs.annotate(
        item_count=Count("report__items", distinct=True),
        match_count=Count("report__items__media__matches", distinct=True),
    ).order_by("-priority", "created_at", "id")


def foundation_queue_page(*, filters: Any, number: int, size: int, **_: Any) -> Any:
    """The foundation's page: its aggregate query, counted and sliced by Django's Paginator."""
    from django.core.paginator import Paginator

    from moderation.selectors.queue import QueuePage

    paginator = Paginator(foundation_queue_tasks(state=filters.state), size)
    page = paginator.get_page(number)
    return QueuePage(rows=list(page), number=page.number, size=size, has_next=page.has_next(),
                     total=paginator.count)


def measure(client: Client, url: str, repeat: int) -> tuple[float, float, int]:
    client.get(url)  # warm caches (templates, query plans)
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(ctx.captured_queries)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--explain", action="store_true", help="PostgreSQL: print the first page's query plans")
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        # Our own throwaway database: never the test suite's, which other runs may be using.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_queue_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from moderation.roles import MODERATOR, roles_sync
        from moderation.selectors import queue as queue_selectors

        started = time.perf_counter()
        generate(args.tasks)
        print(f"generated {args.tasks} open tasks on {connection.vendor} in {time.perf_counter() - started:.0f} s")
        roles_sync()
        user = User.objects.create_user(username="bench")
        user.groups.add(Group.objects.get(name=MODERATOR))
        client = Client()
        client.force_login(user)
        pages = [("first page", "/console/"), ("page 1000", "/console/?page=1000"),
                 ("filtered: has match, under 24 h", "/console/?has_match=yes&deadline=under_24h"),
                 ("filtered: reason score, score 0.5-1", "/console/?reason=score&score_min=0.5")]
        print(f"{'page':<38} {'ours median':>12} {'p95':>8} {'queries':>8} | {'baseline median':>16} "
              f"{'p95':>8} {'queries':>8}")
        original = queue_selectors.queue_page
        for label, url in pages:
            ours = measure(client, url, args.repeat)
            queue_selectors.queue_page = foundation_queue_page  # type: ignore[assignment]
            try:
                base = measure(client, url, max(3, args.repeat // 3)) if "filtered" not in label else None
            finally:
                queue_selectors.queue_page = original
            base_text = (f"{base[0]:>13.1f} ms {base[1]:>5.1f} ms {base[2]:>8}" if base
                         else f"{'(no filters in the foundation)':>36}")
            print(f"{label:<38} {ours[0]:>9.1f} ms {ours[1]:>5.1f} ms {ours[2]:>8} | {base_text}")
        with CaptureQueriesContext(connection) as ctx:
            client.get("/console/")
        print("first page, per query: " + ", ".join(f"{float(q['time']) * 1000:.1f} ms" for q in ctx.captured_queries))
        if args.explain and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for q in ctx.captured_queries[-5:-1]:
                    cursor.execute("EXPLAIN ANALYZE " + q["sql"])
                    print(q["sql"][:160], "\n   ", "\n    ".join(r[0] for r in cursor.fetchall()[:12]))
        first = measure(client, "/console/", args.repeat)[0]
        print(f"target: first page under {TARGET_MS:.0f} ms -> {'met' if first < TARGET_MS else 'NOT met'} "
              f"({first:.1f} ms)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
