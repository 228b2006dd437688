"""Counters of events, incremented where the event happens: intake and the scan API, in web processes.

They live in the process that counts them. Under gunicorn each worker process counts its own; set
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, docs/operations.md "Metrics") so that
``/metrics``, answered by any one worker, adds up every worker's counts. What the database knows (cases,
deadlines, backlogs, dead letters) is read at scrape time instead (``moderation/services/metrics.py``), so it
is the same whichever process answers.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from moderation.models import Report

SCAN_VERDICTS = ("allow", "review", "block")
SCAN_DETECTION_MODES = ("async", "inline")

REPORTS_RECEIVED = Counter("takedown_reports_received", "Reports (notices) saved, by where they came from.",
                           ["source"])
SCANS = Counter("takedown_scans", "Uploads checked by /api/v1/scan, by the verdict answered.", ["verdict"])
# Buckets around the scan API's target (p95 < 100 ms, docs/benchmarks.md "Load") and the inline score's seconds.
SCAN_SECONDS = Histogram("takedown_scan_duration_seconds",
                         "Seconds /api/v1/scan took to hash, match, record and answer an upload.", ["detection"],
                         buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

HMA_CONFIRMED_MATCHES = Counter("takedown_hma_confirmed_matches",
                                "HMA-compatible lookups that matched a bank of confirmed NCII "
                                "(TAKEDOWN_HMA_CONFIRMED_BANKS), by bank and route.", ["bank", "route"])

# Every series exists from the start at 0, so rates and alerts see a first event as an increase.
for _source in Report.Source.values:
    REPORTS_RECEIVED.labels(_source)
for _verdict in SCAN_VERDICTS:
    SCANS.labels(_verdict)
for _mode in SCAN_DETECTION_MODES:
    SCAN_SECONDS.labels(_mode)


def report_received(source: str) -> None:
    REPORTS_RECEIVED.labels(source).inc()


def scan_answered(*, verdict: str, detection: str, seconds: float) -> None:
    SCANS.labels(verdict).inc()
    SCAN_SECONDS.labels(detection).observe(seconds)


def hma_confirmed_match(*, bank: str, route: str) -> None:
    HMA_CONFIRMED_MATCHES.labels(bank, route).inc()
