"""Scale-out: the bank split by hash prefix across matcher workers, searched by scatter-gather.

With ``TAKEDOWN_MATCH_SHARDS = N`` above 1, no web process or pipeline worker holds the match index.
Shard ``k`` (0 to N - 1) is held by the Celery workers consuming the queue ``matching.shard-<k>``
(``make worker-shard SHARD=k``): each keeps a :class:`~hashing.matcher.Matcher` with only the bank
entries whose code prefix maps to ``k`` (``hashing.matcher.prefix_shard``) and refreshes it by
checkpoint before every request, exactly as the single-process matcher does.

A search is sent to every shard and the answers merged (scatter-gather). This stays exact: the shards
hold disjoint parts of the bank whose union is the whole bank, each shard answers exactly for its part,
and a near neighbour may have any prefix, so no shard is ever skipped. The replies come back over a
Redis list on the broker (one ``BLPOP`` per shard, no Celery result backend needed); a shard that does
not answer within ``TAKEDOWN_MATCH_SHARD_TIMEOUT_SECONDS`` makes the search fail with
:class:`ShardUnavailable` (a ``TimeoutError``, so the pipeline's task retries) rather than return a
partial, silently incomplete answer.

With ``CELERY_TASK_ALWAYS_EAGER`` (tests, a single development process) the shards are searched in
this process, one ``Matcher`` each, so the partitioning itself is exercised without a broker.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any, Protocol

import kombu.exceptions
import redis
from celery import current_app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from hashing.matcher import Matcher, get_matcher, local_readiness

logger = logging.getLogger(__name__)

TASK_NAME = "hashing.match_shard"
_REPLY_PREFIX = "takedown:match:reply:"
_REPLY_TTL_SECONDS = 120


class ShardUnavailable(TimeoutError):
    """One or more matcher shards did not answer in time (or could not read the bank database)."""

    def __init__(self, shards: list[int], reason: str) -> None:
        super().__init__(f"match shards {shards} did not answer: {reason}")
        self.shards = shards


class Searcher(Protocol):
    def search(self, algorithm: str, values: list[str], radius: int) -> list[list[tuple[int, int]]]: ...


def shard_count() -> int:
    return max(1, int(getattr(settings, "TAKEDOWN_MATCH_SHARDS", 1)))


def shard_queue(shard: int) -> str:
    return f"matching.shard-{shard}"


# --- the shard side: runs in the worker that consumes matching.shard-<k> -----------------------------
_SHARD_MATCHERS: dict[tuple[int, int], Matcher] = {}
_SHARD_MATCHERS_LOCK = threading.Lock()


def shard_matcher(shard: int, shards: int) -> Matcher:
    """This process's matcher for shard ``shard`` of ``shards`` (built on first use)."""
    with _SHARD_MATCHERS_LOCK:
        if (shard, shards) not in _SHARD_MATCHERS:
            _SHARD_MATCHERS[(shard, shards)] = Matcher(shard=shard, shards=shards)
        return _SHARD_MATCHERS[(shard, shards)]


def shard_handle(shard: int, shards: int, request: dict[str, Any]) -> Any:
    """Answer one request for a shard: ``search`` (per value, ``[entry id, distance]`` pairs) or ``status``."""
    matcher = shard_matcher(shard, shards)
    matcher.refresh_if_due()
    if request["op"] == "search":
        return matcher.search(request["algorithm"], request["values"], int(request["radius"]))
    if request["op"] == "status":
        return matcher.status().as_dict()
    raise ValueError(f"unknown match shard request {request['op']!r}")


def shard_serve(reply_to: str, shard: int, shards: int, request: dict[str, Any]) -> None:
    """Answer a request from the queue and push the answer onto the caller's reply list."""
    if not reply_to.startswith(_REPLY_PREFIX):
        raise ValueError("reply_to is not a match reply key")
    try:
        answer: dict[str, Any] = {"shard": shard, "ok": True, "result": shard_handle(shard, shards, request)}
    except DatabaseError:
        logger.exception("match shard %s could not read the bank database", shard)
        answer = {"shard": shard, "ok": False, "error": "the bank database cannot be read"}
    client = _redis()
    with client.pipeline() as pipe:
        pipe.rpush(reply_to, json.dumps(answer))
        pipe.expire(reply_to, _REPLY_TTL_SECONDS)
        pipe.execute()


# --- the caller side: web processes and pipeline workers --------------------------------------------
# current_app is the project's Celery app (moderation.celery, made the default app by Celery's Django
# fix-up), so hashing reaches the broker without importing the project package.
def _redis() -> Any:
    url = str(current_app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("TAKEDOWN_MATCH_SHARDS > 1 needs a Redis broker (CELERY_BROKER_URL=redis://...)")
    return redis.Redis.from_url(url)


def scatter(request: dict[str, Any], shards: int | None = None,
            timeout: float | None = None) -> dict[int, dict[str, Any]]:
    """Send ``request`` to every shard; each shard's answer (``{"ok": ..., "result"|"error": ...}``).

    Shards that did not answer within ``timeout`` are absent from the result.
    """
    shards = shards or shard_count()
    app = current_app
    if app.conf.task_always_eager:
        answers = {}
        for k in range(shards):
            try:
                answers[k] = {"shard": k, "ok": True, "result": shard_handle(k, shards, request)}
            except DatabaseError:
                answers[k] = {"shard": k, "ok": False, "error": "the bank database cannot be read"}
        return answers
    if timeout is None:
        timeout = float(getattr(settings, "TAKEDOWN_MATCH_SHARD_TIMEOUT_SECONDS", 10))
    client = _redis()
    reply_to = f"{_REPLY_PREFIX}{uuid.uuid4().hex}"
    for k in range(shards):
        # expires: a request nobody took in time is dropped, not answered to a caller that gave up.
        app.send_task(TASK_NAME, args=(reply_to, k, shards, request), queue=shard_queue(k), expires=timeout)
    answers = {}
    deadline = time.monotonic() + timeout
    try:
        while len(answers) < shards:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            popped = client.blpop([reply_to], timeout=max(0.05, left))
            if popped is None:
                break
            answer = json.loads(popped[1])
            answers[int(answer["shard"])] = answer
    finally:
        client.delete(reply_to)
    return answers


class ShardedSearch:
    """Same ``search`` as :class:`~hashing.matcher.Matcher`, answered by every shard and merged."""

    def __init__(self, shards: int | None = None) -> None:
        self.shards = shards or shard_count()

    def search(self, algorithm: str, values: list[str], radius: int) -> list[list[tuple[int, int]]]:
        answers = scatter({"op": "search", "algorithm": algorithm, "values": list(values), "radius": radius},
                          self.shards)
        missing = [k for k in range(self.shards) if k not in answers]
        failed = [k for k, a in answers.items() if not a["ok"]]
        if missing or failed:
            raise ShardUnavailable(sorted(missing + failed), "timed out" if missing else "database error")
        merged: list[list[tuple[int, int]]] = [[] for _ in values]
        for k in range(self.shards):
            for hits, shard_hits in zip(merged, answers[k]["result"], strict=True):
                hits.extend((int(entry_id), int(distance)) for entry_id, distance in shard_hits)
        for hits in merged:
            hits.sort(key=lambda hit: (hit[1], hit[0]))
        return merged


def get_searcher() -> Matcher | ShardedSearch:
    """What ``hashing.matching`` searches: this process's matcher, or every shard when sharded."""
    shards = shard_count()
    if shards > 1:
        return ShardedSearch(shards)
    matcher = get_matcher()
    matcher.refresh_if_due()
    return matcher


def sharded_readiness(timeout: float | None = None) -> tuple[bool, dict[str, Any]]:
    """Readiness with shards: every shard answers (within ``timeout``, default the search timeout), is built
    and no staler than the setting allows."""
    limit = float(getattr(settings, "TAKEDOWN_MATCH_MAX_STALENESS_SECONDS", 2))
    shards = shard_count()
    try:
        answers = scatter({"op": "status"}, shards, timeout=timeout)
    except (ImproperlyConfigured, OSError, redis.RedisError, kombu.exceptions.OperationalError) as exc:
        logger.warning("match shards cannot be asked: %s", type(exc).__name__)
        answers = {}
    per_shard: list[dict[str, Any]] = []
    for k in range(shards):
        answer = answers.get(k)
        if answer is None:
            per_shard.append({"shard": k, "queue": shard_queue(k), "status": "unavailable",
                              "error": "no answer in time"})
        elif not answer["ok"]:
            per_shard.append({"shard": k, "queue": shard_queue(k), "status": "unavailable",
                              "error": answer["error"]})
        else:
            state = answer["result"]
            fresh = state["built"] and state["stale_seconds"] <= limit
            per_shard.append({"shard": k, "queue": shard_queue(k), "status": "ready" if fresh else "stale", **state})
    ready = all(s["status"] == "ready" for s in per_shard)
    worst = max((s.get("stale_seconds", 0.0) for s in per_shard), default=0.0)
    return ready, {"status": "ready" if ready else ("unavailable" if any(s["status"] == "unavailable"
                                                                         for s in per_shard) else "stale"),
                   "max_staleness_seconds": limit, "stale_seconds": worst, "shards": per_shard}


def matcher_readiness(timeout: float | None = None) -> tuple[bool, dict[str, Any]]:
    """What ``/readyz`` (and ``/metrics``) reports: every shard's readiness when sharded (each asked to answer
    within ``timeout``), else this process's matcher's."""
    if shard_count() > 1:
        return sharded_readiness(timeout)
    return local_readiness()
