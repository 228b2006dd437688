"""The lookups' hot path: the key check cached, banks from a snapshot, one query per hit and none per miss."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.hma.conftest import Hma

pytestmark = pytest.mark.django_db


@pytest.fixture
def warm(hma: Hma, curator: Hma, settings: Any) -> str:
    """A banked PDQ hash, with the key, the bank snapshot and the index already read, as under load."""
    settings.TAKEDOWN_MATCH_REFRESH_SECONDS = 60
    settings.TAKEDOWN_API_KEY_CACHE_SECONDS = 60
    curator.post("/c/banks", {"name": "HOT"})
    value = f"{random.Random(7).getrandbits(256):064x}"
    curator.post("/c/bank/HOT/signal", {"pdq": value})
    assert hma.get("/m/raw_lookup", {"signal": value, "signal_type": "pdq"}).json()["matches"]
    return value


def test_a_raw_lookup_that_matches_costs_one_query(hma: Hma, warm: str,
                                                   django_assert_num_queries: Callable[..., Any]) -> None:
    with django_assert_num_queries(1):
        assert len(hma.get("/m/raw_lookup", {"signal": warm, "signal_type": "pdq"}).json()["matches"]) == 1


def test_a_raw_lookup_that_matches_nothing_costs_no_query(hma: Hma, warm: str,
                                                          django_assert_num_queries: Callable[..., Any]) -> None:
    other = f"{int(warm, 16) ^ ((1 << 256) - 1):064x}"
    with django_assert_num_queries(0):
        assert hma.get("/m/raw_lookup", {"signal": other, "signal_type": "pdq"}).json() == {"matches": []}


def test_a_file_lookup_costs_one_query_per_signal_that_matches(hma: Hma, curator: Hma, warm: str,
                                                               photo: Callable[[int], bytes],
                                                               django_assert_num_queries: Callable[..., Any]) -> None:
    curator.post("/c/bank/HOT/content", files={"photo": photo(5)})
    hma.post("/m/lookup", files={"photo": photo(5)})
    with django_assert_num_queries(1):
        assert hma.post("/m/lookup", files={"photo": photo(5)}).json()["pdq"]["HOT"]
