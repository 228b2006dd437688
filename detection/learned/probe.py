"""The embedding probe: a calibrated logistic regression on CLIP embeddings (`detection.embedding`).

A linear probe on frozen foundation-model features is what generalises with little data (UnivFD, CVPR
2023). It is trained on labelled folders (`train_detector --probe`) and on the moderators' confirmed
decisions (the weekly retraining job, `moderation.services.probe_training`), always with group-aware
cross-validation: files of one group, and near-duplicates (embeddings closer than
`NEAR_DUPLICATE_DISTANCE`), never sit on both sides of a split.

A probe is one JSON file, ``<version>.probe.json``: the weights (512 floats, scaling folded in), the
Platt calibration fitted on out-of-fold scores, the combiner weight measured from its calibration, how it
was trained and its evaluation. Loading checks the file's sha256 (the registry's, or `DEFAULT_SHA256` for
the shipped one). scikit-learn trains; scoring is a dot product.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detection.embedding import DIM, ENCODER_NAME, ENCODER_SHA256
from detection.learned import metrics

KIND = "embedding-probe"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SUFFIX = ".probe.json"
DEFAULT_VERSION = "probe-2026.12.06"
# sha256 of detection/weights/probe-2026.12.06.probe.json; `load` refuses the file if it differs.
DEFAULT_SHA256 = "a06c1256dbbfad8187db2b1cadf70e5ecec5e767f4dd25c78d5e0b3e30f0cd1c"

MIN_PER_CLASS = 10
"""Fewer confirmed examples of either class than this and no probe is trained: with 5 folds each test fold
would hold one or two of them, and an AUC from that says nothing."""

FOLDS = 5
C = 1.0
"""Inverse L2 strength of the logistic regression on standardised embeddings. Fixed in advance rather than
tuned on the 100 shared images, which would leave no data to measure the result on (docs/model-card.md)."""

NEAR_DUPLICATE_DISTANCE = 0.06
"""Cosine distance below which two embeddings count as the same picture (re-encoded, resized, cropped a
little): they join one group. Measured on shared-set images: re-encoded at JPEG q70 0.009-0.041, resized to
half 0.010-0.031, 5 % cropped off 0.024-0.051; the closest two different images of the set are 0.057 apart.
Flat synthetic graphics move further under JPEG (0.13 for a generated test scene at q70): copies of those may
stay separate groups, which makes cross-validation on them somewhat optimistic."""

MAX_WEIGHT = 0.5
"""The most the combiner trusts the probe, as much as the artefact model: it is learned evidence from a
small set, far weaker than a signed declaration."""


class NotEnoughExamples(ValueError):
    """Too few labelled examples of a class (or groups) to train and measure a probe; the message says how many."""


class ProbeUnavailable(Exception):
    """The probe file is missing, altered or unreadable; the message says which and what to do."""


@dataclass(frozen=True)
class Probe:
    version: str
    coef: np.ndarray  # (DIM,) on unit-length embeddings, standardisation folded in
    intercept: float
    platt_a: float  # p = sigmoid(platt_a * (coef . x + intercept) + platt_b)
    platt_b: float
    weight: float  # the combiner's weight (docs/model-card.md, "Combination")
    card: dict[str, Any]

    def decision(self, embeddings: np.ndarray) -> np.ndarray:
        return np.atleast_2d(embeddings) @ self.coef + self.intercept

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        return _sigmoid(self.platt_a * self.decision(embeddings) + self.platt_b)

    def probability(self, embedding: np.ndarray) -> float:
        return float(self.probabilities(embedding)[0])


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(values, -60.0, 60.0))))


def near_duplicate_groups(embeddings: np.ndarray, groups: Sequence[str]) -> list[str]:
    """`groups` with every near-duplicate pair (closer than `NEAR_DUPLICATE_DISTANCE`) joined into one group."""
    names = list(groups)
    parent = list(range(len(names)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first: dict[str, int] = {}
    for index, name in enumerate(names):
        parent[root(index)] = root(first.setdefault(name, index))
    if len(embeddings):
        close = np.argwhere((1.0 - embeddings @ embeddings.T) < NEAR_DUPLICATE_DISTANCE)
        for a, b in close:
            if a < b:
                parent[root(int(a))] = root(int(b))
    return [f"g{root(index)}" for index in range(len(names))]


def check_enough(labels: np.ndarray, groups: Sequence[str], minimum: int = MIN_PER_CLASS) -> None:
    """Raise `NotEnoughExamples` unless each class has `minimum` examples and there are groups for the folds."""
    labels = np.asarray(labels)
    counts = {name: int((labels == value).sum()) for value, name in ((1, "synthetic"), (0, "real"))}
    short = [f"{counts[name]} {name}" for name in counts if counts[name] < minimum]
    if short:
        raise NotEnoughExamples(
            f"The probe needs at least {minimum} examples of each class to train and be measured; there are "
            f"{counts['synthetic']} synthetic and {counts['real']} real, so too few {' and '.join(short)}. "
            "Confirm more cases (or add labelled images) and train again."
        )
    if _splits(labels, groups, FOLDS) < 2:
        raise NotEnoughExamples("Cross-validation needs at least two groups (generators, photo categories or cases, "
                                "near-duplicates joined) of each class; add examples from other sources.")


def _splits(labels: np.ndarray, groups: Sequence[str], count: int) -> int:
    """Folds such that every training part holds at least one group of each class: no more than the fewest
    groups a class has, minus one."""
    per_class = [len({g for g, label in zip(groups, labels, strict=True) if label == value}) for value in (0, 1)]
    return max(0, min(count, min(per_class)))


def folds(labels: np.ndarray, groups: Sequence[str], count: int = FOLDS, seed: int = 0) -> list[tuple[Any, Any]]:
    """Group-aware stratified folds (scikit-learn's StratifiedGroupKFold): no group on both sides."""
    from sklearn.model_selection import StratifiedGroupKFold

    splits = _splits(np.asarray(labels), groups, count)
    if splits < 2:
        raise NotEnoughExamples("Too few groups of each class for group-aware cross-validation.")
    splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def _pipeline(c: float = C) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, class_weight="balanced"))


def _fit_calibrated(x: np.ndarray, y: np.ndarray, groups: Sequence[str], seed: int) -> Any:
    """Logistic regression on all of `x`, Platt-calibrated on its out-of-fold scores (group-aware folds):
    scikit-learn's CalibratedClassifierCV with ensemble=False."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    if _splits(y, groups, FOLDS) >= 2:
        cv: Any = folds(y, groups, seed=seed)
    else:  # inside an outer fold of a set with few groups: calibration folds by file (the AUC stays grouped)
        cv = StratifiedKFold(n_splits=max(2, min(FOLDS, int(np.bincount(y).min()))), shuffle=True, random_state=seed)
    model = CalibratedClassifierCV(_pipeline(), method="sigmoid", cv=cv, ensemble=False)
    return model.fit(x, y)


def _flatten(model: Any) -> tuple[np.ndarray, float, float, float]:
    """(coef, intercept, platt a, platt b) of a fitted calibrated pipeline, the scaler folded into the weights."""
    (calibrated,) = model.calibrated_classifiers_
    scaler, regression = calibrated.estimator.steps[0][1], calibrated.estimator.steps[1][1]
    coef = regression.coef_[0] / scaler.scale_
    intercept = float(regression.intercept_[0] - np.dot(coef, scaler.mean_))
    (calibrator,) = calibrated.calibrators
    # scikit-learn's sigmoid calibration: p = 1 / (1 + exp(a * f + b))
    return coef.astype(np.float64), intercept, -float(calibrator.a_), -float(calibrator.b_)


def calibration_slope(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The slope of a logistic regression of the labels on logit(p): 1 when p is calibrated, below 1 when the
    probabilities are too confident (on data the probe did not see)."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    logits = np.log(p / (1 - p)).reshape(-1, 1)
    if np.ptp(logits) < 1e-9:
        return 0.0
    return float(LogisticRegression(C=1e6, max_iter=1000).fit(logits, labels).coef_[0][0])


def cross_validate(x: np.ndarray, y: np.ndarray, groups: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Group-aware cross-validation of the whole procedure (calibration included, fitted inside each training
    fold): pooled out-of-fold AUC with its bootstrap interval, accuracy, ECE and the calibration slope."""
    out = np.zeros(len(y))
    for train, test in folds(y, groups, seed=seed):
        inner = [groups[i] for i in train]
        model = _fit_calibrated(x[train], y[train], inner, seed)
        out[test] = model.predict_proba(x[test])[:, 1]
    figures = metrics.summary(y, out, 0.5, seed=seed)
    figures["calibration_slope"] = round(calibration_slope(y, out), 4)
    figures["folds"] = len(folds(y, groups, seed=seed))
    figures["groups"] = len(set(groups))
    return figures


def train(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    version: str,
    *,
    seed: int = 0,
    minimum: int = MIN_PER_CLASS,
    sources: dict[str, Any] | None = None,
) -> Probe:
    """Train, measure and calibrate a probe on unit-length embeddings `x`, labels `y` (1 = synthetic).

    `groups` names what must stay on one side of a split (generator, photo category, case); near-duplicates
    are joined to them here. Raises `NotEnoughExamples` below `minimum` per class."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=int)
    if len(x) != len(y) or len(y) != len(groups):
        raise ValueError(f"{len(x)} embeddings, {len(y)} labels and {len(groups)} groups: they must match.")
    joined = near_duplicate_groups(x, groups)
    check_enough(y, joined, minimum)
    evaluation = cross_validate(x, y, joined, seed)
    model = _fit_calibrated(x, y, joined, seed)
    coef, intercept, a, b = _flatten(model)
    weight = round(min(MAX_WEIGHT, max(0.0, evaluation["calibration_slope"])), 4)
    if evaluation["auc_ci95"][0] <= 0.5:  # not measurably better than chance: recorded, never combined
        weight = 0.0
    card = {
        "kind": KIND,
        "version": version,
        "encoder": {"name": ENCODER_NAME, "sha256": ENCODER_SHA256},
        "coef": [round(float(v), 8) for v in coef],
        "intercept": round(intercept, 8),
        "platt": {"a": round(a, 8), "b": round(b, 8)},
        "weight": weight,
        "training": {
            "examples": len(y),
            "synthetic": int(y.sum()),
            "real": int(len(y) - y.sum()),
            "groups": len(set(joined)),
            "seed": seed,
            "c": C,
            "near_duplicate_distance": NEAR_DUPLICATE_DISTANCE,
            **(sources or {}),
        },
        "evaluation": {"cross_validation": evaluation},
    }
    return from_card(card)


def from_card(card: dict[str, Any]) -> Probe:
    coef = np.asarray(card["coef"], dtype=np.float64)
    if coef.shape != (DIM,) or not np.isfinite(coef).all():
        raise ProbeUnavailable(f"Probe {card.get('version')!r} has {coef.shape} weights, not {DIM} finite ones.")
    return Probe(
        version=str(card["version"]),
        coef=coef,
        intercept=float(card["intercept"]),
        platt_a=float(card["platt"]["a"]),
        platt_b=float(card["platt"]["b"]),
        weight=float(card["weight"]),
        card=card,
    )


def save(probe: Probe, directory: Path) -> Path:
    """Write ``<version>.probe.json``; return its path (its sha256 is what the registry records)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{probe.version}{SUFFIX}"
    path.write_text(json.dumps(probe.card, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_probe_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def load(path: Path, sha256: str) -> Probe:
    """The probe at `path`, refused unless its sha256 is `sha256`. Raises `ProbeUnavailable`."""
    if not path.is_file():
        raise ProbeUnavailable(f"The embedding probe {path} is missing. Restore it, or retrain with "
                               "`manage.py train_detector --probe`.")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ProbeUnavailable(f"The embedding probe {path.name} has sha256 {actual[:12]}…, not the recorded "
                               f"{sha256[:12]}…: it is damaged or was replaced. Restore it or register it again.")
    try:
        card = json.loads(data)
        if card.get("kind") != KIND:
            raise ProbeUnavailable(f"{path.name} is not an embedding probe (kind {card.get('kind')!r}).")
        return from_card(card)
    except (ValueError, KeyError, TypeError) as exc:
        raise ProbeUnavailable(f"The embedding probe {path.name} cannot be read ({exc}).") from exc


@functools.cache
def default_probe() -> Probe:
    """The shipped probe, loaded once per process. Raises `ProbeUnavailable`."""
    return load(WEIGHTS_DIR / f"{DEFAULT_VERSION}{SUFFIX}", DEFAULT_SHA256)


def learning_curve(
    x: np.ndarray, y: np.ndarray, groups: Sequence[str], sizes: Sequence[int], seed: int = 0
) -> list[dict[str, Any]]:
    """Pooled out-of-fold AUC (bootstrap 95% CI) against the number of labelled training examples.

    Group-aware folds are fixed; for each size every fold's training part is cut to that many examples
    (stratified, drawn at random), a probe is fitted on them and its test fold scored. Sizes larger than a
    training fold are reported at the fold's size ("all")."""
    from sklearn.model_selection import train_test_split

    joined = near_duplicate_groups(np.asarray(x, dtype=np.float32), groups)
    splits = folds(y, joined, seed=seed)
    smallest = min(len(train) for train, _ in splits)
    rows = []
    for size in sorted(set(min(int(s), smallest) for s in sizes)):
        out = np.zeros(len(y))
        for fold, (train, test) in enumerate(splits):
            chosen = train
            if size < len(train):
                chosen, _ = train_test_split(train, train_size=size, stratify=y[train], random_state=seed + fold)
            model = _pipeline().fit(x[chosen], y[chosen])
            out[test] = model.decision_function(x[test])
        auc, low, high = metrics.bootstrap_auc(y, out, seed=seed)
        rows.append({"examples": size, "auc": round(auc, 4), "auc_ci95": [round(low, 4), round(high, 4)],
                     "folds": len(splits), "all": size == smallest})
    return rows


def logit(probability: float) -> float:
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def embed_folders(
    directories: Sequence[Path], progress: Any = None
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Embeddings, labels, groups and file names of DIR/ai and DIR/real for each directory (groups as
    `detection.learned.data.list_items` names them, prefixed by the directory when there are several).
    Images are decoded whole, as scoring decodes them (an operator's own labelled files, so no format
    allow-list here). Raises `EncoderUnavailable`."""
    from PIL import Image

    from detection.embedding import default_encoder
    from detection.learned.data import list_items

    encoder = default_encoder()
    vectors, labels, groups, names = [], [], [], []
    for directory in directories:
        items = list_items(directory)
        for index, item in enumerate(items):
            with Image.open(item.path) as image:
                image.load()
                vectors.append(encoder.embed_one(image))
            labels.append(item.label)
            groups.append(f"{directory}:{item.group}" if len(directories) > 1 else item.group)
            names.append(str(item.path))
            if progress is not None and (index + 1) % 25 == 0:
                progress.write(f"  embedded {index + 1} of {len(items)} images from {directory}")
    x = np.stack(vectors) if vectors else np.zeros((0, DIM), dtype=np.float32)
    return x, np.asarray(labels, dtype=int), groups, names
