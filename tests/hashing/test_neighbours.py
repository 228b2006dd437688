"""hashing.neighbours: a process's index over a table's stored hashes, caught up by id before each search."""

from __future__ import annotations

import random

import pytest

from hashing.models import Bank, BankEntry
from hashing.neighbours import StoredHashIndex

pytestmark = pytest.mark.django_db


def pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


def near(value: str, bits: int) -> str:
    return f"{int(value, 16) ^ ((1 << bits) - 1):064x}"


def entry_index() -> StoredHashIndex:
    return StoredHashIndex(
        256,
        rows_above=lambda after: BankEntry.objects.filter(algorithm="pdq", id__gt=after).order_by("id")
        .values_list("id", "value", "created_at"),
        stamp_of=lambda pk: BankEntry.objects.filter(pk=pk).values_list("created_at", flat=True).first())


def test_rows_stored_after_the_first_search_are_found_by_the_next_one() -> None:
    bank = Bank.objects.create(name="b")
    first = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(1))
    BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(2))
    index = entry_index()
    assert index.candidates([near(pdq(1), 10)], 31) == {first.pk}
    later = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(3))
    assert index.candidates([near(pdq(3), 31), pdq(1)], 31) == {first.pk, later.pk}
    assert index.candidates([near(pdq(3), 32)], 31) == set()


def test_a_table_that_was_reset_is_indexed_again_from_scratch() -> None:
    bank = Bank.objects.create(name="b")
    BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(1))
    index = entry_index()
    assert len(index.candidates([pdq(1)], 0)) == 1
    BankEntry.objects.all().delete()  # the high-water row is gone: rebuilt, the old code is forgotten
    fresh = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(4))
    assert index.candidates([pdq(1)], 0) == set()
    assert index.candidates([pdq(4)], 0) == {fresh.pk}


def test_rows_that_are_not_valid_hex_are_left_out_without_failing() -> None:
    bank = Bank.objects.create(name="b")
    BankEntry.objects.create(bank=bank, algorithm="pdq", value="zz" * 32)
    good = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(5))
    assert entry_index().candidates([pdq(5)], 31) == {good.pk}
