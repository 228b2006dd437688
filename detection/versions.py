"""Registering, promoting and loading learned-model versions (shadow mode). Django, no moderation.

Two kinds share the registry: the artefact network (`DetectorVersion.Kind.ARTEFACT`, a ``.pt`` whose ONNX
export scores, `detection.learned.registry.load`) and the embedding probe (`Kind.PROBE`, a ``.probe.json``,
`detection.learned.probe`). Each kind has at most one active version; any number score in shadow. Promotion
sends `detector_promoted`, which the moderation app records in the audit log. Never torch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from django.db import transaction
from django.dispatch import Signal as DjangoSignal
from django.utils import timezone

from detection.learned import probe as probes
from detection.learned.registry import DEFAULT_VERSION, LoadedModel, WeightsError, WeightsMismatch, load
from detection.models import DetectorVersion
from detection.scoring import ScoreResult, score_bytes, version_name

logger = logging.getLogger(__name__)

MAX_STORED_VERSION = 50  # moderation.DetectionResult.model_version's max_length
_loaded: dict[str, LoadedModel] = {}  # sha256 -> model, so each worker loads a version once
_probes: dict[str, probes.Probe] = {}  # sha256 -> probe

detector_promoted = DjangoSignal()
"""Sent with `row` (the promoted DetectorVersion), `retired` (versions it replaced) and `actor` (who)."""

Kind = DetectorVersion.Kind


def version_register(*, weights: Path, shadow: bool = True) -> DetectorVersion:
    """Record weights (an artefact ``.pt`` verified against its card, or a ``.probe.json``) as a shadow
    version, or update its evaluation."""
    if probes.is_probe_file(weights):
        sha256 = probes.sha256_of(weights)
        probe = probes.load(weights, sha256)
        name, kind, evaluation = probe.version, Kind.PROBE, probe.card.get("evaluation", {})
    else:
        model = load(weights)
        name, kind, evaluation, sha256 = model.version, Kind.ARTEFACT, model.card.get("evaluation", {}), \
            model.card["sha256"]
    longest = version_name(name, probes.DEFAULT_VERSION) if kind == Kind.ARTEFACT else version_name(probe=name)
    if len(longest) > MAX_STORED_VERSION:
        raise ValueError(f"Version name {name!r} is too long to store with scores; retrain with a shorter --name.")
    row, _ = DetectorVersion.objects.update_or_create(
        version=name,
        defaults={"kind": kind, "weights_path": str(weights.resolve()), "sha256": sha256, "evaluation": evaluation},
    )
    if not shadow and row.status != DetectorVersion.Status.ACTIVE:
        return version_promote(version=row.version)
    return row


def version_promote(*, version: str, actor: str = "system") -> DetectorVersion:
    """Make `version` the active one of its kind; the previously active version of that kind is retired.
    `actor` (a username, or "system") is who decided: `detector_promoted` carries it to the audit log."""
    with transaction.atomic():
        row = DetectorVersion.objects.select_for_update().get(version=version)
        retired = list(DetectorVersion.objects.filter(status=DetectorVersion.Status.ACTIVE, kind=row.kind)
                       .exclude(pk=row.pk).values_list("version", flat=True))
        DetectorVersion.objects.filter(version__in=retired).update(status=DetectorVersion.Status.RETIRED)
        row.status = DetectorVersion.Status.ACTIVE
        row.promoted_at = timezone.now()
        row.save(update_fields=["status", "promoted_at"])
        detector_promoted.send(sender=DetectorVersion, row=row, retired=retired, actor=actor)
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


def _probe(row: DetectorVersion) -> probes.Probe:
    if row.sha256 not in _probes:
        _probes[row.sha256] = probes.load(Path(row.weights_path), row.sha256)
    return _probes[row.sha256]


def active_model() -> LoadedModel | None:
    """The promoted artefact version's model, or None for the shipped default weights."""
    row = DetectorVersion.objects.filter(status=DetectorVersion.Status.ACTIVE, kind=Kind.ARTEFACT).first()
    return _model(row) if row else None


def active_probe() -> probes.Probe | None:
    """The promoted probe, or None for the shipped default probe. A promoted probe that cannot be loaded is
    logged and the shipped one used, so scoring goes on."""
    row = DetectorVersion.objects.filter(status=DetectorVersion.Status.ACTIVE, kind=Kind.PROBE).first()
    if row is None:
        return None
    try:
        return _probe(row)
    except probes.ProbeUnavailable as exc:
        logger.error("Active probe %s unavailable, using the shipped one: %s", row.version, exc)
        return None


def model_version_of(model: LoadedModel | None, probe: probes.Probe | None = None) -> str:
    return version_name(model.version if model else DEFAULT_VERSION, probe.version if probe else probes.DEFAULT_VERSION)


def shadow_model_versions() -> list[str]:
    """The stored `model_version` strings shadow scores may carry: excluded wherever scores drive priority.
    A shadow version of one kind is stored with whichever version of the other kind was active then."""
    rows = list(DetectorVersion.objects.values_list("version", "kind", "status"))
    artefacts = {DEFAULT_VERSION} | {name for name, kind, _ in rows if kind == Kind.ARTEFACT}
    probe_names = {probes.DEFAULT_VERSION} | {name for name, kind, _ in rows if kind == Kind.PROBE}
    names = []
    for name, kind, status in rows:
        if status != DetectorVersion.Status.SHADOW:
            continue
        if kind == Kind.ARTEFACT:
            names += [version_name(name, other) for other in sorted(probe_names)]
        else:
            names += [version_name(other, name) for other in sorted(artefacts)]
    return names


def shadow_scores(data: bytes, *, embedding: np.ndarray | None = None) -> list[ScoreResult]:
    """Score `data` with every shadow version (beside the active version of the other kind). A version
    that cannot be loaded is skipped and logged: a broken candidate must not stop the production score."""
    results = []
    for row in DetectorVersion.objects.filter(status=DetectorVersion.Status.SHADOW):
        try:
            if row.kind == Kind.PROBE:
                results.append(score_bytes(data, model=active_model(), probe=_probe(row), embedding=embedding))
            else:
                results.append(score_bytes(data, model=_model(row), probe=active_probe(), embedding=embedding))
        except (WeightsError, probes.ProbeUnavailable) as exc:
            logger.warning("Shadow detector version %s skipped: %s", row.version, exc)
    return results
