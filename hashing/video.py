"""Video hashing in the vPDQ manner, and the rule that says when two videos match.

vPDQ (facebook/ThreatExchange, ``vpdq/README.md``) hashes a video as the PDQ hashes of frames taken
at a fixed interval, each with its quality and timestamp, and compares two videos by the share of
frames they have in common. It matches clips cut from a longer video, which a whole-file hash or a
fixed-length video hash cannot.

Here: the file's MD5 and SHA-256 (exact copies), plus about one frame per second decoded with PyAV
(FFmpeg) and hashed with :func:`hashing.pdq.pdq_hash_array`. Frames whose PDQ quality is under 50
(blank, flat or fading frames, whose hashes all look alike) are kept in the hash but left out of
matching, as is every repeat of an identical frame hash.

Everything that can go wrong with an upload becomes one of the errors in ``hashing.errors`` with a
message the uploader can act on. Decoding is bounded in bytes, frame size, duration and the number
of frames decoded (every frame counts, sampled or not), so a hostile file costs bounded time and
memory. Only a short list of containers and codecs is accepted, so FFmpeg never probes untrusted
bytes with a rarely used demuxer. No Django here.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from hashing.errors import CorruptMedia, EmptyMedia, MediaTooLarge, UnsupportedMedia, VideoTooLong
from hashing.pdq import pdq_hash_array

logger = logging.getLogger(__name__)

__all__ = [
    "FRAME_MATCH_RADIUS",
    "MIN_FRAME_QUALITY",
    "MIN_MATCHED_FRAMES",
    "QUERY_MATCH_SHARE",
    "SAMPLE_INTERVAL_S",
    "STORED_MATCH_SHARE",
    "VIDEO_MIMES",
    "FrameHash",
    "VideoComparison",
    "VideoHashes",
    "VideoInfo",
    "VideoLimits",
    "compare_frames",
    "compare_to_many",
    "hash_video_bytes",
    "looks_like_video",
    "probe_video",
    "usable_pdqs",
]

# --- Sampling and the match rule -------------------------------------------------------------------

# One frame per second: vPDQ's default (``seconds_per_hash=1``). Finer sampling adds little (frames a
# second apart are already near-duplicates) and costs a hash and a stored row per frame.
SAMPLE_INTERVAL_S: float = 1.0
# Frames under PDQ quality 50 are not matched: ThreatExchange's VPDQ_QUALITY_THRESHOLD (and PDQ's own
# advice to distrust hashes under 50). Blank, flat or fading frames score near 0 and would otherwise
# match every other blank frame.
MIN_FRAME_QUALITY: int = 50
# Two frames match within 31 bits of 256: the PDQ match distance Meta recommends, and
# ThreatExchange's VPDQ_DISTANCE_THRESHOLD.
FRAME_MATCH_RADIUS: int = 31
# A video matches a stored one when at least 80% of its usable frames lie within the radius of some
# stored frame (ThreatExchange's VPDQ_QUERY_MATCH_THRESHOLD_PERCENT = 80): a clip cut from a known
# video matches however short a part of it the clip is, and a few re-encoded or overlaid frames do
# not stop the match.
QUERY_MATCH_SHARE: float = 0.8
# ... or when at least 80% of the stored video's usable frames lie within the radius of the query's:
# a known clip re-uploaded inside a longer video (a compilation). ThreatExchange's index share is 0%
# because its rule needs only the query share; this second direction is ours, and as strict.
STORED_MATCH_SHARE: float = 0.8
# Never fewer than 2 matching frames: one shared frame (a logo, a title card) is not evidence that
# two videos are the same.
MIN_MATCHED_FRAMES: int = 2

# --- Limits ------------------------------------------------------------------------------------------

# 200 MiB: a 10-minute 1080p phone video at a typical 2-3 Mbit/s is about 200 MB. Uploads are read
# into memory, so this bounds the memory one file takes (the intake's own upload limit is lower).
MAX_VIDEO_BYTES: int = 200 * 1024 * 1024
# One hour: far beyond the clips that are reported, and it bounds the signature at 3600 frames.
MAX_DURATION_S: float = 3600.0
# 216,000 frames decoded in all: one hour at 60 fps. Every frame is decoded (inter-coded video cannot
# skip them), so this bounds the decoding work; a file with a thousand tiny frames a second (a
# "frame bomb") is stopped here even when its header says nothing about its length.
MAX_DECODED_FRAMES: int = 216_000
# 4096 x 4096 (16.8 megapixels) per frame: above DCI 4K and UHD (3840 x 2160); far below the image
# limit, because a video decodes many frames. Also handed to FFmpeg as ``max_pixels``, so a stream
# that changes its size mid-way is refused by the decoder before it allocates the frame.
MAX_FRAME_PIXELS: int = 4096 * 4096
# Damaged packets tolerated before the file counts as corrupt. Real uploads sometimes carry a few
# (FFmpeg conceals them); a file that is damaged throughout is not worth hashing.
MAX_DAMAGED_PACKETS: int = 8
# A video whose frames stop more than this short of the length its header declares was cut off.
TRUNCATION_TOLERANCE_S: float = 2.0
# Frames are scaled down to at most 512 px on the long side before PDQ, as Meta's PDQ command-line
# tool does for speed; PDQ itself reduces to 64 x 64, so this moves a hash by only a few bits.
FRAME_HASH_MAX_SIDE: int = 512
# Comparisons take blocks of at most this many (query, stored) frame pairs at a time: 32 MB of XOR
# words, whatever the size of the bank.
_PAIRS_PER_BLOCK: int = 1_000_000

# Container (FFmpeg demuxer) -> accepted; the MIME type is decided from the file's header below.
VIDEO_MIMES: dict[str, str] = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/3gpp": "3gp",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
}
# Decoders FFmpeg may use (by codec name): the codecs phones, cameras, screen recorders and web
# sites write. Anything else is refused rather than handed to a rarely used decoder.
# FFmpeg names some decoders after the library behind them (libdav1d for AV1, libvpx for VP8/VP9).
_DECODERS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg1video", "mpeg2video", "mjpeg", "h263",
                       "libdav1d", "libaom-av1", "libvpx", "libvpx-vp9"})
# ISO base media brands that are still images (HEIF / AVIF), not video.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})
_SUPPORTED_NAMES = "MP4, MOV, 3GP, WebM, MKV or AVI"
# Without timestamps or a declared rate, frames are assumed 30 a second.
_FALLBACK_RATE = Fraction(30)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class VideoLimits:
    """Bounds on one video's decoding; the defaults are the module's constants."""

    max_bytes: int = MAX_VIDEO_BYTES
    max_duration_s: float = MAX_DURATION_S
    max_decoded_frames: int = MAX_DECODED_FRAMES
    max_frame_pixels: int = MAX_FRAME_PIXELS


DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoInfo:
    """What the header (and the first frame) says: MIME type, frame size, declared length and codec."""

    mime: str
    width: int
    height: int
    duration_s: float | None
    codec: str


@dataclass(frozen=True)
class FrameHash:
    """One sampled frame: its number in the sample, time from the start (s), PDQ hash and quality."""

    index: int
    timestamp: float
    pdq: str
    quality: int


@dataclass(frozen=True)
class VideoHashes:
    """Every hash Takedown keeps for one video."""

    md5: str
    sha256: str
    info: VideoInfo
    frames: tuple[FrameHash, ...]
    decoded_frames: int  # every frame decoded, sampled or not

    def values(self) -> list[tuple[str, str]]:
        """The exact hashes as ``(algorithm, hex value)``, for ``hashing.matching.match_hashes``."""
        return [("md5", self.md5), ("sha256", self.sha256)]

    def usable(self) -> list[FrameHash]:
        """The frames that take part in matching: quality >= MIN_FRAME_QUALITY, first of each hash."""
        seen: set[str] = set()
        kept = []
        for frame in self.frames:
            if frame.quality >= MIN_FRAME_QUALITY and frame.pdq not in seen:
                seen.add(frame.pdq)
                kept.append(frame)
        return kept


def usable_pdqs(frames: Sequence[tuple[str, int]]) -> list[str]:
    """The PDQ hashes of ``(pdq, quality)`` frames that take part in matching, in order, without repeats."""
    return list(dict.fromkeys(pdq.lower() for pdq, quality in frames if quality >= MIN_FRAME_QUALITY))


# --- Recognising and probing ------------------------------------------------------------------------


def looks_like_video(data: bytes) -> bool:
    """True when the first bytes are those of a container we read (MP4/MOV/3GP, WebM/MKV, AVI)."""
    return _sniff(data) is not None


def probe_video(data: bytes, *, limits: VideoLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Check container, codec, frame size and declared length, and decode the first frame.

    Cheap enough for every upload before it is queued (one frame is decoded, so a file whose header
    opens but whose pictures cannot be decoded is refused now). Damage later in the file is found
    only by :func:`hash_video_bytes`.
    """
    with _Opened(data, limits) as video:
        for _frame in video.frames():
            break
        else:
            raise CorruptMedia("The video has no pictures we can decode. Please upload the original file again.")
        return video.info


def hash_video_bytes(data: bytes, *, limits: VideoLimits = DEFAULT_LIMITS,
                     interval_s: float = SAMPLE_INTERVAL_S) -> VideoHashes:
    """MD5, SHA-256 and the PDQ hash of one frame every ``interval_s`` seconds.

    The first frame at or after each sampling time is taken (timestamps from the start of the
    video). Raises the typed errors of ``hashing.errors``; a video cut off before the length its
    header declares raises :class:`CorruptMedia`.
    """
    frames: list[FrameHash] = []
    with _Opened(data, limits) as video:
        next_sample = 0.0
        last_time = 0.0
        for timestamp, frame in video.frames():
            last_time = max(last_time, timestamp)
            if timestamp + 1e-6 < next_sample:
                continue
            pdq, quality = pdq_hash_array(_rgb(frame))
            frames.append(FrameHash(index=len(frames), timestamp=round(timestamp, 3), pdq=pdq, quality=quality))
            # The next sample is the next multiple of the interval after this frame.
            next_sample = (math.floor(timestamp / interval_s + 1e-9) + 1) * interval_s
        if not frames:
            raise CorruptMedia("The video has no pictures we can decode. Please upload the original file again.")
        declared = video.info.duration_s
        if declared is not None and last_time + video.frame_step + TRUNCATION_TOLERANCE_S < declared:
            raise CorruptMedia(
                f"The video stops after {last_time:.0f} s although it says it is {declared:.0f} s long: it was "
                "probably cut off during upload or download. Please upload the complete file."
            )
        return VideoHashes(
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            sha256=hashlib.sha256(data).hexdigest(),
            info=video.info,
            frames=tuple(frames),
            decoded_frames=video.decoded,
        )


class _Opened:
    """An open container with its video stream checked against the limits; iterate ``frames()``."""

    def __init__(self, data: bytes, limits: VideoLimits):
        if len(data) == 0:
            raise EmptyMedia("The file is empty (0 bytes). Please choose the video again and re-upload it.")
        if len(data) > limits.max_bytes:
            raise MediaTooLarge(
                f"The video is {_megabytes(len(data))}; the limit is {_megabytes(limits.max_bytes)}. "
                "Please upload a shorter or more compressed version."
            )
        sniffed = _sniff(data)
        if sniffed is None:
            raise UnsupportedMedia(f"This file is not a video we can read. Please upload an {_SUPPORTED_NAMES} video.")
        demuxer, mime = sniffed
        self.limits = limits
        self.decoded = 0
        try:
            # Only the sniffed demuxer reads the bytes; broken text metadata must not stop the hash.
            self.container = av.open(io.BytesIO(data), mode="r", format=demuxer, metadata_errors="ignore")
        except MemoryError:
            raise
        except Exception as exc:  # FFmpegError mostly; whatever a damaged header makes PyAV raise
            if not isinstance(exc, av.FFmpegError):
                logger.warning("Unexpected error while opening a video; reporting it as corrupt", exc_info=exc)
            raise _corrupt() from exc
        try:
            self._check(mime)
        except BaseException:
            self.container.close()
            raise

    def _check(self, mime: str) -> None:
        if not self.container.streams.video:
            raise UnsupportedMedia("The file has no video picture (it may be sound only). Please upload the video.")
        stream = self.container.streams.video[0]
        context = stream.codec_context
        # PyAV gives no codec context when this FFmpeg build has no decoder for the stream's codec.
        codec = context.codec.name if context is not None and context.codec is not None else ""
        if codec not in _DECODERS:
            raise UnsupportedMedia(
                f"The video is encoded with a codec we do not read ({codec or 'unknown'}). Please convert it to "
                "H.264 MP4 (most phones and editors can export that) and upload it again."
            )
        width, height = context.width, context.height
        if width * height > self.limits.max_frame_pixels:
            raise MediaTooLarge(
                f"The video's frames are {width} x {height} pixels; the limit is "
                f"{self.limits.max_frame_pixels / 1e6:.1f} megapixels. Please upload a smaller version."
            )
        if width <= 0 or height <= 0:
            raise CorruptMedia("The video's header gives no frame size. Please upload the original file again.")
        # FFmpeg refuses larger frames itself, so a stream that grows mid-way is stopped before allocating.
        context.options = {"max_pixels": str(self.limits.max_frame_pixels)}
        self.stream = stream
        rate = stream.average_rate or stream.guessed_rate or _FALLBACK_RATE
        self.rate = Fraction(rate) if rate > 0 else _FALLBACK_RATE
        self.frame_step = float(1 / self.rate)
        duration = _declared_duration(self.container, stream)
        if duration is not None and duration > self.limits.max_duration_s:
            raise _too_long(duration, self.limits)
        declared_frames = stream.frames or 0
        if declared_frames > self.limits.max_decoded_frames:
            raise _too_many_frames(self.limits)
        self.info = VideoInfo(mime=mime, width=width, height=height, duration_s=duration, codec=codec)

    def frames(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """``(seconds from the first frame, frame)`` for every frame, within the limits."""
        damaged = 0
        start: float | None = None
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, ValueError) as exc:
                raise _corrupt() from exc
            try:
                decoded = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                if "max_pixels" in str(exc) or isinstance(exc, av.error.ArgumentError):
                    raise MediaTooLarge("The video's frames are larger than we can process. "
                                        "Please upload a smaller version.") from exc
                damaged += 1
                if damaged > MAX_DAMAGED_PACKETS:
                    raise _corrupt() from exc
                continue
            for frame in decoded:
                self.decoded += 1
                if self.decoded > self.limits.max_decoded_frames:
                    raise _too_many_frames(self.limits)
                if frame.width * frame.height > self.limits.max_frame_pixels:
                    raise MediaTooLarge("The video's frames are larger than we can process. "
                                        "Please upload a smaller version.")
                seconds = float(frame.time) if frame.time is not None else (self.decoded - 1) * self.frame_step
                if start is None:
                    start = seconds
                elapsed = seconds - start
                if elapsed > self.limits.max_duration_s:
                    raise _too_long(elapsed, self.limits)
                yield elapsed, frame

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.close()


def _sniff(data: bytes) -> tuple[str, str] | None:
    """``(FFmpeg demuxer, MIME type)`` from the first bytes, or None when it is not a video we read."""
    head = data[:64]
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand.lower() in _IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return "mov", "video/quicktime"
        if brand.startswith(b"3g"):
            return "mov", "video/3gpp"
        return "mov", "video/mp4"
    if box in (b"moov", b"mdat", b"wide"):  # QuickTime files written before the ftyp box existed
        return "mov", "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or WebM, told apart by the DocType
        return "matroska", "video/webm" if b"webm" in head else "video/x-matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi", "video/x-msvideo"
    return None


def _declared_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """The video stream's length from the header; the container's when the video is its only stream."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0 and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _rgb(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The frame as H x W x 3 RGB, scaled down to at most FRAME_HASH_MAX_SIDE on the long side."""
    width, height = frame.width, frame.height
    scale = min(1.0, FRAME_HASH_MAX_SIDE / max(width, height))
    if scale < 1.0:
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        frame = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


# --- The match rule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoComparison:
    """How much of a query video and a stored one lie within FRAME_MATCH_RADIUS of each other."""

    query_frames: int  # usable frames of the query
    stored_frames: int  # usable frames of the stored video
    query_matched: int  # query frames within the radius of some stored frame
    stored_matched: int  # stored frames within the radius of some query frame
    median_distance: int | None  # over the matched query frames, of the distance to the nearest stored frame
    radius: int = FRAME_MATCH_RADIUS

    @property
    def query_share(self) -> float:
        return self.query_matched / self.query_frames if self.query_frames else 0.0

    @property
    def stored_share(self) -> float:
        return self.stored_matched / self.stored_frames if self.stored_frames else 0.0

    @property
    def is_match(self) -> bool:
        """The rule: enough frames in common, as a share of the query's frames or of the stored video's."""
        if self.query_matched < MIN_MATCHED_FRAMES or self.stored_matched < MIN_MATCHED_FRAMES:
            return False
        return self.query_share >= QUERY_MATCH_SHARE or self.stored_share >= STORED_MATCH_SHARE


def compare_frames(query: Sequence[str], stored: Sequence[str], *,
                   radius: int = FRAME_MATCH_RADIUS) -> VideoComparison:
    """Compare two videos' usable PDQ frame hashes (see :func:`usable_pdqs`) by the vPDQ rule."""
    return compare_to_many(query, [stored], radius=radius)[0]


def compare_to_many(query: Sequence[str], candidates: Sequence[Sequence[str]], *,
                    radius: int = FRAME_MATCH_RADIUS) -> list[VideoComparison]:
    """:func:`compare_frames` of one query against each candidate, in one vectorised pass."""
    q = _bits(query)
    sizes = [len(c) for c in candidates]
    s = _bits([h for c in candidates for h in c])
    owner = np.repeat(np.arange(len(candidates)), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp) if candidates else np.zeros(0, np.intp)
    # nearest[i, g]: distance from query frame i to the nearest frame of candidate g.
    nearest = np.full((len(q), len(candidates)), 257, dtype=np.int32)
    stored_hit = np.zeros(len(s), dtype=bool)
    if len(q) and len(s):
        rows = max(1, _PAIRS_PER_BLOCK // len(s))
        nonempty = np.array(sizes) > 0
        for first in range(0, len(q), rows):
            block = _distances(q[first:first + rows], s)
            stored_hit |= (block <= radius).any(axis=0)
            nearest[first:first + rows, nonempty] = np.minimum.reduceat(block, starts[nonempty], axis=1)
    results = []
    for g, size in enumerate(sizes):
        within = nearest[:, g] <= radius
        hits = int(stored_hit[owner == g].sum()) if size else 0
        distances = nearest[within, g]
        results.append(VideoComparison(
            query_frames=len(q), stored_frames=size, query_matched=int(within.sum()), stored_matched=hits,
            median_distance=int(np.median(distances)) if distances.size else None, radius=radius,
        ))
    return results


def _bits(hashes: Sequence[str]) -> npt.NDArray[np.uint8]:
    """N x 32 bytes from 64-hex PDQ hashes; ValueError for anything else."""
    try:
        rows = [bytes.fromhex(h) for h in hashes]
    except ValueError as exc:
        raise ValueError("PDQ frame hashes are 64 hex characters") from exc
    if any(len(r) != 32 for r in rows):
        raise ValueError("PDQ frame hashes are 64 hex characters")
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 32)


def _distances(q: npt.NDArray[np.uint8], s: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """Hamming distances, len(q) x len(s)."""
    xor = q[:, np.newaxis, :] ^ s[np.newaxis, :, :]
    return _POPCOUNT[xor].sum(axis=2, dtype=np.int32)


# --- Messages -----------------------------------------------------------------------------------


def _too_long(seconds: float, limits: VideoLimits) -> VideoTooLong:
    return VideoTooLong(
        f"The video is {seconds / 60:.0f} minutes long; the limit is {limits.max_duration_s / 60:.0f} minutes. "
        "Please upload the part that matters (a shorter clip)."
    )


def _too_many_frames(limits: VideoLimits) -> VideoTooLong:
    return VideoTooLong(
        f"The video has more than {limits.max_decoded_frames:,} frames, more than we process. Please upload a "
        "shorter clip, or one at an ordinary frame rate (24-60 frames a second)."
    )


def _corrupt() -> CorruptMedia:
    return CorruptMedia(
        "The video file is damaged or incomplete (it may have been cut off during upload or download). "
        "Please upload the original file again."
    )


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"

