"""hashing.shards in one process (Celery eager): the bank split by prefix, searched by scatter-gather."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.test import override_settings
from django.utils import timezone

from hashing import shards
from hashing.algorithms import hamming_hex
from hashing.banks import bank_add_entries, bank_get_or_create, bank_withdraw_entries
from hashing.index import hex_to_codes
from hashing.matcher import Matcher, prefix_shard
from hashing.matching import match_hashes
from hashing.models import BankChange, BankEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_shard_matchers() -> Iterator[None]:
    shards._SHARD_MATCHERS.clear()
    yield
    shards._SHARD_MATCHERS.clear()


def pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(value: str, count: int, rng: random.Random) -> str:
    number = int(value, 16)
    for bit in rng.sample(range(256), count):
        number ^= 1 << bit
    return f"{number:064x}"


def make_bank(rng: random.Random) -> tuple[list[str], list[str]]:
    """A bank of 300 PDQ entries in clusters (so neighbours cross shard boundaries), and queries."""
    centres = [pdq(rng) for _ in range(30)]
    values = [flip(c, rng.randint(0, 20), rng) for c in centres for _ in range(10)]
    bank = bank_get_or_create(name="sharded")
    bank_add_entries(bank=bank, hashes=[("pdq", v) for v in values], source="test")
    queries = [flip(rng.choice(values), rng.randint(0, 31), rng) for _ in range(30)] + [pdq(rng) for _ in range(10)]
    return values, queries


def brute_force(queries: list[str], radius: int) -> list[list[tuple[int, int]]]:
    entries = list(BankEntry.objects.filter(algorithm="pdq", status=BankEntry.Status.ACTIVE).values_list("id", "value"))
    return [sorted(((i, hamming_hex(q, v)) for i, v in entries if hamming_hex(q, v) <= radius),
                   key=lambda hit: (hit[1], hit[0])) for q in queries]


def test_prefix_shards_split_codes_into_disjoint_ranges_of_the_first_sixteen_bits() -> None:
    codes = hex_to_codes(["0000" + "0" * 60, "7fff" + "f" * 60, "8000" + "0" * 60, "ffff" + "f" * 60], 256)
    assert prefix_shard(codes, 2).tolist() == [0, 0, 1, 1]
    assert prefix_shard(codes, 3).tolist() == [0, 1, 1, 2]
    assert prefix_shard(codes, 1).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match=r"shard must be in 0\.\.1"):
        Matcher(shard=2, shards=2)


@pytest.mark.parametrize("count", [2, 3])
def test_sharded_search_finds_exactly_what_one_index_and_brute_force_find(count: int) -> None:
    rng = random.Random(count)
    _, queries = make_bank(rng)
    whole = Matcher()
    whole.refresh()
    expected = brute_force(queries, 31)
    assert sum(len(hits) for hits in expected) > 100  # the test means something
    assert whole.search("pdq", queries, 31) == expected
    assert shards.ShardedSearch(count).search("pdq", queries, 31) == expected

    # Every shard holds a disjoint part, and the parts make up the whole bank.
    held = [set(shards.shard_matcher(k, count)._indexes["pdq"].search(
        hex_to_codes(list(BankEntry.objects.values_list("value", flat=True)), 256), 256)[0][0].tolist())
        for k in range(count)]
    # (a radius of 256 lists everything a shard holds, from any query)
    assert all(held) and sum(len(h) for h in held) == BankEntry.objects.count()
    assert set().union(*held) == set(BankEntry.objects.values_list("id", flat=True))


def test_the_pipeline_matches_through_the_shards_and_a_withdrawal_reaches_the_owning_shard() -> None:
    rng = random.Random(7)
    values, _ = make_bank(rng)
    target = values[0]
    query = flip(target, 12, rng)
    with override_settings(TAKEDOWN_MATCH_SHARDS=2):
        found = {m.entry_value for m in match_hashes([("pdq", query)])}
        assert target in found
        owner = int(prefix_shard(hex_to_codes([target], 256), 2)[0])
        assert bank_withdraw_entries(bank=bank_get_or_create(name="sharded"), hashes=[("pdq", target)]) == 1
        # The owning shard refreshes by checkpoint before answering: the entry is gone from the index.
        hits = shards.ShardedSearch(2).search("pdq", [target], 0)[0]
        assert hits == []
        assert target not in {m.entry_value for m in match_hashes([("pdq", query)])}
    active = list(BankEntry.objects.filter(status=BankEntry.Status.ACTIVE).values_list("value", flat=True))
    assert target not in active
    assert shards.shard_matcher(owner, 2).status().entries["pdq"] == int(
        (prefix_shard(hex_to_codes(active, 256), 2) == owner).sum())


def test_readyz_reports_the_staleness_of_every_shard(client: Any) -> None:
    rng = random.Random(11)
    make_bank(rng)
    with override_settings(TAKEDOWN_MATCH_SHARDS=2):
        response = client.get("/readyz")
        assert response.status_code == 200, response.content
        body = response.json()
        assert [s["shard"] for s in body["shards"]] == [0, 1]
        assert [s["queue"] for s in body["shards"]] == ["matching.shard-0", "matching.shard-1"]
        assert sum(s["entries"]["pdq"] for s in body["shards"]) == BankEntry.objects.count()
        assert all(s["status"] == "ready" and s["stale_seconds"] == 0 for s in body["shards"])

        bank_add_entries(bank=bank_get_or_create(name="sharded"), hashes=[("pdq", pdq(rng))], source="test")
        BankChange.objects.filter(pk=BankChange.objects.order_by("-pk").first().pk).update(
            created_at=timezone.now() - timedelta(seconds=30))
        with override_settings(TAKEDOWN_MATCH_REFRESH_SECONDS=3600):
            stale = client.get("/readyz")
        assert stale.status_code == 503
        body = stale.json()
        assert body["status"] == "stale" and body["stale_seconds"] >= 29
        assert all(s["status"] == "stale" and s["pending_changes"] == 1 for s in body["shards"])

        assert client.get("/readyz").status_code == 200  # due: each shard applies the change, then reports


def test_a_shard_that_does_not_answer_fails_the_search_and_readyz_names_it(client: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    make_bank(random.Random(3))
    real = shards.shard_handle

    def shard_one_is_down(shard: int, count: int, request: dict[str, Any]) -> Any:
        if shard == 1:
            from django.db import DatabaseError

            raise DatabaseError("shard 1 cannot reach the database")
        return real(shard, count, request)

    monkeypatch.setattr(shards, "shard_handle", shard_one_is_down)
    with override_settings(TAKEDOWN_MATCH_SHARDS=2):
        with pytest.raises(shards.ShardUnavailable) as raised:
            match_hashes([("pdq", "0" * 64)])
        assert raised.value.shards == [1]
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert [s["status"] for s in body["shards"]] == ["ready", "unavailable"]


def test_sharded_matching_is_not_used_without_a_redis_broker_outside_eager_mode() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from moderation.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with pytest.raises(ImproperlyConfigured, match="needs a Redis broker"):
            shards.ShardedSearch(2).search("pdq", ["0" * 64], 31)
    finally:
        app.conf.task_always_eager = previous
    assert np.array_equal(prefix_shard(hex_to_codes(["ffff" + "0" * 60], 256), 4), [3])


def test_scan_blocks_banked_content_through_the_shards_and_answers_503_when_one_is_down(
        demo: Any, platform_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from moderation.services.demo import demo_image_bytes

    data, _mime = demo_image_bytes(4)

    def scan() -> Any:
        return APIClient().post("/api/v1/scan", {"file": SimpleUploadedFile("upload.bin", data)}, format="multipart",
                                HTTP_AUTHORIZATION=f"Api-Key {platform_key}")

    with override_settings(TAKEDOWN_MATCH_SHARDS=2):
        response = scan()
        assert response.status_code == 200, response.content
        assert response.json()["verdict"] == "block"
        assert "pdq" in {m["algorithm"] for m in response.json()["matches"]}  # found by a shard

        def shard_zero_is_down(shard: int, count: int, request: dict[str, Any]) -> Any:
            from django.db import DatabaseError

            raise DatabaseError("down")

        monkeypatch.setattr(shards, "shard_handle", shard_zero_is_down)
        response = scan()
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "not available" in response.json()["detail"]


def test_the_shard_task_is_hashings_own_and_sent_with_the_projects_celery_app() -> None:
    import threading

    from celery import current_app

    from hashing.tasks import match_shard
    from moderation.celery import app

    assert match_shard.name == shards.TASK_NAME == "hashing.match_shard"
    assert match_shard.ignore_result and not match_shard.acks_late
    assert shards.TASK_NAME in app.tasks
    seen = []  # hashing.shards sends through current_app: the project's app in every thread
    thread = threading.Thread(target=lambda: seen.append(current_app._get_current_object()))
    thread.start()
    thread.join()
    assert seen == [app] and current_app._get_current_object() is app

