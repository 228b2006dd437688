"""Real Celery worker processes for the fault tests, and pointing this test process's Celery at a broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection
from kombu import pools as kombu_pools

from moderation.celery import app as celery_app
from tests.faults.services import ROOT, app_env

WORKER_ARGS = ["-Q", "default,detection", "--concurrency", "1", "--without-gossip", "--without-mingle",
               "--without-heartbeat", "--loglevel", "INFO"]


def shared_database_url() -> str:
    """The URL of the database this test runs on, for a worker subprocess to share."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def reset_broker_connections() -> None:
    """Drop pooled broker connections so the next send connects to the URL configured now."""
    celery_app.pool.force_close_all()
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_sends_to(broker_url: str) -> Iterator[None]:
    """This process's ``.delay()`` goes to ``broker_url`` (not eager) inside the block."""
    previous = {"task_always_eager": celery_app.conf.task_always_eager, "broker_url": celery_app.conf.broker_url}
    reset_broker_connections()
    celery_app.conf.update(task_always_eager=False, broker_url=broker_url)
    try:
        yield
    finally:
        celery_app.conf.update(**previous)
        reset_broker_connections()


def start_worker(broker_url: str, log: Path, *, slow_hash_seconds: float = 0.0, marks: Path | None = None,
                 **env: str) -> subprocess.Popen[bytes]:
    """A ``celery worker`` in its own process group (so a test can SIGKILL all of it at once)."""
    environment = app_env(shared_database_url(), CELERY_BROKER_URL=broker_url, DB_CONN_MAX_AGE="0", **env)
    if slow_hash_seconds:
        assert marks is not None
        environment.update(FAULT_HASH_DELAY=str(slow_hash_seconds), FAULT_MARK_DIR=str(marks))
        command = [sys.executable, "-m", "tests.faults.slow_worker", *WORKER_ARGS]
    else:
        command = [sys.executable, "-m", "celery", "-A", "moderation", "worker", *WORKER_ARGS]
    with log.open("a") as out:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill_hard(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool children: no shutdown, no acknowledgement, nothing flushed."""
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.wait(timeout=20)


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill_hard(worker)
