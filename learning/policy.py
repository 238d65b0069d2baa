"""Which targeting works: off-policy evaluation of targeting rules from one cycle's logged records.

A rule gives each row of the logged cohort a probability pi_i of starting the programme (1 or 0 for a
ranking filled to a capacity, the capacity's share for random targeting). Its value, the escalations per
1,000 of the cohort had the rule been used, is estimated doubly robustly (augmented inverse-propensity,
Dudik et al. 2011) from the out-of-fold propensity e, untreated outcome m0 and treated outcome m1:

    psi_i = pi_i [m1_i + T_i (Y_i - m1_i) / e_i] + (1 - pi_i) [m0_i + (1 - T_i) (Y_i - m0_i) / (1 - e_i)]

with e clipped to [CLIP, 1 - CLIP]. The rule actually used is what happened: its value is the observed
rate, and each rule's difference from it is the mean of psi_i - Y_i, paired person by person. Intervals
are 95%, from the influence function with a person's rows summed (clustered); over repeated cross-fits
the estimate is the median and the variance adds the spread, as in `effects.att`. The intervals of the
differences are simultaneous over the k rules compared with the rule used (Bonferroni: each at
1 - 0.05 / k), so that the chance of any "change with evidence" when no rule is better stays within 5%
however many rules are compared.

Every rule fills the same number of places as the rule used did (per month when the cohort is stacked
by month; with `weight`, sampled-down rows count for the rows they stand for). A change is recommended
only when the interval of a rule's difference from the rule used lies wholly below zero (fewer
escalations); otherwise the words say there is no evidence to change.

Docs: docs/architecture.md, "Learning".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from riskloop.learning.effects import (
    REPEATS,
    Z95,
    Nuisance,
    dense,
    fit_classifier,
    folds,
    side_by_side,
    split_seeds,
    standard_error,
)

CLIP = 0.01  # propensities are clipped to [CLIP, 1 - CLIP] in the inverse weights
PER = 1_000  # values are escalations per PER people of the cohort
USED, RISK, UPLIFT, RANDOM, NONE = "rule used", "risk ranking", "uplift ranking", "random", "none"
RULES = (USED, RISK, UPLIFT, RANDOM, NONE)
VALUE = "escalations per 1,000"
COLUMNS = (
    "places",
    VALUE,
    f"{VALUE} low",
    f"{VALUE} high",
    "difference vs used (per 1,000)",
    "difference low (per 1,000)",
    "difference high (per 1,000)",
)


@dataclass(frozen=True)
class Logged:
    """One programme's logged records: one row per person (and month), aligned arrays."""

    t: np.ndarray  # started the programme (0/1): what the rule used did
    y: np.ndarray  # escalated within the horizon (0/1)
    nuisance: Nuisance  # out-of-fold e and m0 (effects.cross_fit), its repeats included
    m1: tuple[np.ndarray, ...]  # out-of-fold P(escalate | treated, x), one per cross-fit (nuisance, *repeats)
    weight: np.ndarray | None = None  # rows each row stands for (sampled-down controls); None: 1
    clusters: np.ndarray | None = None  # person per row: a person's rows are one cluster for the intervals
    groups: np.ndarray | None = None  # month per row: capacity is the logged places within each group


@dataclass(frozen=True)
class PolicyEvaluation:
    """Rules x (places, value per 1,000 with its 95% interval, difference from the rule used with its
    simultaneous 95% interval)."""

    table: pd.DataFrame  # index RULES, columns COLUMNS
    recommended: str | None  # the rule to change to, when the evidence says so; None: keep the rule used
    words: str


def treated_outcome(
    X: pd.DataFrame, t: np.ndarray, y: np.ndarray, k: int, seed: int, threads: int | None, repeats: int = REPEATS
) -> tuple[np.ndarray, ...]:
    """Out-of-fold m1(x) = P(escalate | treated, x), fitted on the treated rows of the other folds, for the
    same fold splits as `effects.cross_fit(X, t, y, k, seed, repeats=repeats)` (one array per split)."""
    calls = [functools.partial(_treated_outcome_once, X, t, y, k, s) for s in split_seeds(seed, repeats)]
    return tuple(side_by_side(calls, threads))


def _treated_outcome_once(X: pd.DataFrame, t: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    m1 = np.empty(len(t))
    for train, test in folds(t, k, seed):
        treated = train[t[train] == 1]
        m1[test] = (
            dense(fit_classifier(X.iloc[treated], y[treated], seed).predict_proba(X.iloc[test]))[:, 1]
            if 0 < y[treated].sum() < len(treated)
            else (y[treated].mean() if len(treated) else y.mean())
        )
    return m1


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


def _scores(logged: Logged, pi: np.ndarray, nuisance: Nuisance, m1: np.ndarray) -> np.ndarray:
    """psi_i: each row's doubly robust outcome under the rule that starts it with probability pi_i."""
    e = np.clip(nuisance.e, CLIP, 1 - CLIP)
    t, y, m0 = logged.t, logged.y, nuisance.m0
    treated = m1 + t * (y - m1) / e
    untreated = m0 + (1 - t) * (y - m0) / (1 - e)
    return pi * treated + (1 - pi) * untreated


def _mean(values: np.ndarray, logged: Logged) -> tuple[float, float]:
    """Weighted mean of per-row values and its standard error (clustered)."""
    w = np.ones(len(values)) if logged.weight is None else logged.weight
    mean = float(np.sum(w * values) / w.sum())
    influence = w * (values - mean) * len(values) / w.sum()
    return mean, standard_error(influence, logged.clusters)


def _estimate(logged: Logged, pi: np.ndarray, difference: bool) -> tuple[float, float]:
    """(estimate, se) of the rule's value (or its difference from the rule used) over the repeated cross-fits:
    the median estimate, with variance median(se^2 + (estimate - median)^2)."""
    fits = (logged.nuisance, *logged.nuisance.repeats)
    each = [
        _mean(_scores(logged, pi, n, m1) - (logged.y if difference else 0.0), logged) for n, m1 in zip(fits, logged.m1)
    ]
    value = float(np.median([v for v, _ in each]))
    return value, float(np.sqrt(np.median([se**2 + (v - value) ** 2 for v, se in each])))


def evaluate(logged: Logged, policies: dict[str, np.ndarray]) -> PolicyEvaluation:
    """Each rule's value per 1,000 and its difference from the rule used (USED, which must be among
    `policies`), with 95% intervals (simultaneous for the differences), and the recommendation in words."""
    if USED not in policies:
        raise ValueError(f"the rules must include {USED!r}: differences are taken against it")
    if len(logged.m1) != 1 + len(logged.nuisance.repeats):
        raise ValueError(f"m1 has {len(logged.m1)} cross-fits, the nuisance {1 + len(logged.nuisance.repeats)}")
    w = np.ones(len(logged.t)) if logged.weight is None else logged.weight
    z = simultaneous_z(len(policies) - 1)
    rows = {}
    for name, pi in policies.items():
        if name == USED:  # what happened: the observed rate, no model
            value, se = _mean(logged.y.astype(float), logged)
            diff, diff_se = 0.0, 0.0
        else:
            value, se = _estimate(logged, pi, difference=False)
            diff, diff_se = _estimate(logged, pi, difference=True)
        rows[name] = [
            float(np.sum(w * pi)),
            *(PER * x for x in (value, value - Z95 * se, value + Z95 * se)),
            *(PER * x for x in (diff, diff - z * diff_se, diff + z * diff_se)),
        ]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    return PolicyEvaluation(table, *recommend(table))


def simultaneous_z(compared: int) -> float:
    """The normal quantile for two-sided 95% intervals that hold together over `compared` comparisons."""
    return float(norm.ppf(1 - 0.025 / max(1, compared)))


def recommend(table: pd.DataFrame) -> tuple[str | None, str]:
    """The rule with the fewest escalations among those whose whole interval of the difference from the
    rule used is below zero; none such: keep the rule used, "no evidence to change"."""
    others = table.drop(index=USED)
    better = others[others["difference high (per 1,000)"] < 0]
    if better.empty:
        worse = others.index[others["difference low (per 1,000)"] > 0]
        tail = f" (the rule used prevents more than {', '.join(worse)}, with evidence)" if len(worse) else ""
        return None, (
            "No evidence to change: no rule's simultaneous 95% interval of the difference from the rule used lies wholly "
            f"below zero{tail}."
        )
    best = better[VALUE].idxmin()
    row = better.loc[best]
    return str(best), (
        f"Change to {best}: {-row['difference vs used (per 1,000)']:.1f} fewer escalations per 1,000 of the cohort "
        f"than the rule used (simultaneous 95% interval {-row['difference high (per 1,000)']:.1f} to "
        f"{-row['difference low (per 1,000)']:.1f} fewer), at the same number of places."
    )
