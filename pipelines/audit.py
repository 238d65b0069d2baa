"""The audit pipeline: a scored cohort whose labels have closed -> the fairness audit and, where an
independent truth is passed in (the synthetic world's, by the edge), the measurement-bias check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

import numpy as np
import pandas as pd

from riskloop.models.contract import ModelContract
from riskloop.models.fairness import FairnessAudit, audit, measurement_bias
from riskloop.pipelines.score import ScoredCohort

#: person_id column of the cohort, equal_recording -> each person's true probability of the label.
TrueProbability = Callable[[pd.Series, bool], np.ndarray]


@dataclass(frozen=True)
class AuditResult:
    audit: FairnessAudit
    bias: pd.DataFrame | None     # None when no truth was given
    in_sample: str | None         # why the figures are not out of time, when they are not

    def detected_bias(self) -> list[str]:
        if self.bias is None:
            return []
        return [f"{r.characteristic}={r.group} ({r.relative:.2f}x)" for r in self.bias[self.bias["flagged"]].itertuples()]


def audit_cohort(cohort: ScoredCohort, truth: TrueProbability | None = None, seed: int = 0) -> AuditResult:
    frame, contract = cohort.frame, cohort.contract
    if frame["label"].isna().all():
        raise ValueError(f"no labels at {cohort.as_of}: its horizon reaches past the data's end; audit an earlier date")
    protected = list(contract.protected)
    risk = frame["risk"].to_numpy()
    result = audit(frame["label"].to_numpy(), risk, frame, protected, contract.audit, contract.capacity, seed)
    bias = None
    if truth is not None:
        bias = measurement_bias(frame, risk, truth(frame["person_id"], True), protected, truth(frame["person_id"], False))
    return AuditResult(result, bias, in_sample_warning(contract, cohort.as_of))


def in_sample_warning(contract: ModelContract, as_of: date) -> str | None:
    """A warning when the audit date is inside what the model learned from (its fit or calibration labels)."""
    closed = contract.labels_closed_by()
    if as_of > closed:
        return None
    return (f"the audit at {as_of} is not out of time: the model learned from labels up to {closed} (fitted on "
            f"{contract.training_window[0]}..{contract.training_window[1]}, calibrated on "
            f"{contract.calibration_window[1]}); audit a date after {closed}, such as its test window "
            f"{contract.test_window[0]}, for figures it has not seen")
