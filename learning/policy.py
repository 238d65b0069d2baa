"""Which targeting works: off-policy evaluation of targeting rules from one cycle's logged records.

A rule gives each row of the logged cohort a probability pi_i of starting the programme (1 or 0 for a
ranking filled to a capacity, the capacity's share for random targeting). Its value for an outcome, the
escalations (or the recorded harm) per 1,000 of the cohort had the rule been used, is estimated doubly
robustly (augmented inverse-propensity, Dudik et al. 2011) from the out-of-fold propensity e and the
outcome's out-of-fold untreated and treated models m0 and m1:

    psi_i = pi_i [m1_i + T_i (Y_i - m1_i) / e_i] + (1 - pi_i) [m0_i + (1 - T_i) (Y_i - m0_i) / (1 - e_i)]

with e clipped to [CLIP, 1 - CLIP] (and, where the untreated rows were sampled down, its odds divided by the
sampling weight: `cohort_propensity`). The rule actually used is what happened: its value is the observed
mean, and each rule's difference from it is the mean of psi_i - Y_i, paired person by person. Intervals
are 95%, from the influence function with a person's rows summed (clustered); over repeated cross-fits
the estimate is the median and the variance adds the spread, as in `effects.att`. The intervals of the
differences are simultaneous over the k rules compared with the rule used (Bonferroni: each at
1 - 0.05 / k), so that the chance of any "change with evidence" when no rule is better stays within 5%
however many rules are compared.

Two outcomes are evaluated with the same propensity: escalation (the model's label, 0/1) and the recorded
harm over the same horizon (`features.snapshot.horizon_harm`), with classifiers and regressors as their
arm models. Every rule fills the same number of places as the rule used did (per month when the cohort is
stacked by month; with `weight`, sampled-down rows count for the rows they stand for). A change is
recommended by escalations alone, only when the interval of a rule's difference from the rule used lies
wholly below zero (fewer escalations), and the words add what it does to harm; otherwise they say there is
no evidence to change.

Docs: docs/architecture.md, "Learning".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import norm

from riskloop.learning.effects import Z95, Binned, Nuisance, arm_prediction, folds, split_seeds, standard_error
from riskloop.models.estimators import side_by_side

CLIP = 0.01  # propensities are clipped to [CLIP, 1 - CLIP] in the inverse weights
PER = 1_000  # values are per PER people of the cohort
USED, RISK, UPLIFT, RANDOM, NONE = "rule used", "risk ranking", "uplift ranking", "random", "none"
RULES = (USED, RISK, UPLIFT, RANDOM, NONE)


class Columns(NamedTuple):
    """One outcome's six columns of the policy table, the unit in each name: its value per 1,000 of the cohort
    with the 95% interval, and its difference from the rule used with the simultaneous 95% interval."""

    outcome: str
    value: str
    low: str
    high: str
    difference: str
    difference_low: str
    difference_high: str

    @classmethod
    def of(cls, outcome: str) -> Columns:
        per = f"{outcome} per 1,000"
        differences = (f"{outcome} difference {x} (per 1,000)" for x in ("vs used", "low", "high"))
        return cls(outcome, per, f"{per} low", f"{per} high", *differences)

    @property
    def names(self) -> tuple[str, ...]:
        """The six column names, in the table's order."""
        return self[1:]


ESCALATIONS, HARM = Columns.of("escalations"), Columns.of("harm")
COLUMNS = ("places", *ESCALATIONS.names, *HARM.names)


@dataclass(frozen=True)
class Outcome:
    """One outcome of the logged rows and its out-of-fold arm models, one of each per cross-fit (the
    nuisance's fold split, then its repeats)."""

    y: np.ndarray  # observed: what happened under the rule used
    m0: tuple[np.ndarray, ...]  # E[y | untreated, x]
    m1: tuple[np.ndarray, ...]  # E[y | treated, x]


@dataclass(frozen=True)
class Logged:
    """One programme's logged records: one row per person (and month), aligned arrays."""

    t: np.ndarray  # started the programme (0/1): what the rule used did
    nuisance: Nuisance  # out-of-fold propensity e (effects.cross_fit), its repeats included
    escalation: Outcome  # escalated within the horizon (0/1)
    harm: Outcome  # recorded harm within the horizon
    weight: np.ndarray | None = None  # rows each row stands for (sampled-down controls); None: 1
    clusters: np.ndarray | None = None  # person per row: a person's rows are one cluster for the intervals
    groups: np.ndarray | None = None  # month per row: capacity is the logged places within each group

    @functools.cached_property
    def propensities(self) -> tuple[np.ndarray, ...]:
        """The cohort's propensity (`cohort_propensity`) per cross-fit: the nuisance's, then its repeats'."""
        return tuple(cohort_propensity(self, n.e) for n in (self.nuisance, *self.nuisance.repeats))


@dataclass(frozen=True)
class PolicyEvaluation:
    """Rules x (places, then per outcome its value per 1,000 with the 95% interval and its difference from the
    rule used with the simultaneous 95% interval)."""

    table: pd.DataFrame  # index RULES, columns COLUMNS
    recommended: str | None  # the rule to change to, when the evidence says so; None: keep the rule used
    words: str


def arm_outcomes(
    data: Binned,
    t: np.ndarray,
    escalated: np.ndarray,
    harm: np.ndarray,
    nuisance: Nuisance,
    k: int,
    seed: int,
    threads: int | None,
) -> tuple[Outcome, Outcome]:
    """Escalation and harm with their arm models, out of fold on the fold splits of `nuisance` (which must be
    `effects.cross_fit(data, t, escalated, k, seed, ...)`, its repeats included): the escalation's m0 is the
    nuisance's own; its m1 and harm's m0 and m1 are fitted here, each (model, split, fold) a call side by side,
    the largest first (harm's m0, on the untreated rows)."""
    splits = {s: folds(t, k, s) for s in split_seeds(seed, 1 + len(nuisance.repeats))}
    models = ((harm, 0, True), (escalated, 1, False), (harm, 1, True))  # (values, arm, regression)
    calls = [
        functools.partial(arm_prediction, data, values, train[t[train] == arm], test, s, regression)
        for values, arm, regression in models
        for s, split in splits.items()
        for train, test in split
    ]
    predicted = iter(side_by_side(calls, threads))
    fitted = []
    for _ in models:
        per_split = []
        for split in splits.values():
            m = np.empty(len(t))
            for _, test in split:
                m[test] = next(predicted)
            per_split.append(m)
        fitted.append(tuple(per_split))
    harm_m0, escalation_m1, harm_m1 = fitted
    escalation_m0 = tuple(n.m0 for n in (nuisance, *nuisance.repeats))
    return Outcome(escalated, escalation_m0, escalation_m1), Outcome(harm, harm_m0, harm_m1)


def top(score: np.ndarray, places: np.ndarray, groups: np.ndarray | None, weight: np.ndarray | None) -> np.ndarray:
    """1 for the highest-scored rows of each group until the group's places are filled (rows counted by
    their weight), else 0; `places` is a per-row array holding its group's places."""
    weight = np.ones(len(score)) if weight is None else np.asarray(weight, float)
    codes = np.zeros(len(score), int) if groups is None else pd.factorize(groups)[0]
    chosen = np.zeros(len(score))
    for g in np.unique(codes):
        rows = np.flatnonzero(codes == g)
        order = rows[np.argsort(-np.asarray(score, float)[rows], kind="stable")]
        filled = np.cumsum(weight[order])
        chosen[order[filled <= places[rows[0]] + 1e-9]] = 1.0
    return chosen


def rules(
    t: np.ndarray,
    risk: np.ndarray,
    benefit: np.ndarray,
    groups: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The five rules at the capacity the rule used had: the logged starts, the highest risk, the highest
    predicted benefit (-effect), random (everyone with the capacity's share as probability), none."""
    w = np.ones(len(t)) if weight is None else np.asarray(weight, float)
    codes = np.zeros(len(t), int) if groups is None else pd.factorize(groups)[0]
    places = np.bincount(codes, weights=t * w)[codes]
    share = places / np.bincount(codes, weights=w)[codes]
    return {
        USED: t.astype(float),
        RISK: top(risk, places, groups, weight),
        UPLIFT: top(benefit, places, groups, weight),
        RANDOM: share,
        NONE: np.zeros(len(t)),
    }


def _scores(t: np.ndarray, e: np.ndarray, y: np.ndarray, m0: np.ndarray, m1: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """psi_i: each row's doubly robust outcome under the rule that starts it with probability pi_i."""
    e = np.clip(e, CLIP, 1 - CLIP)
    treated = m1 + t * (y - m1) / e
    untreated = m0 + (1 - t) * (y - m0) / (1 - e)
    return pi * treated + (1 - pi) * untreated


def cohort_propensity(logged: Logged, e: np.ndarray) -> np.ndarray:
    """The propensity among the people the rows stand for. Where a month's untreated rows were sampled down (each
    standing for w people), a propensity fitted on the rows has w times the cohort's odds of starting, so the
    odds are divided by w (the month's largest untreated weight: the people who started no programme at all;
    the few who started another programme were all kept, so for them this is approximate)."""
    if logged.weight is None:
        return e
    codes = np.zeros(len(e), int) if logged.groups is None else pd.factorize(logged.groups)[0]
    untreated = logged.t == 0
    w = np.ones(codes.max() + 1)
    np.maximum.at(w, codes[untreated], logged.weight[untreated])
    return e / (e + (1 - e) * w[codes])


def _mean(values: np.ndarray, logged: Logged) -> tuple[float, float]:
    """Weighted mean of per-row values and its standard error (clustered)."""
    w = np.ones(len(values)) if logged.weight is None else logged.weight
    mean = float(np.sum(w * values) / w.sum())
    influence = w * (values - mean) * len(values) / w.sum()
    return mean, standard_error(influence, logged.clusters)


def _estimate(logged: Logged, outcome: Outcome, pi: np.ndarray, difference: bool) -> tuple[float, float]:
    """(estimate, se) of the rule's value for the outcome (or its difference from the rule used) over the
    repeated cross-fits: the median estimate, with variance median(se^2 + (estimate - median)^2)."""
    y = outcome.y
    each = [
        _mean(_scores(logged.t, e, y, m0, m1, pi) - (y if difference else 0.0), logged)
        for e, m0, m1 in zip(logged.propensities, outcome.m0, outcome.m1)
    ]
    value = float(np.median([v for v, _ in each]))
    return value, float(np.sqrt(np.median([se**2 + (v - value) ** 2 for v, se in each])))


def _outcome_row(logged: Logged, outcome: Outcome, pi: np.ndarray | None, z: float) -> list[float]:
    """One outcome's six figures per 1,000 (Columns.names) for a rule; `pi` None: the rule used, what happened
    (the observed mean, no model, and no difference from itself)."""
    if pi is None:
        value, se = _mean(outcome.y.astype(float), logged)
        diff, diff_se = 0.0, 0.0
    else:
        value, se = _estimate(logged, outcome, pi, difference=False)
        diff, diff_se = _estimate(logged, outcome, pi, difference=True)
    return [PER * x for x in (value, value - Z95 * se, value + Z95 * se, diff, diff - z * diff_se, diff + z * diff_se)]


def evaluate(logged: Logged, policies: dict[str, np.ndarray]) -> PolicyEvaluation:
    """Each rule's escalations and harm per 1,000 and their differences from the rule used (USED, which must be
    among `policies`), with 95% intervals (simultaneous for the differences), and the recommendation in words."""
    if USED not in policies:
        raise ValueError(f"the rules must include {USED!r}: differences are taken against it")
    fits = 1 + len(logged.nuisance.repeats)
    for name, outcome in (("escalation", logged.escalation), ("harm", logged.harm)):
        if not len(outcome.m0) == len(outcome.m1) == fits:
            raise ValueError(
                f"{name} has {len(outcome.m0)} and {len(outcome.m1)} cross-fits of m0 and m1, the nuisance {fits}"
            )
    w = np.ones(len(logged.t)) if logged.weight is None else logged.weight
    z = simultaneous_z(len(policies) - 1)
    rows = {}
    for name, pi in policies.items():
        modelled = None if name == USED else pi
        rows[name] = [
            float(np.sum(w * pi)),
            *_outcome_row(logged, logged.escalation, modelled, z),
            *_outcome_row(logged, logged.harm, modelled, z),
        ]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    return PolicyEvaluation(table, *recommend(table))


def simultaneous_z(compared: int) -> float:
    """The normal quantile for two-sided 95% intervals that hold together over `compared` comparisons."""
    return float(norm.ppf(1 - 0.025 / max(1, compared)))


def recommend(table: pd.DataFrame) -> tuple[str | None, str]:
    """The rule with the fewest escalations among those whose whole interval of the escalations' difference
    from the rule used is below zero, with what it does to harm in words; none such: keep the rule used,
    "no evidence to change"."""
    others = table.drop(index=USED)
    better = others[others[ESCALATIONS.difference_high] < 0]
    if better.empty:
        worse = others.index[others[ESCALATIONS.difference_low] > 0]
        tail = f" (the rule used prevents more than {', '.join(worse)}, with evidence)" if len(worse) else ""
        return None, (
            "No evidence to change: no rule's simultaneous 95% interval of the difference in escalations from the "
            f"rule used lies wholly below zero{tail}."
        )
    best = better[ESCALATIONS.value].idxmin()
    row = better.loc[best]
    return str(best), (
        f"Change to {best}: {-row[ESCALATIONS.difference]:.1f} fewer escalations per 1,000 of the cohort "
        f"than the rule used (simultaneous 95% interval {-row[ESCALATIONS.difference_high]:.1f} to "
        f"{-row[ESCALATIONS.difference_low]:.1f} fewer), at the same number of places. Its recorded harm against "
        f"the rule used: {row[HARM.difference]:+.1f} harm weight per 1,000 of the cohort (simultaneous 95% interval "
        f"{row[HARM.difference_low]:+.1f} to {row[HARM.difference_high]:+.1f}; below 0: less harm)."
    )
