"""The fairness gate: judge what the model adds, not the groups' base rates.

At one threshold a group with a lower base rate always has a higher false negative rate, so even a
perfectly calibrated score "fails" a gate that compares raw error rates with 1.0. This gate asks
three questions a model can actually be held to:

1. **Calibration within each group**: observed / expected events (expected = the sum of the
   group's predicted risks), overall and among the selected, with an exact Poisson interval on the
   observed count. Fails when the whole interval lies outside the relative tolerance band.
2. **Ranking within each group**: ROC AUC with a Hanley-McNeil interval, shown beside the reference
   group's; the promotion gate compares each group's AUC with the champion's.
3. **Error rates in the harmful direction, net of base rates**: for an assistive use the false
   negative rate (a group *missed* more), for a punitive use the false positive rate (a group
   *selected wrongly* more). Each group's observed rate is set against the rate its own predicted
   risks imply at the same threshold (what a perfectly calibrated score would show), and that
   excess is compared one-sided with the reference group's.

Rates carry Wilson intervals. A group with zero events in a rate's numerator or denominator, or
fewer than `min_events` events, is "inconclusive" (`too_few`), never "fail"; so is one whose interval
straddles an edge of the accepted band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import chi2, norm
from sklearn.metrics import roc_auc_score

Z = norm.ppf(0.975)


def wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of k successes in n trials (NaN where n is 0)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
        half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def poisson_interval(k: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) 95% interval of a Poisson count (or of each of an array of counts)."""
    counts = np.asarray(k, float)
    low = np.where(counts > 0, chi2.ppf(0.025, 2 * counts) / 2, 0.0)
    return low, chi2.ppf(0.975, 2 * (counts + 1)) / 2


def auc_interval(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    """Hanley-McNeil 95% interval of a ROC AUC."""
    if not (positives and negatives) or np.isnan(auc):
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    half = Z * np.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def _status(low: float, high: float, lower_bound: float, upper_bound: float, judged: bool) -> str:
    if not judged or not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if high < lower_bound or low > upper_bound:
        return "fail"
    return "pass" if lower_bound <= low and high <= upper_bound else "inconclusive"


@dataclass(frozen=True)
class GateSettings:
    use: str = "assistive"  # assistive: missing people is the harm; punitive: selecting wrongly
    calibration_tolerance: float = 0.25  # observed / expected must stay within [1/(1+t), 1+t]
    excess_tolerance: float = 1.25  # a group's error excess over the reference's, one-sided
    min_events: int = 10
    min_group_size: int = 50


#: The status of a check that needs a probability, on a score that is not one.
NOT_ASSESSED = "not assessed"


def _implied_rate(risk: np.ndarray, member: np.ndarray, selected: np.ndarray, missed: bool) -> float:
    """The harmful error rate a perfectly calibrated score would show in a group at this selection."""
    if missed:
        return float(risk[member & ~selected].sum() / max(risk[member].sum(), 1e-12))
    return float((1 - risk[member & selected]).sum() / max((1 - risk[member]).sum(), 1e-12))


def calibration_by_group(
    y: np.ndarray, risk: np.ndarray, selected: np.ndarray, groups: np.ndarray, settings: GateSettings
) -> pd.DataFrame:
    """Observed / expected events per group, overall and among the selected, with Poisson intervals."""
    rows = []
    for group in sorted(pd.unique(groups)):
        member = groups == group
        for scope, mask in (("all", member), ("selected", member & selected)):
            rows.append(
                {
                    "group": group,
                    "scope": scope,
                    "group_n": int(member.sum()),
                    "n": int(mask.sum()),
                    "observed_events": int(y[mask].sum()),
                    "expected_events": float(risk[mask].sum()),
                }
            )
    return judge_calibration(pd.DataFrame(rows), settings)


def judge_calibration(counts: pd.DataFrame, settings: GateSettings) -> pd.DataFrame:
    """The calibration verdict of each row from its counts alone (`group_n`, the group's size; `n`;
    `observed_events`; `expected_events`): what the audit computes and what promotion recomputes."""
    table = counts.copy()
    observed = table["observed_events"].to_numpy(float)
    expected = table["expected_events"].to_numpy(float)
    low, high = poisson_interval(observed)
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = expected > 0
        table["ratio"] = np.where(positive, observed / expected, np.nan)
        table["ci_low"] = np.where(positive, low / expected, np.nan)
        table["ci_high"] = np.where(positive, high / expected, np.nan)
    judged = (
        (table["group_n"] >= settings.min_group_size) & (expected >= settings.min_events) & (observed > 0)
    ).to_numpy()
    band = (1 / (1 + settings.calibration_tolerance), 1 + settings.calibration_tolerance)
    table["too_few"] = ~judged
    table["status"] = [
        _status(lo, hi, *band, bool(ok)) for lo, hi, ok in zip(table["ci_low"], table["ci_high"], judged)
    ]
    return table


def ranking_by_group(y: np.ndarray, risk: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """ROC AUC per group with its Hanley-McNeil interval (NaN where a group has one outcome class)."""
    rows = []
    for group in sorted(pd.unique(groups)):
        member = groups == group
        positives, negatives = int(y[member].sum()), int((1 - y[member]).sum())
        auc = roc_auc_score(y[member], risk[member]) if positives and negatives else float("nan")
        low, high = auc_interval(auc, positives, negatives)
        rows.append(
            {"group": group, "n": int(member.sum()), "events": positives, "auc": auc, "ci_low": low, "ci_high": high}
        )
    return pd.DataFrame(rows)


def harmful_error_excess(
    y: np.ndarray,
    risk: np.ndarray | None,
    selected: np.ndarray,
    groups: np.ndarray,
    reference: str,
    settings: GateSettings,
) -> pd.DataFrame:
    """Per group, the harmful error rate observed and implied by its own risks, and the excess over the
    reference group's, judged one-sided (only being worse off than the reference can fail). Without
    `risk` (a score that is not a probability implies no rate) only the observed rates are given, each
    "not assessed"."""
    missed = settings.use == "assistive"
    rows = []
    for group in sorted(pd.unique(groups)):
        member = groups == group
        if missed:  # false negative rate: of those who escalated, the share not selected
            errors, base = y[member & ~selected].sum(), y[member].sum()
        else:  # false positive rate: of those who did not escalate, the share selected
            errors, base = (1 - y[member & selected]).sum(), (1 - y[member]).sum()
        rows.append(
            {
                "group": group,
                "n": int(member.sum()),
                "errors": int(errors),
                "events": int(base),
                "implied_rate": float("nan") if risk is None else _implied_rate(risk, member, selected, missed),
            }
        )
    return judge_errors(pd.DataFrame(rows), reference, settings)


def judge_errors(counts: pd.DataFrame, reference: str, settings: GateSettings) -> pd.DataFrame:
    """The harmful-error verdict of each group from its counts alone (`n`, `errors`, `events`,
    `implied_rate`) against the `reference` group's: what the audit computes and promotion recomputes.
    Where no rate is implied (the score is not a probability) every group is "not assessed"."""
    table = counts.set_index("group")
    low, high = wilson(table["errors"].to_numpy(), table["events"].to_numpy())
    table["rate"] = table["errors"] / table["events"].where(table["events"] > 0)
    table["rate_ci_low"], table["rate_ci_high"] = low, high
    table["metric"] = "false negative rate" if settings.use == "assistive" else "false positive rate"
    table["reference"] = reference
    if table["implied_rate"].isna().all():
        table["excess"] = table["excess_ci_low"] = table["excess_ci_high"] = float("nan")
        table["too_few"] = False
        table["status"] = NOT_ASSESSED
        return table.reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = table["rate"] / table["implied_rate"]
        ref = excess.get(reference, np.nan)
        table["excess"] = excess / ref
        table["excess_ci_low"] = table["rate_ci_low"] / table["implied_rate"] / ref
        table["excess_ci_high"] = table["rate_ci_high"] / table["implied_rate"] / ref
    judged = (
        (table["errors"] > 0)
        & (table["events"] - table["errors"] > 0)
        & (table["events"] >= settings.min_events)
        & (table["n"] >= settings.min_group_size)
        & np.isfinite(table["excess_ci_low"])
    )
    table["too_few"] = ~judged
    table["status"] = np.where(
        table.index == reference,
        "reference",
        np.where(
            ~judged,
            "inconclusive",
            np.where(
                table["excess_ci_low"] > settings.excess_tolerance,
                "fail",
                np.where(table["excess_ci_high"] <= settings.excess_tolerance, "pass", "inconclusive"),
            ),
        ),
    )
    return table.reset_index()
