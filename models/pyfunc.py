"""The deployable risk model: calibrated probability and risk band for a features DataFrame.

`RiskScorer` is plain Python (used by training, audits and serving); `RiskModel` wraps it as an
MLflow pyfunc so `mlflow.pyfunc.load_model(uri).predict(frame)` returns the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV

BAND_LABELS = ("low", "medium", "high")


def ventile_cuts(reference_risk: np.ndarray) -> np.ndarray:
    """The 19 cut points between ventiles 1-20 of a reference population's calibrated risk."""
    return np.quantile(reference_risk, np.arange(1, 20) / 20)


@dataclass
class RiskScorer:
    calibrated: CalibratedClassifierCV
    features: list[str]
    categorical: list[str]
    band_cuts: np.ndarray
    medium_from: int = 13
    high_from: int = 18
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def pipeline(self):
        """The fitted, uncalibrated pipeline (preprocess ... model) inside the calibrator."""
        return self.calibrated.estimator.estimator

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks feature column '{missing[0]}' ({len(missing)} missing)")
        return self.calibrated.predict_proba(frame[self.features])[:, 1]

    def bands(self, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        band = 1 + np.searchsorted(self.band_cuts, risk, side="right")
        label = np.where(band >= self.high_from, "high", np.where(band >= self.medium_from, "medium", "low"))
        return band.astype(np.int64), label

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        risk = self.risk(frame)
        band, label = self.bands(risk)
        return pd.DataFrame({"risk": risk, "band": band, "band_label": label}, index=frame.index)


class RiskModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: predict(features) -> risk (calibrated probability), band (1-20), band_label."""

    def __init__(self, scorer: RiskScorer):
        self.scorer = scorer

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.scorer.score(model_input).reset_index(drop=True)
