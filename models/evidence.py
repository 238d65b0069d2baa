"""The promotion gate's evidence, and the decision recomputed from it.

Training records what the gate judges as counts (per group and intersection: calibration counts, the
harmful error counts and the rate each group's own risks imply, the group AUCs), the overall metrics
on the test window, the settings it was judged under and the model's identity. Promotion does not
read a verdict: it recomputes every status from these counts with the same rules the audit used
(`riskloop.models.gate`), compares the challenger with the champion, and so cannot be talked into a
pass by an edited tag. Its JSON form has one reader and writer, `evidence_json` and `parse_evidence`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from riskloop.models.audit_config import AuditConfig
from riskloop.models.fairness import FairnessAudit, gate_reasons, gate_settings
from riskloop.models.gate import judge_calibration, judge_errors

#: The metrics of the latest temporal split that the challenger must not lose against the champion.
PROMOTION_METRICS = ("roc_auc", "average_precision")


class EvidenceError(ValueError):
    """Evidence that cannot be read or does not belong to the model it is offered for."""


@dataclass(frozen=True)
class CalibrationCount:
    characteristic: str
    group: str
    scope: str  # all | selected
    group_n: int
    n: int
    observed_events: int
    expected_events: float


@dataclass(frozen=True)
class ErrorCount:
    characteristic: str
    group: str
    n: int
    errors: int  # missed (assistive) or wrongly selected (punitive)
    events: int  # the rate's denominator
    implied_rate: float  # the rate the group's own risks imply at the same threshold
    reference: str


@dataclass(frozen=True)
class GroupRanking:
    characteristic: str
    group: str
    n: int
    events: int
    auc: float | None


@dataclass(frozen=True)
class ModelIdentity:
    registered_model: str
    version: str
    run_id: str
    model_group: str
    data_fingerprint: str
    config_hash: str
    riskloop_version: str


@dataclass(frozen=True)
class GateEvidence:
    """What the gate judges, as counts, with the settings and the model it belongs to."""

    model: ModelIdentity
    settings: AuditConfig
    capacity: float
    test_window: tuple[date, date]
    latest_split: str
    latest_metrics: dict[str, float]  # PROMOTION_METRICS on the latest split's test rows
    test_metrics: dict[str, float]  # the registered model on its unseen test window
    calibrated_within: tuple[str, ...]
    calibration: tuple[CalibrationCount, ...]
    errors: tuple[ErrorCount, ...]
    ranking: tuple[GroupRanking, ...]


EVIDENCE_ADAPTER: TypeAdapter[GateEvidence] = TypeAdapter(GateEvidence)


def evidence_json(evidence: GateEvidence) -> str:
    """The evidence as canonical JSON (sorted keys): its bytes are what the digest covers."""
    return json.dumps(EVIDENCE_ADAPTER.dump_python(evidence, mode="json"), indent=1, sort_keys=True) + "\n"


def parse_evidence(text: str | bytes) -> GateEvidence:
    try:
        return EVIDENCE_ADAPTER.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "evidence"
        raise EvidenceError(f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from None


def _records(frame: pd.DataFrame, fields: tuple[str, ...]) -> list[dict]:
    """Rows of `fields` as plain values: missing ones None, group names (and the reference) as text."""
    rows = frame[list(fields)].astype(object).where(frame[list(fields)].notna(), None).to_dict("records")
    return [{k: str(v) if k in ("group", "reference") else v for k, v in row.items()} for row in rows]


def gate_evidence(
    fairness: FairnessAudit,
    model: ModelIdentity,
    test_window: tuple[date, date],
    latest_split: str,
    latest_metrics: dict[str, float],
    test_metrics: dict[str, float],
    calibrated_within: tuple[str, ...] = (),
) -> GateEvidence:
    """The evidence of a fairness audit (on the model's unseen test window) for the model `model`."""
    calibration = _records(
        fairness.calibration, ("characteristic", "group", "scope", "group_n", "n", "observed_events", "expected_events")
    )
    errors = _records(
        fairness.errors, ("characteristic", "group", "n", "errors", "events", "implied_rate", "reference")
    )
    ranking = _records(fairness.ranking, ("characteristic", "group", "n", "events", "auc"))
    return EVIDENCE_ADAPTER.validate_python(
        {
            "model": model,
            "settings": fairness.config,
            "capacity": fairness.capacity,
            "test_window": test_window,
            "latest_split": latest_split,
            "latest_metrics": {m: latest_metrics[m] for m in PROMOTION_METRICS},
            "test_metrics": test_metrics,
            "calibrated_within": calibrated_within,
            "calibration": calibration,
            "errors": errors,
            "ranking": ranking,
        }
    )


def _frame(rows: tuple, columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame([vars(r) for r in rows], columns=list(columns))


def calibration_verdicts(evidence: GateEvidence) -> pd.DataFrame:
    """Every calibration row judged again from its counts (`riskloop.models.gate.judge_calibration`)."""
    table = _frame(evidence.calibration, tuple(CalibrationCount.__dataclass_fields__))
    return judge_calibration(table, gate_settings(evidence.settings))


def error_verdicts(evidence: GateEvidence) -> pd.DataFrame:
    """Every harmful-error row judged again from its counts, per characteristic against its reference."""
    table = _frame(evidence.errors, tuple(ErrorCount.__dataclass_fields__))
    settings = gate_settings(evidence.settings)
    parts = [
        judge_errors(rows.drop(columns="characteristic"), rows["reference"].iloc[0], settings).assign(
            characteristic=name
        )
        for name, rows in table.groupby("characteristic", sort=True)
    ]
    return pd.concat(parts, ignore_index=True) if parts else table


def group_auc(evidence: GateEvidence) -> dict[str, float]:
    """The AUC of every group large enough to judge, keyed 'characteristic=group'."""
    s = evidence.settings
    return {
        f"{r.characteristic}={r.group}": r.auc
        for r in evidence.ranking
        if r.auc is not None and r.n >= s.min_group_size and r.events >= s.min_events
    }


def own_gate(evidence: GateEvidence) -> list[str]:
    """Why the model fails its own gate (empty: it passes), recomputed from the counts."""
    return gate_reasons(calibration_verdicts(evidence), error_verdicts(evidence), evidence.settings)


def against_champion(challenger: GateEvidence, champion: GateEvidence) -> list[str]:
    """Where the challenger is worse than the champion: overall on the latest split, and the ranking
    within any group judged in both by more than the challenger's AUC tolerance."""
    new, old = challenger.model.version, champion.model.version
    reasons = [
        f"{m} on the latest split: challenger v{new} {challenger.latest_metrics[m]:.4f} "
        f"< champion v{old} {champion.latest_metrics[m]:.4f}"
        for m in PROMOTION_METRICS
        if challenger.latest_metrics[m] < champion.latest_metrics[m]
    ]
    tolerance = challenger.settings.auc_tolerance
    mine, theirs = group_auc(challenger), group_auc(champion)
    reasons += [
        f"fairness: ROC AUC within {group}: challenger v{new} {mine[group]:.3f} < champion v{old} "
        f"{theirs[group]:.3f} by more than {tolerance}"
        for group in sorted(set(mine) & set(theirs))
        if mine[group] < theirs[group] - tolerance
    ]
    return reasons


def decide(challenger: GateEvidence, champion: GateEvidence | None) -> list[str]:
    """Why the challenger may not become champion (empty: it may), from the evidence alone."""
    reasons = [f"fairness: {r}" for r in own_gate(challenger)]
    if champion is not None and champion.model.version != challenger.model.version:
        reasons += against_champion(challenger, champion)
    return reasons


def verdicts(evidence: GateEvidence) -> pd.Series:
    """How many of the gate's checks (calibration rows, and error rows but the reference's) came out
    pass, inconclusive and fail, recomputed from the counts."""
    calibration, errors = calibration_verdicts(evidence)["status"], error_verdicts(evidence)["status"]
    statuses = pd.concat([calibration, errors[errors != "reference"]])
    return statuses.value_counts().reindex(["pass", "inconclusive", "fail"], fill_value=0)


def summary(evidence: GateEvidence) -> str:
    """One paragraph a person reads: what was judged, on what, and how it came out."""
    counts = verdicts(evidence)
    within = f"; calibrated within {', '.join(evidence.calibrated_within)}" if evidence.calibrated_within else ""
    start, end = evidence.test_window
    window = str(start) if start == end else f"{start} to {end}"
    return (
        f"v{evidence.model.version} ({evidence.model.model_group}) on its test window "
        f"{window}: ROC AUC {evidence.test_metrics['test_roc_auc']:.3f}; {counts.sum()} checks of calibration "
        "and harmful errors: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + within
    )
