"""Mitigation by post-processing: fairlearn's ThresholdOptimizer on the calibrated risk.

The optimiser picks group-specific (randomised) thresholds under the config's constraint (for an
assistive use, equal true positive rates, i.e. equal false negative rates). It needs the protected
characteristic at decision time, which the report states plainly. Its cost is reported side by
side: the model at capacity, the model at the same selection share as the mitigated one, and the
mitigated decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from riskloop.models.metrics import capacity_k, top_k

CONSTRAINT = {"assistive": "true_positive_rate_parity", "punitive": "false_positive_rate_parity"}


class RiskAsClassifier(ClassifierMixin, BaseEstimator):
    """A prefit classifier whose probability is a given risk function (for ThresholdOptimizer)."""

    def __init__(self, risk: Callable[[pd.DataFrame], np.ndarray] | None = None):
        self.risk = risk

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = self.risk(X)
        return np.column_stack([1 - p, p])


@dataclass
class Mitigation:
    optimizer: ThresholdOptimizer
    sensitive: str
    constraint: str
    comparison: pd.DataFrame  # rows: model at capacity, model at mitigated share, mitigated
    by_group: pd.DataFrame  # TPR / FPR / selection per group before and after


def _decision_metrics(y: np.ndarray, selected: np.ndarray) -> dict[str, float]:
    selected = selected.astype(bool)
    return {
        "selected": float(selected.sum()),
        "selection_share": float(selected.mean()),
        "precision": float(y[selected].mean()) if selected.any() else float("nan"),
        "recall": float(y[selected].sum() / max(y.sum(), 1)),
    }


def _per_group(y, selected, groups) -> pd.DataFrame:
    frame = pd.DataFrame({"y": y, "s": selected.astype(bool), "g": groups})
    out = frame.groupby("g").apply(
        lambda d: pd.Series(
            {
                "n": len(d),
                "events": int(d["y"].sum()),
                "selected": int(d["s"].sum()),
                "true_positives": int((d["s"] & (d["y"] == 1)).sum()),
                "false_positives": int((d["s"] & (d["y"] == 0)).sum()),
                "true_positive_rate": d.loc[d["y"] == 1, "s"].mean(),
                "false_positive_rate": d.loc[d["y"] == 0, "s"].mean(),
                "selection_rate": d["s"].mean(),
            }
        ),
        include_groups=False,
    )
    return out


def mitigate(
    risk: Callable[[pd.DataFrame], np.ndarray],
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    s_fit: pd.Series,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    s_test: pd.Series,
    use: str,
    capacity: float,
    seed: int = 0,
) -> Mitigation:
    """Fit the ThresholdOptimizer on one slice (validation), compare on another (test)."""
    constraint = CONSTRAINT[use]
    optimizer = ThresholdOptimizer(
        estimator=RiskAsClassifier(risk).fit(X_fit),
        constraints=constraint,
        objective="balanced_accuracy_score",
        prefit=True,
        predict_method="predict_proba",
    )
    optimizer.fit(X_fit, y_fit, sensitive_features=s_fit.astype(str).to_numpy())
    mitigated = optimizer.predict(X_test, sensitive_features=s_test.astype(str).to_numpy(), random_state=seed)
    scores = risk(X_test)
    at_capacity = top_k(scores, capacity_k(len(y_test), capacity))
    same_share = top_k(scores, max(1, int(mitigated.sum())))
    comparison = pd.DataFrame(
        {
            "model at capacity": _decision_metrics(y_test, at_capacity),
            "model at the mitigated share": _decision_metrics(y_test, same_share),
            "mitigated (ThresholdOptimizer)": _decision_metrics(y_test, mitigated),
        }
    ).T
    groups = s_test.astype(str).to_numpy()
    before = _per_group(y_test, same_share, groups).add_suffix(" before")
    after = _per_group(y_test, mitigated, groups).add_suffix(" after")
    by_group = before.join(after.drop(columns=["n after", "events after"])).rename(
        columns={"n before": "n", "events before": "events"}
    )
    for name, column in (("tpr_ratio", "true_positive_rate"), ("fpr_ratio", "false_positive_rate")):
        for when in ("before", "after"):
            values = by_group[f"{column} {when}"]
            comparison.loc[
                "model at the mitigated share" if when == "before" else "mitigated (ThresholdOptimizer)",
                f"{name} (min/max)",
            ] = float(values.min() / values.max()) if values.max() > 0 else float("nan")
    return Mitigation(optimizer, s_fit.name, constraint, comparison, by_group)
