"""How an image becomes the artefact network's input, and how its output becomes a probability.

numpy only, no torch: web processes and detection workers score through ONNX Runtime
(`detection.learned.runtime`), training and evaluation through torch (`detection.learned.network`), and
both read exactly these patches, so they agree (tests/detection/test_onnx_agreement.py).

An image is judged from up to `MAX_PATCHES` grey-level 64 x 64 patches taken at the file's own
resolution (resampling would erase the traces the network looks for), the most textured of a grid,
since flat sky says nothing. Each patch is normalised to zero mean and unit contrast, so the network
sees the pattern of fine detail rather than brightness. Patch logits are averaged and mapped to a
probability by a Platt calibration (`a * mean + b`) fitted on held-out photos at training time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

PATCH = 64
MAX_PATCHES = 16
MIN_PATCH_STD = 2.0 / 255.0  # below this a patch is flat (sky, studio backdrop) and is skipped
CONTRAST_FLOOR = 0.02  # added to a patch's std before dividing, so near-flat patches are not blown up

PatchLogits = Callable[[np.ndarray], np.ndarray]
"""A network as the scorers see it: float32 patches of shape (n, 1, PATCH, PATCH) → n logits."""


def grey(image: Image.Image | np.ndarray) -> np.ndarray:
    """Luminance in [0, 1] as float32, from a Pillow image or an RGB array in [0, 255]."""
    if isinstance(image, np.ndarray):
        rgb = image.astype(np.float32)
        return ((rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114) / 255.0).astype(np.float32)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def normalise(patches: np.ndarray) -> np.ndarray:
    """(N, P, P) grey patches → zero mean, unit contrast each."""
    mean = patches.mean(axis=(1, 2), keepdims=True)
    std = patches.std(axis=(1, 2), keepdims=True)
    return ((patches - mean) / (std + CONTRAST_FLOOR)).astype(np.float32)


def select_patches(plane: np.ndarray, limit: int = MAX_PATCHES) -> np.ndarray:
    """The `limit` most textured non-overlapping PATCH x PATCH tiles of a grey plane, normalised.

    Returns an array of shape (n, PATCH, PATCH), n <= limit; n is 0 for an image smaller than a
    patch or one with no textured tile.
    """
    rows, cols = plane.shape[0] // PATCH, plane.shape[1] // PATCH
    if rows == 0 or cols == 0:
        return np.zeros((0, PATCH, PATCH), dtype=np.float32)
    # Centre the grid so that borders (often letterboxing or frames) are what is dropped.
    top = (plane.shape[0] - rows * PATCH) // 2
    left = (plane.shape[1] - cols * PATCH) // 2
    tiles = (
        plane[top : top + rows * PATCH, left : left + cols * PATCH]
        .reshape(rows, PATCH, cols, PATCH)
        .transpose(0, 2, 1, 3)
        .reshape(rows * cols, PATCH, PATCH)
    )
    stds = tiles.std(axis=(1, 2))
    order = np.argsort(-stds, kind="stable")[:limit]
    order = order[stds[order] >= MIN_PATCH_STD]
    return normalise(tiles[order])


def mean_logits(logits: PatchLogits, patch_sets: Sequence[np.ndarray]) -> list[float | None]:
    """The mean patch logit of each image (None where it had no usable patch), in one batched call."""
    sizes = [len(patches) for patches in patch_sets]
    nonempty = [patches for patches in patch_sets if len(patches)]
    if not nonempty:
        return [None] * len(patch_sets)
    batch = np.ascontiguousarray(np.concatenate(nonempty)[:, None], dtype=np.float32)
    values = np.asarray(logits(batch), dtype=np.float32).reshape(-1)
    out: list[float | None] = []
    position = 0
    for size in sizes:
        if size == 0:
            out.append(None)
        else:
            out.append(float(values[position : position + size].mean()))
            position += size
    return out


@dataclass
class Calibration:
    """Platt scaling of the mean patch logit: p = sigmoid(a * mean_logit + b)."""

    a: float = 1.0
    b: float = 0.0

    def probability(self, mean_logit: float) -> float:
        z = float(self.a * mean_logit + self.b)
        if z >= 0:  # two branches so that a large |z| never overflows exp
            return 1.0 / (1.0 + float(np.exp(-z)))
        return float(np.exp(z)) / (1.0 + float(np.exp(z)))
