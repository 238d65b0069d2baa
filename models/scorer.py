"""The deployable risk model: calibrated probability, risk band and reasons for a features frame.

`RiskScorer` is plain Python with its `ModelContract` inside; training, audits, explanations,
serving and the learning loop use it. `riskloop.experiments.pyfunc` wraps it for MLflow.

A model calibrated within protected groups (`contract.calibrated_within`) carries its map
(`models.group_calibration`): the frame must then hold those columns too, and a row without them is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskloop.models.calibration import CalibratedModel
from riskloop.models.contract import ModelContract
from riskloop.models.explain import ReasonTemplates, attributions, top_reasons
from riskloop.models.families import family_of
from riskloop.models.group_calibration import WithinGroupMap, group_values
from riskloop.models.metrics import capacity_k


def ventile_cuts(reference_scores: np.ndarray) -> tuple[float, ...]:
    """The 19 cut points between ventiles 1-20 of a reference population's uncalibrated model scores.

    Bands are cut on the model's own score, which is continuous and orders people as the calibrated
    risk does: calibration (isotonic especially) puts many people on one plateau, which would make
    cut points coincide and bands ill-defined.
    """
    return tuple(float(c) for c in np.quantile(reference_scores, np.arange(1, 20) / 20))


@dataclass
class RiskScorer:
    calibrated: CalibratedModel
    contract: ModelContract
    templates: ReasonTemplates
    importance_by_split: pd.DataFrame | None = None
    stability: dict[str, float] = field(default_factory=dict)
    within: WithinGroupMap | None = None  # the map within `contract.calibrated_within`, applied after `calibrated`

    def __post_init__(self) -> None:
        declared = self.contract.calibrated_within
        if declared != (self.within.columns if self.within is not None else ()):
            raise ValueError(
                f"the contract says the model is calibrated within {list(declared)}, its scorer maps within "
                f"{list(self.within.columns) if self.within is not None else []}"
            )

    @property
    def features(self) -> list[str]:
        return list(self.contract.features)

    @property
    def input_columns(self) -> list[str]:
        """What a frame to score must hold: the features, then the protected columns the risk is calibrated within."""
        return self.features + [c for c in self.contract.calibrated_within if c not in self.features]

    @property
    def pipeline(self):
        """The fitted, uncalibrated pipeline (preprocess ... model) inside the calibrator."""
        return self.calibrated.estimator

    @property
    def reads_in_place(self) -> bool:
        """Whether scoring reads a float64 block of the features where it lies: the model's family does, and
        no feature is encoded as a category or set to untreated first (either makes a copy)."""
        contract = self.contract
        return family_of(self.pipeline).reads_in_place and not contract.categorical and not contract.scored_as_untreated

    def capacity_k(self, cohort_size: int) -> int:
        """How many people of a cohort the contract's capacity lets a partnership work with."""
        return capacity_k(cohort_size, self.contract.capacity)

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks feature column '{missing[0]}' ({len(missing)} missing)")
        features = frame if list(frame.columns) == self.features else frame[self.features]  # no copy if already so
        untreated = self.contract.scored_as_untreated
        return (
            features.assign(**{c: np.zeros(len(features), features[c].dtype) for c in untreated})
            if untreated
            else features
        )

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """The uncalibrated model's probability: it orders people and cuts the bands."""
        return self.pipeline.predict_proba(self._features(frame))[:, 1]

    def probability(self, raw_score: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        """The calibrated risk of uncalibrated scores: pooled, then within the groups of `frame`'s rows where
        the contract says so (the frame's rows are those scored)."""
        pooled = self.calibrated.calibrate_scores(raw_score)
        return pooled if self.within is None else self.within.apply(pooled, frame)

    def require_groups(self, frame: pd.DataFrame) -> None:
        """Refuse in one line, before any work, a frame without the columns the risk is calibrated within (or
        with a missing value in them)."""
        if self.within is not None:
            group_values(frame, self.within.columns)

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        self.require_groups(frame)
        return self.probability(self.raw_score(frame), frame)

    def bands(self, raw_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Band 1-20 (ventile of the reference population) and its label, from uncalibrated scores."""
        bands = self.contract.bands
        band = 1 + np.searchsorted(np.asarray(self.contract.band_cuts), raw_score, side="right")
        low, medium, high = bands.labels
        label = np.where(band >= bands.high_from, high, np.where(band >= bands.medium_from, medium, low))
        return band.astype(np.int64), label

    def attributions(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """SHAP values (log-odds of the uncalibrated model) and base values, of the features as scored."""
        return attributions(self.pipeline, self._features(frame))

    def reasons(self, frame: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        """The top reasons, never a feature scored as untreated."""
        features = self._features(frame)
        contrib, _ = attributions(self.pipeline, features)
        untreated = dict.fromkeys(self.contract.scored_as_untreated, 0.0)
        return top_reasons(contrib.assign(**untreated), features, self.templates, top)

    def score(self, frame: pd.DataFrame, reasons: int = 0) -> pd.DataFrame:
        """Calibrated risk, band 1-20 and its label; with `reasons` > 0 also the top reasons."""
        self.require_groups(frame)
        raw = self.raw_score(frame)
        band, label = self.bands(raw)
        scored = pd.DataFrame(
            {"risk": self.probability(raw, frame), "band": band, "band_label": label}, index=frame.index
        )
        if reasons > 0:
            scored = scored.join(self.reasons(frame, reasons))
        return scored
