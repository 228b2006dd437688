"""Property-based checks of the lookups: exact answers, HMA's coin flip, and HMA's schemas whatever the query."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashing.banks import bank_configure
from hashing.models import Bank
from tests.hma.conftest import Contract, Hma

pytestmark = pytest.mark.django_db

BANKED = 40
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def near(value: str, rng: random.Random, bits: int) -> str:
    """``value`` with ``bits`` distinct random bits flipped."""
    number = int(value, 16)
    for bit in rng.sample(range(256), bits):
        number ^= 1 << bit
    return f"{number:064x}"


@pytest.fixture
def two_banks(curator: Hma) -> dict[str, dict[int, str]]:
    """Two banks of random PDQ hashes, one with its own threshold of 20; ``{bank: {content id: hash}}``."""
    rng = random.Random(20)
    banks: dict[str, dict[int, str]] = {"WIDE": {}, "NARROW": {}}
    for name in banks:
        assert curator.post("/c/banks", {"name": name}).status_code == 201
    for n in range(BANKED):
        name = "WIDE" if n % 2 else "NARROW"
        value = f"{rng.getrandbits(256):064x}"
        banks[name][curator.post(f"/c/bank/{name}/signal", {"pdq": value}).json()["id"]] = value
    bank_configure(bank=Bank.objects.get(name="narrow"), thresholds={"pdq": 20})
    return banks


@SETTINGS
@given(pick=st.integers(0, BANKED - 1), bits=st.integers(0, 48), seed=st.integers(0, 2**32))
def test_raw_lookup_finds_exactly_the_contents_within_each_banks_threshold(
        hma: Hma, two_banks: dict[str, dict[int, str]], pick: int, bits: int, seed: int) -> None:
    everything = [(bank, cid, value) for bank, contents in two_banks.items() for cid, value in contents.items()]
    query = near(everything[pick][2], random.Random(seed), bits)
    response = hma.get("/m/raw_lookup", {"signal": query, "signal_type": "pdq", "include_distance": "true"})
    assert response.status_code == 200
    body = response.json()
    limit = {"WIDE": 31, "NARROW": 20}
    expected = {cid: (int(query, 16) ^ int(value, 16)).bit_count() for bank, cid, value in everything
                if (int(query, 16) ^ int(value, 16)).bit_count() <= limit[bank]}
    assert {m["bank_content_id"]: int(m["distance"]) for m in body["matches"]} == expected
    distances = [int(m["distance"]) for m in body["matches"]]
    assert distances == sorted(distances)


@SETTINGS
@given(ratio=st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), seed=st.text(min_size=1, max_size=12))
def test_a_bank_takes_part_in_a_lookup_exactly_when_its_ratio_reaches_the_seeded_coin_flip(
        hma: Hma, curator: Hma, two_banks: dict[str, dict[int, str]], ratio: float, seed: str) -> None:
    curator.put("/c/bank/WIDE", {"enabled_ratio": ratio})
    content_id, value = next(iter(two_banks["WIDE"].items()))
    response = hma.get("/m/lookup", {"signal": value, "signal_type": "pdq", "seed": seed})
    body = response.json()
    takes_part = ratio >= random.Random(seed).random()
    assert body == ({"WIDE": [{"bank_content_id": content_id, "distance": "0"}]} if takes_part else {})


QUERY_VALUES = st.one_of(st.text(max_size=70), st.sampled_from(["pdq", "video_md5", "true", "false", "0" * 64]))


@pytest.mark.shared_data
@SETTINGS
@given(params=st.dictionaries(st.sampled_from(["signal", "signal_type", "include_distance", "banks", "seed",
                                              "bypass_coinflip", "url"]), QUERY_VALUES, max_size=6),
       route=st.sampled_from(["/m/raw_lookup", "/m/lookup"]))
def test_any_query_gets_an_answer_hmas_description_allows_never_a_500(
        hma: Hma, contract: Contract, two_banks: dict[str, dict[int, str]], params: dict[str, Any],
        route: str) -> None:
    response = hma.get(route, params)
    assert response.status_code in (200, 400, 422)
    contract.check(response, route, "GET")
