"""Evaluation arithmetic: ROC AUC with a bootstrap interval, accuracy, calibration error."""

from __future__ import annotations

from typing import Any

import numpy as np

BOOTSTRAP_ROUNDS = 2000  # resamples for the 95% interval; the interval's own noise is then ~0.005
ECE_BINS = 10


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (scipy.stats.rankdata's default, without scipy)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    sizes = np.diff(np.r_[first, len(values)])
    mean_rank = first + (sizes + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group]
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties counting half."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> tuple[float, float, float]:
    """AUC and its percentile 95% interval, resampling positives and negatives separately."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    point = roc_auc(labels, scores)
    positive, negative = scores[labels], scores[~labels]
    if len(positive) == 0 or len(negative) == 0:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.empty(rounds)
    both = np.r_[np.ones(len(positive), bool), np.zeros(len(negative), bool)]
    for index in range(rounds):
        sample = np.r_[rng.choice(positive, len(positive)), rng.choice(negative, len(negative))]
        values[index] = roc_auc(both, sample)
    low, high = np.percentile(values, [2.5, 97.5])
    return point, float(low), float(high)


def accuracy(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> float:
    return float(np.mean((np.asarray(probabilities) >= threshold) == np.asarray(labels).astype(bool)))


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean predicted probability| over equal-width bins, weighted by bin size."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            total += members.mean() * abs(labels[members].mean() - probabilities[members].mean())
    return float(total)


def summary(labels: np.ndarray, probabilities: np.ndarray, threshold: float, seed: int = 0) -> dict[str, Any]:
    auc, low, high = bootstrap_auc(labels, probabilities, seed=seed)
    labels = np.asarray(labels).astype(bool)
    return {
        "n_ai": int(labels.sum()),
        "n_real": int((~labels).sum()),
        "auc": round(auc, 4),
        "auc_ci95": [round(low, 4), round(high, 4)],
        "accuracy": round(accuracy(labels, probabilities, threshold), 4),
        "threshold": round(threshold, 4),
        "ece": round(expected_calibration_error(labels, probabilities), 4),
    }
