"""Generated photo-like images for the detection tests: smooth shapes, gradients and mild grain,
mid-tone so that fragile watermarks survive a fresh encode. Nothing here comes from elsewhere."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene(seed: int = 0, size: tuple[int, int] = (320, 256)) -> np.ndarray:
    """An RGB uint8 array (height, width, 3)."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            90 + 40 * np.sin(xx / (37 + 11 * rng.random()) + rng.random() * 6),
            110 + 30 * np.cos(yy / (29 + 13 * rng.random()) + rng.random() * 6),
            100 + 35 * np.sin((xx + yy) / (53 + 7 * rng.random())),
        ],
        axis=2,
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(20, width // 3)), y0 + int(rng.integers(20, height // 3))
        colour = tuple(int(c) for c in rng.integers(60, 170, size=3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    grain = rng.normal(0, 4, size=(height, width, 3))
    return np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, fmt, **options)
    return out.getvalue()
