"""The embedding signal: a calibrated probe on the image's CLIP embedding (docs/model-card.md, *Embedding probe*).

The probe learns from labelled images and from the moderators' confirmed decisions, so it improves with use.
Like the artefact model it is learned, one-sided evidence: its value is kept within `VALUE_RANGE` (never below
0.5, so "looks like a photo" never lowers a score) and its weight comes from its measured calibration. When
the caller knows them, the nearest confirmed examples in embedding space go into the detail, so a moderator
sees what the image resembles, not only a number.

When the encoder or the probe cannot be loaded the signal says so (``status: model_unavailable``, weight 0):
never a silent constant.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from detection.embedding import Encoder, EncoderUnavailable, default_encoder
from detection.learned.probe import Probe, ProbeUnavailable, default_probe
from detection.signals.base import NEUTRAL, Signal, open_untrusted

logger = logging.getLogger(__name__)

NAME = "embedding"
UNAVAILABLE = "model_unavailable"

# Kept within [0.5, 0.9]. Above 0.9: no learned judgement should look certain. Below 0.5: the probe's "real"
# side is not evidence of a photo (it has seen few generators), so it must not lower an unmarked image's score.
VALUE_RANGE = (0.5, 0.9)


def unavailable(reason: str) -> Signal:
    return Signal(NAME, NEUTRAL, 0.0, {
        "summary": f"The embedding probe is unavailable, so it adds nothing: {reason}",
        "status": UNAVAILABLE,
        "error": reason,
    })


def embedding_signal(
    data: bytes,
    image: Image.Image | None = None,
    *,
    embedding: np.ndarray | None = None,
    probe: Probe | None = None,
    encoder: Encoder | None = None,
    nearest: Sequence[dict[str, Any]] = (),
) -> Signal:
    """The probe's evidence for one image. `embedding` when already computed (stored per sha256); `probe`
    when not the shipped default; `nearest`: confirmed examples ({case, decision, distance}, nearest first)
    for the detail. Never raises on odd input."""
    try:
        used_probe = probe or default_probe()
    except ProbeUnavailable as exc:
        logger.warning("Embedding signal unavailable: %s", exc)
        return unavailable(str(exc))
    if embedding is None:
        try:
            used_encoder = encoder or default_encoder()
        except EncoderUnavailable as exc:
            logger.warning("Embedding signal unavailable: %s", exc)
            return unavailable(str(exc))
        try:
            embedding = embed_image(data, image, used_encoder)
        except Exception as exc:  # Pillow on hostile input
            return Signal(NAME, NEUTRAL, used_probe.weight, {
                "summary": f"The image could not be read for the embedding ({type(exc).__name__})",
                "version": used_probe.version,
            })
    return signal_from_embedding(embedding, used_probe, nearest)


def embed_image(data: bytes, image: Image.Image | None, encoder: Encoder) -> np.ndarray:
    """The embedding of `image` (opened from `data` here when None)."""
    if image is not None:
        return encoder.embed_one(image)
    with open_untrusted(data) as opened:
        return encoder.embed_one(opened)


def signal_from_embedding(embedding: np.ndarray, probe: Probe, nearest: Sequence[dict[str, Any]] = ()) -> Signal:
    probability = probe.probability(embedding)
    value = float(min(max(probability, VALUE_RANGE[0]), VALUE_RANGE[1]))
    if probability >= 0.5:
        finding = "its content resembles the synthetic images the probe learned from"
    else:
        finding = "it resembles the real photos the probe learned from; this does not lower the score"
    summary = f"The embedding probe gives {probability:.2f}: {finding}"
    examples = [dict(row) for row in nearest]
    if examples:
        synthetic = sum(1 for row in examples if row.get("label") == "ai")
        summary += (f"; of the {len(examples)} nearest confirmed cases, {synthetic} were confirmed synthetic "
                    f"({', '.join(str(row['case']) for row in examples)})")
    return Signal(NAME, round(value, 4), probe.weight, {
        "summary": summary,
        "version": probe.version,
        "probability": round(probability, 4),
        "nearest": examples,
    })
