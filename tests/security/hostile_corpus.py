"""A corpus of hostile uploads, generated at test time (nothing binary is committed).

Every item is made here from synthetic pictures (gradients and noise, safe by construction) and says
what Takedown must do with it:

- ``refused``: the intake answers 4xx naming the file field, and saves nothing (``code`` is the
  ``hashing.errors`` code the header check raises);
- ``unprocessable``: the header is fine, so the report is accepted, but decoding fails later and the
  item ends "unprocessable" with a reason a moderator sees (``code`` as above, from hashing);
- ``processed``: a readable image after all (1 x 1 pixels, a polyglot, a wrong name or MIME type,
  broken EXIF): it is hashed like any other.

Items whose fate depends on where a corruption lands (bit flips in compressed data) are ``processed``
or ``unprocessable`` and say so with ``outcome="either"``; never a crash, never lost.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from PIL import Image

import hashing.decode  # noqa: F401  (registers pillow-heif's HEIF plugin, which encodes the HEIC items)

Outcome = Literal["refused", "unprocessable", "processed", "either"]


@dataclass(frozen=True)
class HostileItem:
    id: str
    data: bytes
    outcome: Outcome
    code: str | None = None  # the MediaError code expected when refused or unprocessable
    filename: str = "upload.jpg"
    content_type: str = "image/jpeg"
    mime: str | None = None  # the MIME type Takedown must store (sniffed, never the one claimed)


# --- building blocks -----------------------------------------------------------------------------


def picture(width: int = 96, height: int = 72, seed: int = 0) -> Image.Image:
    """Smooth colour blobs plus a little noise: PDQ finds enough detail, and nothing is depicted."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    noisy = np.asarray(img, dtype=np.int16) + rng.integers(-8, 9, size=(height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_raw(width: int, height: int, *, colour_type: int = 0, rows: Callable[[], bytes] | None = None,
            extra_chunks: bytes = b"") -> bytes:
    """An 8-bit PNG built by hand, its IDAT compressed row by row (so a 10000 x 10000 bomb costs
    little memory to make). ``rows`` gives one row's pixel bytes; zeros by default."""
    channels = {0: 1, 2: 3}[colour_type]
    row = b"\x00" + (rows() if rows else bytes(width * channels))
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra_chunks + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims ``width x height``."""
    data = bytearray(encode(picture(16, 16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    """A one-pixel GIF frame on a logical screen of ``width x height`` (what Pillow reports as its size)."""
    data = bytearray(encode(Image.new("P", (1, 1), 0), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def many_frames_gif(frames: int) -> bytes:
    images = [Image.new("P", (2, 2), i % 2) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], optimize=False, disposal=2)


def gif_frame_flood(frames: int) -> bytes:
    """A GIF of ``frames`` identical 2 x 2 frames, made by repeating one frame's bytes (fast at any count)."""
    three = many_frames_gif(3)
    second = three.index(b"\x21\xf9", three.index(b"\x21\xf9") + 2)  # each frame opens with a control block
    third = three.index(b"\x21\xf9", second + 2)
    return three[:second] + three[second:third] * (frames - 1) + b"\x3b"


def many_frames_png(frames: int) -> bytes:
    images = [Image.new("L", (2, 2), (i * 37) % 256) for i in range(frames)]
    return encode(images[0], "PNG", save_all=True, append_images=images[1:])


def exif_jpeg(exif_payload: bytes) -> bytes:
    """A JPEG with ``exif_payload`` (the bytes after "Exif\\0\\0") as its APP1 segment."""
    data = encode(picture(64, 48, seed=3), "JPEG")
    body = b"Exif\x00\x00" + exif_payload
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]


def tiff_ifd(entries: list[tuple[int, int, int, bytes]], next_offset: int = 0, *, at: int = 8) -> bytes:
    """A little-endian TIFF header and one IFD at ``at`` with (tag, type, count, value-or-offset) entries."""
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
    return b"II*\x00" + struct.pack("<I", at) + ifd + struct.pack("<I", next_offset)


def tiff_pages(pages: int, extra_tags: int = 0) -> bytes:
    """A TIFF of ``pages`` 1 x 1 pages, each with ``extra_tags`` private tags: cheap bytes, costly to walk."""
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for page in range(pages):
        entries = sorted([(256, 3, 1, struct.pack("<H", 1)), (257, 3, 1, struct.pack("<H", 1)),
                          (258, 3, 1, struct.pack("<H", 8)), (262, 3, 1, struct.pack("<H", 1)),
                          (273, 4, 1, struct.pack("<I", 0)), (279, 4, 1, struct.pack("<I", 1))]
                         + [(40_000 + i, 3, 1, struct.pack("<H", i)) for i in range(extra_tags)])
        ifd = struct.pack("<H", len(entries)) + b"".join(
            struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00") for tag, typ, count, value in entries)
        following = len(out) + len(ifd) + 4 if page < pages - 1 else 0
        out += ifd + struct.pack("<I", following)
    return bytes(out)


def flip_bits(data: bytes, positions: list[int]) -> bytes:
    out = bytearray(data)
    for p in positions:
        out[p % len(out)] ^= 1 << (p % 8)
    return bytes(out)


def multiplied_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not an image " * 20)
        z.writestr("run.sh", "#!/bin/sh\necho hello\n")
    return buf.getvalue()


# --- the corpus ----------------------------------------------------------------------------------


def _truncated(fmt: str, data: bytes, name: str, content_type: str) -> list[HostileItem]:
    return [
        HostileItem(f"{name}-truncated-in-header", data[:20], "refused", None, f"a.{name}", content_type),
        HostileItem(f"{name}-truncated-in-pixels", data[: len(data) * 2 // 3], _TRUNCATED_OUTCOME[fmt],
                    "corrupt", f"a.{name}", content_type),
    ]


# Where a file cut off inside its pixel data is caught: JPEG, PNG, GIF and HEIC headers still read (the
# report is accepted and the item ends unprocessable); libwebp checks the RIFF length while opening, so
# the header check already refuses a short WebP.
_TRUNCATED_OUTCOME: dict[str, Outcome] = {"JPEG": "unprocessable", "PNG": "unprocessable", "GIF": "unprocessable",
                                          "WEBP": "refused", "HEIF": "unprocessable"}


@cache
def corpus() -> tuple[HostileItem, ...]:
    """Every hostile item, built once per test run (about 1 MB in all)."""
    base = picture(96, 72, seed=1)
    jpeg = encode(base, "JPEG", quality=90)
    png = encode(base, "PNG")
    gif = encode(base.convert("P"), "GIF")
    webp = encode(base, "WEBP", quality=80)
    heic = encode(picture(160, 120, seed=2), "HEIF", quality=80)
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">' \
          b'<script>alert(1)</script><rect width="10" height="10"/></svg>'
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    items: list[HostileItem] = [
        HostileItem("zero-bytes", b"", "refused", "empty"),
        HostileItem("one-byte", b"\xff", "refused", "unsupported"),
        HostileItem("1x1-png", encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), "processed",
                    filename="dot.png", content_type="image/png", mime="image/png"),
        HostileItem("1x1-jpeg", encode(Image.new("RGB", (1, 1), (10, 200, 10)), "JPEG"), "processed",
                    mime="image/jpeg"),
        HostileItem("1x1-gif", encode(Image.new("P", (1, 1), 0), "GIF"), "processed", filename="dot.gif",
                    content_type="image/gif", mime="image/gif"),
        HostileItem("1x1-webp", encode(Image.new("RGB", (1, 1)), "WEBP"), "processed", filename="dot.webp",
                    content_type="image/webp", mime="image/webp"),
        HostileItem("100000x1-png", png_raw(100_000, 1), "refused", "too_large", "wide.png", "image/png"),
        HostileItem("1x60000-jpeg", encode(Image.new("L", (1, 60_000)), "JPEG"), "refused", "too_large"),
        HostileItem("png-bomb-100-megapixels", png_raw(10_000, 10_000), "refused", "too_large", "bomb.png",
                    "image/png"),
        HostileItem("png-declaring-20000x20000", png_raw(20_000, 20_000, rows=lambda: b""), "refused",
                    "too_large", "bomb.png", "image/png"),
        HostileItem("jpeg-declaring-65000x65000", jpeg_declaring(65_000, 65_000), "refused", "too_large"),
        HostileItem("gif-screen-65535x65535", gif_declaring(65_535, 65_535), "refused", "too_large", "bomb.gif",
                    "image/gif"),
        HostileItem("gif-1000-frames", many_frames_gif(1000), "refused", "too_many_frames", "frames.gif",
                    "image/gif"),
        HostileItem("apng-1000-frames", many_frames_png(1000), "refused", "too_many_frames", "frames.png",
                    "image/png"),
        *_truncated("JPEG", jpeg, "jpg", "image/jpeg"),
        *_truncated("PNG", png, "png", "image/png"),
        *_truncated("GIF", gif, "gif", "image/gif"),
        *_truncated("WEBP", webp, "webp", "image/webp"),
        *_truncated("HEIF", heic, "heic", "image/heic"),
        HostileItem("png-bad-ihdr-checksum", png[:29] + b"\x00\x00\x00\x00" + png[33:], "refused", "unsupported",
                    "a.png", "image/png"),
        HostileItem("png-bad-idat-checksum", png[:-16] + bytes(b ^ 0xFF for b in png[-16:-12]) + png[-12:],
                    "processed", None, "a.png", "image/png", "image/png"),  # Pillow skips IDAT checksums
        HostileItem("png-garbage-idat", png_raw(64, 64)[:33] + png_chunk(b"IDAT", b"\x78\x9c" +
                    bytes(range(256)) * 4) + png_chunk(b"IEND", b""), "unprocessable", "corrupt", "a.png", "image/png"),
        HostileItem("jpeg-bit-flips-in-scan", flip_bits(jpeg, list(range(len(jpeg) // 2, len(jpeg) - 4, 97))),
                    "either"),
        HostileItem("jpeg-only-markers", b"\xff\xd8\xff\xd9", "refused", "unsupported"),
        HostileItem("heic-brand-garbage", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200),
                    "refused", "unsupported", "a.heic", "image/heic"),
        HostileItem("svg", svg, "refused", "unsupported", "drawing.svg", "image/svg+xml"),
        HostileItem("svg-named-png", svg, "refused", "unsupported", "photo.png", "image/png"),
        HostileItem("html-named-jpg", html, "refused", "unsupported"),
        HostileItem("html-then-png", html + png, "refused", "unsupported", "a.png", "image/png"),
        HostileItem("zip-then-jpeg", multiplied_zip() + jpeg, "refused", "unsupported"),
        HostileItem("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "refused", "unsupported", "a.pdf",
                    "application/pdf"),
        HostileItem("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "refused",
                    "unsupported", "a.eps", "application/postscript"),
        HostileItem("polyglot-jpeg-zip", jpeg + multiplied_zip(), "processed", mime="image/jpeg",
                    filename="photo.zip", content_type="application/zip"),
        HostileItem("polyglot-png-html", png[:33] + png_chunk(b"tEXt", b"Comment\x00" + html) + png[33:] + html,
                    "processed", filename="page.html", content_type="text/html", mime="image/png"),
        HostileItem("png-named-jpg", png, "processed", mime="image/png"),
        HostileItem("jpeg-named-gif", jpeg, "processed", filename="a.gif", content_type="image/gif",
                    mime="image/jpeg"),
        HostileItem("webp-claiming-svg", webp, "processed", filename="a.svg", content_type="image/svg+xml",
                    mime="image/webp"),
        HostileItem("exif-garbage", exif_jpeg(bytes(range(256)) * 8), "processed", mime="image/jpeg"),
        HostileItem("exif-truncated-ifd", exif_jpeg(b"II*\x00\x08\x00\x00\x00\xff\xff"), "processed",
                    mime="image/jpeg"),
        HostileItem("exif-orientation-out-of-range", exif_jpeg(tiff_ifd([(0x0112, 3, 1, struct.pack("<H", 9999))])),
                    "processed", mime="image/jpeg"),
        HostileItem("exif-orientation-as-text", exif_jpeg(tiff_ifd([(0x0112, 2, 4, b"six\x00")])), "processed",
                    mime="image/jpeg"),
        HostileItem("exif-ifd-loop", exif_jpeg(tiff_ifd([(0x0112, 3, 1, struct.pack("<H", 6)),
                                                         (0x8769, 4, 1, struct.pack("<I", 8))], next_offset=8)),
                    "processed", mime="image/jpeg"),
        HostileItem("exif-huge-count", exif_jpeg(tiff_ifd([(0x010E, 2, 0x7FFFFFFF, struct.pack("<I", 8)),
                                                           (0x0112, 3, 1, struct.pack("<H", 6))])),
                    "processed", mime="image/jpeg"),
        HostileItem("exif-max-size", exif_jpeg(tiff_ifd([(0x9286, 7, 60_000, struct.pack("<I", 26))])
                                               + bytes(60_000)), "processed", mime="image/jpeg"),
        HostileItem("png-huge-exif-chunk", png[:33] + png_chunk(b"eXIf", tiff_ifd(
            [(0x0112, 3, 1, struct.pack("<H", 6))]) + bytes(4 * 1024 * 1024)) + png[33:], "processed",
            filename="a.png", content_type="image/png", mime="image/png"),
        HostileItem("png-ztxt-bomb", png[:33] + png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(
            bytes(64 * 1024 * 1024), 9)) + png[33:], "refused", "corrupt", "a.png", "image/png"),
        HostileItem("tiff-ifd-loop", tiff_ifd([(256, 3, 1, struct.pack("<H", 1)), (257, 3, 1, struct.pack("<H", 1)),
                                               (258, 3, 1, struct.pack("<H", 8)), (262, 3, 1, struct.pack("<H", 1)),
                                               (273, 4, 1, struct.pack("<I", 8)), (279, 4, 1, struct.pack("<I", 1))],
                                              next_offset=8), "processed", None, "a.tif", "image/tiff", "image/tiff"),
        HostileItem("bmp-declaring-60000x60000", b"BM" + struct.pack("<IHHI", 70, 0, 0, 54)
                    + struct.pack("<IiiHHIIiiII", 40, 60_000, 60_000, 1, 24, 0, 16, 0, 0, 0, 0) + bytes(16),
                    "refused", "too_large", "a.bmp", "image/bmp"),
    ]
    return tuple(items)


def corpus_ids() -> list[str]:
    return [item.id for item in corpus()]


# File names a browser or script may send. None is ever used as a path: media is stored under its
# SHA-256, and the name the person sent is not kept.
HOSTILE_FILE_NAMES: tuple[str, ...] = (
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/shadow",
    "C:\\boot.ini",
    "a\x00.jpg",
    "photo\u202egpj.exe",
    "x" * 5000 + ".jpg",
    "📷🔥\U0001F4A5.jpg",
    "<script>alert(1)</script>.jpg",
    "..",
    ".",
    "con.jpg",
    "\u0000",
    "é\u0301\u200b\ufeff.jpg",
)
