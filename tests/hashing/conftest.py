"""Image fixtures for the hashing tests.

Every image is generated here from numbers (gradients, shapes, noise, text, soft blobs, a simple
landscape), so the tests need no image files and contain no real people.
"""

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """Save ``image`` in format ``fmt`` (Pillow's name: "PNG", "JPEG" ...) and return the bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    """Red rises left to right, green top to bottom, blue along the diagonal."""
    y, x = np.mgrid[0:height, 0:width]
    red = x * 255 / max(width - 1, 1)
    green = y * 255 / max(height - 1, 1)
    blue = (red + green) / 2
    return _from_float(np.stack([red, green, blue], axis=-1))


def shapes(width: int, height: int, seed: int = 0) -> Image.Image:
    """Overlapping rectangles, ellipses and triangles in random colours on a pale background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (235, 230, 220))
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        colour = tuple(rng.integers(0, 256, 3).tolist())
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
    return image


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Independent uniform noise in every channel."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def soft_noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Noise blurred into soft mottling, like an out-of-focus texture."""
    return noise(width, height, seed).filter(ImageFilter.GaussianBlur(radius=max(width, height) / 60))


def text_card(width: int, height: int) -> Image.Image:
    """Dark text on a white card, like a screenshot of a message."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, height // 12))
    lines = ["Takedown test card", "The quick brown fox", "jumps over the lazy dog", "0123456789 ?!"]
    for i, line in enumerate(lines):
        draw.text((width // 20, height // 10 + i * height // 5), line, fill=(20, 20, 40), font=font)
    return image


def blobs(width: int, height: int, seed: int = 0) -> Image.Image:
    """Soft coloured Gaussian blobs: smooth, photo-like tones without sharp edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    canvas = np.full((height, width, 3), 40.0)
    for _ in range(12):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.05, 0.3) * max(width, height)
        weight = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        canvas += weight[..., np.newaxis] * rng.uniform(-60, 200, 3)
    return _from_float(canvas)


def landscape(width: int, height: int, seed: int = 0) -> Image.Image:
    """Sky gradient, a sun, two ranges of hills and a little grain: a stand-in for a photo."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, np.newaxis, np.newaxis]
    sky = np.array([90, 150, 230]) * (1 - y) + np.array([230, 220, 200]) * y
    image = _from_float(np.broadcast_to(sky, (height, width, 3)))
    draw = ImageDraw.Draw(image)
    sun_x, sun_y, sun_r = width * rng.uniform(0.2, 0.8), height * 0.25, min(width, height) * 0.08
    draw.ellipse((sun_x - sun_r, sun_y - sun_r, sun_x + sun_r, sun_y + sun_r), fill=(255, 230, 150))
    for base, colour in ((0.55, (70, 110, 80)), (0.7, (40, 80, 45))):
        xs = np.linspace(0, width, 12)
        ys = height * (base + rng.uniform(-0.1, 0.1, xs.size))
        draw.polygon([(0, height), *zip(xs.tolist(), ys.tolist(), strict=True), (width, height)], fill=colour)
    pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, 4, (height, width, 3))
    return _from_float(pixels).filter(ImageFilter.GaussianBlur(radius=1))


def checkerboard(width: int, height: int, square: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    on = ((x // square + y // square) % 2).astype(bool)
    pixels = np.where(on[..., np.newaxis], [200, 40, 40], [30, 30, 120])
    return _from_float(pixels)


def rings(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    r = np.hypot(x - width * 0.4, y - height * 0.6)
    value = 127.5 + 127.5 * np.sin(r / 9.0)
    return _from_float(np.stack([value, value * 0.6 + 50, 255 - value], axis=-1))


def _from_float(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


# Varied content and sizes, from the 64x64 PDQ works at up to 1500x1000, square and not.
SCENE_RECIPES: dict[str, Callable[[], Image.Image]] = {
    "gradient_64": lambda: gradient(64, 64),
    "gradient_wide": lambda: gradient(300, 120),
    "shapes_640x480": lambda: shapes(640, 480, seed=1),
    "shapes_tall": lambda: shapes(150, 900, seed=2),
    "noise_128": lambda: noise(128, 128, seed=3),
    "soft_noise_500": lambda: soft_noise(500, 500, seed=4),
    "text_800x400": lambda: text_card(800, 400),
    "blobs_1500x1000": lambda: blobs(1500, 1000, seed=5),
    "landscape_1024x768": lambda: landscape(1024, 768, seed=6),
    "landscape_333x517": lambda: landscape(333, 517, seed=7),
    "checkerboard_256": lambda: checkerboard(256, 256, square=16),
    "rings_999x731": lambda: rings(999, 731),
}


@pytest.fixture(scope="session")
def scenes() -> dict[str, Image.Image]:
    """The varied test set, built once per run."""
    return {name: recipe() for name, recipe in SCENE_RECIPES.items()}


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A photo-like 800x600 landscape."""
    return landscape(800, 600, seed=11)


@pytest.fixture(scope="session")
def other_photo() -> Image.Image:
    """A different picture of the same kind as ``photo``."""
    return shapes(800, 600, seed=12)


@pytest.fixture(name="encode")
def encode_fixture() -> Callable[..., bytes]:
    """``encode(image, "PNG", **save_params) -> bytes``."""
    return encode
