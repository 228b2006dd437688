"""A memory limit for Celery worker processes, which decode untrusted media.

The decoders refuse declared decompression bombs before decoding (``hashing.decode``), and each media task
has a time limit; this is the last guard: a file that still makes a decoder allocate without end meets a
``MemoryError`` instead of the machine's OOM killer, and the task marks the media "unprocessable".

``TAKEDOWN_TASK_MEMORY_MB`` is the headroom each worker process may allocate above its size once started
(Django, the decoders and ONNX Runtime loaded). It is set as the data-segment limit (``RLIMIT_DATA``: heap, anonymous
and other private writable mappings, so what a decoder allocates) when the worker starts; pool processes
inherit it, and since a pool process runs one task at a time it bounds each task. Not the address-space
limit (``RLIMIT_AS``): PyTorch, BLAS and malloc's per-thread arenas reserve far more address space than they
use, and reservations without write access do not count against ``RLIMIT_DATA``. Thread stacks do (8 MiB
each): on a machine with many cores, bound the worker's threads (``OMP_NUM_THREADS``) too.
Linux only (the size is read from ``/proc``); elsewhere nothing is limited and a log line says so.
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

logger = logging.getLogger(__name__)


def data_segment_bytes() -> int | None:
    """This process's private writable memory as ``RLIMIT_DATA`` counts it (VmData), or None where /proc
    cannot tell."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_limit_apply(headroom_mb: int) -> int | None:
    """Cap this process (and the processes it forks) at its present size plus ``headroom_mb`` MiB.

    Returns the limit in bytes, or None when no limit was set (``headroom_mb`` 0, or no /proc). Never raises
    the limit above a hard limit set by the operator.
    """
    if headroom_mb <= 0:
        return None
    size = data_segment_bytes()
    if size is None:
        logger.warning("worker memory limit not set: this system does not report the process size")
        return None
    limit = size + headroom_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    logger.info("worker memory limited to %d MiB (%d MiB above its start-up size)", limit >> 20, headroom_mb)
    return limit
