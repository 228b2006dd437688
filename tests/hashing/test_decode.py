"""Decoding uploads: typed errors for everything that is not a readable image, RGB for everything that is."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hashing.decode import (
    HASH_DECODE_MIN_SIDE,
    MAX_BYTES,
    MAX_FRAMES,
    MAX_PIXELS,
    MAX_SIDE,
    ImageInfo,
    iter_frames,
    open_for_hashing,
    open_image,
    probe,
)
from hashing.errors import (
    CorruptMedia,
    EmptyMedia,
    MediaError,
    MediaTooLarge,
    TooManyFrames,
    UnsupportedMedia,
)

from .conftest import encode, landscape, noise, shapes

WHITE = (255, 255, 255)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` pixels (with a valid header checksum)."""
    data = bytearray(encode(Image.new("1", (8, 8)), "PNG"))
    ihdr_data = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr_data : ihdr_data + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr_data - 4 : ihdr_data + 13]))
    data[ihdr_data + 13 : ihdr_data + 17] = struct.pack(">I", crc)
    return bytes(data)


def jpeg_with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # EXIF Orientation tag
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> None:
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (actual, expected)


# --- things that are not images -----------------------------------------------------------------


def test_it_rejects_zero_bytes_as_empty():
    for read in (probe, open_image):
        with pytest.raises(EmptyMedia) as caught:
            read(b"")
        assert caught.value.code == "empty"
        assert "empty" in str(caught.value)


def test_it_rejects_a_text_file_as_unsupported():
    with pytest.raises(UnsupportedMedia) as caught:
        open_image(b"Dear moderators,\nplease remove the picture at https://example.org/x\n")
    assert caught.value.code == "unsupported"
    assert "JPEG, PNG" in str(caught.value)


def test_it_rejects_svg_and_says_how_to_convert_it():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    for read in (probe, open_image):
        with pytest.raises(UnsupportedMedia, match="SVG"):
            read(svg)


def test_it_rejects_a_web_page_and_says_so():
    with pytest.raises(UnsupportedMedia, match="web page"):
        open_image(b"<!DOCTYPE html><html><body><img src='a.jpg'></body></html>")


def test_it_rejects_a_zip_archive():
    with pytest.raises(UnsupportedMedia, match="archive"):
        open_image(b"PK\x03\x04" + bytes(100))


def test_it_explains_what_to_do_with_a_heic_file_it_cannot_read():
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + bytes(64)
    with pytest.raises(UnsupportedMedia, match="HEIC") as caught:
        open_image(heic)
    assert "export it as JPEG" in str(caught.value)


def test_it_refuses_eps_rather_than_handing_it_to_ghostscript():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(UnsupportedMedia):
        open_image(eps)


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX"])
def test_it_refuses_image_formats_outside_its_list(fmt):
    with pytest.raises(UnsupportedMedia):
        probe(encode(shapes(32, 32), fmt))


# --- damaged images -----------------------------------------------------------------------------


def test_it_rejects_a_truncated_jpeg():
    data = encode(noise(200, 200), "JPEG", quality=90)
    with pytest.raises(CorruptMedia) as caught:
        open_image(data[: len(data) // 2])
    assert caught.value.code == "corrupt"
    assert "damaged or incomplete" in str(caught.value)


def test_it_rejects_a_truncated_png():
    data = encode(noise(200, 200), "PNG")
    with pytest.raises(CorruptMedia):
        open_image(data[: len(data) // 2])


def test_it_rejects_a_png_with_scrambled_pixel_data():
    data = bytearray(encode(noise(100, 100), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 100 : idat + 400] = bytes(300)
    with pytest.raises(CorruptMedia):
        open_image(bytes(data))


def test_a_probe_reads_only_the_header_so_truncation_shows_up_when_decoding():
    truncated = encode(noise(200, 100), "PNG")[:2000]
    assert probe(truncated) == ImageInfo(mime="image/png", width=200, height=100)
    with pytest.raises(CorruptMedia):
        open_image(truncated)


def test_it_never_lets_a_pillow_exception_escape():
    # Cut and scribble on valid files of every supported kind; whatever happens must be a MediaError.
    rng = np.random.default_rng(0)
    source = shapes(64, 48, seed=1)
    files = [encode(source, fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF")]
    for data in files:
        for _ in range(12):
            damaged = bytearray(data[: rng.integers(1, len(data) + 1)])
            for position in rng.integers(0, len(damaged), rng.integers(0, 6)):
                damaged[position] = rng.integers(0, 256)
            try:
                image = open_image(bytes(damaged))
            except MediaError as exc:
                assert str(exc)
                assert "PIL" not in str(exc)
            else:
                assert image.mode == "RGB"


# --- size limits --------------------------------------------------------------------------------


def test_its_limits_are_50_megabytes_and_64_megapixels():
    assert MAX_BYTES == 50 * 1024 * 1024
    assert MAX_PIXELS == 64_000_000


def test_it_rejects_a_decompression_bomb():
    bomb = png_declaring(20_000, 20_000)  # 400 megapixels from a ~100-byte file
    assert len(bomb) < 200
    for read in (probe, open_image):
        with pytest.raises(MediaTooLarge) as caught:
            read(bomb)
        assert caught.value.code == "too_large"


def test_it_rejects_a_bomb_even_when_pillows_own_guard_is_off(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(MediaTooLarge, match="20000 x 20000"):
        open_image(png_declaring(20_000, 20_000))


def test_it_checks_its_pixel_limit_before_decoding():
    # 81 megapixels: under Pillow's error threshold, over ours. Decoding would fail as corrupt (the
    # file has no such pixels), so a MediaTooLarge shows the check came first.
    with pytest.raises(MediaTooLarge, match="9000 x 9000"):
        open_image(png_declaring(9000, 9000))


def test_it_applies_a_caller_supplied_pixel_limit():
    data = encode(shapes(100, 100), "PNG")
    with pytest.raises(MediaTooLarge, match="100 x 100"):
        open_image(data, max_pixels=5000)
    assert open_image(data, max_pixels=10_000).size == (100, 100)


def test_it_rejects_files_over_the_byte_limit():
    data = encode(shapes(100, 100), "PNG")
    for read in (probe, open_image):
        with pytest.raises(MediaTooLarge, match="limit"):
            read(data, max_bytes=len(data) - 1)


def test_it_leaves_pillows_global_pixel_limit_alone():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(MediaTooLarge):
        open_image(png_declaring(20_000, 20_000))
    open_image(encode(shapes(50, 50), "PNG"))
    assert Image.MAX_IMAGE_PIXELS == before


# --- orientation, colour modes and formats ------------------------------------------------------


def test_it_applies_exif_orientation():
    # Stored 40 wide and 20 high with a red block top left; orientation 6 means "turn 90 degrees
    # clockwise to display", which puts the block top right of a 20 x 40 picture.
    stored = Image.new("RGB", (40, 20), "blue")
    stored.paste((255, 0, 0), (0, 0, 10, 10))
    data = jpeg_with_orientation(stored, 6)

    upright = open_image(data)

    assert upright.size == (20, 40)
    assert_close(pixel(upright, (15, 3)), (255, 0, 0), tolerance=40)
    assert_close(pixel(upright, (3, 3)), (0, 0, 255), tolerance=40)
    assert probe(data) == ImageInfo(mime="image/jpeg", width=20, height=40)


def test_it_ignores_an_exif_block_it_cannot_parse():
    data = bytearray(jpeg_with_orientation(shapes(40, 20), 6))
    tiff_header = data.index(b"Exif\x00\x00") + 6
    data[tiff_header : tiff_header + 8] = b"XXXXXXXX"
    assert open_image(bytes(data)).size == (40, 20)  # shown as stored
    assert probe(bytes(data)) == ImageInfo(mime="image/jpeg", width=40, height=20)


def test_it_converts_a_cmyk_jpeg_to_rgb():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # full magenta + yellow = red
    data = encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"

    image = open_image(data)

    assert image.mode == "RGB"
    assert_close(pixel(image, (16, 16)), (255, 0, 0))


def test_it_scales_a_16_bit_png_down_instead_of_clipping_it():
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")

    image = open_image(data)

    assert image.mode == "RGB"
    grey = np.asarray(image)[0, :, 0].astype(int)
    assert np.abs(grey - ramp[0] // 256).max() <= 1  # Pillow alone would clip everything above 255


def test_it_paints_transparent_palette_pixels_white():
    palette_image = Image.new("P", (20, 20), 0)
    palette_image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    palette_image.paste(1, (10, 0, 20, 20))
    data = encode(palette_image, "PNG", transparency=0)

    image = open_image(data)

    assert pixel(image, (2, 2)) == WHITE
    assert pixel(image, (15, 2)) == (200, 30, 30)


def test_it_composites_rgba_and_grey_with_alpha_onto_white():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 255, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 5, 10))
    image = open_image(encode(rgba, "PNG"))
    assert pixel(image, (7, 5)) == WHITE
    assert pixel(image, (2, 5)) == (0, 0, 255)

    la = Image.new("LA", (10, 10), (0, 128))  # black at half opacity
    assert_close(pixel(open_image(encode(la, "PNG")), (5, 5)), (127, 127, 127), tolerance=1)


def test_it_takes_the_first_frame_of_an_animated_gif():
    frames = [Image.new("RGB", (30, 30), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3

    image = open_image(data)

    assert image.size == (30, 30)
    assert pixel(image, (15, 15)) == (255, 0, 0)


def test_it_reads_webp_with_and_without_alpha():
    opaque = open_image(encode(shapes(60, 40), "WEBP", lossless=True))
    assert opaque.size == (60, 40)
    assert np.array_equal(np.asarray(opaque), np.asarray(shapes(60, 40)))

    clear = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    assert pixel(open_image(encode(clear, "WEBP", lossless=True)), (10, 10)) == WHITE


def test_it_reads_phone_jpegs_that_pillow_calls_mpo():
    first, second = landscape(80, 60, seed=1), landscape(80, 60, seed=2)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert probe(data).mime == "image/jpeg"
    assert open_image(data).size == (80, 60)


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("TIFF", "image/tiff"),
        ("BMP", "image/bmp"),
        ("HEIF", "image/heic"),
        ("AVIF", "image/avif"),
    ],
)
def test_it_reads_each_supported_format(fmt, mime):
    data = encode(shapes(90, 70, seed=3), fmt)
    assert probe(data) == ImageInfo(mime=mime, width=90, height=70)
    image = open_image(data)
    assert image.mode == "RGB"
    assert image.size == (90, 70)


@pytest.mark.parametrize("mode", ["1", "L", "I", "F", "YCbCr"])
def test_it_turns_other_colour_modes_into_rgb(mode):
    source = shapes(40, 30, seed=4).convert(mode)
    fmt = "TIFF" if mode in {"I", "F", "YCbCr"} else "PNG"
    image = open_image(encode(source, fmt))
    assert image.mode == "RGB"
    assert image.size == (40, 30)


def test_it_returns_an_image_independent_of_the_input_bytes():
    data = bytearray(encode(shapes(30, 30), "PNG"))
    image = open_image(bytes(data))
    data[:] = bytes(len(data))
    assert image.load() is not None
    assert np.asarray(image).any()


def test_it_decodes_heic_and_avif_photos_faithfully():
    source = landscape(160, 120, seed=9)
    for fmt in ("HEIF", "AVIF"):
        image = open_image(encode(source, fmt, quality=90))
        error = np.abs(np.asarray(image, dtype=int) - np.asarray(source, dtype=int)).mean()
        assert error < 6, fmt  # lossy, but the same picture


def test_it_rejects_a_truncated_heic_as_corrupt():
    data = encode(landscape(160, 120, seed=9), "HEIF")
    with pytest.raises(CorruptMedia):
        open_image(data[: len(data) - 40])


# --- absurd shapes ------------------------------------------------------------------------------


def test_it_rejects_absurd_dimensions_even_under_the_pixel_limit():
    absurd = png_declaring(100_000, 1)  # a tenth of a megapixel, but 100000 pixels long
    assert 100_000 < MAX_PIXELS
    for read in (probe, open_image, open_for_hashing):
        with pytest.raises(MediaTooLarge, match=f"longer than {MAX_SIDE}"):
            read(absurd)


def test_it_reads_a_long_thin_image_within_the_side_limit():
    image = open_image(encode(shapes(4000, 3, seed=1), "PNG"))
    assert image.size == (4000, 3)


# --- every frame of an animation ----------------------------------------------------------------


def animated(fmt: str, colours: list[str]) -> bytes:
    frames = [Image.new("RGB", (30, 20), colour) for colour in colours]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_it_yields_every_frame_of_an_animation_in_order(fmt):
    frames = list(iter_frames(animated(fmt, ["red", "lime", "blue"])))
    assert [frame.size for frame in frames] == [(30, 20)] * 3
    assert [frame.mode for frame in frames] == ["RGB"] * 3
    assert_close(pixel(frames[0], (5, 5)), (255, 0, 0), tolerance=4)
    assert_close(pixel(frames[1], (5, 5)), (0, 255, 0), tolerance=4)
    assert_close(pixel(frames[2], (5, 5)), (0, 0, 255), tolerance=4)


def test_a_still_image_has_one_frame():
    frames = list(iter_frames(encode(shapes(40, 30), "JPEG")))
    assert len(frames) == 1
    assert frames[0].size == (40, 30)


def test_it_refuses_an_animation_with_too_many_frames_before_decoding_any():
    data = animated("GIF", ["red", "lime", "blue", "white"])
    frames = iter_frames(data, max_frames=3)
    with pytest.raises(TooManyFrames) as caught:
        next(frames)
    assert isinstance(caught.value, MediaTooLarge)
    assert caught.value.code == "too_many_frames"
    assert "4 frames; the limit is 3" in str(caught.value)
    assert MAX_FRAMES == 300


def test_a_gif_frame_bomb_is_refused_quickly():
    # 1000 one-pixel frames: tiny on disk, a long decode if anyone tried.
    frames = [Image.new("P", (1, 1), i % 2) for i in range(1000)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], optimize=False, disposal=2)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) > MAX_FRAMES
    with pytest.raises(TooManyFrames):
        list(iter_frames(data))


def test_frames_of_a_damaged_animation_raise_a_typed_error():
    data = animated("GIF", ["red", "lime", "blue"])
    with pytest.raises(MediaError):
        list(iter_frames(data[: len(data) * 2 // 3]))


# --- decoding for hashing -----------------------------------------------------------------------


def test_it_decodes_a_large_jpeg_to_luminance_at_reduced_scale():
    data = encode(landscape(1600, 1200, seed=1), "JPEG", quality=90)

    decoded = open_for_hashing(data)

    assert decoded.full_size == (1600, 1200)
    assert decoded.image.size == (800, 600)  # 1/2: 1/4 would leave 300 px, under the 384 kept
    assert min(decoded.image.size) >= HASH_DECODE_MIN_SIDE
    assert decoded.image.mode == "L"


def test_its_reduced_decode_keeps_the_exif_orientation_and_the_full_upright_size():
    stored = landscape(1600, 1200, seed=2)
    data = jpeg_with_orientation(stored, 6)

    decoded = open_for_hashing(data)

    assert decoded.full_size == (1200, 1600)
    assert decoded.image.size == (600, 800)
    upright = open_image(data).convert("L").resize((600, 800), Image.Resampling.BOX)
    difference = np.abs(np.asarray(decoded.image, dtype=int) - np.asarray(upright, dtype=int)).mean()
    assert difference < 4


def test_it_decodes_small_jpegs_and_other_formats_in_full():
    small = open_for_hashing(encode(landscape(600, 500, seed=3), "JPEG"))
    assert (small.image.size, small.full_size) == ((600, 500), (600, 500))
    png = open_for_hashing(encode(landscape(1600, 1200, seed=3), "PNG"))
    assert (png.image.size, png.full_size, png.image.mode) == ((1600, 1200), (1600, 1200), "RGB")


def test_it_decodes_a_cmyk_jpeg_for_hashing_as_rgb():
    cmyk = Image.new("CMYK", (900, 900), (0, 255, 255, 0))
    decoded = open_for_hashing(encode(cmyk, "JPEG", quality=95))
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (450, 450)
    assert_close(pixel(decoded.image, (200, 200)), (255, 0, 0))


def test_decoding_for_hashing_gives_the_same_typed_errors():
    with pytest.raises(EmptyMedia):
        open_for_hashing(b"")
    data = encode(noise(900, 900), "JPEG", quality=90)
    with pytest.raises(CorruptMedia):
        open_for_hashing(data[: len(data) // 2])
    with pytest.raises(MediaTooLarge):
        open_for_hashing(png_declaring(20_000, 20_000))
