"""Evaluating the artefact model on folders of labelled images and on held-out processes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from detection.learned import data, metrics
from detection.learned.network import TorchLogits
from detection.learned.patches import select_patches
from detection.learned.registry import LoadedModel
from detection.learned.train import TrainConfig, train

ROBUSTNESS = {
    "jpeg_q70": lambda rgb: data.jpeg(rgb, 70),  # a platform's re-compression
    "resize_0.5": lambda rgb: data.resize(rgb, 0.5),  # a platform's downscaling
}


def probabilities(model: LoadedModel, images: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """Calibrated P(synthetic) per image; 0.5 for an image without a usable patch. The model runs where it
    was loaded (`registry.load_torch(..., device)`, or ONNX Runtime)."""
    out: list[float] = []
    for start in range(0, len(images), batch):
        patch_sets = [select_patches(data.grey(image)) for image in images[start : start + batch]]
        for logit in model.mean_logits(patch_sets):
            out.append(0.5 if logit is None else model.calibration.probability(logit))
    return np.array(out)


def load_folder(directory: Path, common_side: int | None) -> tuple[list[data.Item], list[np.ndarray]]:
    items = data.list_items(directory)
    if not items:
        raise ValueError(f"{directory} has no images under ai/ and real/.")
    images = []
    for item in items:
        if common_side:
            images.append(data.common_size(data.load_rgb(item.path, max_side=common_side * 2), common_side))
        else:
            images.append(data.load_rgb(item.path))
    return items, images


def report(items: list[data.Item], probs: np.ndarray, threshold: float, seed: int = 0) -> dict[str, Any]:
    """Overall figures, then each AI group against all real images and each real group against all AI."""
    labels = np.array([item.label for item in items])
    out: dict[str, Any] = {"overall": metrics.summary(labels, probs, threshold, seed)}
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[item.group].append(index)
    for group, members in sorted(groups.items()):
        label = items[members[0]].label
        others = [index for index, item in enumerate(items) if item.label != label]
        chosen = members + others
        out[group] = metrics.summary(labels[chosen], probs[chosen], threshold, seed)
        out[group]["mean_probability"] = round(float(probs[members].mean()), 4)
    return out


def evaluate_folder(
    model: LoadedModel,
    directory: Path,
    common_side: int | None = data.COMMON_SIDE,
    robustness: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    items, images = load_folder(directory, common_side)
    probs = probabilities(model, images)
    result: dict[str, Any] = {
        "data": str(directory),
        "model_version": model.version,
        "common_side": common_side,
        "clean": report(items, probs, model.threshold, seed),
    }
    if robustness:
        labels = np.array([item.label for item in items])
        for name, transform in ROBUSTNESS.items():
            changed = probabilities(model, [transform(image) for image in images])
            result[name] = metrics.summary(labels, changed, model.threshold, seed)
    return result


def evaluate_processes(
    model: LoadedModel,
    photos: list[np.ndarray],
    processes: tuple[str, ...],
    seed: int = 0,
    regions_per_photo: int = 8,
    size: int = 256,
    short_sides: tuple[int, int] = (320, 1400),
) -> dict[str, Any]:
    """Per process: AUC of processed regions against the same regions untouched, image-level.

    The interval resamples regions; regions of one photo are not independent, so it is narrower
    than a per-photo interval would be (the number of photos is reported)."""
    rng = np.random.default_rng(seed)
    regions = [
        region
        for photo in photos
        for copy in data.photo_scales(photo, rng, 1, short_sides)
        for region in data.eval_regions(copy, rng, regions_per_photo, size)
    ]
    real = probabilities(model, regions)
    out: dict[str, Any] = {"photos": len(photos), "regions": len(regions)}
    for name in processes:
        fake = probabilities(model, [data.PROCESSES[name](region, rng) for region in regions])
        labels = np.r_[np.zeros(len(real)), np.ones(len(fake))]
        out[name] = metrics.summary(labels, np.r_[real, fake], model.threshold, seed)
    return out


def group_folds(items: list[data.Item]) -> list[tuple[list[int], list[int]]]:
    """Group-wise folds: fold k tests AI group k and real group k (sorted), trains on all other groups.

    No group, hence no file, is ever on both sides of a fold. With unequal numbers of groups the
    extra groups are spread round-robin."""
    ai_groups = sorted({item.group for item in items if item.label == 1})
    real_groups = sorted({item.group for item in items if item.label == 0})
    folds = max(2, min(len(ai_groups), len(real_groups)))
    assignment: dict[str, int] = {}
    for groups in (ai_groups, real_groups):
        for index, group in enumerate(groups):
            assignment[group] = index % folds
    out = []
    for fold in range(folds):
        test = [index for index, item in enumerate(items) if assignment[item.group] == fold]
        train_ = [index for index, item in enumerate(items) if assignment[item.group] != fold]
        out.append((train_, test))
    return out


def cross_validate(
    directory: Path,
    config: TrainConfig,
    common_side: int = data.COMMON_SIDE,
    train_on_ai: bool = True,
    progress: Any = None,  # a text stream for the progress bar (None: no bar)
) -> dict[str, Any]:
    """Group-wise cross-validation on a labelled folder: a fresh model per fold, out-of-fold scores pooled."""
    items, images = load_folder(directory, common_side)
    probs = np.full(len(items), np.nan)
    folds = group_folds(items)
    fold_reports = []
    for number, (train_index, test_index) in enumerate(folds):
        if {items[i].path for i in train_index} & {items[i].path for i in test_index}:
            raise AssertionError("a file is on both sides of a fold")
        photos = [images[i] for i in train_index if items[i].label == 0]
        ai = [images[i] for i in train_index if items[i].label == 1] if train_on_ai else []
        fold_config = replace(config, short_sides=(min(config.short_sides[0], common_side), common_side))
        result = train(photos, fold_config, ai, progress)
        model = LoadedModel(
            f"cv-fold-{number}", TorchLogits(result.net), result.calibration, result.threshold, result.card
        )
        probs[test_index] = probabilities(model, [images[i] for i in test_index])
        fold_reports.append(
            {
                "fold": number,
                "test_groups": sorted({items[i].group for i in test_index}),
                "train_files": len(train_index),
                "test_files": len(test_index),
            }
        )
    return {
        "data": str(directory),
        "common_side": common_side,
        "train_on_ai": train_on_ai,
        "folds": fold_reports,
        "out_of_fold": report(items, probs, 0.5, config.seed),
    }


def compare_on_processes(
    model: LoadedModel, probe: Any, photos: list[np.ndarray], processes: tuple[str, ...], *,
    model_signal: tuple[float, tuple[float, float]], probe_range: tuple[float, float], seed: int = 0,
    regions_per_photo: int = 8, size: int = 256, short_sides: tuple[int, int] = (320, 1400),
) -> dict[str, Any]:
    """Per process, on the regions `evaluate_processes` uses: the artefact model's AUC, the embedding probe's,
    and the AUC of the two combined as the scorer combines them (each clipped to its signal's value range,
    weighted, log-odds added; `model_signal` = (weight, range) of the model signal, `probe_range` the embedding
    signal's range, its weight the probe's). Says whether the artefact model adds AUC the probe does not have."""
    from PIL import Image

    from detection.embedding import default_encoder

    model_weight, model_range = model_signal

    encoder = default_encoder()
    rng = np.random.default_rng(seed)
    regions = [
        region
        for photo in photos
        for copy in data.photo_scales(photo, rng, 1, short_sides)
        for region in data.eval_regions(copy, rng, regions_per_photo, size)
    ]

    def both(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        pictures = [Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)) for image in images]
        return probabilities(model, images), probe.probabilities(encoder.embed(pictures))

    def combined(cnn: np.ndarray, emb: np.ndarray) -> np.ndarray:
        def logit(p: np.ndarray, low: float, high: float) -> np.ndarray:
            q = np.clip(p, low, high)
            return np.log(q / (1 - q))

        return model_weight * logit(cnn, *model_range) + probe.weight * logit(emb, *probe_range)

    real_cnn, real_emb = both(regions)
    out: dict[str, Any] = {"photos": len(photos), "regions": len(regions), "probe": probe.version,
                           "model": model.version}
    for name in processes:
        fake_cnn, fake_emb = both([data.PROCESSES[name](region, rng) for region in regions])
        labels = np.r_[np.zeros(len(regions)), np.ones(len(regions))]
        row = {}
        for label, real, fake in (("model", real_cnn, fake_cnn), ("probe", real_emb, fake_emb),
                                  ("combined", combined(real_cnn, real_emb), combined(fake_cnn, fake_emb))):
            auc, low, high = metrics.bootstrap_auc(labels, np.r_[real, fake], seed=seed)
            row[label] = {"auc": round(auc, 4), "auc_ci95": [round(low, 4), round(high, 4)]}
        out[name] = row
    return out
