"""The artefact network in torch: training, evaluation and ONNX export only.

Scoring in web processes and detection workers runs the exported ONNX file on ONNX Runtime
(`detection.learned.runtime`) and never imports this module; what the network reads (patches) and how its
output becomes a probability (calibration) are in `detection.learned.patches`, shared by both.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from detection.learned.patches import Calibration
from detection.learned.patches import mean_logits as batched_mean_logits


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


class TorchLogits:
    """An `ArtefactNet` as a `PatchLogits`: numpy patches in, numpy logits out, computed on `device`."""

    def __init__(self, net: ArtefactNet, device: str = "cpu") -> None:
        self.net, self.device = net, device

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.net(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()


def image_mean_logits(net: ArtefactNet, patch_sets: list[np.ndarray], device: str = "cpu") -> list[float | None]:
    """The mean patch logit of each image (None where it had no usable patch), in one batched forward."""
    return batched_mean_logits(TorchLogits(net, device), patch_sets)
