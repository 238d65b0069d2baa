"""Calibration on a validation slice, never on test: isotonic or sigmoid, chosen on held-out halves."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline


def calibrate(model: Pipeline, X_val: pd.DataFrame, y_val: np.ndarray, methods: tuple[str, ...],
              seed: int) -> tuple[CalibratedClassifierCV, str]:
    """Pick the method with the lower Brier score when fitted on one half of validation and scored on
    the other (both ways round), then refit it on the whole validation slice."""
    rng = np.random.default_rng(seed)
    half = rng.random(len(y_val)) < 0.5
    scores = {}
    for method in methods:
        loss = 0.0
        for a in (half, ~half):
            cal = CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(X_val[a], y_val[a])
            loss += brier_score_loss(y_val[~a], cal.predict_proba(X_val[~a])[:, 1])
        scores[method] = loss
    best = min(methods, key=lambda m: (scores[m], m))
    return CalibratedClassifierCV(FrozenEstimator(model), method=best).fit(X_val, y_val), best
