"""A real Celery worker whose hash step announces itself and then waits: the fault tests kill it there.

Run as ``python -m tests.faults.slow_worker <celery worker args>`` with ``FAULT_HASH_DELAY`` (seconds) and
``FAULT_MARK_DIR`` (a folder that gets one file per hash step started). Test-only: production code has no
such hook.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation.settings")
django.setup()

from moderation.celery import app  # noqa: E402
from moderation.services import pipeline  # noqa: E402

DELAY = float(os.environ.get("FAULT_HASH_DELAY", "0"))
MARKS = Path(os.environ["FAULT_MARK_DIR"])
_original = pipeline.hash_bytes


def _slow_hash(data: bytes, *args: Any, **kwargs: Any) -> Any:
    (MARKS / f"hash-started-{os.getpid()}-{time.monotonic_ns()}").touch()
    time.sleep(DELAY)
    return _original(data, *args, **kwargs)


pipeline.hash_bytes = _slow_hash  # inherited by the prefork pool's children

if __name__ == "__main__":
    app.worker_main(["worker", *sys.argv[1:]])
