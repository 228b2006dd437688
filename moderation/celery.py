"""The Celery application. Settings come from Django settings prefixed ``CELERY_``."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init
from django.conf import settings

from moderation.worker_limits import memory_limit_apply

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation.settings")

app = Celery("takedown")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["moderation", "hashing", "detection", "exchange"])


@worker_init.connect
def _limit_worker_memory(**_kwargs: Any) -> None:
    """Workers decode untrusted media: cap their memory (moderation/worker_limits.py)."""
    # Imported here, in workers only, not at the top: it loads torch, which web processes must not pay for.
    # It is mapped before the size is read, so the headroom is the tasks' own.
    import detection.scoring  # noqa: F401

    memory_limit_apply(settings.TAKEDOWN_TASK_MEMORY_MB)
