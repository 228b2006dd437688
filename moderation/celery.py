"""The Celery application. Settings come from Django settings prefixed ``CELERY_``."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation.settings")

app = Celery("takedown")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["moderation", "hashing", "detection", "exchange"])


@worker_init.connect
def _limit_worker_memory(**_kwargs: Any) -> None:
    """Workers decode untrusted media: cap their memory (moderation/worker_limits.py)."""
    from django.conf import settings

    import detection.scoring  # noqa: F401 - mapped before the size is read, so the headroom is the tasks'
    from moderation.worker_limits import memory_limit_apply

    memory_limit_apply(settings.TAKEDOWN_TASK_MEMORY_MB)
