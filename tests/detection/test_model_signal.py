from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from detection.learned import registry
from detection.learned.patches import MAX_PATCHES, PATCH, select_patches
from detection.learned.processes import HELD_OUT_PROCESSES, PROCESSES, TRAIN_PROCESSES
from detection.signals.model import VALUE_RANGE, WEIGHT, model_signal
from tests.detection.images import encode, scene

SHIPPED_LIMIT_BYTES = 2_000_000  # the issue: shipped default weights stay small


def test_the_shipped_weights_are_small_and_match_their_recorded_sha256() -> None:
    weights = registry.WEIGHTS_DIR / f"{registry.DEFAULT_VERSION}.pt"
    card = registry.load(weights).card

    assert weights.stat().st_size < SHIPPED_LIMIT_BYTES
    assert card["sha256"] == registry.sha256_of(weights)
    assert (registry.WEIGHTS_DIR / f"{registry.DEFAULT_VERSION}.sha256").read_text().startswith(card["sha256"])
    assert (registry.WEIGHTS_DIR / f"{registry.DEFAULT_VERSION}.md").is_file()


def test_the_shipped_card_says_which_processes_were_held_out_and_how_they_scored() -> None:
    card = registry.load().card
    held = card["evaluation"]["held_out_photos"]

    assert set(held["unseen_processes"]) == set(HELD_OUT_PROCESSES)
    assert set(held["trained_processes"]) == set(TRAIN_PROCESSES)
    for name in PROCESSES:
        assert 0.0 <= held[name]["auc"] <= 1.0
        low, high = held[name]["auc_ci95"]
        assert low <= held[name]["auc"] <= high


def test_damaged_weights_are_refused_with_a_message_that_says_what_to_do(tmp_path: Path) -> None:
    source = registry.WEIGHTS_DIR / f"{registry.DEFAULT_VERSION}.pt"
    copy = tmp_path / source.name
    for suffix in (".pt", ".onnx", ".json"):
        shutil.copy(source.with_suffix(suffix), copy.with_suffix(suffix))
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))

    registry.load(copy)  # scoring reads the ONNX export, which is intact (tests/detection/test_onnx_model.py)
    with pytest.raises(registry.WeightsError, match="damaged or was replaced"):
        registry.load_torch(copy)


def test_missing_weights_leave_the_signal_neutral_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(registry.WEIGHTS_ENV, str(tmp_path / "none.pt"))
    registry.default_model.cache_clear()
    try:
        signal = model_signal(encode(scene(0)))
    finally:
        monkeypatch.delenv(registry.WEIGHTS_ENV)
        registry.default_model.cache_clear()

    assert signal.value == 0.5
    assert "unavailable" in signal.detail["summary"]


def test_it_reads_the_most_textured_patches_at_native_resolution() -> None:
    plane = np.zeros((256, 448), dtype=np.float32)  # a 4 x 7 grid of tiles
    plane[64:128, 128:192] = np.random.default_rng(0).random((64, 64))

    patches = select_patches(plane)

    assert patches.shape == (1, PATCH, PATCH)  # only the one textured tile; flat tiles are skipped
    assert abs(float(patches[0].mean())) < 1e-4


def test_its_value_stays_within_the_range_no_learned_judgement_exceeds() -> None:
    signal = model_signal(encode(scene(3, (640, 480))))

    assert VALUE_RANGE[0] <= signal.value <= VALUE_RANGE[1]
    assert signal.weight == WEIGHT
    assert signal.detail["version"] == registry.DEFAULT_VERSION
    assert 0 < signal.detail["patches"] <= MAX_PATCHES
    assert "model card" in signal.detail["summary"]


def test_an_image_smaller_than_a_patch_gives_no_evidence() -> None:
    tiny = np.random.default_rng(0).integers(0, 256, size=(32, 48, 3), dtype=np.uint8)
    signal = model_signal(encode(tiny))

    assert signal.value == 0.5
    assert signal.detail["patches"] == 0


def test_it_does_not_raise_on_garbage() -> None:
    assert model_signal(b"not an image").value == 0.5


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_every_process_keeps_the_shape_and_is_reproducible_from_its_seed(name: str) -> None:
    region = scene(1, (128, 128)).astype(np.float32)

    first = PROCESSES[name](region, np.random.default_rng(5))
    second = PROCESSES[name](region, np.random.default_rng(5))

    assert first.shape == region.shape
    assert np.array_equal(first, second)
    assert not np.array_equal(first, region)
