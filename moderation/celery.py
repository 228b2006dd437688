"""The Celery application. Settings come from Django settings prefixed ``CELERY_``."""

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_init
from django.conf import settings

from moderation.observability.request_id import request_id_signals_connect
from moderation.worker_limits import memory_limit_apply

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation.settings")

app = Celery("takedown")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["moderation", "hashing", "detection", "exchange"])
# Tasks carry the id of the request that enqueued them (moderation/observability/request_id.py).
request_id_signals_connect()


@setup_logging.connect
def _logging_as_configured(**_kwargs: Any) -> None:
    """Workers and beat log as settings.LOGGING says (JSON or plain, with the request id), not in Celery's own
    format: a receiver here tells Celery to leave logging alone. The level is LOG_LEVEL's, not --loglevel's."""


@worker_init.connect
def _limit_worker_memory(sender: Any = None, **_kwargs: Any) -> None:
    """Workers decode untrusted media: cap their memory (moderation/worker_limits.py)."""
    # Imported here, in workers only, not at the top: the scoring code and ONNX Runtime, which runs the learned
    # model (no torch: tests/test_no_torch.py), are mapped before the size is read, so the headroom is the
    # tasks' own. The model itself is loaded by each pool process on its first score, not here before the fork.
    import detection.learned.runtime
    import detection.scoring  # noqa: F401
    from detection.embedding import preload_before_fork, threads_set

    # The CLIP encoder (~180-260 MB once loaded) is the embedding signal's model, not a task's memory: loaded
    # here on a CPU-only worker that takes detection work (all queues, or -Q naming "detection"; not a matcher
    # shard), and shared by the pool processes (detection.embedding.preload_before_fork).
    queues = getattr(getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None), "consume_from", None)
    if queues is None or "detection" in queues:
        threads_set(settings.TAKEDOWN_DETECTOR_THREADS)
        preload_before_fork()
    memory_limit_apply(settings.TAKEDOWN_TASK_MEMORY_MB)
