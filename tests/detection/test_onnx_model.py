"""The learned model as scoring runs it: its ONNX export on ONNX Runtime, checked against the torch network."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from detection.learned import data, registry
from detection.learned.patches import grey, select_patches
from detection.learned.processes import PROCESSES
from detection.scoring import score_bytes
from detection.signals.model import model_signal
from tests.detection.images import encode, scene

AGREEMENT = 1e-4  # the issue: scores agree with the torch model within this
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "detection-eval"


@pytest.fixture(scope="module")
def onnx_model() -> registry.LoadedModel:
    return registry.load()


@pytest.fixture(scope="module")
def torch_model() -> registry.LoadedModel:
    return registry.load_torch()


def generated_images() -> Iterator[bytes]:
    """Scenes at several sizes and formats, each process's fakes (which the model scores high), noise, a
    flat image and one smaller than a patch: the whole range of what the model sees."""
    for seed, size in enumerate([(200, 150), (320, 256), (640, 480), (1024, 768), (333, 517)]):
        yield encode(scene(seed, size))
        yield encode(scene(seed + 10, size), "JPEG", quality=70)
    region = scene(20, (256, 256)).astype(np.float32)
    for name, process in sorted(PROCESSES.items()):
        fake = process(region, np.random.default_rng(len(name)))
        yield encode(np.clip(fake, 0, 255).round().astype(np.uint8))
    yield encode(np.random.default_rng(0).integers(0, 256, size=(300, 400, 3), dtype=np.uint8))
    yield encode(np.full((256, 256, 3), 128, dtype=np.uint8))
    yield encode(np.random.default_rng(1).integers(0, 256, size=(30, 40, 3), dtype=np.uint8))


def probabilities(model: registry.LoadedModel, patch_sets: list[np.ndarray]) -> list[float | None]:
    return [
        None if logit is None else model.calibration.probability(logit) for logit in model.mean_logits(patch_sets)
    ]


def assert_agree(onnx: list[float | None], torch: list[float | None]) -> None:
    assert [value is None for value in onnx] == [value is None for value in torch]
    for a, b in zip(onnx, torch, strict=True):
        if a is not None and b is not None:
            assert abs(a - b) <= AGREEMENT, (a, b)


def test_every_score_of_the_onnx_model_agrees_with_the_torch_model_on_generated_images(
    onnx_model: registry.LoadedModel, torch_model: registry.LoadedModel
) -> None:
    images = list(generated_images())
    patch_sets = [select_patches(grey(data.load_rgb(image))) for image in images]

    onnx_probabilities = probabilities(onnx_model, patch_sets)
    torch_probabilities = probabilities(torch_model, patch_sets)

    assert_agree(onnx_probabilities, torch_probabilities)
    assert_agree(onnx_model.mean_logits(patch_sets), torch_model.mean_logits(patch_sets))
    # The set spans the calibrated range, so agreement is not shown on one flat region of the sigmoid only.
    usable = [value for value in onnx_probabilities if value is not None]
    assert min(usable) < 0.1 and max(usable) > 0.9
    # End to end, every signal and the combination: the stored score (rounded to 4 places) agrees too.
    for image in images:
        by_onnx, by_torch = score_bytes(image, model=onnx_model), score_bytes(image, model=torch_model)
        assert abs(by_onnx.score - by_torch.score) <= AGREEMENT + 1e-9


@pytest.mark.shared_data
def test_every_score_of_the_onnx_model_agrees_with_the_torch_model_on_the_shared_photos(
    onnx_model: registry.LoadedModel, torch_model: registry.LoadedModel
) -> None:
    paths = sorted((SHARED / "real").glob("*.jpg")) + sorted((SHARED / "ai").glob("*.jpg"))
    assert len(paths) == 100
    # Large photos decoded at most 1024 px (JPEG draft mode), as many pixels as a typical upload.
    patch_sets = [select_patches(grey(data.load_rgb(path, max_side=1024))) for path in paths]

    assert_agree(probabilities(onnx_model, patch_sets), probabilities(torch_model, patch_sets))


def test_the_default_model_scores_with_onnx_runtime(onnx_model: registry.LoadedModel) -> None:
    from detection.learned.runtime import OnnxLogits

    signal = model_signal(encode(scene(3, (640, 480))))

    assert isinstance(registry.default_model().logits, OnnxLogits)
    assert signal.detail["version"] == registry.DEFAULT_VERSION
    assert signal.detail["patches"] > 0


def test_the_shipped_onnx_export_matches_the_sha256_its_card_and_checksum_file_record() -> None:
    weights = registry.WEIGHTS_DIR / f"{registry.DEFAULT_VERSION}.pt"
    record = registry.read_card(weights)["onnx"]
    export = registry.onnx_path(weights)

    assert record["sha256"] == registry.sha256_of(export)
    assert record["bytes"] == export.stat().st_size < 1_000_000
    assert f"{record['sha256']}  {export.name}" in weights.with_suffix(".sha256").read_text()
    assert record["check"]["max_abs_logit_difference"] <= AGREEMENT


def copy_of_shipped(directory: Path) -> Path:
    source = registry.WEIGHTS_DIR / f"{registry.DEFAULT_VERSION}.pt"
    for suffix in (".pt", ".onnx", ".json"):
        shutil.copy(source.with_suffix(suffix), directory / source.with_suffix(suffix).name)
    return directory / source.name


@pytest.fixture
def default_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A copy of the shipped version made the default, for tests that damage it."""
    weights = copy_of_shipped(tmp_path)
    monkeypatch.setenv(registry.WEIGHTS_ENV, str(weights))
    registry.default_model.cache_clear()
    yield weights
    registry.default_model.cache_clear()


def test_a_missing_onnx_export_is_a_typed_error_and_leaves_the_signal_unavailable(default_weights: Path) -> None:
    registry.onnx_path(default_weights).unlink()

    with pytest.raises(registry.WeightsMissing, match=r"ONNX export .* is missing"):
        registry.load(default_weights)
    signal = model_signal(encode(scene(0)))

    assert signal.value == 0.5
    assert signal.detail["version"] is None
    assert signal.detail["error"] == "WeightsMissing"
    assert "unavailable" in signal.detail["summary"]


def test_an_altered_onnx_export_is_refused_before_it_is_loaded_and_leaves_the_signal_unavailable(
    default_weights: Path,
) -> None:
    export = registry.onnx_path(default_weights)
    altered = bytearray(export.read_bytes())
    altered[len(altered) // 2] ^= 0x01  # one bit of one weight: it would still load and score, differently
    export.write_bytes(bytes(altered))

    with pytest.raises(registry.WeightsMismatch, match="damaged or was replaced"):
        registry.load(default_weights)
    signal = model_signal(encode(scene(0)))

    assert signal.value == 0.5
    assert signal.detail["error"] == "WeightsMismatch"


def test_weights_saved_before_onnx_exports_are_refused_with_the_command_that_exports_them(tmp_path: Path) -> None:
    weights = copy_of_shipped(tmp_path)
    registry.onnx_path(weights).unlink()
    card = json.loads(weights.with_suffix(".json").read_text())
    del card["onnx"]
    weights.with_suffix(".json").write_text(json.dumps(card))

    with pytest.raises(registry.WeightsMissing, match="detector_version export"):
        registry.load(weights)
    out = StringIO()
    call_command("detector_version", "export", str(weights), stdout=out)

    assert json.loads(out.getvalue())["sha256"] == registry.sha256_of(registry.onnx_path(weights))
    assert registry.load(weights).card["onnx"]["sha256"] == json.loads(out.getvalue())["sha256"]


def test_the_export_command_refuses_weights_that_differ_from_their_card(tmp_path: Path) -> None:
    weights = copy_of_shipped(tmp_path)
    damaged = bytearray(weights.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    weights.write_bytes(bytes(damaged))

    with pytest.raises(CommandError, match="damaged or was replaced"):
        call_command("detector_version", "export", str(weights), stdout=StringIO())


def test_the_session_uses_the_configured_number_of_threads() -> None:
    config = apps.get_app_config("detection")
    try:
        with override_settings(TAKEDOWN_DETECTOR_THREADS=2):
            config.ready()
            two = registry.load()
    finally:
        config.ready()  # back to the settings' value
    one = registry.load()

    assert two.logits.session.get_session_options().intra_op_num_threads == 2  # type: ignore[attr-defined]
    assert one.logits.session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
