"""Fuzzing the decode path: valid JPEG, PNG, APNG, GIF, WebP, TIFF, BMP and HEIC files, mutated (bit flips,
truncation, splices, size fields set to extreme values, repeated blocks), must always give a result or a
typed ``MediaError``; never another exception.

Bounded for CI: ``TAKEDOWN_FUZZ_EXAMPLES`` examples (200 by default; set it higher to fuzz longer by
hand), derandomized so every run tries the same inputs, and no example database is written.
"""

from __future__ import annotations

import os
import struct
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hashing.algorithms import hash_bytes
from hashing.decode import iter_frames, open_image, probe
from hashing.errors import MediaError
from moderation.services.media import media_validate
from tests.security.hostile_corpus import encode, picture

EXAMPLES = int(os.environ.get("TAKEDOWN_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Values that break size arithmetic when written over a length, width or offset field.
EXTREMES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@cache
def seeds() -> dict[str, bytes]:
    """Small valid files (tens of pixels), so each example decodes in milliseconds."""
    img = picture(40, 30, seed=7)
    frames = [picture(16, 12, seed=s) for s in range(3)]
    return {
        "jpeg": encode(img, "JPEG", quality=85),
        "jpeg-progressive": encode(img, "JPEG", progressive=True),
        "png": encode(img, "PNG"),
        "png-palette": encode(img.convert("P"), "PNG"),
        "apng": encode(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        "gif": encode(frames[0].convert("P"), "GIF", save_all=True, append_images=[f.convert("P") for f in frames[1:]]),
        "webp": encode(img, "WEBP", quality=80),
        "webp-animated": encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        "tiff": encode(img, "TIFF", compression="tiff_lzw"),
        "bmp": encode(img, "BMP"),
        "heic": encode(img, "HEIF", quality=70),
        "exif-jpeg": encode(img, "JPEG", exif=_exif()),
    }


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "a description"
    return exif.tobytes()


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(seeds())))
    data = bytearray(seeds()[name])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "header", "extreme", "repeat", "delete"]))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "splice":  # a piece of another format's file (its markers and chunks) dropped in
            other = seeds()[draw(st.sampled_from(sorted(seeds())))]
            start = draw(st.integers(0, len(other) - 1))
            data[pos:pos] = other[start : start + draw(st.integers(1, 64))]
        elif kind == "header":
            at = draw(st.integers(0, min(len(data), 64) - 1))
            data[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "extreme":  # over a size, length or offset field: header fields sit in the first bytes
            at = draw(st.integers(0, min(len(data), 256) - 1))
            fmt = draw(st.sampled_from([">H", "<H", ">I", "<I"]))
            value = draw(st.sampled_from(EXTREMES)) & (0xFFFF if fmt.endswith("H") else 0xFFFFFFFF)
            data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)
        elif kind == "repeat":
            block = data[pos : pos + draw(st.integers(1, 256))]
            data[pos:pos] = block * draw(st.integers(1, 20))
        else:
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


def only_typed_errors(data: bytes) -> None:
    """Every decode step gives a result or a MediaError with a message; anything else fails the test."""
    for step in (media_validate, probe, hash_bytes, open_image, lambda d: list(iter_frames(d))):
        try:
            step(data)
        except MediaError as exc:
            assert str(exc).strip()


@FUZZ
@given(mutated_files())
def test_a_mutated_image_gives_a_result_or_a_typed_error(data: bytes) -> None:
    only_typed_errors(data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_give_a_typed_error_or_a_result(data: bytes) -> None:
    only_typed_errors(data)


@settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
@given(prefix=st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
                               b"II*\x00", b"MM\x00*", b"BM", b"\x00\x00\x00\x18ftypheic", b"\x1a\x45\xdf\xa3",
                               b"\x00\x00\x00\x20ftypisom"]),
       rest=st.binary(max_size=256))
def test_a_known_magic_number_followed_by_garbage_gives_a_typed_error(prefix: bytes, rest: bytes) -> None:
    only_typed_errors(prefix + rest)
