"""The deployable risk model: calibrated probability and risk band for a features DataFrame.

`RiskScorer` is plain Python (used by training, audits and serving); `RiskModel` wraps it as an
MLflow pyfunc so `mlflow.pyfunc.load_model(uri).predict(frame)` returns the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow.pyfunc
import numpy as np
import pandas as pd

from riskloop.models.calibration import CalibratedModel
from riskloop.models.explain import ReasonTemplates, attributions, top_reasons

BAND_LABELS = ("low", "medium", "high")


def ventile_cuts(reference_risk: np.ndarray) -> np.ndarray:
    """The 19 cut points between ventiles 1-20 of a reference population's calibrated risk."""
    return np.quantile(reference_risk, np.arange(1, 20) / 20)


@dataclass
class RiskScorer:
    calibrated: CalibratedModel
    features: list[str]
    categorical: list[str]
    band_cuts: np.ndarray
    medium_from: int = 13
    high_from: int = 18
    metadata: dict[str, str] = field(default_factory=dict)
    templates: ReasonTemplates | None = None
    importance_by_split: pd.DataFrame | None = None
    stability: dict[str, float] = field(default_factory=dict)

    @property
    def pipeline(self):
        """The fitted, uncalibrated pipeline (preprocess ... model) inside the calibrator."""
        return self.calibrated.model

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks feature column '{missing[0]}' ({len(missing)} missing)")
        return self.calibrated.predict_proba(frame[self.features])[:, 1]

    def bands(self, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        band = 1 + np.searchsorted(self.band_cuts, risk, side="right")
        label = np.where(band >= self.high_from, "high", np.where(band >= self.medium_from, "medium", "low"))
        return band.astype(np.int64), label

    def attributions(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """SHAP values (log-odds of the uncalibrated model) and base values."""
        return attributions(self.pipeline, frame[self.features])

    def reasons(self, frame: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        contrib, _ = self.attributions(frame)
        return top_reasons(contrib, frame[self.features], self.templates, top)

    def score(self, frame: pd.DataFrame, reasons: int = 0) -> pd.DataFrame:
        """Calibrated risk, band 1-20 and its label; with `reasons` > 0 also the top reasons."""
        risk = self.risk(frame)
        band, label = self.bands(risk)
        scored = pd.DataFrame({"risk": risk, "band": band, "band_label": label}, index=frame.index)
        if reasons > 0:
            scored = scored.join(self.reasons(frame, reasons))
        return scored


class RiskModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: predict(features) -> risk (calibrated probability), band (1-20), band_label;
    with params={"reasons": 3} also reason_1..reason_3 (plain-language, from SHAP attributions)."""

    def __init__(self, scorer: RiskScorer):
        self.scorer = scorer

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        reasons = int((params or {}).get("reasons", 0))
        return self.scorer.score(model_input, reasons=reasons).reset_index(drop=True)
