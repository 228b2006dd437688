"""Video hashing in the vPDQ manner and its match rule, on short videos the tests make themselves."""

from __future__ import annotations

import hashlib
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from hashing.errors import CorruptMedia, EmptyMedia, MediaError, MediaTooLarge, UnsupportedMedia, VideoTooLong
from hashing.video import (
    FRAME_MATCH_RADIUS,
    MIN_FRAME_QUALITY,
    QUERY_MATCH_SHARE,
    VideoHashes,
    VideoLimits,
    compare_frames,
    compare_to_many,
    hash_video_bytes,
    looks_like_video,
    probe_video,
)
from tests.hashing.videos import FPS, cut_clip, make_video


def usable(hashes: VideoHashes) -> list[str]:
    return [f.pdq for f in hashes.usable()]


@pytest.fixture(scope="module")
def original() -> bytes:
    """16 seconds, 160 x 96, H.264 in MP4."""
    return make_video(16, seed=0)


@pytest.fixture(scope="module")
def original_hashes(original: bytes) -> VideoHashes:
    return hash_video_bytes(original)


# --- Hashing -----------------------------------------------------------------------------------


def test_it_hashes_the_file_and_about_one_frame_a_second(original: bytes, original_hashes: VideoHashes) -> None:
    h = original_hashes
    assert h.md5 == hashlib.md5(original, usedforsecurity=False).hexdigest()
    assert h.sha256 == hashlib.sha256(original).hexdigest()
    assert h.values() == [("md5", h.md5), ("sha256", h.sha256)]
    assert [f.timestamp for f in h.frames] == [float(t) for t in range(16)]
    assert [f.index for f in h.frames] == list(range(16))
    assert h.decoded_frames == 16 * FPS
    assert all(len(f.pdq) == 64 and 0 <= f.quality <= 100 for f in h.frames)
    assert (h.info.mime, h.info.width, h.info.height, h.info.codec) == ("video/mp4", 160, 96, "h264")
    assert h.info.duration_s == pytest.approx(16, abs=0.1)


def test_hashing_the_same_file_twice_gives_the_same_frames(original: bytes, original_hashes: VideoHashes) -> None:
    assert hash_video_bytes(original).frames == original_hashes.frames


def test_a_slower_sampling_interval_takes_fewer_frames(original: bytes) -> None:
    frames = hash_video_bytes(original, interval_s=2.0).frames
    assert [f.timestamp for f in frames] == [float(t) for t in range(0, 16, 2)]


@pytest.mark.parametrize(("fmt", "codec", "mime"), [
    ("webm", "libvpx", "video/webm"),
    ("matroska", "libx264", "video/x-matroska"),
    ("avi", "mpeg4", "video/x-msvideo"),
    ("mov", "libx264", "video/quicktime"),
])
def test_it_reads_the_common_containers(fmt: str, codec: str, mime: str) -> None:
    data = make_video(3, fmt=fmt, codec=codec)
    assert looks_like_video(data)
    assert probe_video(data).mime == mime
    assert len(hash_video_bytes(data).frames) == 3


def test_blank_frames_are_hashed_but_dropped_from_matching_as_low_quality() -> None:
    h = hash_video_bytes(make_video(8, seed=3, blank_from=4))
    blank = [f for f in h.frames if f.timestamp >= 4]
    assert len(blank) == 4 and all(f.quality < MIN_FRAME_QUALITY for f in blank)
    assert [f.timestamp for f in h.usable()] == [0.0, 1.0, 2.0, 3.0]


def test_two_blank_videos_do_not_match_each_other() -> None:
    grey = hash_video_bytes(make_video(4, seed=1, blank_from=0))
    other_grey = hash_video_bytes(make_video(5, seed=2, blank_from=0, width=128, height=128))
    assert usable(grey) == [] and usable(other_grey) == []
    assert not compare_frames(usable(grey), usable(other_grey)).is_match


# --- The match rule on videos ------------------------------------------------------------------


def test_the_same_video_matches_itself_with_every_frame(original_hashes: VideoHashes) -> None:
    result = compare_frames(usable(original_hashes), usable(original_hashes))
    assert result.is_match
    assert result.query_share == 1.0 and result.stored_share == 1.0
    assert result.median_distance == 0


def test_a_clip_cut_from_the_middle_re_encoded_and_resized_is_found(original: bytes,
                                                                    original_hashes: VideoHashes) -> None:
    clip = hash_video_bytes(cut_clip(original, 5, 11, width=120, height=72))  # VP8 in WebM, 3/4 the size
    assert clip.info.mime == "video/webm"
    result = compare_frames(usable(clip), usable(original_hashes))
    assert result.is_match
    assert result.query_share >= QUERY_MATCH_SHARE
    assert result.stored_share < 0.5  # six seconds of sixteen: found by the query's share alone


def test_a_clip_cut_between_two_sampling_points_is_still_found(original: bytes,
                                                               original_hashes: VideoHashes) -> None:
    clip = hash_video_bytes(cut_clip(original, 3.5, 10.5, width=96, height=64))
    assert compare_frames(usable(clip), usable(original_hashes)).is_match


def test_a_known_clip_inside_a_longer_video_matches_by_the_stored_share(original: bytes,
                                                                        original_hashes: VideoHashes) -> None:
    known_clip = hash_video_bytes(cut_clip(original, 6, 12, width=160, height=96))
    result = compare_frames(usable(original_hashes), usable(known_clip))
    assert result.query_share < QUERY_MATCH_SHARE
    assert result.is_match


def test_an_unrelated_video_does_not_match(original_hashes: VideoHashes) -> None:
    other = hash_video_bytes(make_video(16, seed=7))
    result = compare_frames(usable(other), usable(original_hashes))
    assert not result.is_match
    assert result.query_matched <= 1


# --- The match rule on hash values -------------------------------------------------------------


def flipped(value: str, bits: int) -> str:
    """``value`` with its lowest ``bits`` bits inverted: exactly ``bits`` away."""
    return f"{int(value, 16) ^ ((1 << bits) - 1):064x}"


def random_hashes(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(n)]


def test_four_of_five_query_frames_within_the_radius_is_a_match_and_three_is_not() -> None:
    stored = random_hashes(10, seed=1)
    strangers = random_hashes(2, seed=2)
    four = [flipped(h, FRAME_MATCH_RADIUS) for h in stored[:4]] + strangers[:1]
    three = [flipped(h, FRAME_MATCH_RADIUS) for h in stored[:3]] + strangers
    assert compare_frames(four, stored).is_match
    assert compare_frames(four, stored).query_share == 0.8
    assert not compare_frames(three, stored).is_match


def test_a_frame_one_bit_beyond_the_radius_does_not_count() -> None:
    stored = random_hashes(3, seed=3)
    result = compare_frames([flipped(h, FRAME_MATCH_RADIUS + 1) for h in stored], stored)
    assert result.query_matched == 0 and not result.is_match


def test_one_shared_frame_is_not_evidence_enough() -> None:
    (frame,) = random_hashes(1, seed=4)
    result = compare_frames([frame], [frame])
    assert result.query_share == 1.0
    assert not result.is_match


def test_comparing_against_many_gives_what_comparing_one_by_one_gives() -> None:
    query = random_hashes(6, seed=5)
    candidates = [query[:3] + random_hashes(2, seed=6), [], random_hashes(4, seed=7), query[::-1]]
    many = compare_to_many(query, candidates)
    assert many == [compare_frames(query, c) for c in candidates]
    assert [c.is_match for c in many] == [False, False, False, True]


def test_malformed_frame_hashes_are_refused() -> None:
    with pytest.raises(ValueError, match="64 hex"):
        compare_frames(["abc"], random_hashes(1, seed=8))


# --- Hostile input: a typed error, within bounds -----------------------------------------------


def test_zero_bytes_is_empty() -> None:
    with pytest.raises(EmptyMedia):
        hash_video_bytes(b"")
    with pytest.raises(EmptyMedia):
        probe_video(b"")


@pytest.mark.parametrize("data", [
    b"#!/bin/sh\necho hello\n",
    b"\xff\xd8\xff\xe0" + bytes(200),  # a JPEG's start
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",  # a HEIC photo is not a video
    bytes(range(256)) * 8,
], ids=["script", "jpeg", "heic", "noise"])
def test_a_file_that_is_not_a_video_is_unsupported(data: bytes) -> None:
    assert not looks_like_video(data)
    with pytest.raises(UnsupportedMedia, match="not a video"):
        hash_video_bytes(data)


def test_a_video_container_full_of_garbage_is_corrupt() -> None:
    rng = np.random.default_rng(0)
    data = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + rng.bytes(20_000)
    with pytest.raises(CorruptMedia):
        hash_video_bytes(data)


def test_an_mp4_cut_off_before_its_index_is_corrupt(original: bytes) -> None:
    with pytest.raises(CorruptMedia, match="damaged or incomplete"):
        probe_video(original[: len(original) // 2])


def test_a_webm_cut_off_half_way_is_corrupt_although_its_first_frames_decode() -> None:
    data = make_video(10, seed=4, fmt="webm", codec="libvpx")
    truncated = data[: len(data) // 2]
    assert probe_video(truncated).mime == "video/webm"  # the header and first frame are intact
    with pytest.raises(CorruptMedia, match="cut off"):
        hash_video_bytes(truncated)


def test_a_streamable_mp4_cut_off_half_way_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(FPS * 6):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    data = path.read_bytes()
    with pytest.raises(CorruptMedia):
        hash_video_bytes(data[: len(data) // 2])


def test_a_file_over_the_byte_limit_is_refused_before_decoding(original: bytes) -> None:
    with pytest.raises(MediaTooLarge, match="limit"):
        hash_video_bytes(original, limits=VideoLimits(max_bytes=1000))


def test_frames_over_the_pixel_limit_are_refused_from_the_header(original: bytes) -> None:
    with pytest.raises(MediaTooLarge, match="160 x 96"):
        probe_video(original, limits=VideoLimits(max_frame_pixels=160 * 95))


def test_a_video_longer_than_the_limit_is_refused_from_its_header(original: bytes) -> None:
    with pytest.raises(VideoTooLong, match="minutes"):
        probe_video(original, limits=VideoLimits(max_duration_s=10))


def test_too_many_frames_declared_in_the_header_are_refused_before_decoding(original: bytes) -> None:
    with pytest.raises(VideoTooLong, match="frames"):
        probe_video(original, limits=VideoLimits(max_decoded_frames=100))


def test_too_many_frames_are_stopped_while_decoding_when_the_header_does_not_say() -> None:
    # Matroska declares no frame count, and this header's duration is within the limit: the frame
    # count while decoding is what stops it (a "frame bomb" of many tiny frames looks like this).
    data = make_video(4, seed=5, fmt="matroska", width=32, height=32, fps=60)
    assert probe_video(data, limits=VideoLimits(max_decoded_frames=100)).codec == "h264"
    with pytest.raises(VideoTooLong, match="more than 100 frames"):
        hash_video_bytes(data, limits=VideoLimits(max_decoded_frames=100))


def test_a_sound_only_file_is_unsupported() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(UnsupportedMedia, match="no video picture"):
        hash_video_bytes(buffer.getvalue())


def test_a_codec_outside_the_list_is_unsupported() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(UnsupportedMedia, match="ffv1"):
        probe_video(buffer.getvalue())


def test_every_video_error_is_a_media_error_with_a_code() -> None:
    assert issubclass(VideoTooLong, MediaTooLarge) and issubclass(VideoTooLong, MediaError)
    assert VideoTooLong.code == "too_long"


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "libx264"), ("webm", "libvpx"), ("avi", "mpeg4")])
def test_damaged_copies_give_a_hash_or_a_typed_error_and_nothing_else(fmt: str, codec: str) -> None:
    data = make_video(2, seed=2, fmt=fmt, codec=codec)
    rng = np.random.default_rng(1)
    outcomes = set()
    for attempt in range(24):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 20))):
            damaged[int(rng.integers(0, len(damaged)))] = int(rng.integers(0, 256))
        if attempt % 3 == 0:
            damaged = damaged[: int(rng.integers(8, len(damaged)))]
        try:
            hash_video_bytes(bytes(damaged))
            outcomes.add("hashed")
        except MediaError as exc:
            assert str(exc), "every error says what is wrong"
            outcomes.add(type(exc).__name__)
    assert "CorruptMedia" in outcomes  # the damage was real enough to be noticed
