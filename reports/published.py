"""The fairness audit's per-group tables as they may be published: every count under the disclosure rule and
every figure beside it computed from the figures shown.

The rule, one for every report: a count of people, events or errors is shown rounded to the nearest 5 ("*"
from 1 to the threshold); every rate, ratio and interval shown beside it is computed from the counts **as
shown** (a rate is its shown numerator over its shown denominator), so a reader with a calculator gets the
same figure and no figure reveals a count more exactly than the count itself. A figure whose count is "*"
is "*", in every table. The gate's verdicts (the status column) are reached on the exact counts, so near an
edge of the band a verdict can differ from what the shown interval suggests: it is marked `DIFFERS` and
`FOOTNOTE` says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskloop.models.fairness import FairnessAudit
from riskloop.models.gate import poisson_interval, wilson
from riskloop.reports.disclosure import SUPPRESSED, disclose

FOOTNOTE = (
    'Counts of people, and of the events or errors within a group, are rounded to the nearest 5 and shown as "*" '
    "from 1 to {threshold}. Every rate, ratio and interval is computed from the counts as shown (a rate is the "
    "count shown over the count shown; a ratio is of the figures shown), so it reveals no count more exactly than "
    'the count itself; a figure that rests on a "*" count is "*" in every table. The gate\'s verdicts are reached '
    "on the exact counts, so near an edge of the accepted band a verdict can differ from what the rounded figures "
    "suggest; such a verdict is marked \u2020."
)


def _ratio(numerator: int | str, denominator: int | str) -> float | str:
    """numerator / denominator as shown: "*" when either is, NaN when the denominator is 0."""
    if SUPPRESSED in (numerator, denominator):
        return SUPPRESSED
    return float(numerator) / float(denominator) if float(denominator) else float("nan")


def _number(value: float | str) -> float:
    """A figure as shown (3 decimals), NaN for "*", so that what is computed from it is what a reader computes."""
    return float("nan") if value == SUPPRESSED else round(float(value), 3)


def _divide(a: float, b: float) -> float:
    return a / b if b and np.isfinite(b) else float("nan")


def _interval(low: float, high: float) -> str:
    return f"{low:.2f}-{high:.2f}" if np.isfinite(low) and np.isfinite(high) else "-"


#: Marks a verdict (reached on the exact counts) that the rounded figures shown beside it would not give.
DIFFERS = "\u2020"


def _verdict(low: float, high: float, lower: float, upper: float) -> str:
    """The verdict an interval shows against the band [lower, upper] (as the gate reads one)."""
    if high < lower or low > upper:
        return "fail"
    return "pass" if lower <= low and high <= upper else "inconclusive"


def _marked(status: str, shown: str) -> str:
    return status if shown == status else f"{status} {DIFFERS}"


def _hidden(*counts: int | str) -> bool:
    return SUPPRESSED in counts


def calibration(audit: FairnessAudit, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Observed / expected events per group as published: the ratio of the shown count to the shown
    expectation (3 decimals), the exact Poisson interval of the shown count over it."""
    frame = audit.calibration if frame is None else frame
    t, rows = audit.config.disclosure_threshold, []
    for r in frame.itertuples():
        n, observed = disclose(r.n, t), disclose(r.observed_events, t)
        expected = round(float(r.expected_events), 3)
        hidden = _hidden(n, observed)
        status = r.status
        if hidden or not expected:
            ratio, ci = SUPPRESSED if hidden else float("nan"), SUPPRESSED if hidden else "-"
        else:
            low, high = poisson_interval(float(observed))
            ratio, ci = float(observed) / expected, _interval(float(low) / expected, float(high) / expected)
            band = 1 / (1 + audit.config.calibration_tolerance), 1 + audit.config.calibration_tolerance
            if not r.too_few:
                status = _marked(r.status, _verdict(float(low) / expected, float(high) / expected, *band))
        rows.append(
            {
                "characteristic": r.characteristic,
                "group": r.group,
                "scope": "among the selected" if r.scope == "selected" else "overall",
                "n": n,
                "observed_events": observed,
                "expected_events": SUPPRESSED if hidden else expected,
                "ratio": ratio,
                "ci": ci,
                "status": status,
            }
        )
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


CALIBRATION_COLUMNS = [
    "characteristic",
    "group",
    "scope",
    "n",
    "observed_events",
    "expected_events",
    "ratio",
    "ci",
    "status",
]


def errors(audit: FairnessAudit) -> pd.DataFrame:
    """The harmful error rate per group as published: errors shown over events shown, its Wilson interval
    from them; for a probability, the rate its own risks imply and the excess over the reference group's
    (the shown rate over the implied one, relative to the reference's), with the interval from the shown
    counts."""
    t, rows = audit.config.disclosure_threshold, []
    for characteristic, table in audit.errors.groupby("characteristic", sort=False):
        shown = table.assign(
            n_shown=table["n"].map(lambda v: disclose(v, t)),
            errors_shown=table["errors"].map(lambda v: disclose(v, t)),
            events_shown=table["events"].map(lambda v: disclose(v, t)),
        )
        rate = {r.group: _number(_ratio(r.errors_shown, r.events_shown)) for r in shown.itertuples()}
        implied = {r.group: round(float(r.implied_rate), 3) for r in shown.itertuples()}
        reference = shown["reference"].iloc[0]
        ref_excess = _divide(rate.get(reference, float("nan")), implied.get(reference, float("nan")))
        for r in shown.itertuples():
            hidden = _hidden(r.n_shown, r.errors_shown, r.events_shown)
            row: dict[str, object] = {
                "characteristic": characteristic,
                "group": r.group,
                "n": r.n_shown,
                "errors": r.errors_shown,
                "events": r.events_shown,
                "rate": rate[r.group] if not hidden else SUPPRESSED,
                "rate_ci": SUPPRESSED if hidden else _interval(*_wilson(r.errors_shown, r.events_shown)),
            }
            if audit.probability:
                low, high = (np.nan, np.nan) if hidden else _wilson(r.errors_shown, r.events_shown)
                scale = implied[r.group] * ref_excess
                row["implied_rate"] = SUPPRESSED if hidden else implied[r.group]
                row["excess"] = SUPPRESSED if hidden else _divide(rate[r.group], scale)
                row["excess_ci"] = SUPPRESSED if hidden else _interval(_divide(low, scale), _divide(high, scale))
            row["status"] = r.status
            if audit.probability and not hidden and not r.too_few and r.status != "reference":
                excess = _divide(low, scale), _divide(high, scale)
                row["status"] = _marked(r.status, _verdict(*excess, 0.0, audit.config.band[1]))
            rows.append(row)
    return pd.DataFrame(rows)


def _wilson(errors: int | str, events: int | str) -> tuple[float, float]:
    low, high = wilson(np.asarray(float(errors)), np.asarray(float(events)))
    return float(low), float(high)


def ranking(audit: FairnessAudit) -> pd.DataFrame:
    """ROC AUC per group: shown with its interval unless the group's size or events are "*"."""
    t, rows = audit.config.disclosure_threshold, []
    for r in audit.ranking.itertuples():
        n, events = disclose(r.n, t), disclose(r.events, t)
        hidden = _hidden(n, events)
        rows.append(
            {
                "characteristic": r.characteristic,
                "group": r.group,
                "n": n,
                "events": events,
                "auc": SUPPRESSED if hidden else r.auc,
                "ci": SUPPRESSED if hidden else _interval(r.ci_low, r.ci_high),
            }
        )
    return pd.DataFrame(rows)


def disparities(audit: FairnessAudit, frame: pd.DataFrame) -> pd.DataFrame:
    """Raw disparities as published: the group's rate as its shown count over its shown base, the reference's
    likewise, the ratio of the two rates as shown (3 decimals); the bootstrap interval (from the exact
    counts: no function of any one count) unless a count it rests on is "*"."""
    t, rows = audit.config.disclosure_threshold, []
    for r in frame.itertuples():
        counted, base = disclose(r.numerator, t), disclose(r.denominator, t)
        ref_counted, ref_base = disclose(r.reference_numerator, t), disclose(r.reference_denominator, t)
        hidden = _hidden(counted, base, ref_counted, ref_base, disclose(r.n, t))
        value, ref_value = _number(_ratio(counted, base)), _number(_ratio(ref_counted, ref_base))
        rows.append(
            {
                "characteristic": r.characteristic,
                "group": r.group,
                "metric": r.metric,
                "counted": SUPPRESSED if hidden else counted,
                "out_of": SUPPRESSED if hidden else base,
                "rate": SUPPRESSED if hidden else value,
                "reference": r.reference,
                "reference_rate": SUPPRESSED if hidden else ref_value,
                "ratio": SUPPRESSED if hidden else _divide(value, ref_value),
                "ci": SUPPRESSED if hidden else _interval(r.ci_low, r.ci_high),
                "status": r.status,
            }
        )
    return pd.DataFrame(rows)


def groups(audit: FairnessAudit) -> pd.DataFrame:
    """Per group: its size, events and people selected as shown, the observed rate and the selection rate
    from them, the mean predicted risk (a probability only) and the ROC AUC; on a row with a "*" count,
    every other figure is "*"."""
    t, rows = audit.config.disclosure_threshold, []
    for r in audit.by_group.itertuples():
        n, events, selected = disclose(r.n, t), disclose(r.fn + r.tp, t), disclose(r.tp + r.fp, t)
        hidden = _hidden(n, events, selected)
        row: dict[str, object] = {
            "characteristic": r.characteristic,
            "group": r.group,
            "n": n,
            "events": events,
            "observed": SUPPRESSED if hidden else _ratio(events, n),
            "selected": selected,
            "selection_rate": SUPPRESSED if hidden else _ratio(selected, n),
        }
        if audit.probability:
            row["mean_predicted"] = SUPPRESSED if hidden else r.mean_predicted
        row["roc_auc"] = SUPPRESSED if hidden else r.roc_auc
        rows.append(row)
    return pd.DataFrame(rows)


def mitigation_groups(by_group: pd.DataFrame, sensitive: str, threshold: int) -> pd.DataFrame:
    """Per group, before and after mitigation: people, events and people selected as shown, and the true
    positive, false positive and selection rates from the counts as shown; on a row with a "*" count, every
    other number is "*"."""
    rows = []
    for group, r in by_group.iterrows():
        n, events = disclose(r["n"], threshold), disclose(r["events"], threshold)
        negatives = disclose(r["n"] - r["events"], threshold)
        counts = {
            when: {c: disclose(r[f"{c} {when}"], threshold) for c in ("selected", "true_positives", "false_positives")}
            for when in ("before", "after")
        }
        hidden = _hidden(n, events, negatives, *(v for shown in counts.values() for v in shown.values()))
        row: dict[str, object] = {sensitive: group, "n": n, "events": events}
        for when, shown in counts.items():
            row[f"selected {when}"] = SUPPRESSED if hidden else shown["selected"]
            for name, numerator, denominator in (
                ("true positive rate", shown["true_positives"], events),
                ("false positive rate", shown["false_positives"], negatives),
                ("selection rate", shown["selected"], n),
            ):
                row[f"{name} {when}"] = SUPPRESSED if hidden else _ratio(numerator, denominator)
        rows.append(row)
    return pd.DataFrame(rows)


#: The comparison's min/max ratios and the per-group rates (before: at the mitigated share) they are of.
SPREADS = {
    ("model at the mitigated share", "tpr_ratio (min/max)"): "true positive rate before",
    ("model at the mitigated share", "fpr_ratio (min/max)"): "false positive rate before",
    ("mitigated (ThresholdOptimizer)", "tpr_ratio (min/max)"): "true positive rate after",
    ("mitigated (ThresholdOptimizer)", "fpr_ratio (min/max)"): "false positive rate after",
}


def mitigation_comparison(comparison: pd.DataFrame, groups: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """The decision rules compared: people selected disclosed, and each min/max ratio of a rate across
    groups taken over the rates the group table shows (a "*" rate is in no ratio)."""
    out = comparison.assign(selected=comparison["selected"].map(lambda v: disclose(v, threshold)))
    for (rule, column), rate in SPREADS.items():
        if rule in out.index and column in out.columns:
            shown = pd.to_numeric(groups[rate][groups[rate] != SUPPRESSED], errors="coerce").dropna()
            out.loc[rule, column] = _divide(float(shown.min()), float(shown.max())) if len(shown) else float("nan")
    names = {c: c.replace("tpr_ratio", "true positive rate").replace("fpr_ratio", "false positive rate") for c in out}
    return out.rename(columns=names)
