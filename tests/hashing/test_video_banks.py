"""Known videos in banks: banking their frame signatures and matching uploads against them."""

from __future__ import annotations

import pytest

from hashing.banks import bank_get_or_create
from hashing.models import Bank, BankEntry, BankVideo, BankVideoFrame
from hashing.video import VideoHashes, hash_video_bytes
from hashing.video_banks import (
    VideoFrame,
    bank_add_video,
    bank_withdraw_video,
    bank_withdraw_videos_by_source,
    match_video_frames,
)
from tests.hashing.videos import cut_clip, make_video


@pytest.fixture(scope="module")
def original() -> bytes:
    return make_video(12, seed=0)


@pytest.fixture(scope="module")
def clip(original: bytes) -> VideoHashes:
    return hash_video_bytes(cut_clip(original, 3, 9, width=120, height=72))


def frames_of(hashes: VideoHashes) -> list[VideoFrame]:
    return [VideoFrame(f.index, f.timestamp, f.pdq, f.quality) for f in hashes.frames]


def query(hashes: VideoHashes) -> list[tuple[str, int]]:
    return [(f.pdq, f.quality) for f in hashes.frames]


def banked(original: bytes, name: str = "known-videos", **bank: object) -> tuple[Bank, BankVideo]:
    known = bank_get_or_create(name=name, **bank)  # type: ignore[arg-type]
    video, changed = bank_add_video(bank=known, frames=frames_of(hash_video_bytes(original)), source="test")
    assert video is not None and changed
    return known, video


@pytest.mark.django_db
def test_a_banked_video_keeps_only_its_usable_frames(original: bytes) -> None:
    hashes = hash_video_bytes(original)
    _bank, video = banked(original)
    stored = list(BankVideoFrame.objects.filter(video=video).values_list("pdq", flat=True))
    assert stored == [f.pdq for f in hashes.usable()]
    assert video.frame_count == len(stored) and video.status == BankEntry.Status.ACTIVE


@pytest.mark.django_db
def test_banking_the_same_video_again_changes_nothing(original: bytes) -> None:
    known, video = banked(original)
    again, changed = bank_add_video(bank=known, frames=frames_of(hash_video_bytes(original)), source="again")
    assert again == video and not changed
    assert BankVideo.objects.count() == 1


@pytest.mark.django_db
def test_a_video_with_no_usable_frame_is_not_banked() -> None:
    grey = hash_video_bytes(make_video(3, blank_from=0))
    video, changed = bank_add_video(bank=bank_get_or_create(name="known-videos"), frames=frames_of(grey),
                                    source="test")
    assert video is None and not changed
    assert BankVideo.objects.count() == 0


@pytest.mark.django_db
def test_a_clip_of_a_banked_video_is_found_and_an_unrelated_video_is_not(original: bytes,
                                                                       clip: VideoHashes) -> None:
    _bank, video = banked(original, blocks_uploads=True)
    (found,) = match_video_frames(query(clip))
    assert found.bank_video_id == video.pk and found.bank_name == "known-videos" and found.blocks_uploads
    assert found.comparison.is_match and found.comparison.query_share >= 0.8
    assert match_video_frames(query(hash_video_bytes(make_video(8, seed=9)))) == []


@pytest.mark.django_db
def test_a_withdrawn_video_or_a_disabled_bank_stops_matching_at_once(original: bytes, clip: VideoHashes) -> None:
    known, video = banked(original)
    assert bank_withdraw_video(video_id=video.pk)
    assert match_video_frames(query(clip)) == []
    assert bank_add_video(bank=known, frames=frames_of(hash_video_bytes(original)), source="re")[1]  # re-activated
    assert len(match_video_frames(query(clip))) == 1
    Bank.objects.filter(pk=known.pk).update(enabled=False)
    assert match_video_frames(query(clip)) == []


@pytest.mark.django_db
def test_matches_are_found_in_every_bank_that_holds_the_video(original: bytes, clip: VideoHashes) -> None:
    banked(original, name="bank-a")
    banked(original, name="bank-b", blocks_uploads=False)
    found = match_video_frames(query(clip))
    assert {(m.bank_name, m.blocks_uploads) for m in found} == {("bank-a", True), ("bank-b", False)}


@pytest.mark.django_db
def test_withdrawing_by_source_withdraws_that_case_s_videos_in_every_bank(original: bytes, clip: VideoHashes) -> None:
    frames = frames_of(hash_video_bytes(original))
    first, _ = bank_add_video(bank=bank_get_or_create(name="bank-a"), frames=frames, source="case:TD-1")
    second, _ = bank_add_video(bank=bank_get_or_create(name="bank-b"), frames=frames, source="case:TD-1")
    other, _ = bank_add_video(bank=bank_get_or_create(name="bank-c"), frames=frames, source="case:TD-2")
    assert first and second and other
    assert sorted(bank_withdraw_videos_by_source(source="case:TD-1")) == sorted([first.pk, second.pk])
    assert [m.bank_name for m in match_video_frames(query(clip))] == ["bank-c"]
    assert bank_withdraw_videos_by_source(source="case:TD-1") == []
