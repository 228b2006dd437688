"""Celery tasks of the hashing app (found by the project's ``autodiscover_tasks``).

``hashing.match_shard`` runs on the workers of matcher shard k (queue ``matching.shard-<k>``) when
``TAKEDOWN_MATCH_SHARDS`` is above 1; see ``hashing.shards``. No retries: the caller waits a bounded
time, then gives up.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from hashing.shards import TASK_NAME, shard_serve


@shared_task(name=TASK_NAME, ignore_result=True, acks_late=False)
def match_shard(reply_to: str, shard: int, shards: int, request: dict[str, Any]) -> None:
    """Answer a search or status request for this worker's shard of the match index."""
    shard_serve(reply_to, shard, shards, request)
