"""Safe image decoding: bytes in, an RGB Pillow image (or a typed error) out.

Everything that can go wrong with an upload becomes one of the errors in ``hashing.errors`` with a
message the uploader can act on; no Pillow exception escapes. Only a short list of common raster
formats is accepted, so Pillow never hands untrusted bytes to a rarely used decoder (or, for EPS, to
Ghostscript). HEIC comes through pillow-heif, AVIF through Pillow's own plugin.

For hashing, :func:`open_for_hashing` decodes JPEGs at reduced scale (libjpeg's DCT scaling: 1/2, 1/4
or 1/8) while at least :data:`HASH_DECODE_MIN_SIDE` pixels remain on the short side: enough for PDQ,
pHash and dHash to agree with a full decode, and several times faster.
"""

import io
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import (
    AvifImagePlugin,
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from hashing.errors import CorruptMedia, EmptyMedia, MediaError, MediaTooLarge, TooManyFrames, UnsupportedMedia

__all__ = [
    "HASH_DECODE_MIN_SIDE",
    "MAX_BYTES",
    "MAX_FRAMES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "SUPPORTED_FORMATS",
    "ImageInfo",
    "ScaledImage",
    "iter_frames",
    "open_for_hashing",
    "open_image",
    "probe",
]

logger = logging.getLogger(__name__)

# 50 MiB: far above any ordinary photo or screenshot (a 60-megapixel camera JPEG is about 30 MB) while
# bounding the memory and time one upload can take.
MAX_BYTES: int = 50 * 1024 * 1024
# 64 megapixels: above a 60 MP camera sensor (9504 x 6336) and below Pillow's own decompression-bomb
# warning (about 89.5 MP), so our clearer error fires first. Decoded RGB at this size is about 190 MB.
MAX_PIXELS: int = 64_000_000
# 32768 px on a side: wider than a phone's panorama (about 16000 px) and half JPEG's own ceiling (65500).
# Longer sides are absurd shapes (100000 x 1) that only serve to stress decoders and filters.
MAX_SIDE: int = 32768
# Frames an animated image may have before we refuse it: 10 s at 30 fps, and far beyond an ordinary
# GIF or WebP sticker. Longer animations are videos in disguise and a cheap way to make a server work.
MAX_FRAMES: int = 300
# The smallest JPEG scale (1, 1/2, 1/4, 1/8) that keeps at least this many pixels on the short side:
# six per PDQ output cell. Measured against pdqhash on full decodes of the 100 detection-eval photos:
# every hash within 4 bits (mean 0.2) and quality exact; at 256 the mean doubles.
HASH_DECODE_MIN_SIDE = 384

# Pillow format name -> MIME type. MPO is how Pillow names the JPEGs many phones write (with an extra
# preview picture); they are JPEG files to everyone else.
SUPPORTED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}

# The decoders Image.open may try, in this order; importing a plugin registers it. JPEG's opener also
# returns the MPO variant.
_PLUGINS = (
    JpegImagePlugin,
    PngImagePlugin,
    GifImagePlugin,
    WebPImagePlugin,
    TiffImagePlugin,
    BmpImagePlugin,
    AvifImagePlugin,
)
# pillow-heif adds Pillow's "HEIF" format (HEIC photos; thumbnails are skipped); Image.open below only
# ever tries the formats named here, so registering it enables nothing else.
pillow_heif.register_heif_opener(thumbnails=False)
_OPENERS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF")
# How Pillow reports damaged data: OSError ("image file is truncated"), SyntaxError ("broken PNG
# file"), and assorted errors from parsing nonsense. To the uploader they are all one thing.
_DAMAGE_EXCEPTIONS = (
    OSError,
    SyntaxError,
    EOFError,
    ValueError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
)
_SUPPORTED_NAMES = "JPEG, PNG, GIF, WebP, HEIC, AVIF, TIFF or BMP"
_WHITE = (255, 255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
# EXIF orientations 5..8 turn the picture a quarter turn, so width and height swap.
_QUARTER_TURN_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: MIME type and the displayed size (after EXIF orientation)."""

    mime: str
    width: int
    height: int


@dataclass(frozen=True)
class ScaledImage:
    """An upright RGB image, possibly decoded at reduced scale, and the full image's upright size."""

    image: Image.Image
    full_size: tuple[int, int]  # (width, height)


def probe(
    data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES
) -> ImageInfo:
    """Check format, size and frame count from the headers, without decoding the pixels.

    Cheap enough to run on every upload before queueing it. It raises the same typed errors as
    :func:`open_image` for empty, unsupported and oversized files, and :class:`TooManyFrames` for an
    animation longer than ``max_frames`` (a frame bomb is refused at intake, not found by a worker), but
    cannot see truncation or damage in the pixel data: only :func:`open_image` finds those.

    A TIFF's pages are not counted: hashing reads only the first, and counting them means parsing every
    page's tags, which a crafted file (300 pages of 5,000 tags in 18 MB) makes take many seconds.
    """
    with _open(data, max_bytes=max_bytes, max_pixels=max_pixels) as img:
        if img.format != "TIFF":
            _check_frame_count(img, max_frames)
        width, height = img.size
        if _header_orientation(img) in _QUARTER_TURN_ORIENTATIONS:
            width, height = height, width
        return ImageInfo(mime=SUPPORTED_FORMATS[str(img.format)], width=width, height=height)


def open_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode fully and return an upright RGB image.

    The first frame of an animation; EXIF orientation applied; transparency composited onto white;
    CMYK, palette, greyscale and 16-bit images converted to 8-bit RGB. The whole image is decoded
    here, so truncated or damaged files raise :class:`CorruptMedia` now rather than later.
    """
    with _open(data, max_bytes=max_bytes, max_pixels=max_pixels) as img:
        return _decode(img, max_pixels=max_pixels)


def open_for_hashing(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> ScaledImage:
    """Like :func:`open_image`, but a JPEG is decoded to luminance only, at 1/2, 1/4 or 1/8 scale if large.

    The image is upright RGB, or for JPEGs mode ``L``: the decoder's luminance, which is all that PDQ,
    pHash and dHash use. The short side keeps at least ``HASH_DECODE_MIN_SIDE`` pixels; ``full_size``
    is the upright size of the full image, which PDQ needs to weight reduced pixels. Other formats are
    decoded in full. The same typed errors as :func:`open_image`.
    """
    with _open(data, max_bytes=max_bytes, max_pixels=max_pixels) as img:
        full_width, full_height = img.size
        if img.format in {"JPEG", "MPO"}:
            scale = 1
            while scale < 8 and min(full_width, full_height) // (2 * scale) >= HASH_DECODE_MIN_SIDE:
                scale *= 2
            # Only luminance: JPEG's Y channel is PDQ's luma (BT.601) and what pHash and dHash use, and
            # libjpeg skips the colour planes. Pillow picks the largest scale that keeps the size asked.
            img.draft("L", (-(-full_width // scale), -(-full_height // scale)))
        if _header_orientation(img) in _QUARTER_TURN_ORIENTATIONS:
            full_width, full_height = full_height, full_width
        image = _decode(img, max_pixels=max_pixels, keep_luma=img.format in {"JPEG", "MPO"})
        return ScaledImage(image=image, full_size=(full_width, full_height))


def iter_frames(
    data: bytes, *, max_frames: int = MAX_FRAMES, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
) -> Iterator[Image.Image]:
    """Every frame of an animated image (GIF, WebP, APNG, multi-page TIFF ...) as upright RGB, in order.

    A still image yields one frame. Frames are decoded one at a time, so memory stays that of one frame.
    More than ``max_frames`` frames raises :class:`TooManyFrames` before any is decoded; otherwise the
    same typed errors as :func:`open_image`.
    """
    with _open(data, max_bytes=max_bytes, max_pixels=max_pixels) as img:
        count = _check_frame_count(img, max_frames)
        for index in range(count):
            try:
                img.seek(index)
            except MemoryError:
                raise
            except Exception as exc:
                raise _corrupt(exc, _DAMAGED) from exc
            yield _decode(img, max_pixels=max_pixels)


def _check_frame_count(img: Image.Image, max_frames: int) -> int:
    """The number of frames, from the headers (Pillow skips frame data to count, it decodes none);
    :class:`TooManyFrames` over ``max_frames``."""
    stop_after = 4 * max_frames  # enough to say how far over the limit an ordinary animation is
    try:
        count = _count_frames(img, stop_after)
    except MediaError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise _corrupt(exc, _DAMAGED) from exc
    if count > max_frames:
        shown = f"more than {stop_after}" if count > stop_after else str(count)
        raise TooManyFrames(
            f"The animation has {shown} frames; the limit is {max_frames}. Please upload a shorter "
            "clip, or a still image of the relevant frame."
        )
    return count


def _count_frames(img: Image.Image, stop_after: int) -> int:
    """Frames in the file; for a GIF or TIFF, counting stops at ``stop_after + 1``.

    Neither format says how many frames it has: Pillow's ``n_frames`` walks every frame header, which for
    a 20 MB upload of tiny GIF frames (about 800,000) takes seconds of the request, and for a TIFF of
    100,000 pages minutes (its walk is quadratic). Counting here stops early, one header at a time: for a
    GIF with the header-only step ``n_frames`` uses (``_seek(n, False)`` decodes nothing), for a TIFF
    with ``seek``, which reads the next page's tags and no pixels.
    """
    if img.format not in {"GIF", "TIFF"}:
        return int(getattr(img, "n_frames", 1))
    header_only_step = getattr(img, "_seek", None) if img.format == "GIF" else None
    count = 1
    try:
        while count <= stop_after:
            if header_only_step is not None:
                header_only_step(count, False)
            else:  # a TIFF (or a GIF, should Pillow drop ``_seek``: still bounded by ``stop_after``)
                img.seek(count)
            count += 1
    except EOFError:
        pass
    finally:
        img.seek(0)
    return count


def _decode(img: Image.Image, *, max_pixels: int, keep_luma: bool = False) -> Image.Image:
    """Load the current frame, turn it upright and make it 8-bit RGB, with every failure typed.

    With ``keep_luma``, an 8-bit greyscale frame (a JPEG drafted to luminance) stays ``L``.
    """
    try:
        img.load()
        frame = img.copy() if keep_luma and img.mode == "L" else _to_rgb(img)
        return _upright(frame, _header_orientation(img)) if img.format != "HEIF" else frame
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(img.size, max_pixels) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise _corrupt(exc, _DAMAGED) from exc


def _open(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Image.open restricted to supported formats, with byte and pixel limits checked first."""
    if len(data) == 0:
        raise EmptyMedia("The file is empty (0 bytes). Please choose the image again and re-upload it.")
    if len(data) > max_bytes:
        raise MediaTooLarge(
            f"The file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}. "
            "Please upload a smaller or more compressed version of the image."
        )
    try:
        img = Image.open(io.BytesIO(data), formats=_OPENERS)
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(_unsupported_message(data)) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses absurd sizes while opening; its own limit is looser than ours.
        raise MediaTooLarge(
            "The image is far too large (in pixels) to process. Please upload a smaller version."
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:
        # A recognised header with nonsense in it.
        raise _corrupt(
            exc, "The image file is damaged and cannot be read. Please upload the original file again."
        ) from exc
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise _too_many_pixels(img.size, max_pixels)
    if max(width, height) > MAX_SIDE:
        img.close()
        raise MediaTooLarge(
            f"The image is {width} x {height} pixels; no side may be longer than {MAX_SIDE} pixels. "
            "Please upload the image at an ordinary size."
        )
    if width == 0 or height == 0:
        img.close()
        raise CorruptMedia("The image has no pixels (zero width or height). Please upload another copy.")
    return img


def _header_orientation(img: Image.Image) -> int:
    """The EXIF orientation when it can be read without decoding pixels, else 1 (upright)."""
    # Pillow decodes a whole PNG to find an eXIf chunk placed after the pixel data; a probe must not.
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        # Broken EXIF is common and harmless: the picture is simply shown as stored.
        return 1
    return orientation if isinstance(orientation, int) else 1


_ORIENTATION_TRANSPOSES = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def _upright(rgb: Image.Image, orientation: int) -> Image.Image:
    """The RGB frame turned upright per the EXIF orientation (as ImageOps.exif_transpose does)."""
    for transpose in _ORIENTATION_TRANSPOSES.get(orientation, ()):
        rgb = rgb.transpose(transpose)
    return rgb


def _to_rgb(img: Image.Image) -> Image.Image:
    """A new 8-bit RGB image; transparent areas become white."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own conversion clips 16-bit values at 255 (almost everything turns white); scale.
        wide = np.clip(np.asarray(img, dtype=np.int64), 0, 65535) >> 8
        return Image.fromarray(wide.astype(np.uint8)).convert("RGB")
    if img.mode == "F":
        real = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if real.max(initial=0.0) <= 1.0:  # floating-point images are usually scaled 0..1
            real = real * 255.0
        return Image.fromarray(np.clip(real, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        try:
            rgba = img.convert("RGBA")
        except ValueError as exc:
            raise _unsupported_mode(img.mode) from exc
        background = Image.new("RGBA", img.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise _unsupported_mode(img.mode) from exc


_DAMAGED = (
    "The image file is damaged or incomplete (it may have been cut off during upload or download). "
    "Please upload the original file again."
)


def _corrupt(exc: Exception, message: str) -> CorruptMedia:
    """CorruptMedia for any failure inside Pillow; unusual exception types are logged, as they may be bugs."""
    if not isinstance(exc, _DAMAGE_EXCEPTIONS):
        logger.warning("Unexpected error while decoding an image; reporting it as corrupt", exc_info=exc)
    return CorruptMedia(message)


def _unsupported_mode(mode: str) -> UnsupportedMedia:
    return UnsupportedMedia(
        f"This image uses a colour format ({mode}) we cannot read. "
        "Please save it as an ordinary RGB JPEG or PNG and upload that."
    )


def _too_many_pixels(size: tuple[int, int], max_pixels: int) -> MediaTooLarge:
    width, height = size
    return MediaTooLarge(
        f"The image is {width} x {height} pixels ({width * height / 1e6:.1f} megapixels); the limit is "
        f"{max_pixels / 1e6:g} megapixels. Please upload a smaller version."
    )


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _unsupported_message(data: bytes) -> str:
    """Name the kind of file when it is a common mistake, so the person knows what to do instead."""
    head = data[:1024].lstrip().lower()
    brand = data[8:12].lower() if data[4:8] == b"ftyp" else b""
    if b"<svg" in head:
        kind = "an SVG drawing. Please export it as PNG or JPEG (or take a screenshot) and upload that."
    elif head.startswith((b"<!doctype html", b"<html")):
        kind = (
            "a web page, not an image. Open the image itself (for example right-click it and choose "
            "'Save image as') and upload that file."
        )
    elif brand in {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}:
        kind = (
            "a HEIC/HEIF or AVIF photo that we could not read (it may be damaged, or a variant we do not "
            "support). Please export it as JPEG (on an iPhone: Settings > Camera > Formats > Most "
            "Compatible) or take a screenshot, and upload that."
        )
    elif brand or data.startswith((b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"FLV")):
        kind = ("a video in a format we cannot read. We accept MP4/MOV, WebM/MKV and AVI videos; please "
                "convert it to MP4, or upload a screenshot of the relevant frame.")
    elif data.startswith(b"%PDF"):
        kind = "a PDF document. Please upload the image itself, or a screenshot of the page."
    elif data.startswith((b"PK\x03\x04", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")):
        kind = "an archive (zip or similar). Please unpack it and upload the images one at a time."
    else:
        return f"This file is not an image we can read. Please upload a {_SUPPORTED_NAMES} image."
    return f"This file is {kind}"
