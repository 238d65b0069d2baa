"""Calibration on a validation slice, never on test: isotonic or sigmoid (Platt), chosen on held-out halves.

The model predicts the validation slice once; the one-dimensional calibrators (scikit-learn's
IsotonicRegression, or a logistic regression on the score's log-odds) are fitted on those scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss


def _fit_mapping(method: str, scores: np.ndarray, y: np.ndarray):
    if method == "isotonic":
        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, y)
    if method == "sigmoid":
        return LogisticRegression(C=1e6).fit(_log_odds(scores), y)
    raise ValueError(f"unknown calibration method '{method}' (isotonic or sigmoid)")


def _log_odds(scores: np.ndarray) -> np.ndarray:
    return logit(np.clip(scores, 1e-9, 1 - 1e-9)).reshape(-1, 1)


def _apply(method: str, mapping, scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:  # scikit-learn refuses to predict no rows; an empty cohort is scored as no one
        return np.empty(0)
    return mapping.predict(scores) if method == "isotonic" else mapping.predict_proba(_log_odds(scores))[:, 1]


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A prefit classifier whose probabilities pass through a calibration map fitted on held-out data.

    What scikit-learn's `CalibratedClassifierCV(FrozenEstimator(estimator), ensemble=False)` does, as a
    thin estimator of the same contract that predicts the calibration slice once rather than per fold
    (the library's path was measurably slower on 100 k-row slices; see benchmarks/train.py).
    """

    def __init__(self, estimator=None, method: str = "isotonic"):
        self.estimator = estimator
        self.method = method

    def fit(self, X: pd.DataFrame, y) -> CalibratedModel:
        return self.fit_scores(self.estimator.predict_proba(X)[:, 1], np.asarray(y))

    def fit_scores(self, scores: np.ndarray, y: np.ndarray) -> CalibratedModel:
        """Fit the map on the estimator's scores of the calibration slice, already computed."""
        self.mapping_ = _fit_mapping(self.method, scores, y)
        self.classes_ = np.array([0, 1])
        return self

    def calibrate_scores(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for the estimator's own (uncalibrated) scores."""
        return _apply(self.method, self.mapping_, scores)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.calibrate_scores(self.estimator.predict_proba(X)[:, 1])
        return np.column_stack([1 - p, p])


def calibrate(
    model, scores: np.ndarray, y_val: np.ndarray, methods: tuple[str, ...], seed: int
) -> tuple[CalibratedModel, str]:
    """Given the model's scores of the validation slice, pick the method with the lower Brier score
    when fitted on one half and scored on the other (both ways round), then fit it on the whole slice."""
    half = np.random.default_rng(seed).random(len(y_val)) < 0.5
    loss = {
        m: sum(
            brier_score_loss(y_val[~a], _apply(m, _fit_mapping(m, scores[a], y_val[a]), scores[~a]))
            for a in (half, ~half)
        )
        for m in methods
    }
    best = min(methods, key=lambda m: (loss[m], m))
    return CalibratedModel(model, best).fit_scores(scores, y_val), best
