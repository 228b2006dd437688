"""Short generated videos for the video tests: drifting coloured discs over a gradient, made with PyAV.

Nothing here depicts anyone. Scenes change every 3 seconds (like cuts in real footage) and move
slowly within a scene, so frames a fraction of a second apart look alike, as in real video.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np

FPS = 15
# libvpx's default is its slowest, best mode (and its threads spin on a busy machine); the tests need
# speed, not quality.
_FAST = {
    "libvpx": {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0", "threads": "1"},
    "libx264": {"preset": "ultrafast", "threads": "1"},
}


def scene_frame(t: float, seed: int, width: int, height: int) -> np.ndarray:
    """The picture at time ``t`` (seconds) of video ``seed``, as H x W x 3 uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    scene = int(t // 3)
    base = rng.uniform(20, 200, (8, 3))[scene % 8]
    image = np.empty((height, width, 3), np.float32)
    image[...] = base
    image += (x / width * 60)[..., np.newaxis]  # a gentle horizontal gradient
    discs = np.random.default_rng([seed, scene])
    for _ in range(7):
        cx, cy = discs.uniform(0, 1, 2)
        vx, vy = discs.uniform(-0.02, 0.02, 2)  # at most 2% of the frame a second
        r = discs.uniform(0.06, 0.18)
        colour = discs.uniform(0, 255, 3)
        px, py = (cx + vx * t) * width, (cy + vy * t) * height
        inside = (x - px) ** 2 + (y - py) ** 2 < (r * width) ** 2
        image[inside] = colour
    return np.clip(image, 0, 255).astype(np.uint8)


def make_video(seconds: float = 12, *, seed: int = 0, width: int = 160, height: int = 96, fmt: str = "mp4",
               codec: str = "libx264", fps: int = FPS, blank_from: float | None = None) -> bytes:
    """Encode ``seconds`` of video ``seed``; from ``blank_from`` seconds on, every frame is plain grey."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps, options=_FAST.get(codec, {}))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            t = i / fps
            if blank_from is not None and t >= blank_from:
                pixels = np.full((height, width, 3), 128, np.uint8)
            else:
                pixels = scene_frame(t, seed, width, height)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def cut_clip(data: bytes, start: float, end: float, *, width: int, height: int, fmt: str = "webm",
             codec: str = "libvpx", fps: int = FPS) -> bytes:
    """Decode ``data``, keep the frames from ``start`` to ``end`` seconds, resize and re-encode them."""
    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps, options=_FAST.get(codec, {}))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        n = 0
        for frame in source.decode(video=0):
            if frame.time is not None and start <= frame.time < end:
                out = frame.reformat(width=width, height=height, format="yuv420p")
                out.pts, out.time_base = n, Fraction(1, fps)
                n += 1
                container.mux(stream.encode(out))
        container.mux(stream.encode())
    return buffer.getvalue()
