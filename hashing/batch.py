"""PDQ for many images at once with torch, on a GPU when one is present.

The same linear algebra as ``hashing.pdq`` (luminance, then ``A @ Y @ B.T`` with the reference's
blur-and-sample matrices, then the 16x16 DCT), run as batched matrix products over full-resolution
pixels. On a GPU that costs little; on a CPU the single-image path in ``hashing.pdq`` is faster. Hashes
agree with ``hashing.pdq`` within the agreement rule (``tests/hashing/test_batch.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from hashing.pdq import LUMA_COEFFS, coefficients_to_hex, dct_matrix, tent_matrix

__all__ = ["default_device", "pdq_hash_batch"]

_MIN_HASHABLE_DIM = 5  # as hashing.pdq: the reference's all-zero hash below this
# Pixels moved to the device and widened to float32 at once: 64 M pixels is about 1 GB of float32
# RGB, comfortable on any CUDA card and bounded on a CPU.
_CHUNK_PIXELS = 64_000_000


def default_device() -> torch.device:
    """CUDA when torch sees a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pdq_hash_batch(
    images: Sequence[npt.NDArray[np.uint8]] | torch.Tensor, *, device: str | torch.device | None = None
) -> list[tuple[str, int]]:
    """``(hash, quality)`` for each image, in order.

    ``images`` is a sequence of ``H x W x 3`` uint8 RGB arrays (sizes may differ) or one
    ``N x H x W x 3`` uint8 tensor. ``device`` defaults to :func:`default_device`.
    """
    target = torch.device(device) if device is not None else default_device()
    if isinstance(images, torch.Tensor):
        _check_shape(tuple(images.shape[1:]), images.dtype == torch.uint8)
        return _hash_same_size(images, target)
    results: list[tuple[str, int] | None] = [None] * len(images)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, array in enumerate(images):
        _check_shape(tuple(array.shape), array.dtype == np.uint8)
        by_size.setdefault(tuple(array.shape), []).append(index)
    for shape, indices in by_size.items():
        height, width = shape[0], shape[1]
        per_chunk = max(1, _CHUNK_PIXELS // max(1, height * width))
        for start in range(0, len(indices), per_chunk):
            chunk = indices[start : start + per_chunk]
            stacked = torch.from_numpy(np.stack([np.ascontiguousarray(images[i]) for i in chunk]))
            for index, result in zip(chunk, _hash_same_size(stacked, target), strict=True):
                results[index] = result
    return [result for result in results if result is not None]


def _check_shape(shape: tuple[int, ...], is_uint8: bool) -> None:
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"expected H x W x 3 RGB images, got shape {shape}")
    if not is_uint8:
        raise ValueError("expected uint8 pixels")


def _hash_same_size(batch: torch.Tensor, device: torch.device) -> list[tuple[str, int]]:
    """Hash an ``N x H x W x 3`` uint8 tensor of equal-sized images, in chunks that bound memory."""
    count, height, width = int(batch.shape[0]), int(batch.shape[1]), int(batch.shape[2])
    if height < _MIN_HASHABLE_DIM or width < _MIN_HASHABLE_DIM:
        return [("0" * 64, 0)] * count
    a = torch.from_numpy(tent_matrix(height).astype(np.float32)).to(device)
    b = torch.from_numpy(tent_matrix(width).astype(np.float32)).to(device)
    d = torch.from_numpy(np.array(dct_matrix())).to(device)
    luma_weights = torch.tensor(LUMA_COEFFS, dtype=torch.float32, device=device)
    per_chunk = max(1, _CHUNK_PIXELS // (height * width))
    results: list[tuple[str, int]] = []
    with torch.inference_mode():
        for start in range(0, count, per_chunk):
            pixels = batch[start : start + per_chunk].to(device, non_blocking=True)
            luma = pixels.to(torch.float32) @ luma_weights  # N x H x W
            block = a @ luma @ b.T  # N x 64 x 64
            coefficients = (d @ block @ d.T).cpu().numpy()
            qualities = _quality(block).cpu().numpy()
            results.extend((coefficients_to_hex(c), int(q)) for c, q in zip(coefficients, qualities, strict=True))
    return results


def _quality(block: torch.Tensor) -> torch.Tensor:
    """hashing.pdq.quality_of_block for a batch: quantised gradients summed, divided by 90, capped at 100."""
    down = torch.trunc((block[:, :-1, :] - block[:, 1:, :]) * 100.0 / 255.0).abs().sum(dim=(1, 2))
    across = torch.trunc((block[:, :, :-1] - block[:, :, 1:]) * 100.0 / 255.0).abs().sum(dim=(1, 2))
    return torch.clamp((down + across).to(torch.int64) // 90, max=100)
