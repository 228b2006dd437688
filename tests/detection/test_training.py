from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from detection.learned import data, metrics, registry
from detection.learned.evaluate import group_folds
from detection.learned.processes import PROCESSES
from detection.learned.train import TrainConfig, train
from tests.detection.images import scene

TINY = TrainConfig(
    seed=3,
    epochs=1,
    regions_per_photo=3,
    scales_per_photo=1,
    short_sides=(200, 256),
    width=8,
    eval_regions_per_photo=2,
    eval_region=128,
    device="cpu",
)


def photos(count: int = 6) -> list[np.ndarray]:
    return [scene(seed, (256, 192)).astype(np.float32) for seed in range(count)]


def write_folder(root: Path, real: int = 6, ai: int = 4) -> Path:
    """DIR/real: generated scenes; DIR/ai: the same kind of scene upsampled nearest-neighbour."""
    for index in range(real):
        (root / "real").mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene(index, (256, 192))).save(root / "real" / f"scene_{index}.png")
    for index in range(ai):
        (root / "ai").mkdir(parents=True, exist_ok=True)
        upsampled = PROCESSES["nearest"](scene(100 + index, (256, 192)).astype(np.float32), np.random.default_rng(0))
        Image.fromarray(np.clip(upsampled, 0, 255).astype(np.uint8)).save(root / "ai" / f"gen_{index}.png")
    return root


def test_training_with_the_same_seed_gives_the_same_weights() -> None:
    first = train(photos(), TINY)
    second = train(photos(), TINY)

    for (name, a), (_, b) in zip(first.net.state_dict().items(), second.net.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert first.card["training"]["config"]["seed"] == 3
    assert first.card["training"]["photos_validation"] == 2  # every 5th photo: 0 and 5


def test_saved_weights_load_back_with_their_sha256_and_card(tmp_path: Path) -> None:
    result = train(photos(), TINY)

    path = registry.save(result.net, result.calibration, result.threshold, result.card, tmp_path, "test-v1")
    loaded = registry.load(path)

    assert loaded.version == "test-v1"
    assert loaded.card["sha256"] == registry.sha256_of(path)
    assert loaded.card["onnx"]["sha256"] == registry.sha256_of(tmp_path / "test-v1.onnx")  # what `load` runs
    assert loaded.calibration.a == pytest.approx(result.calibration.a)
    assert "## Training" in (tmp_path / "test-v1.md").read_text()


def test_training_refuses_too_few_photos() -> None:
    with pytest.raises(ValueError, match="at least 6 photos"):
        train(photos(3), TINY)


def test_train_detector_writes_versioned_weights_and_a_model_card(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data")
    out = StringIO()
    err = StringIO()

    call_command(
        "train_detector",
        "--data",
        str(folder),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "w"),
        "--name",
        "smoke-1",
        "--regions",
        "3",
        "--scales",
        "1",
        "--device",
        "cpu",
        stdout=out,
        stderr=err,
    )

    line = json.loads(out.getvalue())
    assert line["version"] == "smoke-1"
    assert (tmp_path / "w" / "smoke-1.pt").is_file()
    assert line["sha256"] == registry.sha256_of(tmp_path / "w" / "smoke-1.pt")
    assert line["onnx_sha256"] == registry.sha256_of(tmp_path / "w" / "smoke-1.onnx")
    card = json.loads((tmp_path / "w" / "smoke-1.json").read_text())
    assert card["training"]["sources"]["real_files"]
    assert 0.0 <= card["evaluation"]["validation_processes"]["auc"] <= 1.0
    assert "train_detector" in err.getvalue()  # the progress bar


def test_train_detector_says_to_install_the_training_extra_before_training_without_onnx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_folder(tmp_path / "data")
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails as it does where it is not installed

    with pytest.raises(CommandError, match=r"needs the `onnx` package.*\.\[train\]"):
        call_command("train_detector", "--data", str(folder), "--out", str(tmp_path / "w"), stderr=StringIO())
    assert not (tmp_path / "w").exists()


def test_train_detector_names_an_unknown_process(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="unknown diffusion"):
        call_command("train_detector", "--data", str(tmp_path), "--processes", "nearest,diffusion")


def test_evaluate_detector_reports_auc_with_interval_accuracy_calibration_and_robustness(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data")
    out = StringIO()

    call_command("evaluate_detector", "--data", str(folder), "--common-size", "0", stdout=out, stderr=StringIO())

    result = json.loads(out.getvalue())
    overall = result["clean"]["overall"]
    assert (overall["n_ai"], overall["n_real"]) == (4, 6)
    low, high = overall["auc_ci95"]
    assert low <= overall["auc"] <= high
    assert {"accuracy", "ece", "threshold"} <= overall.keys()
    assert {"ai/ai", "real/real"} <= result["clean"].keys() or {"ai/gen", "real/scene"} <= result["clean"].keys()
    assert {"jpeg_q70", "resize_0.5"} <= result.keys()


def test_evaluate_detector_asks_for_both_folders(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="ai/ and real/"):
        call_command("evaluate_detector", "--data", str(tmp_path))


def test_groups_come_from_subfolders_or_name_prefixes(tmp_path: Path) -> None:
    for relative in ("ai/gan_1.jpg", "ai/diffusion2_3.jpg", "ai/sdxl/x.png", "real/people_1.jpg", "real/plain.jpg"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")

    groups = {item.path.name: item.group for item in data.list_items(tmp_path)}

    assert groups == {
        "gan_1.jpg": "ai/gan",
        "diffusion2_3.jpg": "ai/diffusion2",
        "x.png": "ai/sdxl",
        "people_1.jpg": "real/people",
        "plain.jpg": "real/real",
    }


def test_group_wise_folds_never_put_a_group_on_both_sides(tmp_path: Path) -> None:
    items = [
        data.Item(Path(f"{group}/{n}"), label, group)
        for label, prefix in ((1, "ai/g"), (0, "real/r"))
        for g in range(5)
        for n in range(3)
        for group in [f"{prefix}{g}"]
    ]

    folds = group_folds(items)

    assert len(folds) == 5
    tested = [index for _, test in folds for index in test]
    assert sorted(tested) == list(range(len(items)))  # every file tested exactly once
    for train_index, test_index in folds:
        assert not {items[i].group for i in train_index} & {items[i].group for i in test_index}


def test_auc_is_the_probability_a_positive_outranks_a_negative() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert metrics.roc_auc(labels, np.array([3, 2, 1, 0.5, 2, 0])) == pytest.approx(7.5 / 9)
    assert metrics.roc_auc(labels, np.array([6, 5, 4, 3, 2, 1])) == 1.0


def test_the_bootstrap_interval_contains_the_estimate_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(size=20) + np.r_[np.ones(10), np.zeros(10)]
    large = rng.normal(size=400) + np.r_[np.ones(200), np.zeros(200)]
    labels_small = np.r_[np.ones(10), np.zeros(10)]
    labels_large = np.r_[np.ones(200), np.zeros(200)]

    point, low, high = metrics.bootstrap_auc(labels_small, small, rounds=300)
    _, low_large, high_large = metrics.bootstrap_auc(labels_large, large, rounds=300)

    assert low <= point <= high
    assert high_large - low_large < high - low


def test_calibration_error_is_zero_when_predictions_match_observed_rates() -> None:
    probabilities = np.r_[np.full(10, 0.2), np.full(10, 0.8)]
    labels = np.r_[np.r_[np.ones(2), np.zeros(8)], np.r_[np.ones(8), np.zeros(2)]]

    assert metrics.expected_calibration_error(labels, probabilities) == pytest.approx(0.0)
    assert metrics.expected_calibration_error(labels, 1 - probabilities) > 0.5
