from __future__ import annotations

import numpy as np
import pytest
from imwatermark import WatermarkDecoder, WatermarkEncoder

from detection.scoring import score_bytes
from detection.signals.watermark import (
    KNOWN_MARKS,
    SD_V1_MESSAGE,
    SDXL_MESSAGE_INT,
    _bits_of_int,
    decode_bits,
    watermark_signal,
)
from tests.detection.images import encode, scene

SDXL_BITS = [int(bit) for bit in bin(SDXL_MESSAGE_INT)[2:]]


def sd_v1_marked(seed: int) -> np.ndarray:
    """What CompVis txt2img.py does: RGB → BGR uint8, encode 'StableDiffusionV1' with dwtDct, back to RGB."""
    bgr = np.ascontiguousarray(scene(seed)[:, :, ::-1])
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", SD_V1_MESSAGE)
    return np.ascontiguousarray(encoder.encode(bgr, "dwtDct")[:, :, ::-1])


def sdxl_marked(seed: int, order: str) -> np.ndarray:
    """diffusers (order 'RGB': RGB float handed over as if BGR) or Stability's generative-models ('BGR')."""
    rgb = scene(seed).astype(np.float32)
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", SDXL_BITS)
    if order == "RGB":
        out = encoder.encode(rgb.copy(), "dwtDct")
    else:
        out = encoder.encode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")[:, :, ::-1]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_the_sdxl_message_has_the_48_bits_diffusers_writes() -> None:
    assert len(_bits_of_int(SDXL_MESSAGE_INT)) == 48
    assert [mark.name for mark in KNOWN_MARKS] == ["StableDiffusionV1", "SDXL"]
    assert len(KNOWN_MARKS[0].bits) == 136


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_our_hard_decoder_reproduces_the_package_decoder(seed: int) -> None:
    marked_bgr = np.ascontiguousarray(sd_v1_marked(seed)[:, :, ::-1])
    ours = decode_bits(marked_bgr, 136, soft=False)
    theirs = np.unpackbits(np.frombuffer(WatermarkDecoder("bytes", 136).decode(marked_bgr, "dwtDct"), np.uint8))
    # The package's pywt DWT rounds differently from our numpy sum, which can break an exact tie
    # between two coefficients the other way: a handful of bits of 136.
    assert np.count_nonzero(ours != theirs) <= 6


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_our_soft_decoder_reads_the_package_encoders_mark_at_least_as_well_as_the_package(seed: int) -> None:
    marked_bgr = np.ascontiguousarray(sd_v1_marked(seed)[:, :, ::-1])
    message = np.unpackbits(np.frombuffer(SD_V1_MESSAGE, np.uint8))
    theirs = np.unpackbits(np.frombuffer(WatermarkDecoder("bytes", 136).decode(marked_bgr, "dwtDct"), np.uint8))
    ours = decode_bits(marked_bgr, 136)
    # 320 x 256 holds 1,280 blocks (9 votes a bit): the package reads 20-45 bits wrong, ours at most 10.
    assert np.count_nonzero(ours != message) <= min(10, np.count_nonzero(theirs != message))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_it_finds_the_stable_diffusion_v1_watermark_and_scores_it_above_0_9(seed: int) -> None:
    data = encode(sd_v1_marked(seed))
    signal = watermark_signal(data)
    assert signal.value == pytest.approx(0.99)
    assert signal.detail["mark"] == "StableDiffusionV1"
    assert signal.detail["distance"] <= 24
    assert "bits differ" in signal.detail["summary"]
    assert score_bytes(data).score >= 0.9


@pytest.mark.parametrize("order", ["RGB", "BGR"])
@pytest.mark.parametrize("seed", [4, 5])
def test_it_finds_the_sdxl_watermark_as_diffusers_and_generative_models_write_it(order: str, seed: int) -> None:
    data = encode(sdxl_marked(seed, order))
    signal = watermark_signal(data)
    assert signal.detail.get("mark") == "SDXL", signal.detail["summary"]
    assert signal.detail["distance"] <= 5
    assert score_bytes(data).score >= 0.9


@pytest.mark.parametrize("seed", range(6))
def test_it_flags_no_unmarked_image(seed: int) -> None:
    signal = watermark_signal(encode(scene(seed)))
    assert signal.value == 0.5
    assert "absence proves nothing" in signal.detail["summary"]
    distances = {mark["mark"]: mark["distance"] for mark in signal.detail["marks"]}
    assert distances["StableDiffusionV1"] > 24 and distances["SDXL"] > 5


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_flat_image_does_not_read_as_a_mark(value: int) -> None:
    flat = np.full((256, 320, 3), value, dtype=np.uint8)
    assert watermark_signal(encode(flat)).value == 0.5


def test_a_jpeg_reencode_usually_destroys_the_mark_and_then_nothing_is_claimed() -> None:
    signal = watermark_signal(encode(sd_v1_marked(1), "JPEG", quality=70))
    assert signal.value in (0.5, 0.99)  # either way it must not lower the score
    assert signal.value >= 0.5


def test_it_says_why_it_skips_images_too_small_to_carry_a_mark() -> None:
    signal = watermark_signal(encode(scene(0, (200, 150))))
    assert signal.value == 0.5
    assert "too small" in signal.detail["summary"]


def test_it_does_not_raise_on_garbage() -> None:
    signal = watermark_signal(b"\x89PNG\r\n\x1a\n not really")
    assert signal.value == 0.5
    assert "could not be checked" in signal.detail["summary"]
