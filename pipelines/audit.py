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
from sklearn.isotonic import IsotonicRegression

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
        f"{contract.calibration_window[1]}); audit a date after {closed}"
        + ("" if contract.refit else f", such as its test window {contract.test_window[0]},")
        + " for figures it has not seen"
    )


@dataclass(frozen=True)
class ExistingScores:
    """A table of scores some other tool gave, with outcomes: the columns to read and the decision rule;
    optionally a date before which the score is mapped to a probability (isotonic) for an out-of-time
    calibration audit of the rows from that date."""

    score_column: str
    label_column: str
    protected: tuple[str, ...]
    top_share: float | None = None  # the top share of scores is selected ...
    threshold: float | None = None  # ... or everyone scoring at least this
    calibrate_before: date | None = None  # fit a monotone map on rows dated before this ...
    date_column: str | None = None  # ... by this column, and audit the rows from it on


@dataclass(frozen=True)
class ScoreAudit:
    """An existing tool's scores audited: the audit, the rejected rows with reasons, the decision rule and
    what the audit could say about calibration, each in words."""

    result: AuditResult
    rejected: pd.DataFrame
    rule: str
    calibration: str


def is_probability(score: np.ndarray) -> bool:
    """Whether a score can be read as a probability: every value in [0, 1]."""
    return bool(((score >= 0) & (score <= 1)).all())


def _dates(table: pd.DataFrame, column: str) -> pd.Series:
    dates = pd.to_datetime(table[column], errors="coerce", format="mixed")
    bad = table[column][dates.isna()]
    if len(bad):
        raise ValueError(f"--date-column '{column}': {len(bad):,} values are not dates (the first: '{bad.iloc[0]}')")
    return dates


def _rule(spec: ExistingScores, score: np.ndarray) -> tuple[float, np.ndarray | None, str]:
    """(the share selected, who is selected (None: the top share), the rule in words)."""
    if spec.top_share is not None:
        if not 0 < spec.top_share < 1:
            raise ValueError(f"--top-share must be between 0 and 1, got {spec.top_share}")
        return spec.top_share, None, f"the top {spec.top_share:.0%} of scores"
    assert spec.threshold is not None  # exactly one rule, checked first
    selected = score >= spec.threshold
    if not selected.any():
        raise ValueError(f"no score reaches the threshold {spec.threshold:g} (highest {score.max():g})")
    return float(selected.mean()), selected, f"a score of at least {spec.threshold:g}"


def _check(table: pd.DataFrame, spec: ExistingScores) -> None:
    missing = [
        c
        for c in (
            spec.score_column,
            spec.label_column,
            *spec.protected,
            *([spec.date_column] if spec.date_column else []),
        )
        if c not in table.columns
    ]
    if missing:
        raise ValueError(
            f"column '{missing[0]}' not found in the table (columns: {', '.join(map(str, table.columns))})"
        )
    if (spec.top_share is None) == (spec.threshold is None):
        raise ValueError("give exactly one decision rule: --top-share S or --threshold X")
    if spec.calibrate_before is not None and spec.date_column is None:
        raise ValueError("--calibrate-before needs --date-column: the column that dates each row")
    if spec.date_column is not None and spec.calibrate_before is None:
        raise ValueError("--date-column is only read with --calibrate-before DATE")


def audit_scores(table: pd.DataFrame, spec: ExistingScores, config: AuditConfig, seed: int = 0) -> ScoreAudit:
    """An existing tool's scores audited. A probability (every score in [0, 1]) is audited like a model's;
    any other score on ranks and error rates at the decision rule only, since calibration needs a
    probability. With `calibrate_before`, a monotone map fitted on the earlier rows turns the score into a
    probability and the rows from that date on are audited, calibration included, out of time."""
    _check(table, spec)
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
    raw, y = score[~bad].to_numpy(float), label[~bad].to_numpy(int)
    risk, calibration = raw, "calibration assessed: every score is in [0, 1], read as a probability"
    if spec.calibrate_before is not None:
        assert spec.date_column is not None  # checked above
        later = (_dates(kept, spec.date_column) >= pd.Timestamp(spec.calibrate_before)).to_numpy()
        if later.all():
            raise ValueError(f"no row is dated before {spec.calibrate_before}: nothing to fit the calibration on")
        if not later.any():
            raise ValueError(f"no row is dated on or after {spec.calibrate_before}: nothing to audit out of time")
        risk = monotone_map(raw[~later], y[~later], raw[later])
        calibration = (
            f"calibration assessed out of time: a monotone (isotonic) map from score to probability was fitted on "
            f"the {int((~later).sum()):,} rows dated before {spec.calibrate_before} and the audit covers the "
            f"{int(later.sum()):,} rows from that date on"
        )
        kept, raw, y = kept[later].reset_index(drop=True), raw[later], y[later]
    elif not is_probability(raw):
        calibration = (
            f"calibration is not assessed because the score is not a probability (values from {raw.min():g} to "
            f"{raw.max():g})"
        )
    share, selected, rule = _rule(spec, raw)
    probability = spec.calibrate_before is not None or is_probability(raw)
    result = audit(y, risk, kept, list(spec.protected), config, share, seed, selected, probability, ranked_by=raw)
    return ScoreAudit(AuditResult(result, None, None), rejected, rule, calibration)


def monotone_map(score: np.ndarray, y: np.ndarray, later: np.ndarray) -> np.ndarray:
    """The probabilities of the `later` scores under an isotonic map from score to outcome fitted on
    (`score`, `y`) (clipped at the fitted range)."""
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y).predict(later)
