"""The learned artefact score: a small CNN trained in this project (see docs/model-card.md).

It looks for traces of upsampling layers and autoencoder reconstruction in fine detail. It is weak
evidence: trained on processes that imitate generators, not on a broad set of generators, and it
also reacts to real photos that were upscaled. So the combiner discounts it (`WEIGHT`) and it never
outweighs signed or declared provenance (see `detection.scoring`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from detection.learned.patches import MAX_PATCHES, PATCH, grey, select_patches
from detection.learned.registry import LoadedModel, WeightsError, default_model
from detection.signals.base import NEUTRAL, Signal, open_untrusted

NAME = "model"

# Half weight: the model's evidence is measured on imitation processes and one small evaluation set
# (docs/model-card.md), far weaker than a signed declaration. A value of 0.9 then moves the log-odds
# by 1.1 (0.2 → 0.43), not by 2.2.
WEIGHT = 0.5

# The model's value is kept within [0.5, 0.9]. Above 0.9: no single learned judgement should look
# certain. Below 0.5: the model finds no traces in modern generators' images either (AUC 0.39 on the
# shared evaluation set, docs/model-card.md), so "no traces found" is not evidence of a photo and must
# not lower the score of an unmarked AI image.
VALUE_RANGE = (0.5, 0.9)


def model_version() -> str:
    """The version of the weights the signal uses, or 'unavailable' when they cannot be loaded."""
    try:
        return default_model().version
    except WeightsError:
        return "unavailable"


def model_signal(data: bytes, image: Image.Image | None = None, model: LoadedModel | None = None) -> Signal:
    """Score fine-detail artefacts with the default (or given) model. Never raises on odd input."""
    try:
        loaded = model or default_model()
    except WeightsError as exc:
        return Signal(
            NAME,
            NEUTRAL,
            WEIGHT,
            {"summary": f"The learned model is unavailable: {exc}", "version": None, "error": type(exc).__name__},
        )
    try:
        opened_here = image is None
        if image is None:
            image = open_untrusted(data)
        try:
            patches = select_patches(grey(image))
        finally:
            if opened_here:
                image.close()
    except Exception as exc:  # Pillow on hostile input
        return Signal(
            NAME,
            NEUTRAL,
            WEIGHT,
            {"summary": f"The image could not be read for the model ({type(exc).__name__})", "version": loaded.version},
        )
    return signal_from_patches(patches, loaded)


def signal_from_patches(patches: np.ndarray, loaded: LoadedModel, mean_logit: float | None = None) -> Signal:
    """The signal for an image's selected patches (`mean_logit` when already computed in a batch)."""
    if len(patches) == 0:
        return Signal(
            NAME,
            NEUTRAL,
            WEIGHT,
            {
                "summary": f"The image has no textured {PATCH} x {PATCH} area for the model to read; "
                "no evidence either way",
                "version": loaded.version,
                "patches": 0,
            },
        )
    if mean_logit is None:
        (mean_logit,) = loaded.mean_logits([patches])
    assert mean_logit is not None
    probability = loaded.calibration.probability(mean_logit)
    value = float(min(max(probability, VALUE_RANGE[0]), VALUE_RANGE[1]))
    if probability >= loaded.threshold:
        finding = (
            "fine detail shows upsampling or reconstruction traces typical of generated images "
            "(weak evidence: upscaled real photos show them too)"
        )
    else:
        finding = (
            "no upsampling or reconstruction traces; this does not lower the score, modern generators often leave none"
        )
    summary = f"The learned model gives {probability:.2f}: {finding}; see the model card"
    return Signal(
        NAME,
        round(value, 4),
        WEIGHT,
        {
            "summary": summary,
            "version": loaded.version,
            "probability": round(probability, 4),
            "mean_logit": round(float(mean_logit), 4),
            "patches": len(patches),
            "max_patches": MAX_PATCHES,
        },
    )
