"""PDQ perceptual hashing, following Meta's published algorithm.

Reference: facebook/ThreatExchange, ``pdq/cpp/hashing/pdqhashing.cpp`` and
``pdq/cpp/downscaling/downscaling.cpp``, and the PDQ paper (``pdq/hashing.pdf``). The steps are:

1. luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` as floats;
2. a Jarosz "tent" filter: two rounds of (box blur along rows, box blur along columns), each box
   ``ceil(dim / 128)`` pixels wide, then decimation to 64x64 by sampling pixel centres;
3. the 64x64 block is scored for quality (sum of quantised neighbour gradients);
4. a 2-D DCT-II keeping frequencies 1..16 in each direction (the DC row and column are dropped);
5. each of the 256 coefficients becomes one bit: 1 when it is above the median coefficient.

Hashes are written the way ThreatExchange's ``Hash256::format()`` writes them (and as HMA and StopNCII
exchange them): 64 lowercase hex characters, the 256-bit number whose bit ``16*i + j`` is coefficient
``(i, j)``, most significant nibble first.

We hash the full-resolution pixels, as the reference library call ``pdqHash256FromFloatLuma`` and the
``pdqhash`` Python binding do. (The reference command-line tool first squashes images larger than 512 px
to 512x512 for speed; its hashes differ from these by a few bits, well inside any match threshold.)

The arithmetic follows the reference step for step in float32, in the same order, so the hashes are
bit-identical to the binding's, including on flat and perfectly smooth images where rounding decides
bits. Loops run along one image axis and are vectorised across the other.
"""

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["pdq_dihedral", "pdq_hash", "pdq_hash_array"]

# Constants from the reference implementation (pdqhashing.cpp / downscaling.cpp).
_LUMA_COEFFS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma
_DOWNSAMPLE_SIZE = 64  # PDQ works on a 64x64 downsample ...
_DCT_SIZE = 16  # ... and keeps a 16x16 block of DCT coefficients: 256 bits
_JAROSZ_PASSES = 2  # two box-filter rounds make a tent filter
_MIN_HASHABLE_DIM = 5  # the reference returns an all-zero hash of quality 0 below this
# Quality heuristic: gradients are quantised to percent of full scale and the sum divided by 90,
# clamped to 100. Hand-tuned by the PDQ authors (see the paper).
_QUALITY_DIVISOR = 90
_MAX_QUALITY = 100
_LUMA_BAND_PIXELS = 1 << 20  # rows converted to luma at a time: bounds the float64 temporaries

Float32Array = npt.NDArray[np.float32]


def pdq_hash(image: Image.Image) -> tuple[str, int]:
    """Return ``(hash, quality)``: 64 lowercase hex characters and a quality score from 0 to 100.

    The image should be RGB (what ``hashing.decode.open_image`` returns); any other mode is converted
    to RGB first. Images under 5 pixels on a side get the reference's all-zero hash and quality 0.
    """
    return pdq_hash_array(_rgb_array(image))


def pdq_hash_array(rgb: npt.NDArray[np.uint8]) -> tuple[str, int]:
    """Like :func:`pdq_hash`, for an ``H x W x 3`` uint8 RGB array."""
    coefficients, quality = _dct_coefficients(rgb)
    return _to_hex(coefficients), quality


def pdq_dihedral(image: Image.Image) -> dict[str, str]:
    """The PDQ hashes of the image's eight rotations and mirror images, keyed by the reference's names.

    Keys: ``original``, ``rotate90``, ``rotate180``, ``rotate270``, ``flipx`` (mirrored top to bottom),
    ``flipy`` (mirrored left to right), ``flipplus1`` (transposed), ``flipminus1`` (anti-transposed).
    They come from sign flips and transposes of one set of DCT coefficients, so they cost little more
    than one hash. Rotations are counter-clockwise, as in the reference.
    """
    c, _ = _dct_coefficients(_rgb_array(image))
    # An odd frequency (index i even, since frequencies start at 1) changes sign when its axis is
    # mirrored; a transpose swaps the axes.
    odd_freq_sign = np.where(np.arange(_DCT_SIZE) % 2 == 0, np.float32(-1), np.float32(1))
    row_sign = odd_freq_sign[:, np.newaxis]
    col_sign = odd_freq_sign[np.newaxis, :]
    variants = {
        "original": c,
        "rotate90": (c * col_sign).T,
        "rotate180": c * row_sign * col_sign,
        "rotate270": (c * row_sign).T,
        "flipx": c * row_sign,
        "flipy": c * col_sign,
        "flipplus1": c.T,
        "flipminus1": (c * row_sign * col_sign).T,
    }
    return {name: _to_hex(coeffs) for name, coeffs in variants.items()}


def _rgb_array(image: Image.Image) -> npt.NDArray[np.uint8]:
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _dct_coefficients(rgb: npt.NDArray[np.uint8]) -> tuple[Float32Array, int]:
    """The 16x16 DCT block (row i, column j = vertical frequency i+1, horizontal j+1) and quality."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {rgb.dtype}")
    num_rows, num_cols = rgb.shape[:2]
    if num_rows < _MIN_HASHABLE_DIM or num_cols < _MIN_HASHABLE_DIM:
        return np.zeros((_DCT_SIZE, _DCT_SIZE), dtype=np.float32), 0

    block = _downsample(_luma(rgb))
    return _dct_16x16(block), _quality(block)


def _luma(rgb: npt.NDArray[np.uint8]) -> Float32Array:
    """Luminance as float32, computed in double precision and rounded once, as the pdqhash binding does.

    Done in bands of rows so a large image never needs full-size double-precision temporaries.
    """
    num_rows, num_cols = rgb.shape[:2]
    r, g, b = _LUMA_COEFFS
    luma = np.empty((num_rows, num_cols), dtype=np.float32)
    band = max(1, _LUMA_BAND_PIXELS // num_cols)
    for top in range(0, num_rows, band):
        px = rgb[top : top + band]
        luma[top : top + band] = px[..., 0] * r + px[..., 1] * g + px[..., 2] * b
    return luma


def _downsample(luma: Float32Array) -> Float32Array:
    """Blur with the Jarosz tent filter, then sample 64x64 pixel centres (reference: decimateFloat)."""
    num_rows, num_cols = luma.shape
    if (num_rows, num_cols) == (_DOWNSAMPLE_SIZE, _DOWNSAMPLE_SIZE):
        return luma  # the reference takes a 64x64 input as is, unblurred
    # Box widths as computeJaroszFilterWindowSize: ceil(dim / (2 * 64)).
    row_window = _box_window(num_cols)  # for blurring along each row
    col_window = _box_window(num_rows)  # for blurring down each column
    # The filter runs along axis 0 of a contiguous array, so rows are handled as the transpose. Two
    # buffers take turns; each pass reads one and writes the other.
    a = luma.ravel()
    b = np.empty_like(a)
    for _ in range(_JAROSZ_PASSES):
        b.reshape(num_cols, num_rows)[...] = a.reshape(num_rows, num_cols).T
        _box_filter(b.reshape(num_cols, num_rows), a.reshape(num_cols, num_rows), row_window)
        b.reshape(num_rows, num_cols)[...] = a.reshape(num_cols, num_rows).T
        _box_filter(b.reshape(num_rows, num_cols), a.reshape(num_rows, num_cols), col_window)
    blurred = a.reshape(num_rows, num_cols)
    return blurred[np.ix_(_sample_positions(num_rows), _sample_positions(num_cols))]


def _box_window(length: int) -> int:
    return (length + 2 * _DOWNSAMPLE_SIZE - 1) // (2 * _DOWNSAMPLE_SIZE)


def _sample_positions(length: int) -> npt.NDArray[np.intp]:
    """decimateFloat samples pixel centres: floor((s + 0.5) * length / 64) for s in 0..63."""
    return ((np.arange(_DOWNSAMPLE_SIZE) + 0.5) * length / _DOWNSAMPLE_SIZE).astype(np.intp)


def _box_filter(src: Float32Array, dst: Float32Array, window: int) -> None:
    """Moving average along axis 0 with the reference's edges and float32 arithmetic (box1DFloat).

    Output k averages src[k - (window - half) .. k + half - 1], clipped to the array, where
    half = (window + 2) // 2. Like the reference we keep a running float32 sum, adding the entering
    element before dropping the leaving one, and divide by the number of elements inside; doing it
    in the same order gives bit-identical results. Vectorised across axis 1.
    """
    length = src.shape[0]
    half = (window + 2) // 2
    behind = window - half  # elements averaged before the output position
    ahead = half - 1  # elements averaged after it
    total = np.zeros(src.shape[1:], dtype=np.float32)
    count = 0
    for k in range(min(ahead, length)):
        np.add(total, src[k], out=total)
        count += 1
    for k in range(length):
        entering, leaving = k + ahead, k - behind - 1
        if entering < length:
            np.add(total, src[entering], out=total)
            count += 1
        if leaving >= 0:
            np.subtract(total, src[leaving], out=total)
            count -= 1
        np.divide(total, np.float32(count), out=dst[k])


def _quality(block: Float32Array) -> int:
    """pdqImageDomainQualityMetric: quantised absolute gradients, summed, scaled, clamped."""
    # Each neighbour difference is scaled to percent of full range in float32 and truncated toward
    # zero before summing, in the reference's order of operations.
    down = np.trunc((block[:-1, :] - block[1:, :]) * np.float32(100) / np.float32(255))
    across = np.trunc((block[:, :-1] - block[:, 1:]) * np.float32(100) / np.float32(255))
    gradient_sum = int(np.abs(down).sum(dtype=np.int64)) + int(np.abs(across).sum(dtype=np.int64))
    return min(gradient_sum // _QUALITY_DIVISOR, _MAX_QUALITY)


@lru_cache(maxsize=1)
def _dct_matrix() -> Float32Array:
    """The reference's 16x64 DCT-II matrix in float32: rows are frequencies 1..16 (DC is skipped)."""
    n = _DOWNSAMPLE_SIZE
    scale = np.float64(np.float32(np.sqrt(2.0 / n)))  # the reference keeps the scale as a float
    freq = np.arange(1, _DCT_SIZE + 1)[:, np.newaxis]
    pos = np.arange(n)[np.newaxis, :]
    matrix: Float32Array = (scale * np.cos(np.pi / 2.0 / n * freq * (2 * pos + 1))).astype(np.float32)
    matrix.flags.writeable = False
    return matrix


def _dct_16x16(block: Float32Array) -> Float32Array:
    """D @ block @ D.T as the reference computes it (dct64To16): float32 sums taken in order.

    A BLAS product would sum in another order and round differently. That matters on flat or
    perfectly smooth images, where many coefficients sit within rounding distance of the median.
    """
    d = _dct_matrix()
    partial = np.zeros((_DCT_SIZE, _DOWNSAMPLE_SIZE), dtype=np.float32)
    for k in range(_DOWNSAMPLE_SIZE):
        partial += d[:, k, np.newaxis] * block[np.newaxis, k, :]
    out = np.zeros((_DCT_SIZE, _DCT_SIZE), dtype=np.float32)
    for k in range(_DOWNSAMPLE_SIZE):
        out += partial[:, k, np.newaxis] * d[np.newaxis, :, k]
    return out


def _to_hex(coefficients: Float32Array) -> str:
    """Threshold at the median and format the bits as Hash256::format() does."""
    flat = coefficients.ravel()
    # The reference's median (Torben's method) is the lower of the two middle values.
    middle = flat.size // 2 - 1
    median = np.partition(flat, middle)[middle]
    bits = flat > median
    # Bit k (k = 16 * row + column) is worth 2**k; write the number most significant byte first.
    return np.packbits(bits[::-1]).tobytes().hex()
