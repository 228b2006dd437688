from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from detection import versions
from detection.learned import registry
from detection.models import DetectorVersion
from detection.scoring import MODEL_VERSION, version_name
from detection.versions import active_model, shadow_model_versions, version_promote, version_register
from moderation.models import DetectionResult, Media
from moderation.services.pipeline import media_score
from moderation.services.triage import priority_reasons
from tests.detection.images import encode, scene
from tests.moderation.console_helpers import make_case


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """The shipped weights saved again under a new version name: a stand-in for a retrained model."""
    net, card = registry.load_network()
    shipped = registry.load()
    return registry.save(net, shipped.calibration, shipped.threshold, card, tmp_path, "candidate-2")


def stored_media(seed: int) -> Media:
    task = make_case(sha256=f"{seed:064x}")
    media = task.report.items.get().media
    assert media is not None
    media.file.save(f"{seed}.png", ContentFile(encode(scene(seed, (320, 256)))), save=True)
    media.mime = "image/png"
    media.save(update_fields=["mime"])
    return media


@pytest.mark.django_db
def test_a_shadow_version_is_scored_and_stored_but_not_used_for_priority(candidate: Path) -> None:
    version_register(weights=candidate)
    media = stored_media(11)
    report = media.reported_items.get().report

    active = media_score(media.pk)

    assert active is not None and active.model_version == MODEL_VERSION
    shadow = DetectionResult.objects.get(media=media, model_version=version_name("candidate-2"))
    assert shadow_model_versions() == [shadow.model_version]
    # Make the shadow score the highest: priority must still come from the active one only.
    DetectionResult.objects.filter(pk=shadow.pk).update(score=0.99)
    reasons = [reason for reason in priority_reasons(report) if reason.code == "score"]
    assert all("0.99" not in reason.detail for reason in reasons)


@pytest.mark.django_db
def test_promoting_a_version_makes_new_scores_use_it_and_retires_the_old_one(candidate: Path) -> None:
    first = version_register(weights=candidate)
    version_promote(version=first.version)

    model = active_model()
    media = stored_media(12)
    result = media_score(media.pk)

    assert model is not None and model.version == "candidate-2"
    assert result is not None and result.model_version == version_name("candidate-2")
    assert DetectorVersion.objects.get(version="candidate-2").status == DetectorVersion.Status.ACTIVE
    assert DetectorVersion.objects.get(version="candidate-2").evaluation  # it keeps its evaluation


@pytest.mark.django_db
def test_the_command_adds_promotes_and_lists_versions(candidate: Path) -> None:
    out = StringIO()
    call_command("detector_version", "add", str(candidate), stdout=out)
    call_command("detector_version", "promote", "candidate-2", stdout=out)
    call_command("detector_version", "list", stdout=out)

    assert "shadow mode" in out.getvalue()
    assert '"status": "active"' in out.getvalue()


@pytest.mark.django_db
def test_a_shadow_version_whose_weights_vanished_does_not_stop_the_production_score(candidate: Path) -> None:
    version_register(weights=candidate)
    candidate.unlink()
    registry.onnx_path(candidate).unlink()  # what scoring loads
    versions._loaded.clear()  # a fresh worker: it has not loaded this version yet
    media = stored_media(13)

    result = media_score(media.pk)

    assert result is not None and result.model_version == MODEL_VERSION
    assert media.detections.count() == 1


@pytest.mark.django_db
def test_a_version_whose_card_was_replaced_after_registration_is_not_scored(candidate: Path) -> None:
    version_register(weights=candidate)
    card = json.loads(candidate.with_suffix(".json").read_text())
    card["sha256"] = "0" * 64  # files and card of other weights now lie at the registered path
    candidate.with_suffix(".json").write_text(json.dumps(card))
    versions._loaded.clear()

    assert versions.shadow_scores(encode(scene(14))) == []
