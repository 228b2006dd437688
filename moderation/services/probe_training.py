"""Scheduled retraining of the embedding probe on the moderators' confirmed decisions.

The beat job (`moderation.tasks.probe_retrain`, weekly by default) trains a candidate when enough cases were
confirmed since the last candidate, compares it with the probe in use on the latest confirmed cases held
back from its training, and registers it in shadow with those figures (the admin's *Detector versions*
page). Promotion stays a person's decision (`detector_version promote --user`, or the admin action), and is
audited (`detector_promoted_record`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from detection.learned import metrics
from detection.learned import probe as probes
from detection.models import DetectorVersion
from detection.versions import active_probe, version_register
from moderation.audit import SYSTEM, audit_record
from moderation.models import Media
from moderation.selectors.training import ConfirmedExample, confirmed_examples
from moderation.services.embedding import media_embedding

logger = logging.getLogger(__name__)

STAMP = "confirmed_until"  # in a candidate's evaluation: the latest decision time it was trained and tested on


def _examples_with_vectors() -> tuple[list[ConfirmedExample], np.ndarray]:
    examples = confirmed_examples()
    media = Media.objects.in_bulk([e.media_id for e in examples])
    kept, vectors = [], []
    for example in examples:
        vector = media_embedding(media=media[example.media_id]) if example.media_id in media else None
        if vector is not None:
            kept.append(example)
            vectors.append(vector)
    return kept, np.stack(vectors) if vectors else np.zeros((0, 512), dtype=np.float32)


def last_candidate_stamp() -> str | None:
    """When the newest retrained candidate's data ended (ISO time), or None before the first."""
    for row in DetectorVersion.objects.filter(kind=DetectorVersion.Kind.PROBE).order_by("-created_at"):
        stamp = row.evaluation.get(STAMP)
        if stamp:
            return str(stamp)
    return None


def probe_retrain(*, force: bool = False) -> DetectorVersion | None:
    """Train and register a shadow candidate when enough new confirmed cases exist; None (logged) otherwise."""
    examples, x = _examples_with_vectors()
    since = last_candidate_stamp()
    new = [e for e in examples if since is None or e.decided_at.isoformat() > since]
    if not force and len(new) < settings.TAKEDOWN_PROBE_RETRAIN_MIN_NEW:
        logger.info("Probe retraining skipped: %d new confirmed cases since %s, %d needed.", len(new), since,
                    settings.TAKEDOWN_PROBE_RETRAIN_MIN_NEW)
        return None
    y = np.array([1 if e.label == "ai" else 0 for e in examples], dtype=int)
    # A case is its own group; near-duplicates join it (detection.learned.probe). The latest decisions are held
    # back, with every group they belong to, to compare the candidate with the probe in use.
    groups = probes.near_duplicate_groups(x, [f"report-{e.report_id}" for e in examples])
    held_count = max(1, len(examples) * settings.TAKEDOWN_PROBE_HOLD_BACK_PERCENT // 100)
    held_groups = {groups[i] for i in range(len(examples) - held_count, len(examples))}
    held = np.array([g in held_groups for g in groups], dtype=bool)
    version = f"probe-{timezone.now():%Y%m%d%H%M}"
    try:
        candidate = probes.train(x[~held], y[~held], [g for g, h in zip(groups, held, strict=True) if not h], version,
                                 minimum=settings.TAKEDOWN_PROBE_MIN_PER_CLASS,
                                 sources={"data": "confirmed decisions", "held_back": int(held.sum())})
    except probes.NotEnoughExamples as exc:
        logger.info("Probe retraining skipped: %s", exc)
        return None
    current = active_probe() or _shipped()
    comparison: dict[str, Any] = {"held_back": int(held.sum())}
    if held.any() and len(set(y[held])) == 2:
        comparison["candidate"] = metrics.summary(y[held], candidate.probabilities(x[held]), 0.5)
        if current is not None:
            comparison["in_use"] = {"version": current.version,
                                    **metrics.summary(y[held], current.probabilities(x[held]), 0.5)}
    else:
        comparison["note"] = "the held-back cases hold one class only, so no AUC could be measured on them"
    candidate.card["evaluation"].update({"held_back": comparison, STAMP: examples[-1].decided_at.isoformat()})
    path = probes.save(probes.from_card(candidate.card), Path(settings.TAKEDOWN_PROBE_DIR))
    with transaction.atomic():
        row = version_register(weights=path)
        audit_record(actor=SYSTEM, action="detector.candidate_trained", object_type="detector_version",
                     object_id=row.pk, data={"version": row.version, "examples": len(examples) - int(held.sum()),
                                             "cross_validation_auc": candidate.card["evaluation"]
                                             ["cross_validation"]["auc"], "held_back": comparison})
    return row


def _shipped() -> probes.Probe | None:
    try:
        return probes.default_probe()
    except probes.ProbeUnavailable:
        return None


def detector_promoted_record(*, row: DetectorVersion, retired: list[str], actor: str, **_: Any) -> None:
    """Receiver of `detection.versions.detector_promoted`: the promotion in the audit log, in its transaction."""
    audit_record(actor=actor, action="detector.promoted", object_type="detector_version", object_id=row.pk,
                 data={"version": row.version, "kind": row.kind, "retired": retired,
                       "evaluation": {k: v for k, v in row.evaluation.items() if k != "held_back"}})
