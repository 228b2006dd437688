"""hashing.shards with real Celery workers over Redis: two matcher shards, each its own worker process."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from hashing import shards
from hashing.algorithms import hamming_hex
from hashing.banks import bank_add_entries, bank_get_or_create, bank_withdraw_entries
from hashing.index import hex_to_codes
from hashing.matcher import prefix_shard
from hashing.matching import match_hashes
from hashing.models import BankEntry
from moderation.celery import app as celery_app
from moderation.services.readiness import scheduler_heartbeat_write
from tests.conftest import redis_flushed_or_skip
from tests.e2e.test_celery_worker import _database_url, _reset_connections, wait_for

pytestmark = pytest.mark.celery_worker

ROOT = Path(__file__).resolve().parents[2]
# A Redis database of its own: the other worker tests flush theirs.
BROKER_URL = os.environ.get("TAKEDOWN_TEST_MATCH_BROKER_URL", "redis://127.0.0.1:6379/14")


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.fixture
def shard_workers(transactional_db: Any, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two `celery worker` processes, one per shard queue, on the test database and a real Redis."""
    broker = redis_flushed_or_skip(BROKER_URL, "start it or set TAKEDOWN_TEST_MATCH_BROKER_URL")
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(("file:memorydb", ":memory:")):
        pytest.fail("the SQLite test database must be a file for a worker process to share it")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": _database_url(),
           "CELERY_BROKER_URL": BROKER_URL, "SECRET_KEY": settings.SECRET_KEY,
           "TAKEDOWN_MEDIA_ROOT": str(settings.MEDIA_ROOT), "DB_CONN_MAX_AGE": "0", "TAKEDOWN_MATCH_SHARDS": "2",
           # The raw shard index is asserted right after a withdrawal: refresh on every request, not every 1 s.
           "TAKEDOWN_MATCH_REFRESH_SECONDS": "0"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    workers = []
    for k in range(2):
        with (tmp_path / f"shard{k}.log").open("w") as out:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "moderation", "worker", "-Q", f"matching.shard-{k}",
                 "--pool", "solo", "-n", f"shard{k}@%h", "--without-gossip", "--without-mingle",
                 "--loglevel", "INFO"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
    previous = {"task_always_eager": celery_app.conf.task_always_eager, "broker_url": celery_app.conf.broker_url}
    _reset_connections()
    celery_app.conf.update(task_always_eager=False, broker_url=BROKER_URL)
    # With a broker, /readyz also wants celery beat's heartbeat; no beat runs here, so stand in for it once
    # (fresh for TAKEDOWN_SCHEDULER_STALE_SECONDS), and readiness speaks of the shards alone.
    scheduler_heartbeat_write()
    try:
        with override_settings(TAKEDOWN_MATCH_SHARDS=2):
            yield workers
    except BaseException:
        for k in range(2):
            print(f"--- shard {k} worker log ---\n" + (tmp_path / f"shard{k}.log").read_text()[-3000:])
        raise
    finally:
        celery_app.conf.update(**previous)
        _reset_connections()
        for worker in workers:
            _stop(worker)
        broker.flushdb()


def flip(value: str, count: int, rng: random.Random) -> str:
    number = int(value, 16)
    for bit in rng.sample(range(256), count):
        number ^= 1 << bit
    return f"{number:064x}"


def test_two_shard_workers_answer_exactly_and_readyz_names_a_shard_that_stops(shard_workers: list[Any],
                                                                              client: Any) -> None:
    rng = random.Random(4)
    centres = [f"{rng.getrandbits(256):064x}" for _ in range(20)]
    values = [flip(c, rng.randint(1, 20), rng) for c in centres for _ in range(10)]
    bank = bank_get_or_create(name="sharded")
    bank_add_entries(bank=bank, hashes=[("pdq", v) for v in values], source="test")
    queries = [flip(rng.choice(values), rng.randint(0, 31), rng) for _ in range(20)]

    # Both workers start, build their shard from the database and report fresh.
    wait_for(lambda: client.get("/readyz").status_code == 200, "both shard workers to report ready")
    body = client.get("/readyz").json()
    active = list(BankEntry.objects.values_list("value", flat=True))
    owners = prefix_shard(hex_to_codes(active, 256), 2)
    held = [s["entries"]["pdq"] for s in body["shards"]]
    assert held == [int((owners == 0).sum()), int((owners == 1).sum())] and all(held)

    entries = list(BankEntry.objects.values_list("id", "value"))
    expected = [sorted(((i, hamming_hex(q, v)) for i, v in entries if hamming_hex(q, v) <= 31),
                       key=lambda hit: (hit[1], hit[0])) for q in queries]
    assert sum(len(hits) for hits in expected) >= 20
    assert shards.ShardedSearch().search("pdq", queries, 31) == expected
    assert values[0] in {m.entry_value for m in match_hashes([("pdq", flip(values[0], 9, rng))])}

    # A withdrawal reaches the owning worker's index by checkpoint refresh (at most every
    # TAKEDOWN_MATCH_REFRESH_SECONDS, 1 s by default): it stops matching without a restart.
    assert bank_withdraw_entries(bank=bank, hashes=[("pdq", values[0])]) == 1
    wait_for(lambda: shards.ShardedSearch().search("pdq", [values[0]], 0) == [[]],
             "the withdrawn entry to stop matching on its shard", timeout=30)

    # A shard whose worker is gone: searches fail (never a partial answer), readyz names it.
    _stop(shard_workers[1])
    with override_settings(TAKEDOWN_MATCH_SHARD_TIMEOUT_SECONDS=2):
        with pytest.raises(shards.ShardUnavailable) as raised:
            shards.ShardedSearch().search("pdq", queries[:1], 31)
        assert raised.value.shards == [1]
        response = client.get("/readyz")
    assert response.status_code == 503
    assert [s["status"] for s in response.json()["shards"]] == ["ready", "unavailable"]
