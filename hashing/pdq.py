"""PDQ perceptual hashing, following Meta's published algorithm, computed as a few matrix products.

Reference: facebook/ThreatExchange, ``pdq/cpp/hashing/pdqhashing.cpp`` and
``pdq/cpp/downscaling/downscaling.cpp``, and the PDQ paper (``pdq/hashing.pdf``). The steps are:

1. luminance ``Y = 0.299 R + 0.587 G + 0.114 B``;
2. a Jarosz "tent" filter: two rounds of (box blur along rows, box blur along columns), each box
   ``ceil(dim / 128)`` pixels wide, then decimation to 64x64 by sampling pixel centres;
3. the 64x64 block is scored for quality (sum of quantised neighbour gradients);
4. a 2-D DCT-II keeping frequencies 1..16 in each direction (the DC row and column are dropped);
5. each of the 256 coefficients becomes one bit: 1 when it is above the median coefficient.

Steps 1 and 2 are linear and separable, so the 64x64 block is ``A @ Y @ B.T`` where ``A`` (64 x height)
and ``B`` (64 x width) are the blur-and-sample operators of each axis, built once per size and cached.
Each row of ``A`` is a tent a few dozen pixels wide, so each pixel row feeds one or two of the 64
outputs: one compiled pass (numba) reads the pixels once and applies ``A``; luminance and ``B`` then
act on 64 rows. The result is the reference's up to float rounding (summation order differs), so the
hashes agree with pdqhash bit for bit on almost all images and within a few bits where coefficients
sit at the median (``tests/hashing/test_pdq_agreement.py`` measures it).

Images decoded at reduced scale (JPEG DCT scaling, see ``hashing.decode``) go through the same code:
each decoded pixel is the mean of a block of the full-size image, so :func:`pdq_hash_scaled` weights
it by the sum of the full-size tent over that block.

Hashes are written the way ThreatExchange's ``Hash256::format()`` writes them (and as HMA and StopNCII
exchange them): 64 lowercase hex characters, the 256-bit number whose bit ``16*i + j`` is coefficient
``(i, j)``, most significant nibble first.
"""

from functools import lru_cache

import numba
import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = [
    "DIHEDRAL_NAMES",
    "block_weights",
    "coefficients_to_hex",
    "dct_matrix",
    "dihedral_coefficients",
    "pdq_dihedral",
    "pdq_hash",
    "pdq_hash_array",
    "pdq_hash_scaled",
    "quality_of_block",
    "tent_matrix",
]

# Constants from the reference implementation (pdqhashing.cpp / downscaling.cpp).
LUMA_COEFFS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma
DOWNSAMPLE_SIZE = 64  # PDQ works on a 64x64 downsample ...
DCT_SIZE = 16  # ... and keeps a 16x16 block of DCT coefficients: 256 bits
_MIN_HASHABLE_DIM = 5  # the reference returns an all-zero hash of quality 0 below this
# Quality heuristic: gradients are quantised to percent of full scale and the sum divided by 90,
# clamped to 100. Hand-tuned by the PDQ authors (see the paper).
_QUALITY_DIVISOR = 90
_MAX_QUALITY = 100

DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
UInt8Array = npt.NDArray[np.uint8]


def pdq_hash(image: Image.Image) -> tuple[str, int]:
    """Return ``(hash, quality)``: 64 lowercase hex characters and a quality score from 0 to 100.

    The image should be RGB (what ``hashing.decode.open_image`` returns); any other mode is converted
    to RGB first. Images under 5 pixels on a side get the reference's all-zero hash and quality 0.
    """
    return pdq_hash_array(_rgb_array(image))


def pdq_hash_array(rgb: UInt8Array) -> tuple[str, int]:
    """Like :func:`pdq_hash`, for an ``H x W x 3`` uint8 RGB array."""
    coefficients, quality = _coefficients(rgb, full_size=None)
    return coefficients_to_hex(coefficients), quality


def pdq_hash_scaled(rgb: UInt8Array, *, full_size: tuple[int, int]) -> tuple[str, int]:
    """The PDQ hash of a ``full_size`` (width, height) image, from a copy decoded at reduced scale.

    ``rgb`` is ``H x W x 3`` uint8 RGB, or ``H x W`` uint8 luminance (a JPEG decoded straight to its
    Y channel, which is PDQ's luma), each pixel the mean of a block of the full-size image (as a JPEG
    decoder's DCT scaling gives). The result approximates the full-size image's hash.
    """
    coefficients, quality = _coefficients(rgb, full_size=full_size)
    return coefficients_to_hex(coefficients), quality


def pdq_dihedral(image: Image.Image) -> dict[str, str]:
    """The PDQ hashes of the image's eight rotations and mirror images, keyed by the reference's names.

    Keys (:data:`DIHEDRAL_NAMES`): ``original``, ``rotate90``, ``rotate180``, ``rotate270``, ``flipx``
    (mirrored top to bottom), ``flipy`` (mirrored left to right), ``flipplus1`` (transposed),
    ``flipminus1`` (anti-transposed). They come from sign flips and transposes of one set of DCT
    coefficients, so they cost little more than one hash. Rotations are counter-clockwise, as in the
    reference.
    """
    coefficients, _ = _coefficients(_rgb_array(image), full_size=None)
    return {name: coefficients_to_hex(c) for name, c in dihedral_coefficients(coefficients).items()}


def dihedral_coefficients(c: Float32Array) -> dict[str, Float32Array]:
    """The 16x16 DCT blocks of the eight rotations and mirror images of the image whose block is ``c``."""
    # An odd frequency (index i even, since frequencies start at 1) changes sign when its axis is
    # mirrored; a transpose swaps the axes.
    odd_freq_sign = np.where(np.arange(DCT_SIZE) % 2 == 0, np.float32(-1), np.float32(1))
    row_sign = odd_freq_sign[:, np.newaxis]
    col_sign = odd_freq_sign[np.newaxis, :]
    return {
        "original": c,
        "rotate90": (c * col_sign).T,
        "rotate180": c * row_sign * col_sign,
        "rotate270": (c * row_sign).T,
        "flipx": c * row_sign,
        "flipy": c * col_sign,
        "flipplus1": c.T,
        "flipminus1": (c * row_sign * col_sign).T,
    }


def _rgb_array(image: Image.Image) -> UInt8Array:
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _coefficients(rgb: UInt8Array, *, full_size: tuple[int, int] | None) -> tuple[Float32Array, int]:
    """The 16x16 DCT block (row i, column j = vertical frequency i+1, horizontal j+1) and quality.

    ``rgb`` is H x W x 3 RGB or, where ``full_size`` is given, may be H x W luminance.
    """
    is_luma = rgb.ndim == 2 and full_size is not None
    if not is_luma and (rgb.ndim != 3 or rgb.shape[2] != 3):
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {rgb.dtype}")
    rows, cols = rgb.shape[:2]
    full_cols, full_rows = full_size if full_size is not None else (cols, rows)
    if full_rows < _MIN_HASHABLE_DIM or full_cols < _MIN_HASHABLE_DIM or rows == 0 or cols == 0:
        return np.zeros((DCT_SIZE, DCT_SIZE), dtype=np.float32), 0
    block = _downsample(np.ascontiguousarray(rgb), full_rows=full_rows, full_cols=full_cols)
    return _dct(block), quality_of_block(block)


def _downsample(rgb: UInt8Array, *, full_rows: int, full_cols: int) -> Float32Array:
    """The reference's 64x64 luminance block, as ``A @ luma(rgb) @ B.T``.

    The row operator ``A`` runs in one compiled pass over the pixels (:func:`_apply_rows`), which is
    where the time goes; luminance and the column operator ``B`` then act on 64 rows only.
    """
    rows, cols = rgb.shape[:2]
    channels = 1 if rgb.ndim == 2 else 3
    starts, targets, weights = _row_operator(full_rows, rows)
    partial = np.zeros((DOWNSAMPLE_SIZE, cols * channels), dtype=np.float32)
    _apply_rows(rgb.reshape(rows, cols * channels), starts, targets, weights, partial)
    if channels == 1:
        luma = partial
    else:
        luma = partial.reshape(DOWNSAMPLE_SIZE, cols, 3) @ np.asarray(LUMA_COEFFS, dtype=np.float32)
    block = luma @ block_weights(full_cols, cols).T
    return block.astype(np.float32, copy=False)


@numba.njit(cache=True, nogil=True)
def _apply_rows(pixels, starts, targets, weights, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    """out[targets[p]] += weights[p] * pixels[r] for p in starts[r]:starts[r + 1], for every row r.

    ``pixels`` is rows x (3 * cols) uint8; the operator is stored by input row (each row feeds one or
    two of the 64 outputs), so every pixel is read once, in memory order, and the inner loop
    vectorises.
    """
    num_rows, num_values = pixels.shape
    for r in range(num_rows):
        for p in range(starts[r], starts[r + 1]):
            target = targets[p]
            weight = weights[p]
            for k in range(num_values):
                out[target, k] += weight * np.float32(pixels[r, k])


@lru_cache(maxsize=256)
def _row_operator(full_length: int, length: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Float32Array]:
    """:func:`block_weights` stored by input sample: (starts, targets, weights), as a CSR matrix."""
    by_sample = np.ascontiguousarray(block_weights(full_length, length).T)  # length x 64
    sample, target = np.nonzero(by_sample)
    starts = np.searchsorted(sample, np.arange(length + 1)).astype(np.int64)
    return starts, target.astype(np.int64), by_sample[sample, target].astype(np.float32)


@lru_cache(maxsize=256)
def tent_matrix(length: int) -> Float64Array:
    """64 x ``length``: the reference's two box blurs along one axis followed by decimation.

    The box filter (box1DFloat) averages ``window = ceil(length / 128)`` pixels: output k covers
    ``k - (window - half) .. k + half - 1`` with ``half = (window + 2) // 2``, clipped to the image and
    divided by the number of pixels inside. Decimation (decimateFloat) keeps pixel centres
    ``floor((s + 0.5) * length / 64)``. A 64-pixel axis is taken as is, as the reference does.
    """
    n = DOWNSAMPLE_SIZE
    if length == n:
        return np.eye(n)
    window = (length + 2 * n - 1) // (2 * n)
    half = (window + 2) // 2
    ahead, behind = half - 1, window - half
    k = np.arange(length)
    low = np.maximum(0, k - behind)
    high = np.minimum(length - 1, k + ahead)
    inverse_count = 1.0 / (high - low + 1)
    out = np.zeros((n, length))
    for s, p in enumerate(((np.arange(n) + 0.5) * length / n).astype(np.intp)):
        # Row p of the box operator B, then B again: sum_k B[p, k] * B[k, :].
        for q in range(low[p], high[p] + 1):
            out[s, low[q] : high[q] + 1] += inverse_count[p] * inverse_count[q]
    out.flags.writeable = False
    return out


@lru_cache(maxsize=256)
def block_weights(full_length: int, length: int) -> Float32Array:
    """64 x ``length`` float32: the tent of a ``full_length`` axis, for an axis of ``length`` samples.

    Sample i stands for full-size pixels ``[i * s, (i + 1) * s)`` with ``s = full_length / length`` (1
    for full-resolution arrays, the JPEG scale for reduced decodes) and holds their mean, so its weight
    is the full-size tent summed over those pixels.
    """
    tent = tent_matrix(full_length)
    if full_length == length:
        weights = tent.astype(np.float32)
    else:
        cumulative = np.concatenate([np.zeros((DOWNSAMPLE_SIZE, 1)), np.cumsum(tent, axis=1)], axis=1)
        edges = _full_size_edge(np.arange(length + 1), full_length, length)
        weights = (cumulative[:, edges[1:]] - cumulative[:, edges[:-1]]).astype(np.float32)
    weights.flags.writeable = False
    return weights


def _full_size_edge(index: npt.NDArray[np.intp], full_length: int, length: int) -> npt.NDArray[np.intp]:
    """Where sample ``index`` starts in the full-size axis.

    A JPEG decoded at 1/s keeps ceil(full / s) samples, each exactly s pixels (the last one fewer);
    any other reduction is taken as evenly spread.
    """
    scale = max(1, round(full_length / length))
    if -(-full_length // scale) == length:
        return np.minimum(index * scale, full_length)
    edges: npt.NDArray[np.intp] = (index * full_length) // length
    return edges


@lru_cache(maxsize=1)
def dct_matrix() -> Float32Array:
    """The reference's 16x64 DCT-II matrix: rows are frequencies 1..16 (DC is skipped)."""
    n = DOWNSAMPLE_SIZE
    freq = np.arange(1, DCT_SIZE + 1)[:, np.newaxis]
    pos = np.arange(n)[np.newaxis, :]
    matrix: Float32Array = (np.sqrt(2.0 / n) * np.cos(np.pi / 2.0 / n * freq * (2 * pos + 1))).astype(np.float32)
    matrix.flags.writeable = False
    return matrix


def _dct(block: Float32Array) -> Float32Array:
    d = dct_matrix()
    coefficients: Float32Array = d @ block.astype(np.float32, copy=False) @ d.T
    return coefficients


def quality_of_block(block: Float32Array) -> int:
    """pdqImageDomainQualityMetric: quantised absolute gradients of the 64x64 block, summed, scaled, clamped."""
    # Each neighbour difference is scaled to percent of full range and truncated toward zero before
    # summing, in the reference's order of operations.
    block = block.astype(np.float32, copy=False)
    down = np.trunc((block[:-1, :] - block[1:, :]) * np.float32(100) / np.float32(255))
    across = np.trunc((block[:, :-1] - block[:, 1:]) * np.float32(100) / np.float32(255))
    gradient_sum = int(np.abs(down).sum(dtype=np.int64)) + int(np.abs(across).sum(dtype=np.int64))
    return min(gradient_sum // _QUALITY_DIVISOR, _MAX_QUALITY)


def coefficients_to_hex(coefficients: Float32Array) -> str:
    """Threshold at the median and format the bits as Hash256::format() does."""
    flat = coefficients.ravel()
    # The reference's median (Torben's method) is the lower of the two middle values.
    middle = flat.size // 2 - 1
    median = np.partition(flat, middle)[middle]
    bits = flat > median
    # Bit k (k = 16 * row + column) is worth 2**k; write the number most significant byte first.
    return np.packbits(bits[::-1]).tobytes().hex()
