"""gunicorn's settings for Takedown: gunicorn reads ./gunicorn.conf.py when started from this folder (or pass
``-c path/to/gunicorn.conf.py``). Everything else is given on the command line (docs/operations.md).

With several workers, set ``PROMETHEUS_MULTIPROC_DIR`` to a directory of its own for the web processes
(prometheus-client's multiprocess mode): each worker writes its counters there and ``/metrics``, answered by
any worker, adds them up. These hooks keep that directory right (docs/operations.md "Metrics").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import multiprocess


def on_starting(server: Any) -> None:
    """Start from an empty directory: files left by an earlier run would be added to this one's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exited (restarted, killed) no longer counts in live gauges; its counters keep their totals."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
