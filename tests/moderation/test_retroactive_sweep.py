"""Retroactive matching: stored media is checked against entries that join a bank later."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hashing.banks import bank_add_entries, bank_configure, bank_get_or_create
from moderation.models import AuditEvent, Match, Media, MediaHash
from moderation.services.sweep import sweep_bank_entries

pytestmark = pytest.mark.django_db


def pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


def flipped(value: str, bits: int) -> str:
    return f"{int(value, 16) ^ ((1 << bits) - 1):064x}"


def stored_media(number: int, pdq_value: str, md5: str | None = None) -> Media:
    media = Media.objects.create(sha256=f"{number:064x}", md5=md5 or f"{number:032x}", mime="image/png",
                                 size_bytes=100, origin=Media.Origin.PLATFORM, status=Media.Status.PROCESSED)
    MediaHash.objects.create(media=media, algorithm="pdq", value=pdq_value, quality=90)
    MediaHash.objects.create(media=media, algorithm="md5", value=media.md5)
    return media


def test_media_hashed_before_an_entry_existed_is_matched_when_the_entry_is_added() -> None:
    copy = stored_media(1, flipped(pdq(1), 12))
    exact = stored_media(2, pdq(50), md5="ab" * 16)
    unrelated = stored_media(3, pdq(99))
    bank = bank_get_or_create(name="confirmed")
    entries = bank_add_entries(bank=bank, hashes=[("pdq", pdq(1)), ("md5", "ab" * 16)], source="partner:x")

    progress = sweep_bank_entries(entry_ids=[e.pk for e in entries])

    assert progress.matches == 2 and progress.matched_media == {copy.pk, exact.pk}
    assert progress.next_after is None  # everything stored fitted in this run's batches
    assert sorted(Match.objects.values_list("media_id", "algorithm", "distance", "threshold")) == sorted([
        (copy.pk, "pdq", 12, 31), (exact.pk, "md5", 0, 0)])
    assert not Match.objects.filter(media=unrelated).exists()
    assert AuditEvent.objects.filter(action="media.matched_retroactively").count() == 2


def test_sweeping_again_adds_nothing() -> None:
    stored_media(1, pdq(1))
    entries = bank_add_entries(bank=bank_get_or_create(name="b"), hashes=[("pdq", pdq(1))], source="t")
    assert sweep_bank_entries(entry_ids=[entries[0].pk]).matches == 1
    assert sweep_bank_entries(entry_ids=[entries[0].pk]).matches == 0
    assert Match.objects.count() == 1


def test_the_sweep_goes_through_media_in_batches_with_a_cursor() -> None:
    media = [stored_media(i, flipped(pdq(7), i)) for i in range(1, 6)]
    entries = bank_add_entries(bank=bank_get_or_create(name="b"), hashes=[("pdq", pdq(7))], source="t")
    cursor, runs, matched = 0, 0, set()
    while cursor is not None:
        progress = sweep_bank_entries(entry_ids=[entries[0].pk], after_id=cursor, batch_rows=1, max_batches=2)
        matched |= progress.matched_media
        cursor = progress.next_after
        runs += 1
    assert matched == {m.pk for m in media}
    assert runs >= 3  # five pdq rows, two per run


def test_the_bank_threshold_and_withdrawn_or_disabled_entries_are_respected() -> None:
    stored_media(1, flipped(pdq(8), 10))
    bank = bank_get_or_create(name="strict")
    bank_configure(bank=bank, thresholds={"pdq": 8})
    entries = bank_add_entries(bank=bank, hashes=[("pdq", pdq(8))], source="t")
    assert sweep_bank_entries(entry_ids=[entries[0].pk]).matches == 0
    bank_configure(bank=bank, thresholds={"pdq": 10}, enabled=False)
    assert sweep_bank_entries(entry_ids=[entries[0].pk]).matches == 0
    bank_configure(bank=bank, enabled=True)
    assert sweep_bank_entries(entry_ids=[entries[0].pk]).matches == 1


def test_adding_entries_starts_the_sweep_on_commit(django_capture_on_commit_callbacks: Any) -> None:
    copy = stored_media(1, flipped(pdq(9), 3))
    with django_capture_on_commit_callbacks(execute=True):
        bank_add_entries(bank=bank_get_or_create(name="b"), hashes=[("pdq", pdq(9))], source="partner:y")
    assert Match.objects.filter(media=copy, algorithm="pdq", distance=3).exists()


@pytest.mark.django_db(transaction=True)
def test_a_takedown_sweeps_other_copies_but_not_the_case_own_media(demo: Any, moderator: Any, admin_user: Any) -> None:
    from moderation.models import ReviewTask
    from moderation.services.claims import task_claim
    from moderation.services.decisions import decision_make
    from tests.moderation.test_pipeline import submit

    earlier = submit(["demo://content/6"])  # hashed before anything about it is banked
    earlier_media = earlier.items.get().media
    assert earlier_media is not None
    same_pdq = earlier_media.hashes.get(algorithm="pdq").value
    # A second, different file of the same picture (slightly altered), stored before the takedown.
    copy = stored_media(777, flipped(same_pdq, 6))
    task = ReviewTask.objects.get(report=earlier)
    task_claim(task_id=task.pk, user=admin_user)
    decision_make(task_id=task.pk, user=admin_user, outcome="takedown", reason="ncii")

    assert Match.objects.filter(media=copy, bank_entry__bank__name="confirmed-takedowns", distance=6).exists()
    assert not Match.objects.filter(media=earlier_media, bank_entry__bank__name="confirmed-takedowns").exists()
