"""Processes that leave the traces generators leave, applied to real photos to make training fakes.

No generated images can be downloaded here, so the model learns from real photos and copies of them
put through the operations that synthesis pipelines are built from:

- ``nearest``, ``bilinear``, ``bicubic``, ``lanczos``: upsampling by 2 after a downsample, as in the
  upsampling layers of GAN and diffusion decoders (Odena et al. 2016, "Deconvolution and
  checkerboard artifacts"; Frank et al. 2020, "Leveraging frequency analysis for deep fake image
  recognition").
- ``transposed_conv``: a stride-2 transposed convolution with a random 4 x 4 kernel, the layer that
  leaves checkerboard patterns.
- ``autoencoder``: each 8 x 8 block rebuilt from the image's own top principal components, a linear
  autoencoder: the encode-decode step of the original face-swap method, without its training time.
- ``self_blend``: a region blended back with a shifted, rescaled, colour-changed copy of the image
  through a soft mask, as in Self-Blended Images (Shiohara & Yamasaki, CVPR 2022).

Every process maps an RGB float32 array in [0, 255] of shape (H, W, 3) to one of the same shape, and
takes a numpy Generator so that training is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

Process = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).round().astype(np.uint8), "RGB")


def _resample_up(method: Image.Resampling) -> Process:
    def process(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = array.shape[:2]
        small = _pil(array).resize((width // 2, height // 2), Image.Resampling.BOX)
        return np.asarray(small.resize((width, height), method), dtype=np.float32)

    return process


def transposed_conv(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = array.shape[:2]
    small = np.asarray(_pil(array).resize((width // 2, height // 2), Image.Resampling.BOX), dtype=np.float32)
    kernel = rng.uniform(0.0, 1.0, size=(4, 4)).astype(np.float32)
    # Normalise each of the four stride phases so flat areas keep their brightness: the periodic
    # pattern that is left is the checkerboard trace.
    for dy in range(2):
        for dx in range(2):
            kernel[dy::2, dx::2] /= kernel[dy::2, dx::2].sum()
    tensor = torch.from_numpy(small).permute(2, 0, 1).unsqueeze(1)  # (3, 1, h, w): one channel at a time
    weight = torch.from_numpy(kernel).view(1, 1, 4, 4)
    with torch.no_grad():
        up = F.conv_transpose2d(F.pad(tensor, (1, 1, 1, 1), mode="replicate"), weight, stride=2, padding=3)
    out = up.squeeze(1).permute(1, 2, 0).numpy()
    out = out[:height, :width]
    if out.shape[:2] != (height, width):
        out = np.pad(out, ((0, height - out.shape[0]), (0, width - out.shape[1]), (0, 0)), mode="edge")
    return np.ascontiguousarray(out, dtype=np.float32)


def autoencoder(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = array.shape[:2]
    block = 8
    rows, cols = height // block * block, width // block * block
    keep = int(rng.integers(6, 16))  # components kept of 64 per channel: a narrow bottleneck
    out = array.copy()
    for channel in range(3):
        plane = array[:rows, :cols, channel]
        blocks = (
            plane.reshape(rows // block, block, cols // block, block).transpose(0, 2, 1, 3).reshape(-1, block * block)
        )
        mean = blocks.mean(axis=0)
        centred = blocks - mean
        _, _, vt = np.linalg.svd(centred[:: max(1, len(centred) // 2048)], full_matrices=False)
        basis = vt[:keep]
        rebuilt = (centred @ basis.T) @ basis + mean
        out[:rows, :cols, channel] = (
            rebuilt.reshape(rows // block, cols // block, block, block).transpose(0, 2, 1, 3).reshape(rows, cols)
        )
    return out.astype(np.float32)


def self_blend(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = array.shape[:2]
    # The source: the same image slightly rescaled, shifted and colour-changed.
    scale = float(rng.uniform(0.9, 1.1))
    resized = _pil(array).resize(
        (max(2, round(width * scale)), max(2, round(height * scale))), Image.Resampling.BILINEAR
    )
    source = np.asarray(resized.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    shift = rng.integers(-3, 4, size=2)
    source = np.roll(source, shift=(int(shift[0]), int(shift[1])), axis=(0, 1))
    source = source * rng.uniform(0.92, 1.08, size=3).astype(np.float32) + rng.uniform(-8, 8, size=3).astype(np.float32)
    # A soft elliptical mask covering much of the patch, as a face region would.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = height * rng.uniform(0.35, 0.65), width * rng.uniform(0.35, 0.65)
    ry, rx = height * rng.uniform(0.25, 0.45), width * rng.uniform(0.25, 0.45)
    distance = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    mask = np.clip((1.3 - distance) / 0.6, 0.0, 1.0)[:, :, None] * float(rng.uniform(0.6, 1.0))
    return (mask * source + (1.0 - mask) * array).astype(np.float32)


PROCESSES: dict[str, Process] = {
    "nearest": _resample_up(Image.Resampling.NEAREST),
    "bilinear": _resample_up(Image.Resampling.BILINEAR),
    "bicubic": _resample_up(Image.Resampling.BICUBIC),
    "lanczos": _resample_up(Image.Resampling.LANCZOS),
    "transposed_conv": transposed_conv,
    "autoencoder": autoencoder,
    "self_blend": self_blend,
}

# The default split. The model is trained on the first set and tested on the second, which it never
# sees: other interpolation kernels, a learned-basis reconstruction, and region blending.
TRAIN_PROCESSES: tuple[str, ...] = ("nearest", "bilinear", "transposed_conv")
HELD_OUT_PROCESSES: tuple[str, ...] = ("bicubic", "lanczos", "autoencoder", "self_blend")
