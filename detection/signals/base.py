"""The common shape of every synthetic-media signal.

A signal is one piece of evidence about whether an image was made or altered by a generator:
embedded metadata, a C2PA manifest, an invisible watermark, a learned model's output. Each signal
function looks at the file and returns a `Signal`; `detection.scoring` combines them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

# Formats an untrusted file may be opened as. An allow-list rather than "whatever Pillow knows",
# because some plugins hand the file to outside programs (EPS runs Ghostscript) and reported files
# come from strangers. JPEG covers MPO (multi-picture JPEG from phones) too.
READABLE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

NEUTRAL: float = 0.5
"""A signal value that says nothing either way; the combiner adds nothing for it."""


@dataclass(frozen=True)
class Signal:
    """One piece of evidence about synthesis, with what a moderator needs to check it.

    `value` is probability-like evidence that the image is synthetic, in [0, 1]; 0.5 means no
    evidence either way. `weight` (>= 0) is how much the combiner trusts the signal; 0 records the
    signal without letting it move the score. `detail` is JSON-serialisable and always has a
    "summary": one plain sentence a moderator can read without knowing the signal's internals.
    """

    name: str
    value: float
    weight: float
    detail: dict[str, Any]

    def __post_init__(self) -> None:
        # Checked here so that a new signal with a bug fails where it is written, not as a strange
        # score three steps later.
        if not self.name:
            raise ValueError("A signal needs a name.")
        if not (math.isfinite(self.value) and 0.0 <= self.value <= 1.0):
            raise ValueError(f"Signal {self.name!r}: value must be within [0, 1], got {self.value!r}.")
        if not (math.isfinite(self.weight) and self.weight >= 0.0):
            raise ValueError(f"Signal {self.name!r}: weight must be finite and >= 0, got {self.weight!r}.")
        summary = self.detail.get("summary")
        if not isinstance(summary, str) or not summary:
            raise ValueError(f"Signal {self.name!r}: detail must have a non-empty 'summary' sentence.")

    def as_dict(self) -> dict[str, Any]:
        """The signal as the JSON object the API and `manage.py score --json` emit."""
        return {"name": self.name, "value": self.value, "weight": self.weight, "detail": dict(self.detail)}


SignalFunction = Callable[[bytes, Image.Image | None], Signal]
"""What every signal is: `(file bytes, opened image or None) -> Signal`.

The image, when given, was opened from those bytes (pixel data may or may not be loaded); a signal
that gets None opens what it needs itself. A signal function must not raise on odd or hostile
input: it reports what it could not read in its detail and returns a neutral value instead.
"""


def open_untrusted(data: bytes) -> Image.Image:
    """Open `data` as one of `READABLE_FORMATS` without decoding its pixels.

    Raises whatever Pillow raises for data it cannot identify (`PIL.UnidentifiedImageError`, ...).
    """
    Image.init()  # registers every plugin once; needed to ask which formats this build supports
    formats = [name for name in READABLE_FORMATS if name in Image.OPEN]
    return Image.open(io.BytesIO(data), formats=formats)
