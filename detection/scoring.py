"""One synthetic-media score per image, from independent signals, with the evidence behind it.

Plain functions over bytes and Pillow images; no Django. `score_bytes` is the entry point for a
file; `score_image` for an image the caller already opened; `combine` is the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from detection.learned.probe import DEFAULT_VERSION as DEFAULT_PROBE_VERSION
from detection.learned.probe import Probe
from detection.learned.registry import DEFAULT_VERSION, LoadedModel
from detection.signals.base import Signal, SignalFunction, open_untrusted
from detection.signals.c2pa_manifest import c2pa_signal
from detection.signals.embedding import embedding_signal
from detection.signals.faces import faces_signal
from detection.signals.metadata import metadata_signal
from detection.signals.model import model_signal
from detection.signals.watermark import watermark_signal

SIGNALS_VERSION: str = "signals-v3"
"""Names the set of signals and their weights; bump it whenever either changes."""



def version_name(model: str = DEFAULT_VERSION, probe: str = DEFAULT_PROBE_VERSION) -> str:
    """What a stored score was made with: the signal set, the artefact model's and the probe's versions."""
    return f"{SIGNALS_VERSION}+{model}+{probe}"


MODEL_VERSION: str = version_name()
"""What a stored score was made with: the signal set and the learned models' weights. Stored scores
can then be told apart from scores a different version would give."""

PRIOR: float = 0.2
"""The score when no signal carries evidence either way.

The share of synthetic images among reported items is not known yet. 0.5 would tell a moderator
"coin flip" for every image without metadata, which is most of them (platforms strip metadata), and
would rank evidence-free items level with ones that have mild evidence. 0.2 keeps those items low
while leaving a single strong signal free to carry the score above 0.9. Revisit once reviewed
decisions give a measured base rate.
"""

MAX_PIXELS: int = 64_000_000
"""Largest image decoded (8000 x 8000), checked before the pixels are read. Below Pillow's own
decompression-bomb limit (about 89 million pixels) so that one hostile file cannot take a worker's
memory; no genuine photo or generator output comes near it."""

EVIDENCE_CLIP: float = 0.01
"""Signal values are clipped to [0.01, 0.99] before combining: no single signal may claim
certainty, and a value of exactly 0 or 1 would make the log-odds infinite."""

SIGNALS: list[SignalFunction] = [
    metadata_signal, c2pa_signal, watermark_signal, model_signal, faces_signal, embedding_signal,
]
"""The signals every image is scored with, in the order they are reported; each is
`(bytes, image or None) -> Signal`."""

PROVENANCE: frozenset[str] = frozenset({"c2pa", "metadata", "watermark"})
"""Signals that read what the maker recorded (a signed manifest, metadata, a watermark). When one of
them declares synthesis, the learned model's "looks like a photo" cannot pull the score below what
that declaration gives alone: a pixel model's doubt does not outweigh the generator's own record
(and the model is weakest exactly on modern generators, docs/model-card.md). Their absence changes
nothing: they report 0.5 when they find nothing."""


class ScoringError(Exception):
    """The input cannot be scored: empty, not an image, too large or damaged.

    `str(error)` is a plain sentence saying what went wrong and what to do about it.
    """


@dataclass(frozen=True)
class ScoreResult:
    """A score with the signals that produced it and the version of the scoring that ran."""

    score: float
    signals: list[Signal]
    model_version: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable: {"score", "signals": [...], "model_version"}."""
        return {
            "score": self.score,
            "signals": [signal.as_dict() for signal in self.signals],
            "model_version": self.model_version,
        }

    def summary(self) -> str:
        """One sentence for a moderator: the score and the signal that moved it most."""
        decisive = max(self.signals, key=_pull, default=None)
        if decisive is None or _pull(decisive) == 0.0:
            return (
                f"Score {self.score:.2f} is the starting estimate: no signal found evidence either way, "
                "so this says nothing about whether the image is synthetic."
            )
        direction = "towards synthetic" if decisive.value > 0.5 else "towards a real photo"
        reason = str(decisive.detail.get("summary", "")).rstrip(". ")
        return f"Score {self.score:.2f}, moved most {direction} by the {decisive.name} signal: {reason}."


def combine(signals: Sequence[Signal], prior: float = PRIOR) -> float:
    """Combine signals into one probability-like score by adding log-odds.

        score = sigmoid(logit(prior) + sum(weight * logit(clip(value, 0.01, 0.99))))

    Each signal's value is read as a likelihood ratio against the neutral 0.5, the way a naive
    Bayes classifier treats independent evidence: a 0.5 signal or a weight of 0 adds nothing, the
    score rises with every value and with every weight on a value above 0.5, and with no evidence
    the score is the prior. Weights below 1 discount signals that are not independent of the rest.
    """
    if not 0.0 < prior < 1.0:
        raise ValueError(f"The prior must lie strictly between 0 and 1, got {prior!r}.")
    log_odds = _logit(prior) + sum(signal.weight * _logit(_clip(signal.value)) for signal in signals)
    return _sigmoid(log_odds)


def combine_with_provenance(signals: Sequence[Signal], prior: float = PRIOR) -> float:
    """`combine`, floored by what the provenance signals that declare synthesis give on their own.

    Only a provenance signal above 0.5 sets a floor, so with no provenance evidence this is exactly
    `combine` and the learned model may still lower the score below the prior."""
    score = combine(signals, prior)
    declaring = [signal for signal in signals if signal.name in PROVENANCE and signal.value > 0.5]
    if declaring:
        score = max(score, combine(declaring, prior))
    return score


def score_image(
    image: Image.Image,
    data: bytes,
    model: LoadedModel | None = None,
    *,
    probe: Probe | None = None,
    embedding: np.ndarray | None = None,
    nearest: Sequence[dict[str, Any]] = (),
) -> ScoreResult:
    """Score an image already opened from `data` (its bytes) with every signal in `SIGNALS`.

    `model` and `probe`, when given, replace the default artefact weights and embedding probe (promoted or
    shadow versions, `detection.versions`); the result's `model_version` then names them. `embedding`: the
    image's embedding when already computed (it is stored once per sha256); `nearest`: confirmed examples
    for the embedding signal's detail."""
    signals = []
    for function in SIGNALS:
        if function is model_signal and model is not None:
            signals.append(model_signal(data, image, model=model))
        elif function is embedding_signal:
            signals.append(embedding_signal(data, image, embedding=embedding, probe=probe, nearest=nearest))
        else:
            signals.append(function(data, image))
    version = version_name(
        model.version if model else DEFAULT_VERSION, probe.version if probe else DEFAULT_PROBE_VERSION
    )
    return ScoreResult(score=round(combine_with_provenance(signals), 4), signals=signals, model_version=version)


def score_bytes(
    data: bytes,
    model: LoadedModel | None = None,
    *,
    probe: Probe | None = None,
    embedding: np.ndarray | None = None,
    nearest: Sequence[dict[str, Any]] = (),
) -> ScoreResult:
    """Open an image file, check it decodes within the size limit, and score it.

    Raises `ScoringError` with a plain message for empty, unreadable, oversized or damaged input.
    """
    if not data:
        raise ScoringError("The file is empty (0 bytes), so there is nothing to score; upload it again.")
    image = _open(data)
    with image:
        return score_image(image, data, model, probe=probe, embedding=embedding, nearest=nearest)


def _open(data: bytes) -> Image.Image:
    try:
        image = open_untrusted(data)
    except Image.DecompressionBombError as exc:
        raise ScoringError(
            f"The image is too large to decode safely (more than {MAX_PIXELS:,} pixels); "
            "score a scaled-down copy instead."
        ) from exc
    except Exception as exc:  # UnidentifiedImageError and whatever a damaged header makes Pillow raise
        raise ScoringError(
            "The file is not an image Takedown can read (JPEG, PNG, WebP, GIF, BMP, TIFF or AVIF); "
            "if it is a video or document, score a still image taken from it."
        ) from exc

    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise ScoringError(
            f"The image is {width} x {height} = {width * height:,} pixels, more than the {MAX_PIXELS:,} "
            "Takedown decodes; score a scaled-down copy instead."
        )
    try:
        image.load()
    except Exception as exc:  # truncated or corrupt pixel data; Pillow raises OSError, SyntaxError, ...
        image.close()
        raise ScoringError(
            f"The {image.format or 'image'} file is damaged or cut short and could not be decoded "
            f"({exc}); ask for the original file again."
        ) from exc
    return image


def _pull(signal: Signal) -> float:
    """How far a signal moves the log-odds, in either direction."""
    return abs(signal.weight * _logit(_clip(signal.value)))


def _clip(value: float) -> float:
    return min(max(value, EVIDENCE_CLIP), 1.0 - EVIDENCE_CLIP)


def _logit(probability: float) -> float:
    return math.log(probability / (1.0 - probability))


def _sigmoid(log_odds: float) -> float:
    # Two branches so that a very large or very negative sum never overflows math.exp.
    if log_odds >= 0:
        return 1.0 / (1.0 + math.exp(-log_odds))
    exp = math.exp(log_odds)
    return exp / (1.0 + exp)
