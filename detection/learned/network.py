"""The artefact network and how an image becomes its input.

An image is judged from up to `MAX_PATCHES` grey-level 64 x 64 patches taken at the file's own
resolution (resampling would erase the traces the network looks for), the most textured of a grid,
since flat sky says nothing. Each patch is normalised to zero mean and unit contrast, so the network
sees the pattern of fine detail rather than brightness. Patch logits are averaged and mapped to a
probability by a Platt calibration (`a * mean + b`) fitted on held-out photos at training time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

PATCH = 64
MAX_PATCHES = 16
MIN_PATCH_STD = 2.0 / 255.0  # below this a patch is flat (sky, studio backdrop) and is skipped
CONTRAST_FLOOR = 0.02  # added to a patch's std before dividing, so near-flat patches are not blown up


class ArtefactNet(nn.Module):
    """A small CNN: one full-resolution convolution, then stride-2 stages, global pooling, one logit."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width = width
        w = width
        self.features = nn.Sequential(
            *_stage(1, w // 2, 1),
            *_stage(w // 2, w, 2),
            *_stage(w, 2 * w, 2),
            *_stage(2 * w, 4 * w, 2),
            *_stage(4 * w, 4 * w, 1),
        )
        self.head = nn.Linear(8 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.head(pooled).squeeze(1)


def _stage(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    ]


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


def fit_calibration(mean_logits: np.ndarray, labels: np.ndarray, steps: int = 100) -> Calibration:
    """Fit Platt scaling by gradient descent on log-loss (two parameters; no extra dependency)."""
    a = torch.tensor(1.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    x = torch.tensor(mean_logits, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.float32)
    optimiser = torch.optim.LBFGS([a, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(a * x + b, y)
        loss.backward()
        return loss

    optimiser.step(closure)
    return Calibration(float(a.detach()), float(b.detach()))


def image_mean_logits(net: ArtefactNet, patch_sets: list[np.ndarray], device: str = "cpu") -> list[float | None]:
    """The mean patch logit of each image (None where it had no usable patch), in one batched forward."""
    sizes = [len(patches) for patches in patch_sets]
    nonempty = [patches for patches in patch_sets if len(patches)]
    if not nonempty:
        return [None] * len(patch_sets)
    batch = torch.from_numpy(np.concatenate(nonempty)).unsqueeze(1).to(device)
    with torch.inference_mode():
        logits = net(batch).float().cpu().numpy()
    out: list[float | None] = []
    position = 0
    for size in sizes:
        if size == 0:
            out.append(None)
        else:
            out.append(float(logits[position : position + size].mean()))
            position += size
    return out
