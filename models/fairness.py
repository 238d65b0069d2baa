"""Fairness audit at the operating point that the capacity k implies.

Two views. The **gate** (`riskloop.models.gate`) judges what the model adds: calibration within
each group, ranking within each group, and harmful error rates net of what each group's own risks
imply, so a perfectly calibrated score passes whatever the groups' base rates. The **descriptive
view** is fairlearn's `MetricFrame` for each protected column and the configured intersections,
with ratios to a reference group and bootstrap intervals (Aequitas's 0.8-1.25 band): it shows how
decisions differ between groups, including the differences that base rates alone cause, and does not
gate. A ratio is "inconclusive" for a small group, or when either group's rate rests on fewer than
`min_events` events (zero included). Every count-based metric is a function of the counts in the
(group x selected x label) cells, so a bootstrap resample is one multinomial draw over those cells.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from riskloop.models.audit_config import AuditConfig
from riskloop.models.gate import GateSettings, calibration_by_group, harmful_error_excess, ranking_by_group
from riskloop.models.metrics import capacity_k, top_k

COUNT_METRICS = (
    "selection_rate",
    "false_positive_rate",
    "false_negative_rate",
    "precision",
    "false_discovery_rate",
    "false_omission_rate",
)
PRIMARY = {
    "assistive": ("false_negative_rate", "false_omission_rate"),
    "punitive": ("false_positive_rate", "false_discovery_rate"),
}
WHY = {
    "assistive": (
        "The intervention is assistive (support, early help): the harm of a wrong decision is mostly "
        "a missed chance of help, so the audit leads with false negative rates (people who went on "
        "to escalate but were not prioritised) and false omission rates (how many of those not "
        "prioritised escalated), following the Aequitas fairness tree."
    ),
    "punitive": (
        "The intervention is punitive (enforcement): the harm of a wrong decision falls on people "
        "wrongly selected, so the audit leads with false positive rates and false discovery rates, "
        "following the Aequitas fairness tree."
    ),
}


#: The (selected, label) cells of each group, in the order (not selected, 0), (not selected, 1), (selected, 0),
#: (selected, 1): true negatives, false negatives, false positives, true positives.
CELLS = ("tn", "fn", "fp", "tp")
#: The counts a disparity row rests on: the group's and the reference's numerator and denominator.
DISPARITY_COUNTS = ("numerator", "denominator", "reference_numerator", "reference_denominator")
#: The calibration table of a score that is not a probability: nothing assessed (the columns of
#: `gate.calibration_by_group`'s table, so every reader of a calibration table reads this one too).
UNASSESSED_CALIBRATION = pd.DataFrame(
    columns=[
        "characteristic",
        "group",
        "scope",
        "group_n",
        "n",
        "observed_events",
        "expected_events",
        "ratio",
        "ci_low",
        "ci_high",
        "too_few",
        "status",
    ]
)


def numerators(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """How many events each rate counts."""
    return {
        "selection_rate": tp + fp,
        "false_positive_rate": fp,
        "false_negative_rate": fn,
        "precision": tp,
        "false_discovery_rate": fp,
        "false_omission_rate": fn,
    }


def denominators(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """How many people each rate is a share of."""
    return {
        "selection_rate": tp + fp + fn + tn,
        "false_positive_rate": fp + tn,
        "false_negative_rate": fn + tp,
        "precision": tp + fp,
        "false_discovery_rate": tp + fp,
        "false_omission_rate": fn + tn,
    }


def _rates(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        n = tp + fp + fn + tn
        return {
            "selection_rate": (tp + fp) / n,
            "false_positive_rate": fp / (fp + tn),
            "false_negative_rate": fn / (fn + tp),
            "precision": tp / (tp + fp),
            "false_discovery_rate": fp / (tp + fp),
            "false_omission_rate": fn / (fn + tn),
        }


# Decision metrics as weighted shares. MetricFrame receives the (group x selected x label) cells with
# their counts as sample weights: the same figures as row by row, without fairlearn converting
# hundreds of thousands of rows element by element.
def _share(hit: np.ndarray, within: np.ndarray, weight: np.ndarray) -> float:
    total = weight[within].sum()
    return float(weight[within & hit].sum() / total) if total else float("nan")


def _selection_rate(y, selected, sample_weight) -> float:
    return _share(np.asarray(selected) == 1, np.ones(len(y), bool), np.asarray(sample_weight))


def _false_positive_rate(y, selected, sample_weight) -> float:
    return _share(np.asarray(selected) == 1, np.asarray(y) == 0, np.asarray(sample_weight))


def _false_negative_rate(y, selected, sample_weight) -> float:
    return _share(np.asarray(selected) == 0, np.asarray(y) == 1, np.asarray(sample_weight))


def _precision(y, selected, sample_weight) -> float:
    return _share(np.asarray(y) == 1, np.asarray(selected) == 1, np.asarray(sample_weight))


def _false_omission_rate(y, selected, sample_weight) -> float:
    return _share(np.asarray(y) == 1, np.asarray(selected) == 0, np.asarray(sample_weight))


DECISION_METRICS = {
    "selection_rate": _selection_rate,
    "false_positive_rate": _false_positive_rate,
    "false_negative_rate": _false_negative_rate,
    "precision": _precision,
    "false_omission_rate": _false_omission_rate,
}


@dataclass
class FairnessAudit:
    operating_point: dict[str, float]
    by_group: pd.DataFrame  # descriptive: one row per characteristic x group
    disparities: pd.DataFrame  # descriptive: one row per characteristic x group x metric
    calibration: pd.DataFrame  # gate: observed / expected per characteristic x group x scope (all, selected)
    ranking: pd.DataFrame  # gate (against the champion): AUC per characteristic x group
    errors: pd.DataFrame  # gate: harmful error rate net of base rates, per characteristic x group
    config: AuditConfig
    capacity: float
    probability: bool = True  # False: the score is not a probability, so calibration is not assessed

    @property
    def primary_metrics(self) -> tuple[str, ...]:
        return PRIMARY[self.config.use]

    def primary_failures(self) -> pd.DataFrame:
        """Descriptive ratios outside the band (base rates included): reported, not gating."""
        d = self.disparities
        return d[d["primary"] & (d["status"] == "fail")]

    def calibration_failures(self) -> pd.DataFrame:
        return self.calibration[self.calibration["status"] == "fail"]

    def error_failures(self) -> pd.DataFrame:
        return self.errors[self.errors["status"] == "fail"]

    def gate_reasons(self) -> list[str]:
        """Why this model must not be promoted (empty when the fairness gate passes)."""
        return gate_reasons(self.calibration, self.errors, self.config)


def gate_reasons(calibration: pd.DataFrame, errors: pd.DataFrame, config: AuditConfig) -> list[str]:
    """The failed gate checks in words, each with the counts its figures come from."""
    low, high = 1 / (1 + config.calibration_tolerance), 1 + config.calibration_tolerance
    reasons = [
        f"calibration for {r.characteristic}={r.group} ({'among the selected' if r.scope == 'selected' else 'overall'}): "
        f"{r.observed_events} observed / {r.expected_events:.1f} expected = {r.ratio:.2f} "
        f"(95% CI {r.ci_low:.2f}-{r.ci_high:.2f}) outside {low:.2f}-{high:.2f}"
        for r in calibration[calibration["status"] == "fail"].itertuples()
    ]
    reasons += [
        f"{r.metric} for {r.characteristic}={r.group}: {r.errors} of {r.events} = {r.rate:.3f} where its own "
        f"risks imply {r.implied_rate:.3f}; relative to {r.reference}'s, {r.excess:.2f}x what its own risks imply "
        f"(95% CI {r.excess_ci_low:.2f}-{r.excess_ci_high:.2f}), above {config.band[1]}"
        for r in errors[errors["status"] == "fail"].itertuples()
    ]
    return reasons


def gate_settings(config: AuditConfig) -> GateSettings:
    return GateSettings(
        use=config.use,
        calibration_tolerance=config.calibration_tolerance,
        excess_tolerance=config.band[1],
        min_events=config.min_events,
        min_group_size=config.min_group_size,
    )


def _characteristics(
    frame: pd.DataFrame, protected: list[str], intersections: tuple[tuple[str, str], ...]
) -> dict[str, pd.Series]:
    out = {c: frame[c].astype("string").fillna("missing") for c in protected if c in frame}
    for a, b in intersections:
        if a in out and b in out:
            out[f"{a} x {b}"] = out[a] + " | " + out[b]
    return out


def _reference(groups: pd.DataFrame, metric: str, reference: str) -> str:
    if reference == "majority" or (reference != "min_metric" and reference not in groups.index):
        return groups["n"].idxmax()
    if reference == "min_metric":
        eligible = groups[~groups["small"]] if (~groups["small"]).any() else groups
        return eligible[metric].idxmin()
    return reference


def audit(
    y: np.ndarray,
    risk: np.ndarray,
    frame: pd.DataFrame,
    protected: list[str],
    config: AuditConfig,
    capacity: float,
    seed: int = 0,
    selected: np.ndarray | None = None,
    probability: bool = True,
    ranked_by: np.ndarray | None = None,
) -> FairnessAudit:
    """The gate and the descriptive view at the capacity operating point (or at `selected`, a decision
    already made, e.g. by an existing tool's threshold). A `risk` that is not a `probability` (a decile,
    a points total) is audited on ranks and error rates only: no calibration, no error rates net of what
    its risks imply. `ranked_by` (default `risk`) is the score that ranks and selects, when `risk` is a
    calibrated map of it."""
    y = np.asarray(y, dtype=int)
    risk = np.asarray(risk, dtype=float)
    score = risk if ranked_by is None else np.asarray(ranked_by, dtype=float)
    selected = top_k(score, capacity_k(len(y), capacity)) if selected is None else np.asarray(selected, dtype=bool)
    k = int(selected.sum())
    threshold = float(score[selected].min())
    rng = np.random.default_rng(seed)
    settings = gate_settings(config)
    group_rows: list[pd.DataFrame] = []
    disparity_rows: list[dict[str, object]] = []
    gate_rows: dict[str, list[pd.DataFrame]] = {"calibration": [], "ranking": [], "errors": []}
    for name, groups in _characteristics(frame, protected, config.intersections).items():
        codes, names = pd.factorize(groups.to_numpy(), sort=True)
        cells = np.bincount(codes * 4 + selected * 2 + y, minlength=len(names) * 4).reshape(len(names), 4)
        n = cells.sum(axis=1)
        cell_group, cell = np.divmod(np.arange(cells.size), 4)
        decisions = MetricFrame(
            metrics=DECISION_METRICS,
            y_true=cell % 2,
            y_pred=cell // 2,
            sensitive_features=np.asarray(names, dtype=object)[cell_group],
            sample_params={m: {"sample_weight": cells.ravel()} for m in DECISION_METRICS},
        )
        labels = groups.to_numpy()
        ranking = ranking_by_group(y, score, labels)
        table = decisions.by_group.loc[list(names)]
        table["roc_auc"] = ranking.set_index("group")["auc"].reindex(names).to_numpy()
        table.insert(0, "n", n)
        for column, counts in zip(CELLS, cells.T):
            table[column] = counts
        table["false_discovery_rate"] = 1 - table["precision"]
        table["observed"] = np.bincount(codes, weights=y, minlength=len(names)) / n
        if probability:
            table["mean_predicted"] = np.bincount(codes, weights=risk, minlength=len(names)) / n
            table["calibration_gap"] = table["mean_predicted"] - table["observed"]
        se = np.sqrt(np.maximum(table["observed"] * (1 - table["observed"]), 1e-12) / n)
        table["observed_ci_low"], table["observed_ci_high"] = (
            table["observed"] - 1.96 * se,
            table["observed"] + 1.96 * se,
        )
        table["small"] = n < config.min_group_size
        # bootstrap: one multinomial draw over the (group, selected, label) cells per resample
        draws = rng.multinomial(len(y), (cells / len(y)).ravel(), size=config.bootstrap).reshape(
            config.bootstrap, len(names), 4
        )
        boot = _rates(tp=draws[..., 3], fp=draws[..., 2], fn=draws[..., 1], tn=draws[..., 0])
        dens = denominators(tp=cells[:, 3], fp=cells[:, 2], fn=cells[:, 1], tn=cells[:, 0])
        nums = numerators(tp=cells[:, 3], fp=cells[:, 2], fn=cells[:, 1], tn=cells[:, 0])
        for metric in COUNT_METRICS:
            ref = _reference(table, metric, config.reference)
            r = list(names).index(ref)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = boot[metric] / boot[metric][:, [r]]
                point = table[metric].to_numpy() / table.loc[ref, metric]
            with warnings.catch_warnings():  # a group whose ratio is never defined gets NaN: inconclusive
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanpercentile(np.where(np.isfinite(ratios), ratios, np.nan), [2.5, 97.5], axis=0)
            for g, group in enumerate(names):
                if group == ref:
                    continue
                lo, hi = config.band
                # a small group, or a rate over a handful of people, is never judged: with zero counts in
                # a cell (no true positive, say) every resample agrees and the interval is falsely narrow
                too_few = min(dens[metric][g], dens[metric][r], nums[metric][g], nums[metric][r]) < config.min_events
                status = (
                    "inconclusive"
                    if n[g] < config.min_group_size or too_few or not (np.isfinite(low[g]) and np.isfinite(high[g]))
                    else "fail"
                    if high[g] < lo or low[g] > hi
                    else "pass"
                    if lo <= low[g] and high[g] <= hi
                    else "inconclusive"
                )
                disparity_rows.append(
                    {
                        "characteristic": name,
                        "group": group,
                        "reference": ref,
                        "metric": metric,
                        "value": table.loc[group, metric],
                        "reference_value": table.loc[ref, metric],
                        "numerator": int(nums[metric][g]),
                        "denominator": int(dens[metric][g]),
                        "reference_numerator": int(nums[metric][r]),
                        "reference_denominator": int(dens[metric][r]),
                        "ratio": point[g],
                        "ci_low": low[g],
                        "ci_high": high[g],
                        "status": status,
                        "primary": metric in PRIMARY[config.use],
                        "n": int(n[g]),
                        "small": bool(n[g] < config.min_group_size),
                    }
                )
        group_rows.append(table.rename_axis("group").reset_index().assign(characteristic=name))
        reference = _reference(
            table, "selection_rate", config.reference if config.reference != "min_metric" else "majority"
        )
        if probability:
            gate_rows["calibration"].append(
                calibration_by_group(y, risk, selected, labels, settings).assign(characteristic=name)
            )
        gate_rows["ranking"].append(ranking.assign(characteristic=name))
        gate_rows["errors"].append(
            harmful_error_excess(y, risk if probability else None, selected, labels, reference, settings).assign(
                characteristic=name
            )
        )
    by_group = _characteristic_first(pd.concat(group_rows, ignore_index=True))
    operating = {
        "capacity": capacity,
        "k": float(k),
        "threshold": threshold,
        "n": float(len(y)),
        "precision_at_k": float(y[selected].mean()),
        "recall_at_k": float(y[selected].sum() / max(y.sum(), 1)),
    }
    gate = {
        key: _characteristic_first(pd.concat(rows, ignore_index=True)) if rows else UNASSESSED_CALIBRATION.copy()
        for key, rows in gate_rows.items()
    }
    return FairnessAudit(
        operating,
        by_group,
        pd.DataFrame(disparity_rows),
        gate["calibration"],
        gate["ranking"],
        gate["errors"],
        config,
        capacity,
        probability,
    )


def _characteristic_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["characteristic", *[c for c in table.columns if c != "characteristic"]]]


#: Over-statement (relative to the reference group) above which the measurement-bias check flags a group.
BIAS_FLAG = 1.2


def measurement_bias(
    frame: pd.DataFrame,
    risk: np.ndarray,
    true_probability: np.ndarray,
    protected: list[str],
    recorded_probability: np.ndarray | None = None,
    flag: float = BIAS_FLAG,
    min_group_size: int = 50,
) -> pd.DataFrame:
    """Model risk against the *true* (equally recorded) probability, per group.

    `ratio` = mean risk / mean true probability in the group. The reference is the group (of at
    least `min_group_size`) whose records over-state its behaviour least: by the truth as recorded
    (`recorded_probability`) when given, else by the model's ratio. `relative` is a group's ratio
    over the reference's, `recording_relative` the same for the records themselves (the planted
    bias). A group is flagged when the model over-states it by more than `flag` and, when the
    recorded truth is given, its records do too: the model has inherited heavier recording. Other
    gaps (interventions lowering a group's recorded outcomes, say) are shown but not flagged.
    """
    rows = []
    for name, groups in _characteristics(frame, protected, ()).items():
        g = pd.DataFrame(
            {
                "group": groups.to_numpy(),
                "risk": risk,
                "truth": true_probability,
                "recorded": true_probability if recorded_probability is None else recorded_probability,
            }
        )
        t = g.groupby("group").agg(
            n=("risk", "size"),
            mean_risk=("risk", "mean"),
            mean_true=("truth", "mean"),
            mean_recorded=("recorded", "mean"),
        )
        t["ratio"] = t["mean_risk"] / t["mean_true"]
        recording = t["mean_recorded"] / t["mean_true"]
        eligible = t["n"] >= min_group_size if (t["n"] >= min_group_size).any() else t["n"] > 0
        reference = (recording if recorded_probability is not None else t["ratio"])[eligible].idxmin()
        t["relative"] = t["ratio"] / t.loc[reference, "ratio"]
        t["recording_relative"] = recording / recording[reference]
        t["reference"] = reference
        t["flagged"] = (t["relative"] > flag) & (
            t["recording_relative"] > flag if recorded_probability is not None else True
        )
        rows.append(t.reset_index().assign(characteristic=name))
    out = pd.concat(rows, ignore_index=True)
    return out[
        [
            "characteristic",
            "group",
            "n",
            "mean_risk",
            "mean_true",
            "mean_recorded",
            "ratio",
            "reference",
            "relative",
            "recording_relative",
            "flagged",
        ]
    ]
