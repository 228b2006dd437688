"""Learning from the moderators' decisions: embeddings stored once per sha256, nearest confirmed cases as
evidence (media only for those allowed to see it), the weekly retraining job (with time travel), and the
shadow → promote flow of a probe, audited."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from detection import embedding
from detection.learned import probe as probes
from detection.models import DetectorVersion
from detection.scoring import version_name
from detection.versions import active_probe, shadow_model_versions, version_promote, version_register
from moderation.models import (
    AuditEvent,
    ChildSafetyReferral,
    Decision,
    DetectionResult,
    Media,
    MediaEmbedding,
    ReviewTask,
)
from moderation.selectors.embedding import nearest_confirmed
from moderation.services import probe_training
from moderation.services.pipeline import media_score
from moderation.services.triage import priority_reasons
from tests.detection.images import encode, scene
from tests.moderation.console_helpers import make_case

RNG = np.random.default_rng(7)
AI_DIRECTION = embedding.normalise(RNG.normal(size=(1, 512)).astype(np.float32))[0]
REAL_DIRECTION = embedding.normalise(RNG.normal(size=(1, 512)).astype(np.float32))[0]


def vector(label: str, seed: int) -> np.ndarray:
    """A made-up embedding near the class's direction; different seeds are far apart (no near-duplicates)."""
    centre = AI_DIRECTION if label == "ai" else REAL_DIRECTION
    noise = np.random.default_rng(seed).normal(0, 0.1, 512).astype(np.float32)
    return embedding.normalise((centre + noise)[None, :])[0]


def confirmed(label: str, seed: int, *, embedded: np.ndarray | None = None) -> ReviewTask:
    """A case decided by a moderator: synthetic NCII (label "ai") or NCII (label "real"), its media embedded."""
    task = make_case(sha256=f"{seed:064x}")
    media = task.report.items.get().media
    assert media is not None
    MediaEmbedding.objects.create(media=media, encoder=embedding.ENCODER_NAME, encoder_sha256=embedding.ENCODER_SHA256,
                                  vector=embedding.to_bytes(vector(label, seed) if embedded is None else embedded))
    Decision.objects.create(task=task, report=task.report, outcome=Decision.Outcome.TAKEDOWN,
                            reason=Decision.Reason.SYNTHETIC_NCII if label == "ai" else Decision.Reason.NCII)
    task.state = ReviewTask.State.DECIDED
    task.save(update_fields=["state"])
    return task


def stored_media(seed: int) -> Media:
    task = make_case(sha256=f"{seed:064x}")
    media = task.report.items.get().media
    assert media is not None
    media.file.save(f"{seed}.png", ContentFile(encode(scene(seed, (320, 256)))), save=True)
    media.mime = "image/png"
    media.save(update_fields=["mime"])
    return media


@pytest.mark.django_db
def test_the_embedding_is_computed_once_per_sha256_and_reused_by_every_version() -> None:
    media = stored_media(21)
    real_encoder = embedding.default_encoder()
    with mock.patch.object(type(real_encoder), "embed", autospec=True, side_effect=type(real_encoder).embed) as embed:
        media_score(media.pk)
        DetectionResult.objects.all().delete()  # a new version would score it again ...
        media_score(media.pk)

    assert embed.call_count == 1  # ... from the stored embedding
    stored = MediaEmbedding.objects.get(media=media)
    assert stored.encoder_sha256 == embedding.ENCODER_SHA256 and len(bytes(stored.vector)) == 2048


@pytest.mark.django_db
def test_the_signal_detail_names_the_nearest_confirmed_cases_with_decision_and_distance() -> None:
    near = confirmed("ai", 31)
    confirmed("real", 32)
    media = stored_media(33)
    MediaEmbedding.objects.create(media=media, encoder=embedding.ENCODER_NAME,
                                  encoder_sha256=embedding.ENCODER_SHA256, vector=embedding.to_bytes(vector("ai", 31)))

    result = media_score(media.pk)

    assert result is not None
    (signal,) = [s for s in result.signals if s["name"] == "embedding"]
    first = signal["detail"]["nearest"][0]
    assert first["case"] == near.report.case_number and first["label"] == "ai"
    assert first["distance"] == pytest.approx(0.0, abs=1e-4)
    assert "take down" in first["decision"] and "media" not in str(signal["detail"]["nearest"])
    assert near.report.case_number in signal["detail"]["summary"]


@pytest.mark.django_db
def test_nearest_examples_show_media_only_to_a_role_that_sees_media(triage_user: User, moderator: User) -> None:
    example = confirmed("ai", 41)
    query = make_case(sha256=f"{42:064x}").report.items.get().media
    assert query is not None

    for_moderator = nearest_confirmed(media_id=query.pk, vector=vector("ai", 41), user=moderator)
    for_triage = nearest_confirmed(media_id=query.pk, vector=vector("ai", 41), user=triage_user)

    assert for_moderator[0].case_number == example.report.case_number
    assert for_moderator[0].media_id == example.report.items.get().media_id
    assert for_triage[0].case_number == example.report.case_number and for_triage[0].media_id is None


@pytest.mark.django_db
def test_nearest_examples_never_show_media_withheld_for_the_child_safety_procedure(moderator: User) -> None:
    example = confirmed("ai", 51)
    ChildSafetyReferral.objects.create(report=example.report, task=example, flagged_by=moderator)
    query = make_case(sha256=f"{52:064x}").report.items.get().media
    assert query is not None

    (found, *_) = nearest_confirmed(media_id=query.pk, vector=vector("ai", 51), user=moderator)

    assert found.case_number == example.report.case_number and found.media_id is None


@pytest.mark.django_db
def test_the_case_page_lists_nearest_cases_and_links_their_media_only_for_a_moderator(
    client: Client, triage_user: User, moderator: User
) -> None:
    example = confirmed("ai", 61)
    task = make_case(sha256=f"{62:064x}")
    media = task.report.items.get().media
    assert media is not None
    MediaEmbedding.objects.create(media=media, encoder=embedding.ENCODER_NAME,
                                  encoder_sha256=embedding.ENCODER_SHA256, vector=embedding.to_bytes(vector("ai", 61)))
    example_media = example.report.items.get().media_id
    url = reverse("console:case", args=[task.pk])

    client.force_login(triage_user)
    as_triage = client.get(url).content.decode()
    client.force_login(moderator)
    as_moderator = client.get(url).content.decode()

    for page in (as_triage, as_moderator):
        assert "Nearest confirmed cases" in page and example.report.case_number in page
    assert f'data-media="{example_media}"' not in as_triage and "not shown" in as_triage
    assert f'data-media="{example_media}"' in as_moderator


@pytest.mark.django_db
def test_the_retraining_job_trains_a_shadow_candidate_only_when_enough_new_cases_were_confirmed(
    settings: Any, tmp_path: Path
) -> None:
    settings.TAKEDOWN_PROBE_DIR = str(tmp_path)
    settings.TAKEDOWN_PROBE_RETRAIN_MIN_NEW = 10
    monday = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=monday):
        for seed in range(30):
            confirmed("ai" if seed % 2 else "real", 1000 + seed)
        first = probe_training.probe_retrain()
    with mock.patch("django.utils.timezone.now", return_value=monday + timedelta(days=7)):
        for seed in range(4):
            confirmed("ai" if seed % 2 else "real", 2000 + seed)
        too_few = probe_training.probe_retrain()  # 4 new cases in a week: fewer than 10
    with mock.patch("django.utils.timezone.now", return_value=monday + timedelta(days=14)):
        for seed in range(8):
            confirmed("ai" if seed % 2 else "real", 3000 + seed)
        second = probe_training.probe_retrain()  # 12 new since the first candidate

    assert first is not None and second is not None and too_few is None
    assert first.kind == DetectorVersion.Kind.PROBE and first.status == DetectorVersion.Status.SHADOW
    assert second.status == DetectorVersion.Status.SHADOW  # never promoted by the job
    assert second.version == f"probe-{monday + timedelta(days=14):%Y%m%d%H%M}"
    held = second.evaluation["held_back"]
    assert held["held_back"] == 8 and held["candidate"]["auc"] > 0.9 and held["in_use"]["version"]
    assert second.evaluation["cross_validation"]["n_ai"] + second.evaluation["cross_validation"]["n_real"] == 34
    assert AuditEvent.objects.filter(action="detector.candidate_trained").count() == 2


@pytest.mark.django_db
def test_the_retraining_job_says_nothing_is_trained_below_the_minimum_per_class(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings.TAKEDOWN_PROBE_DIR = str(tmp_path)
    settings.TAKEDOWN_PROBE_RETRAIN_MIN_NEW = 5
    for seed in range(12):
        confirmed("ai" if seed < 10 else "real", 4000 + seed)

    with caplog.at_level("INFO"):
        assert probe_training.probe_retrain() is None

    assert "at least 10 examples of each class" in caplog.text
    assert not DetectorVersion.objects.exists()


@pytest.mark.django_db
def test_a_shadow_probe_is_stored_beside_the_score_and_promotion_is_audited_with_who(
    tmp_path: Path, admin_user: User
) -> None:
    candidate = probes.from_card({**probes.default_probe().card, "version": "probe-cand"})
    row = version_register(weights=probes.save(candidate, tmp_path))
    media = stored_media(71)
    report = media.reported_items.get().report

    active = media_score(media.pk)

    shadow = DetectionResult.objects.get(media=media, model_version=version_name(probe="probe-cand"))
    assert active is not None and active.model_version == version_name()
    assert shadow.model_version in shadow_model_versions()
    DetectionResult.objects.filter(pk=shadow.pk).update(score=0.99)
    assert all("0.99" not in reason.detail for reason in priority_reasons(report) if reason.code == "score")

    version_promote(version=row.version, actor=admin_user.username)

    assert active_probe() is not None and active_probe().version == "probe-cand"  # type: ignore[union-attr]
    event = AuditEvent.objects.get(action="detector.promoted")
    assert event.actor == admin_user.username and event.data["version"] == "probe-cand"
    rescored = media_score(stored_media(72).pk)
    assert rescored is not None and rescored.model_version == version_name(probe="probe-cand")


@pytest.mark.django_db
def test_promoting_a_probe_leaves_the_active_artefact_version_alone(tmp_path: Path) -> None:
    from detection.learned import registry

    net, card = registry.load_network()
    shipped = registry.load()
    artefact = version_register(weights=registry.save(net, shipped.calibration, shipped.threshold, card, tmp_path,
                                                      "artefact-x"), shadow=False)
    probe_row = version_register(weights=probes.save(probes.from_card({**probes.default_probe().card,
                                                                       "version": "probe-y"}), tmp_path))

    version_promote(version=probe_row.version)

    statuses = dict(DetectorVersion.objects.values_list("version", "status"))
    assert statuses == {"artefact-x": "active", "probe-y": "active"}
    assert artefact.kind == DetectorVersion.Kind.ARTEFACT


@pytest.mark.django_db
def test_the_admin_page_shows_a_candidates_figures(client: Client, tmp_path: Path) -> None:
    version_register(weights=probes.save(probes.default_probe(), tmp_path))
    staff = User.objects.create_superuser("root-admin", "root@example.org", "pw-root")
    client.force_login(staff)

    page = client.get(reverse("admin:detection_detectorversion_changelist")).content.decode()

    assert "probe-2026.12.06" in page and "CV AUC 0.673" in page


@pytest.mark.django_db
def test_the_command_promotes_a_probe_and_the_audit_log_names_who(tmp_path: Path, admin_user: User) -> None:
    from io import StringIO

    from django.core.management import call_command

    path = probes.save(probes.from_card({**probes.default_probe().card, "version": "probe-cmd"}), tmp_path)
    out = StringIO()

    call_command("detector_version", "add", str(path), stdout=out)
    call_command("detector_version", "promote", "probe-cmd", "--user", admin_user.username, stdout=out)

    assert "probe-cmd is now active" in out.getvalue()
    assert AuditEvent.objects.get(action="detector.promoted").actor == admin_user.username


def test_the_retraining_job_is_on_the_beat_schedule_at_the_configured_interval(settings: Any) -> None:
    from moderation import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["probe-retrain"]

    assert entry["task"] == tasks.probe_retrain.name == "moderation.tasks.probe_retrain"
    assert entry["schedule"] == float(settings.TAKEDOWN_PROBE_RETRAIN_SECONDS) == 7 * 24 * 3600.0
