"""The embedding probe: trained by `train_detector --probe` from a temporary labelled set, group-aware folds,
the minimum-examples rule, and `evaluate_detector --learning-curve`."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image, ImageDraw, ImageFilter

from detection.learned import probe as probes
from tests.detection.images import encode

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "detection-eval"


def pattern(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A generated picture: stripes, rings, a chessboard or a gradient in two random colours, with ellipses.
    Varied enough that CLIP sees different pictures (plain generated scenes all look alike to it)."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = seed % 4
    if kind == 0:
        angle, frequency = rng.random() * np.pi, rng.uniform(0.03, 0.2)
        mix = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * frequency) + 1) / 2
    elif kind == 1:
        cx, cy, frequency = rng.random() * width, rng.random() * height, rng.uniform(0.05, 0.3)
        mix = (np.sin(np.hypot(xx - cx, yy - cy) * frequency) + 1) / 2
    elif kind == 2:
        square = int(rng.integers(8, 48))
        mix = ((xx // square + yy // square) % 2).astype(np.float32)
    else:
        mix = xx / width * rng.random() + yy / height * rng.random()
        mix = mix / max(float(mix.max()), 1e-6)
    one, two = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    image = Image.fromarray((one * mix[..., None] + two * (1 - mix[..., None])).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 8))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = (x0, y0, x0 + int(rng.integers(10, width // 2)), y0 + int(rng.integers(10, height // 2)))
        draw.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def labelled_set(root: Path, per_group: int = 4, groups: int = 3) -> Path:
    """ai/: patterns reduced to 5 flat colours (poster-like); real/: other patterns blurred, with grain.
    Groups by file-name prefix, as list_items reads them; each group has its own kind of pattern."""
    (root / "ai").mkdir(parents=True, exist_ok=True)
    (root / "real").mkdir(parents=True, exist_ok=True)
    for group in range(groups):
        for index in range(per_group):
            # One kind of pattern per group (the kind is seed % 4): near-duplicates are then found within a group,
            # where they change nothing, rather than across groups, where they would join them.
            seed = 4 * (10 * group + index) + group % 4
            pattern(seed).quantize(5).convert("RGB").save(root / "ai" / f"poster{group}_{index}.png")
            soft = np.asarray(pattern(seed + 500).filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)
            grain = np.clip(soft + np.random.default_rng(seed).normal(0, 6, soft.shape), 0, 255).astype(np.uint8)
            (root / "real" / f"photo{group}_{index}.jpg").write_bytes(encode(grain, "JPEG", quality=90))
    return root


def test_the_probe_trains_from_a_labelled_folder_and_records_its_cross_validation(tmp_path: Path) -> None:
    data = labelled_set(tmp_path / "set")
    out = StringIO()

    call_command("train_detector", "--probe", "--data", str(data), "--out", str(tmp_path / "w"), "--name", "probe-t",
                 "--min-per-class", "6", stdout=out, stderr=StringIO())

    summary = json.loads(out.getvalue())
    path = tmp_path / "w" / "probe-t.probe.json"
    probe = probes.load(path, summary["sha256"])
    evaluation = probe.card["evaluation"]["cross_validation"]
    assert (evaluation["n_ai"], evaluation["n_real"]) == (12, 12)
    assert evaluation["groups"] >= 4  # six named groups, fewer where near-duplicates joined some
    assert evaluation["auc"] > 0.9  # flat posters and soft grainy pictures are far apart in CLIP's space
    assert 0.0 < probe.weight <= probes.MAX_WEIGHT
    assert probe.card["encoder"]["sha256"] == probes.ENCODER_SHA256


def test_the_probe_refuses_to_train_below_the_minimum_per_class_and_says_how_many(tmp_path: Path) -> None:
    data = labelled_set(tmp_path / "set", per_group=2)

    with pytest.raises(CommandError, match=r"at least 10 examples of each class.*6 synthetic and 6 real"):
        call_command("train_detector", "--probe", "--data", str(data), "--out", str(tmp_path / "w"),
                     stdout=StringIO(), stderr=StringIO())

    assert not (tmp_path / "w").exists()


def test_a_probe_file_changed_after_training_is_refused(tmp_path: Path) -> None:
    path = probes.save(probes.default_probe(), tmp_path)
    recorded = probes.sha256_of(path)
    path.write_text(path.read_text().replace('"weight": ', '"weight": 1', 1))

    with pytest.raises(probes.ProbeUnavailable, match="damaged or was replaced"):
        probes.load(path, recorded)


def test_near_duplicates_join_one_group_so_no_fold_splits_them() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 512)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    copy = base[0] + 0.01 * rng.normal(size=512).astype(np.float32)
    vectors = np.vstack([base, copy / np.linalg.norm(copy)])

    groups = probes.near_duplicate_groups(vectors, ["a", "b", "c", "c", "e"])

    assert groups[0] == groups[4]  # the copy joined its original across file groups
    assert groups[2] == groups[3]  # a named group stays one group
    assert len(set(groups)) == 3


def test_the_learning_curve_reports_auc_with_an_interval_per_training_size(tmp_path: Path) -> None:
    data = labelled_set(tmp_path / "set", per_group=4)
    out, err = StringIO(), StringIO()

    call_command("evaluate_detector", "--data", str(data), "--learning-curve", "--sizes", "4,8,100",
                 stdout=out, stderr=err)

    result = json.loads(out.getvalue())
    sizes = [row["examples"] for row in result["learning_curve"]]
    assert sizes[:2] == [4, 8] and result["learning_curve"][-1]["all"]
    assert all(row["auc_ci95"][0] <= row["auc"] <= row["auc_ci95"][1] for row in result["learning_curve"])
    assert "learning curve (group-aware CV" in err.getvalue()


@pytest.mark.shared_data
def test_the_probe_beats_chance_on_the_shared_set_in_group_aware_cross_validation() -> None:
    x, y, groups, _ = probes.embed_folders([SHARED])

    figures = probes.cross_validate(x, y, probes.near_duplicate_groups(x, groups))

    assert figures["auc_ci95"][0] > 0.5


def test_the_process_comparison_reports_each_model_and_their_combination_per_process() -> None:
    from detection.learned.evaluate import compare_on_processes
    from detection.learned.registry import load
    from detection.signals import embedding as embedding_signal
    from detection.signals import model as model_signal

    photo = np.asarray(pattern(3, (640, 480)), dtype=np.float32)

    result = compare_on_processes(load(), probes.default_probe(), [photo], ("nearest", "autoencoder"),
                                  model_signal=(model_signal.WEIGHT, model_signal.VALUE_RANGE),
                                  probe_range=embedding_signal.VALUE_RANGE, regions_per_photo=4,
                                  short_sides=(480, 480))

    assert result["regions"] == 4 and result["probe"] == probes.DEFAULT_VERSION
    for process in ("nearest", "autoencoder"):
        assert set(result[process]) == {"model", "probe", "combined"}
        assert all(0.0 <= row["auc"] <= 1.0 for row in result[process].values())
