"""The audit pipeline: a scored cohort whose labels have closed -> the fairness audit and, where an
independent truth is passed in (the synthetic world's, by the edge), the measurement-bias check.
`audit_scores` audits the scores of any existing tool (an offender assessment, a vendor's risk score)
in the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from riskloop.models.contract import ModelContract
from riskloop.models.fairness import AuditConfig, FairnessAudit, audit, measurement_bias
from riskloop.pipelines.data import rejected_rows
from riskloop.pipelines.score import ScoredCohort

#: person_id column of the cohort, equal_recording -> each person's true probability of the label.
TrueProbability = Callable[[pd.Series, bool], np.ndarray]


@dataclass(frozen=True)
class AuditResult:
    audit: FairnessAudit
    bias: pd.DataFrame | None  # None when no truth was given
    in_sample: str | None  # why the figures are not out of time, when they are not

    def detected_bias(self) -> list[str]:
        if self.bias is None:
            return []
        return [
            f"{r.characteristic}={r.group} ({r.relative:.2f}x)" for r in self.bias[self.bias["flagged"]].itertuples()
        ]

    def most_over_recorded(self) -> str:
        """The group (of at least the audit's minimum size) whose records over-state it most, and how much
        the model over-states it ('' when no truth was given)."""
        if self.bias is None:
            return ""
        large = self.bias[self.bias["n"] >= self.audit.config.min_group_size]
        row = (large if len(large) else self.bias).sort_values("recording_relative").iloc[-1]
        return f"{row.characteristic}={row.group} (records {row.recording_relative:.2f}x, model {row.relative:.2f}x)"


def audit_cohort(cohort: ScoredCohort, truth: TrueProbability | None = None, seed: int = 0) -> AuditResult:
    frame, contract = cohort.frame, cohort.contract
    if frame["label"].isna().all():
        raise ValueError(f"no labels at {cohort.as_of}: its horizon reaches past the data's end; audit an earlier date")
    protected = list(contract.protected)
    risk = frame["risk"].to_numpy()
    result = audit(frame["label"].to_numpy(), risk, frame, protected, contract.audit, contract.capacity, seed)
    bias = None
    if truth is not None:
        bias = measurement_bias(
            frame, risk, truth(frame["person_id"], True), protected, truth(frame["person_id"], False)
        )
    return AuditResult(result, bias, in_sample_warning(contract, cohort.as_of))


def in_sample_warning(contract: ModelContract, as_of: date) -> str | None:
    """A warning when the audit date is inside what the model learned from (its fit or calibration labels)."""
    closed = contract.labels_closed_by()
    if as_of > closed:
        return None
    return (
        f"the audit at {as_of} is not out of time: the model learned from labels up to {closed} (fitted on "
        f"{contract.training_window[0]}..{contract.training_window[1]}, calibrated on "
        f"{contract.calibration_window[1]}); audit a date after {closed}, such as its test window "
        f"{contract.test_window[0]}, for figures it has not seen"
    )


@dataclass(frozen=True)
class ExistingScores:
    """A table of scores some other tool gave, with outcomes: the columns to read and the decision rule."""

    score_column: str
    label_column: str
    protected: tuple[str, ...]
    top_share: float | None = None  # the top share of scores is selected ...
    threshold: float | None = None  # ... or everyone scoring at least this


def audit_scores(
    table: pd.DataFrame, spec: ExistingScores, config: AuditConfig, seed: int = 0
) -> tuple[AuditResult, pd.DataFrame, str]:
    """(the audit, the rejected rows with reasons, the decision rule in words) for an existing tool's scores."""
    missing = [c for c in (spec.score_column, spec.label_column, *spec.protected) if c not in table.columns]
    if missing:
        raise ValueError(
            f"column '{missing[0]}' not found in the table (columns: {', '.join(map(str, table.columns))})"
        )
    if (spec.top_share is None) == (spec.threshold is None):
        raise ValueError("give exactly one decision rule: --top-share S or --threshold X")
    score = pd.to_numeric(table[spec.score_column], errors="coerce")
    label = pd.to_numeric(table[spec.label_column], errors="coerce")
    bad, rejected = rejected_rows(
        table,
        [
            (~np.isfinite(score), f"{spec.score_column}: not a finite number"),
            (~label.isin([0, 1]), f"{spec.label_column}: not 0 or 1"),
        ],
    )
    kept = table[~bad].reset_index(drop=True)
    if kept.empty:
        raise ValueError("no row has both a numeric score and a 0/1 outcome")
    risk, y = score[~bad].to_numpy(float), label[~bad].to_numpy(int)
    if spec.top_share is not None:
        if not 0 < spec.top_share < 1:
            raise ValueError(f"--top-share must be between 0 and 1, got {spec.top_share}")
        share, selected, rule = spec.top_share, None, f"the top {spec.top_share:.0%} of scores"
    else:
        selected, rule = risk >= spec.threshold, f"a score of at least {spec.threshold:g}"
        if not selected.any():
            raise ValueError(f"no score reaches the threshold {spec.threshold:g} (highest {risk.max():g})")
        share = float(selected.mean())
    result = audit(y, risk, kept, list(spec.protected), config, share, seed, selected)
    return AuditResult(result, None, None), rejected, rule
