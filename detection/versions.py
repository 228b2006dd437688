"""Registering, promoting and loading learned-model versions (shadow mode). Django, no moderation.

A version scores on ONNX Runtime (`detection.learned.registry.load`: its ``.onnx`` beside the registered
``.pt``, verified against the card), never with torch."""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from detection.learned.registry import LoadedModel, WeightsError, WeightsMismatch, load
from detection.models import DetectorVersion
from detection.scoring import MODEL_VERSION, SIGNALS_VERSION, ScoreResult, score_bytes

logger = logging.getLogger(__name__)

MAX_STORED_VERSION = 50  # moderation.DetectionResult.model_version's max_length
_loaded: dict[str, LoadedModel] = {}  # sha256 -> model, so each worker loads a version once


def version_register(*, weights: Path, shadow: bool = True) -> DetectorVersion:
    """Record weights (verified against their card) as a shadow version, or update its evaluation."""
    model = load(weights)
    if len(f"{SIGNALS_VERSION}+{model.version}") > MAX_STORED_VERSION:
        raise ValueError(
            f"Version name {model.version!r} is too long to store with scores; retrain with a shorter --name."
        )
    row, _ = DetectorVersion.objects.update_or_create(
        version=model.version,
        defaults={
            "weights_path": str(weights.resolve()),
            "sha256": model.card["sha256"],
            "evaluation": model.card.get("evaluation", {}),
        },
    )
    if not shadow and row.status != DetectorVersion.Status.ACTIVE:
        return version_promote(version=row.version)
    return row


def version_promote(*, version: str) -> DetectorVersion:
    """Make `version` the active one; the previously active version is retired."""
    with transaction.atomic():
        row = DetectorVersion.objects.select_for_update().get(version=version)
        DetectorVersion.objects.filter(status=DetectorVersion.Status.ACTIVE).exclude(pk=row.pk).update(
            status=DetectorVersion.Status.RETIRED
        )
        row.status = DetectorVersion.Status.ACTIVE
        row.promoted_at = timezone.now()
        row.save(update_fields=["status", "promoted_at"])
    return row


def _model(row: DetectorVersion) -> LoadedModel:
    if row.sha256 not in _loaded:
        model = load(Path(row.weights_path))
        if model.card.get("sha256") != row.sha256:  # the card (and files) beside the registered path were replaced
            raise WeightsMismatch(
                f"Detector version {row.version}: the card at {row.weights_path} is for weights "
                f"{str(model.card.get('sha256'))[:12]}…, not the registered {row.sha256[:12]}…; "
                "register the new files with `manage.py detector_version add` or restore the old ones."
            )
        _loaded[row.sha256] = model
    return _loaded[row.sha256]


def active_model() -> LoadedModel | None:
    """The promoted version's model, or None for the shipped default weights."""
    row = DetectorVersion.objects.filter(status=DetectorVersion.Status.ACTIVE).first()
    return _model(row) if row else None


def model_version_of(model: LoadedModel | None) -> str:
    return MODEL_VERSION if model is None else f"{SIGNALS_VERSION}+{model.version}"


def shadow_model_versions() -> list[str]:
    """The stored `model_version` strings of shadow scores: excluded wherever scores drive priority."""
    return [
        f"{SIGNALS_VERSION}+{version}"
        for version in DetectorVersion.objects.filter(status=DetectorVersion.Status.SHADOW).values_list(
            "version", flat=True
        )
    ]


def shadow_scores(data: bytes) -> list[ScoreResult]:
    """Score `data` with every shadow version. A version whose weights cannot be loaded is skipped
    and logged: a broken candidate must not stop the production score from being stored."""
    results = []
    for row in DetectorVersion.objects.filter(status=DetectorVersion.Status.SHADOW):
        try:
            model = _model(row)
        except WeightsError as exc:
            logger.warning("Shadow detector version %s skipped: %s", row.version, exc)
            continue
        results.append(score_bytes(data, model=model))
    return results
