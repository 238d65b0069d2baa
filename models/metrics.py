"""Evaluation metrics for ranked, calibrated risk: pure functions of (labels, scores)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k highest scores (ties broken by position, so it is deterministic)."""
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[np.argsort(-scores, kind="stable")[:k]] = True
    return chosen


def capacity_k(n: int, capacity: float) -> int:
    """How many people a partnership can work with: `capacity` of the cohort, at least one."""
    return max(1, math.ceil(capacity * n))


def precision_recall_at_k(y: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, float]:
    chosen = top_k(scores, k)
    hits = float(y[chosen].sum())
    return hits / k, hits / max(float(y.sum()), 1.0)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed - predicted| over equal-frequency bins of predicted probability."""
    order = np.argsort(p, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return error / len(p)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    order = np.argsort(p, kind="stable")
    rows = [
        {"predicted": p[c].mean(), "observed": y[c].mean(), "n": len(c)} for c in np.array_split(order, bins) if len(c)
    ]
    return pd.DataFrame(rows)


def evaluate(y: np.ndarray, p: np.ndarray, capacity: float, groups: np.ndarray | None = None) -> dict[str, float]:
    """ROC AUC, average precision, precision/recall at k (overall and per area), Brier, ECE.

    Per area, each area works with `capacity` of its own cohort; the mean and the worst area are reported.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    k = capacity_k(len(y), capacity)
    precision, recall = precision_recall_at_k(y, p, k)
    metrics = {
        "roc_auc": roc_auc_score(y, p) if 0 < y.sum() < len(y) else float("nan"),
        "average_precision": average_precision_score(y, p) if y.sum() > 0 else float("nan"),
        "precision_at_k": precision,
        "recall_at_k": recall,
        "k": float(k),
        "brier": brier_score_loss(y, p),
        "ece": expected_calibration_error(y, p),
        "prevalence": float(y.mean()),
        "n": float(len(y)),
    }
    if groups is not None:
        per_area = [
            precision_recall_at_k(y[groups == g], p[groups == g], capacity_k(int((groups == g).sum()), capacity))[0]
            for g in pd.unique(groups)
        ]
        metrics["precision_at_k_area_mean"] = float(np.mean(per_area))
        metrics["precision_at_k_area_min"] = float(np.min(per_area))
    return metrics
