"""Safe image decoding: bytes in, an RGB Pillow image (or a typed error) out.

Everything that can go wrong with an upload becomes one of the errors in ``hashing.errors`` with a
message the uploader can act on; no Pillow exception escapes. Only a short list of common raster
formats is accepted, so Pillow never hands untrusted bytes to a rarely used decoder (or, for EPS, to
Ghostscript).
"""

import io
import logging
import struct
from dataclasses import dataclass

import numpy as np
from PIL import (
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from hashing.errors import CorruptMedia, EmptyMedia, MediaError, MediaTooLarge, UnsupportedMedia

__all__ = ["MAX_BYTES", "MAX_PIXELS", "SUPPORTED_FORMATS", "ImageInfo", "open_image", "probe"]

logger = logging.getLogger(__name__)

# 50 MiB: far above any ordinary photo or screenshot (a 60-megapixel camera JPEG is about 30 MB) while
# bounding the memory and time one upload can take.
MAX_BYTES: int = 50 * 1024 * 1024
# 64 megapixels: above a 60 MP camera sensor (9504 x 6336) and below Pillow's own decompression-bomb
# warning (about 89.5 MP), so our clearer error fires first. Decoded RGB at this size is about 190 MB.
MAX_PIXELS: int = 64_000_000

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
}

# The decoders Image.open may try, in this order; importing a plugin registers it. JPEG's opener also
# returns the MPO variant.
_PLUGINS = (JpegImagePlugin, PngImagePlugin, GifImagePlugin, WebPImagePlugin, TiffImagePlugin, BmpImagePlugin)
_OPENERS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")
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
_SUPPORTED_NAMES = "JPEG, PNG, GIF, WebP, TIFF or BMP"
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


def probe(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Check format and size from the header, without decoding the pixels.

    Cheap enough to run on every upload before queueing it. It raises the same typed errors as
    :func:`open_image` for empty, unsupported and oversized files, but cannot see truncation or damage
    in the pixel data: only :func:`open_image` finds those.
    """
    with _open(data, max_bytes=max_bytes, max_pixels=max_pixels) as img:
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
        try:
            img.load()
            _apply_orientation(img)
            return _to_rgb(img)
        except MediaError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels(img.size, max_pixels) from exc
        except MemoryError:
            raise
        except Exception as exc:
            raise _corrupt(
                exc,
                "The image file is damaged or incomplete (it may have been cut off during upload or "
                "download). Please upload the original file again.",
            ) from exc


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


def _apply_orientation(img: Image.Image) -> None:
    """Turn the (loaded) image upright per its EXIF orientation, in place to avoid another copy."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:
        # Broken EXIF is common and harmless: the picture is simply used as stored.
        logger.info("Ignoring unreadable EXIF orientation", exc_info=True)


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
            "a HEIC/HEIF or AVIF photo, which we cannot read yet. Please export it as JPEG (on an iPhone: "
            "Settings > Camera > Formats > Most Compatible) or take a screenshot, and upload that."
        )
    elif brand or data.startswith((b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"FLV")):
        kind = "a video. Videos are not supported yet; please upload a screenshot of the relevant frame."
    elif data.startswith(b"%PDF"):
        kind = "a PDF document. Please upload the image itself, or a screenshot of the page."
    elif data.startswith((b"PK\x03\x04", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")):
        kind = "an archive (zip or similar). Please unpack it and upload the images one at a time."
    else:
        return f"This file is not an image we can read. Please upload a {_SUPPORTED_NAMES} image."
    return f"This file is {kind}"
