"""Faces in the image: where a face swap could be, and whether the image is about a person at all.

Uses OpenCV's Haar cascade for frontal faces, whose weights ship inside opencv-python-headless
(``cv2.data.haarcascades``); nothing is downloaded. The signal carries no evidence of synthesis
(weight 0, value 0.5): it tells a moderator how many faces there are and where, which matters for
face swaps, and the boxes are stored with the score.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from detection.signals.base import NEUTRAL, Signal, open_untrusted

NAME = "faces"
WEIGHT = 0.0  # relevance, not evidence: never moves the score

# Detection runs on a copy whose longer side is at most this many pixels: faces that matter for a
# swap are not tiny (at least MIN_FACE / DETECT_SIDE = 1/9 of the longer side), and a 1024 x 768 photo
# then takes about 10-20 ms on one core (benchmarks/bench_detect.py; 320 px and two cascades took 4x).
DETECT_SIDE = 224
MIN_FACE = 24  # pixels, at the detection size; the cascades were trained on 20-24 px windows
SCALE_FACTOR = 1.2
MIN_NEIGHBOURS = 5  # OpenCV's documented range is 3-6; 5 kept the 40 non-people photos free of false boxes
MAX_BOXES = 20

# Frontal faces only: a profile cascade doubled the time and a face swap needs a frontal-ish face.
# alt2 found more of the shared set's people photos than the default cascade at the same speed.
CASCADES = ("haarcascade_frontalface_alt2.xml",)


@functools.cache
def _classifiers() -> tuple[Any, ...]:
    base = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
    loaded = []
    for name in CASCADES:
        classifier = cv2.CascadeClassifier(str(base / name))
        if classifier.empty():
            raise RuntimeError(f"OpenCV's cascade {name} is missing from {base}; reinstall opencv-python-headless.")
        loaded.append(classifier)
    return tuple(loaded)


def detect_faces(image: Image.Image) -> list[dict[str, Any]]:
    """Face boxes in the image's own pixel coordinates: [{"x", "y", "width", "height", "view"}]."""
    width, height = image.size
    scale = min(1.0, DETECT_SIDE / max(width, height))
    small = image.convert("L")
    if scale < 1.0:
        small = small.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    gray = cv2.equalizeHist(np.asarray(small))
    boxes: list[dict[str, Any]] = []
    for classifier, view in zip(_classifiers(), ("frontal", "profile")[: len(CASCADES)], strict=True):
        found = classifier.detectMultiScale(
            gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBOURS, minSize=(MIN_FACE, MIN_FACE)
        )
        for x, y, w, h in found[:MAX_BOXES] if len(found) else []:
            box = {
                "x": int(x / scale),
                "y": int(y / scale),
                "width": int(w / scale),
                "height": int(h / scale),
                "view": view,
            }
            if not any(_overlaps(box, other) for other in boxes):
                boxes.append(box)
    return boxes[:MAX_BOXES]


def faces_signal(data: bytes, image: Image.Image | None = None) -> Signal:
    """Count and locate faces. Never raises on odd input."""
    try:
        opened_here = image is None
        if image is None:
            image = open_untrusted(data)
        try:
            boxes = detect_faces(image)
        finally:
            if opened_here:
                image.close()
    except Exception as exc:  # Pillow / OpenCV on hostile input
        return Signal(
            NAME,
            NEUTRAL,
            WEIGHT,
            {"summary": f"Faces could not be looked for ({type(exc).__name__})", "count": 0, "boxes": []},
        )
    if not boxes:
        summary = "No face found (a face swap needs a face; small, turned or covered faces can be missed)"
    else:
        summary = (
            f"{len(boxes)} face{'s' if len(boxes) > 1 else ''} found: relevant for face swaps; "
            "this does not change the score"
        )
    return Signal(NAME, NEUTRAL, WEIGHT, {"summary": summary, "count": len(boxes), "boxes": boxes})


def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Intersection over the smaller box above one half: the same face seen by both cascades."""
    left, top = max(a["x"], b["x"]), max(a["y"], b["y"])
    right = min(a["x"] + a["width"], b["x"] + b["width"])
    bottom = min(a["y"] + a["height"], b["y"] + b["height"])
    if right <= left or bottom <= top:
        return False
    smaller = min(a["width"] * a["height"], b["width"] * b["height"])
    return (right - left) * (bottom - top) > 0.5 * smaller
