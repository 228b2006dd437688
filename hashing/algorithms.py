"""The hash algorithms Takedown computes, how to compare their values, and hashing an upload.

Each algorithm knows its width and how two values compare (Hamming distance for perceptual hashes,
equality for cryptographic ones), so matching code never special-cases an algorithm by name.
All values are lowercase hex strings.

:func:`hash_bytes` computes what the pipeline stores (PDQ with its quality, pHash, dHash, MD5, SHA-256)
from one reduced-scale decode (see ``hashing.decode.open_for_hashing``); :func:`hash_image` computes any
perceptual algorithm, aHash and wHash included, of a decoded image.
"""

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import imagehash
import numpy as np
import numpy.typing as npt
import scipy.fftpack
from PIL import Image

from hashing.decode import MAX_BYTES, open_for_hashing
from hashing.errors import MediaTooLarge, UnreadableMedia
from hashing.pdq import pdq_hash, pdq_hash_array, pdq_hash_scaled

__all__ = [
    "ALGORITHMS",
    "HashAlgorithm",
    "ImageHashes",
    "get_algorithm",
    "hamming_hex",
    "hash_bytes",
    "hash_file",
    "hash_image",
]

_HEX = re.compile(r"[0-9a-fA-F]+")
# ImageHash's defaults: 8x8 = 64 bits; pHash takes them from a 32x32 (8 x highfreq_factor 4) DCT.
_PERCEPTUAL_SIDE = 8
_PHASH_SIZE = 32
# Pillow's resize first shrinks by a whole factor with a box filter while the image stays at least this
# many times the target size, then applies Lanczos: a few times faster on large images, and pHash and
# dHash stay within a bit or two of a plain Lanczos resize (tests/hashing/test_algorithms.py).
_REDUCING_GAP = 3.0
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class HashAlgorithm:
    """One hash algorithm: its name, width in bits, and how its values are compared."""

    name: str
    bits: int
    perceptual: bool  # compared by Hamming distance; otherwise only equal values match
    default_threshold: int  # values match when distance(a, b) <= default_threshold

    @property
    def hex_length(self) -> int:
        return self.bits // 4

    def distance(self, a: str, b: str) -> int:
        """Hamming distance for perceptual hashes; for exact hashes 0 when equal, else ``bits``.

        Raises ValueError when either value is not hex of this algorithm's length.
        """
        for value in (a, b):
            if len(value) != self.hex_length or not _HEX.fullmatch(value):
                raise ValueError(f"a {self.name} hash is {self.hex_length} hex characters; got {value[:80]!r}")
        if self.perceptual:
            return hamming_hex(a, b)
        return 0 if a.lower() == b.lower() else self.bits


ALGORITHMS: dict[str, HashAlgorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        # 31 of 256 bits: Meta's recommended PDQ match distance (PDQ_CONFIDENT_MATCH_THRESHOLD in
        # python-threatexchange, used by HMA; "distance <= 31 is a match").
        HashAlgorithm("pdq", bits=256, perceptual=True, default_threshold=31),
        # 10 of 64 bits for pHash and dHash: the customary ImageHash cut-off (near-duplicates sit at
        # 0-6, unrelated images around 32). A starting point, to be tuned on real traffic.
        HashAlgorithm("phash", bits=64, perceptual=True, default_threshold=10),
        HashAlgorithm("dhash", bits=64, perceptual=True, default_threshold=10),
        # aHash (mean) and wHash (Haar wavelet) from ImageHash, on the same 64-bit scale and cut-off.
        # Offered for partners' banks that use them; the pipeline does not store them.
        HashAlgorithm("ahash", bits=64, perceptual=True, default_threshold=10),
        HashAlgorithm("whash", bits=64, perceptual=True, default_threshold=10),
        # Cryptographic digests of the exact bytes: only identical files match.
        HashAlgorithm("md5", bits=128, perceptual=False, default_threshold=0),
        HashAlgorithm("sha256", bits=256, perceptual=False, default_threshold=0),
    )
}


def get_algorithm(name: str) -> HashAlgorithm:
    """The algorithm called ``name``; ValueError naming the known ones if there is none."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        known = ", ".join(ALGORITHMS)
        raise ValueError(f"unknown hash algorithm {name!r}; known: {known}") from None


def hamming_hex(a: str, b: str) -> int:
    """The number of bits that differ between two hex strings of the same length."""
    if len(a) != len(b):
        raise ValueError(f"cannot compare hashes of different lengths ({len(a)} and {len(b)} hex characters)")
    # int(x, 16) alone would also accept "0x", "_" and whitespace.
    for value in (a, b):
        if not _HEX.fullmatch(value):
            raise ValueError(f"not a hex string: {value[:80]!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class ImageHashes:
    """Every hash Takedown keeps for one image."""

    pdq: str
    pdq_quality: int
    phash: str
    dhash: str
    md5: str
    sha256: str

    def as_dict(self) -> dict[str, str | int]:
        return {
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            "phash": self.phash,
            "dhash": self.dhash,
            "md5": self.md5,
            "sha256": self.sha256,
        }

    def values(self) -> list[tuple[str, str]]:
        """``(algorithm name, hex value)`` for each hash; the PDQ quality is not a hash."""
        return [
            ("pdq", self.pdq),
            ("phash", self.phash),
            ("dhash", self.dhash),
            ("md5", self.md5),
            ("sha256", self.sha256),
        ]


def hash_image(
    image: Image.Image, names: Iterable[str] = ("pdq", "phash", "dhash", "ahash", "whash")
) -> dict[str, str]:
    """The named perceptual hashes of a decoded image, as hex. ValueError for an unknown or exact algorithm."""
    out = {}
    for name in names:
        algorithm = get_algorithm(name)
        if not algorithm.perceptual:
            raise ValueError(f"{name} hashes the file's bytes, not the image; use hash_bytes or hash_file")
        out[name] = _IMAGE_HASHERS[name](image)
    return out


_IMAGE_HASHERS: dict[str, Callable[[Image.Image], str]] = {
    "pdq": lambda image: pdq_hash(image)[0],
    "phash": lambda image: str(imagehash.phash(image)),
    "dhash": lambda image: str(imagehash.dhash(image)),
    "ahash": lambda image: str(imagehash.average_hash(image)),
    "whash": lambda image: str(imagehash.whash(image)),
}


def hash_bytes(data: bytes) -> ImageHashes:
    """All hashes of an uploaded image. Raises the typed errors of ``hashing.errors``."""
    return _image_hashes(
        data,
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def hash_file(path: str | os.PathLike[str]) -> ImageHashes:
    """Like :func:`hash_bytes`, reading the file at ``path``.

    Files over the byte limit are refused without reading them all. A file that cannot be read
    raises :class:`UnreadableMedia`, whose message leaves out the path (it may be shown to uploaders).
    """
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    buffer = io.BytesIO()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_READ_CHUNK):
                if buffer.tell() + len(chunk) > MAX_BYTES:
                    raise MediaTooLarge(
                        f"The file is larger than the {MAX_BYTES // (1024 * 1024)} MB limit. "
                        "Please upload a smaller or more compressed version of the image."
                    )
                md5.update(chunk)
                sha256.update(chunk)
                buffer.write(chunk)
    except OSError as exc:
        raise UnreadableMedia(
            "The stored file could not be read. Please try again later; if it keeps happening, "
            "tell the site's administrators."
        ) from exc
    return _image_hashes(buffer.getvalue(), md5=md5.hexdigest(), sha256=sha256.hexdigest())


def _image_hashes(data: bytes, *, md5: str, sha256: str) -> ImageHashes:
    decoded = open_for_hashing(data)
    pixels = np.asarray(decoded.image)
    if pixels.ndim == 3 and decoded.full_size == decoded.image.size:
        pdq, quality = pdq_hash_array(pixels)
    else:
        pdq, quality = pdq_hash_scaled(pixels, full_size=decoded.full_size)
    grey = decoded.image if decoded.image.mode == "L" else decoded.image.convert("L")
    return ImageHashes(pdq=pdq, pdq_quality=quality, phash=_phash(grey), dhash=_dhash(grey), md5=md5, sha256=sha256)


def _phash(grey: Image.Image) -> str:
    """ImageHash's ``phash`` (32x32 Lanczos, 2-D DCT, low 8x8 above their median), on a greyscale image."""
    small = grey.resize((_PHASH_SIZE, _PHASH_SIZE), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(np.asarray(small, dtype=np.float64), axis=0), axis=1)
    low = dct[:_PERCEPTUAL_SIDE, :_PERCEPTUAL_SIDE]
    return _bits_to_hex(low > np.median(low))


def _dhash(grey: Image.Image) -> str:
    """ImageHash's ``dhash`` (9x8 Lanczos, each pixel brighter than its left neighbour), on a greyscale image."""
    small = grey.resize((_PERCEPTUAL_SIDE + 1, _PERCEPTUAL_SIDE), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    pixels = np.asarray(small)
    return _bits_to_hex(pixels[:, 1:] > pixels[:, :-1])


def _bits_to_hex(bits: npt.NDArray[np.bool_]) -> str:
    """Row-major bits, first bit most significant, as ImageHash writes them."""
    return np.packbits(bits.ravel()).tobytes().hex()
