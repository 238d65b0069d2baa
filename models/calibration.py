"""Calibration on a validation slice, never on test: isotonic or sigmoid (Platt), chosen on held-out halves.

The model predicts the validation slice once; the one-dimensional calibrators (scikit-learn's
IsotonicRegression, or a logistic regression on the score's log-odds) are fitted on those scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline


def _fit_mapping(method: str, scores: np.ndarray, y: np.ndarray):
    if method == "isotonic":
        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, y)
    if method == "sigmoid":
        return LogisticRegression(C=1e6).fit(_log_odds(scores), y)
    raise ValueError(f"unknown calibration method '{method}' (isotonic or sigmoid)")


def _log_odds(scores: np.ndarray) -> np.ndarray:
    return logit(np.clip(scores, 1e-9, 1 - 1e-9)).reshape(-1, 1)


def _apply(method: str, mapping, scores: np.ndarray) -> np.ndarray:
    return mapping.predict(scores) if method == "isotonic" else mapping.predict_proba(_log_odds(scores))[:, 1]


@dataclass
class CalibratedModel:
    """A fitted pipeline whose probabilities pass through a calibration map."""

    model: Pipeline
    method: str
    mapping: object

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = _apply(self.method, self.mapping, self.model.predict_proba(X)[:, 1])
        return np.column_stack([1 - p, p])


def calibrate(model: Pipeline, X_val: pd.DataFrame, y_val: np.ndarray, methods: tuple[str, ...],
              seed: int) -> tuple[CalibratedModel, str]:
    """Pick the method with the lower Brier score when fitted on one half of validation and scored on
    the other (both ways round), then refit it on the whole validation slice."""
    scores = model.predict_proba(X_val)[:, 1]
    half = np.random.default_rng(seed).random(len(y_val)) < 0.5
    loss = {m: sum(brier_score_loss(y_val[~a], _apply(m, _fit_mapping(m, scores[a], y_val[a]), scores[~a]))
                   for a in (half, ~half)) for m in methods}
    best = min(methods, key=lambda m: (loss[m], m))
    return CalibratedModel(model, best, _fit_mapping(best, scores, y_val)), best
