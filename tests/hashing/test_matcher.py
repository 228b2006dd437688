"""hashing.matcher and hashing.matching: the per-process index, refreshed by checkpoint."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from hashing.banks import bank_add_entries, bank_configure, bank_get_or_create, bank_withdraw_entries
from hashing.matcher import Matcher, get_matcher
from hashing.matching import match_hashes
from hashing.models import BankChange, BankEntry

pytestmark = pytest.mark.django_db


def pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


def near(value: str, bits: int) -> str:
    """``value`` with its lowest ``bits`` bits flipped."""
    width = len(value)
    return f"{int(value, 16) ^ ((1 << bits) - 1):0{width}x}"


def found_ids(matcher: Matcher, value: str, radius: int = 31) -> list[int]:
    return [entry_id for entry_id, _ in matcher.search("pdq", [value], radius)[0]]


def test_refresh_applies_exactly_the_entries_changed_since_the_checkpoint() -> None:
    bank = bank_get_or_create(name="known")
    first = bank_add_entries(bank=bank, hashes=[("pdq", pdq(1))], source="test")
    matcher = Matcher()
    assert matcher.refresh() == -1  # the first refresh builds from the banks
    assert found_ids(matcher, pdq(1)) == [first[0].pk]

    added = bank_add_entries(bank=bank, hashes=[("pdq", pdq(2)), ("pdq", pdq(3)), ("md5", "0" * 32)], source="t")
    assert matcher.refresh() == 3  # three new change rows, nothing else replayed
    assert found_ids(matcher, near(pdq(2), 5)) == [added[0].pk]
    assert found_ids(matcher, pdq(3)) == [added[1].pk]
    assert matcher.refresh() == 0


def test_a_withdrawn_entry_leaves_the_index_on_refresh_and_stops_matching_before_it() -> None:
    bank = bank_get_or_create(name="known")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(4))], source="test")
    matcher = get_matcher()  # the one match_hashes uses
    matcher.refresh()
    with override_settings(TAKEDOWN_MATCH_REFRESH_SECONDS=3600):
        assert [m.entry_value for m in match_hashes([("pdq", pdq(4))])] == [pdq(4)]
        assert bank_withdraw_entries(bank=bank, hashes=[("pdq", pdq(4))]) == 1
        # No refresh yet: the hit is re-checked in the database and dropped.
        assert match_hashes([("pdq", pdq(4))]) == []
    assert matcher.refresh() == 1
    assert found_ids(matcher, pdq(4)) == []


def test_a_change_that_commits_below_the_checkpoint_is_applied_when_it_appears() -> None:
    bank = bank_get_or_create(name="known")
    matcher = Matcher()
    matcher.refresh()
    early = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(5))
    late = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(6))
    head = BankChange.objects.create(entry_id=early.pk)
    matcher.refresh()
    # On PostgreSQL, ids that earlier tests rolled back are gaps too.
    gaps_before = matcher.status().open_gaps
    # A transaction that took id head+1 has not committed yet; head+2 has.
    BankChange.objects.create(id=head.pk + 2, entry_id=early.pk)
    matcher.refresh()
    status = matcher.status()
    assert status.checkpoint == head.pk + 2 and status.open_gaps == gaps_before + 1
    BankChange.objects.create(id=head.pk + 1, entry_id=late.pk)
    assert matcher.status().pending_changes == 1
    assert matcher.refresh() == 1
    assert found_ids(matcher, pdq(6)) == [late.pk]
    assert matcher.status().open_gaps == gaps_before


def test_a_gap_older_than_the_timeout_is_taken_as_rolled_back() -> None:
    bank = bank_get_or_create(name="known")
    entry = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(7))
    matcher = Matcher()
    head = BankChange.objects.create(entry_id=entry.pk)
    matcher.refresh()
    gaps_before = matcher.status().open_gaps
    BankChange.objects.create(id=head.pk + 2, entry_id=entry.pk)
    matcher.refresh()
    assert matcher.status().open_gaps == gaps_before + 1
    with override_settings(TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS=0):
        matcher.refresh()
    assert matcher.status().open_gaps == 0


def test_entries_created_without_a_change_row_are_still_picked_up() -> None:
    bank = bank_get_or_create(name="known")
    matcher = Matcher()
    matcher.refresh()
    entry = BankEntry.objects.create(bank=bank, algorithm="pdq", value=pdq(8))
    matcher.refresh()
    assert found_ids(matcher, pdq(8)) == [entry.pk]


def test_the_index_is_rebuilt_when_the_checkpoint_row_is_gone() -> None:
    bank = bank_get_or_create(name="known")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(9))], source="test")
    matcher = Matcher()
    matcher.refresh()
    BankChange.objects.all().delete()  # as after restoring an older backup
    assert matcher.refresh() == -1


def test_status_reports_how_stale_the_index_is_and_readyz_follows_it(client: Any) -> None:
    from hashing import matcher as matcher_module

    bank = bank_get_or_create(name="known")
    process_matcher = matcher_module.get_matcher()
    process_matcher.refresh()
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(10)), ("phash", "f" * 16)], source="test")
    BankChange.objects.update(created_at=timezone.now() - timedelta(seconds=30))
    status = process_matcher.status()
    assert status.pending_changes == 2
    assert 29 <= status.stale_seconds < 120
    with override_settings(TAKEDOWN_MATCH_REFRESH_SECONDS=3600):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "stale" and body["pending_changes"] == 2 and body["stale_seconds"] >= 29

    response = client.get("/readyz")  # due for a refresh: applies the changes, then reports
    assert response.status_code == 200
    assert response.json()["pending_changes"] == 0 and response.json()["stale_seconds"] == 0


def test_each_bank_has_its_own_threshold_and_a_disabled_bank_never_matches() -> None:
    strict = bank_get_or_create(name="strict")
    loose = bank_get_or_create(name="loose")
    bank_configure(bank=strict, thresholds={"pdq": 4})
    bank_configure(bank=loose, thresholds={"pdq": 40})
    bank_add_entries(bank=strict, hashes=[("pdq", pdq(11))], source="test")
    bank_add_entries(bank=loose, hashes=[("pdq", pdq(11))], source="test")
    found = match_hashes([("pdq", near(pdq(11), 35))])
    assert [(m.bank_name, m.distance, m.threshold) for m in found] == [("loose", 35, 40)]
    assert {m.bank_name for m in match_hashes([("pdq", near(pdq(11), 3))])} == {"strict", "loose"}
    bank_configure(bank=loose, enabled=False)
    assert [m.bank_name for m in match_hashes([("pdq", near(pdq(11), 3))])] == ["strict"]
    # An explicit threshold overrides the banks'.
    assert [m.bank_name for m in match_hashes([("pdq", near(pdq(11), 3))], thresholds={"pdq": 2})] == []


def test_a_threshold_a_bank_cannot_use_is_refused_with_the_allowed_range() -> None:
    bank = bank_get_or_create(name="known")
    with pytest.raises(ValueError, match="from 0 to 127"):
        bank_configure(bank=bank, thresholds={"pdq": 200})
    with pytest.raises(ValueError, match="perceptual"):
        bank_configure(bank=bank, thresholds={"md5": 1})


def test_match_hashes_finds_pdq_phash_and_exact_hashes_nearest_first() -> None:
    bank = bank_get_or_create(name="known")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(12)), ("phash", "00ff00ff00ff00ff"), ("sha256", "a" * 64)],
                     source="case:TD-1")
    found = match_hashes([("pdq", near(pdq(12), 20)), ("phash", "00ff00ff00ff00fe"), ("sha256", "A" * 64),
                          ("dhash", "0" * 16)])
    assert [(m.algorithm, m.distance) for m in found] == [("sha256", 0), ("phash", 1), ("pdq", 20)]
    assert found[2].entry_source == "case:TD-1" and found[2].threshold == 31


def test_matching_every_hash_of_an_image_costs_at_most_three_queries(django_assert_max_num_queries: Any) -> None:
    bank = bank_get_or_create(name="query-count")
    value = pdq(77)
    md5 = "0123456789abcdef0123456789abcdef"
    bank_add_entries(bank=bank, hashes=[("pdq", value), ("md5", md5)], source="test")
    hashes = [("pdq", near(value, 5)), ("phash", "0" * 16), ("dhash", "f" * 16), ("md5", md5), ("sha256", "a" * 64)]
    match_hashes(hashes)  # brings the matcher up to date
    with override_settings(TAKEDOWN_MATCH_REFRESH_SECONDS=60), django_assert_max_num_queries(3):
        found = match_hashes(hashes)
    assert {(m.algorithm, m.bank_name) for m in found} == {("pdq", "query-count"), ("md5", "query-count")}
