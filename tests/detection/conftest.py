"""Builders for the image files the detection tests need.

Every image is generated here (coloured noise from a fixed seed), never taken from elsewhere; the
metadata is written with Pillow or, where Pillow has no writer, spliced in byte by byte the way a
generator or camera would.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

IPTC_DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/"

SD_PARAMETERS = (
    "a photo of a lighthouse on a cliff at dusk\n"
    "Negative prompt: blurry, low quality\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.9.4"
)


class Media:
    """Makes small image files with chosen metadata."""

    @staticmethod
    def image(size: tuple[int, int] = (48, 32), seed: int = 0) -> Image.Image:
        pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        return Image.fromarray(pixels, "RGB")

    @classmethod
    def png(
        cls,
        text: dict[str, str] | None = None,
        ztxt: dict[str, str] | None = None,
        itxt: dict[str, str] | None = None,
        exif: Image.Exif | None = None,
    ) -> bytes:
        info = PngImagePlugin.PngInfo()
        for key, value in (text or {}).items():
            info.add_text(key, value)
        for key, value in (ztxt or {}).items():
            info.add_text(key, value, zip=True)
        for key, value in (itxt or {}).items():
            info.add_itxt(key, value, zip=True)
        out = io.BytesIO()
        options: dict[str, Any] = {"pnginfo": info}
        if exif is not None:
            options["exif"] = exif
        cls.image().save(out, "PNG", **options)
        return out.getvalue()

    @classmethod
    def jpeg(
        cls, exif: Image.Exif | bytes | None = None, xmp: str | None = None, comment: str | None = None
    ) -> bytes:
        out = io.BytesIO()
        options: dict[str, Any] = {"quality": 85}
        if exif is not None:
            options["exif"] = exif
        if xmp is not None:
            options["xmp"] = xmp.encode()
        if comment is not None:
            options["comment"] = comment
        cls.image().save(out, "JPEG", **options)
        return out.getvalue()

    @classmethod
    def webp(cls, xmp: str) -> bytes:
        out = io.BytesIO()
        cls.image().save(out, "WEBP", xmp=xmp.encode())
        return out.getvalue()

    @staticmethod
    def exif(**tags: str) -> Image.Exif:
        """EXIF with base-IFD tags by name: Software, Make, Model, Artist, ImageDescription."""
        numbers = {
            "Software": 0x0131,
            "Make": 0x010F,
            "Model": 0x0110,
            "Artist": 0x013B,
            "ImageDescription": 0x010E,
        }
        exif = Image.Exif()
        for name, value in tags.items():
            exif[numbers[name]] = value
        return exif

    @staticmethod
    def xmp(source_type: str, form: str = "attribute") -> str:
        """An XMP packet declaring an IPTC DigitalSourceType, written in one of three RDF forms."""
        uri = IPTC_DIGITAL_SOURCE_TYPE + source_type
        if form == "attribute":
            description = f'<rdf:Description rdf:about="" Iptc4xmpExt:DigitalSourceType="{uri}"/>'
        elif form == "element":
            description = (
                '<rdf:Description rdf:about="">\n'
                f"   <Iptc4xmpExt:DigitalSourceType>{uri}</Iptc4xmpExt:DigitalSourceType>\n"
                "  </rdf:Description>"
            )
        elif form == "resource":
            description = (
                '<rdf:Description rdf:about="">'
                f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{uri}"/>'
                "</rdf:Description>"
            )
        else:
            raise ValueError(form)
        return (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">\n'
            f"  {description}\n"
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="w"?>'
        )

    @staticmethod
    def with_jpeg_app1_xmp(jpeg: bytes, packet: str) -> bytes:
        """Splice an XMP APP1 segment in right after the JPEG's start-of-image marker."""
        assert jpeg[:2] == b"\xff\xd8"
        payload = b"http://ns.adobe.com/xap/1.0/\x00" + packet.encode()
        segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
        return jpeg[:2] + segment + jpeg[2:]

    @staticmethod
    def png_chunk(chunk_type: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + chunk_type
            + body
            + struct.pack(">I", zlib.crc32(chunk_type + body))
        )

    @classmethod
    def with_png_chunk_before_iend(cls, png: bytes, chunk_type: bytes, body: bytes) -> bytes:
        """Add a chunk after the image data, where some tools write their text."""
        iend = png.rindex(b"IEND") - 4
        return png[:iend] + cls.png_chunk(chunk_type, body) + png[iend:]

    @classmethod
    def png_header_only(cls, width: int, height: int) -> bytes:
        """A PNG that claims the given size but holds no real pixel data."""
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + cls.png_chunk(b"IHDR", header)
            + cls.png_chunk(b"IDAT", zlib.compress(b""))
            + cls.png_chunk(b"IEND", b"")
        )


@pytest.fixture
def media() -> type[Media]:
    return Media
