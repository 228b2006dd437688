"""The firehose scanner's series (``manage.py atproto_scan``; docs/operations.md "Metrics" style).

The scanner is its own long-running process, so these live in it: it serves them on
``TAKEDOWN_ATPROTO_SCAN_METRICS_PORT`` (prometheus-client's own HTTP server), or, under
``PROMETHEUS_MULTIPROC_DIR``, they join the web processes' ``/metrics``.

- ``takedown_firehose_events_total{kind}``: events processed (``rate()`` of it is events per second);
- ``takedown_firehose_lag_seconds``: seconds from the event's ``time`` (when the platform emitted it) to the end of
  its processing, for the last event; ``takedown_firehose_event_lag_seconds`` is the same as a histogram;
- ``takedown_firehose_seq``: the seq of the last event processed (the server's head minus this is the backlog);
- ``takedown_firehose_images_total{outcome}``: images fetched and hashed (``hashed``) or passed over (``gone``,
  ``unfetchable``, ``unreadable``, ``unavailable``);
- ``takedown_firehose_matches_total{policy}``: posts that matched a bank, by what the bank asked for;
- ``takedown_firehose_takedowns_total``: automated takedowns;
- ``takedown_firehose_errors_total{kind}``: ``frame`` (a frame that could not be read), ``stream`` (the
  connection failed or the server sent an error frame), ``outdated_cursor``, ``event`` (processing failed).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENT_KINDS = ("#commit", "#identity", "#account", "#sync", "other")
IMAGE_OUTCOMES = ("hashed", "gone", "unfetchable", "unreadable", "unavailable")
ERROR_KINDS = ("frame", "stream", "outdated_cursor", "event")
POLICIES = ("case", "takedown")

EVENTS = Counter("takedown_firehose_events", "Firehose events processed, by type.", ["kind"])
LAG = Gauge("takedown_firehose_lag_seconds",
            "Seconds from the last event's time on the platform to the end of its processing.")
LAG_HISTOGRAM = Histogram("takedown_firehose_event_lag_seconds",
                          "Seconds from each event's time on the platform to the end of its processing.",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0))
SEQ = Gauge("takedown_firehose_seq", "The seq of the last firehose event processed.")
IMAGES = Counter("takedown_firehose_images", "Images in new posts, by what came of them.", ["outcome"])
MATCHES = Counter("takedown_firehose_matches", "New posts that matched a bank, by the bank's policy.", ["policy"])
TAKEDOWNS = Counter("takedown_firehose_takedowns", "Posts taken down automatically by the scanner.")
ERRORS = Counter("takedown_firehose_errors", "Firehose scanner errors, by kind.", ["kind"])

# Every series exists from the start at 0, so rates and alerts see a first event as an increase.
for _kind in EVENT_KINDS:
    EVENTS.labels(_kind)
for _outcome in IMAGE_OUTCOMES:
    IMAGES.labels(_outcome)
for _policy in POLICIES:
    MATCHES.labels(_policy)
for _error in ERROR_KINDS:
    ERRORS.labels(_error)


def event_processed(*, kind: str, seq: int | None, lag_seconds: float | None) -> None:
    EVENTS.labels(kind if kind in EVENT_KINDS else "other").inc()
    if seq is not None:
        SEQ.set(seq)
    if lag_seconds is not None:
        LAG.set(lag_seconds)
        LAG_HISTOGRAM.observe(max(0.0, lag_seconds))


def image(outcome: str) -> None:
    IMAGES.labels(outcome).inc()


def matched(policy: str) -> None:
    MATCHES.labels(policy).inc()
    if policy == "takedown":
        TAKEDOWNS.inc()


def error(kind: str) -> None:
    ERRORS.labels(kind).inc()
