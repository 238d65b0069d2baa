"""What worked: the effect of a programme on the people who received it (ATT), doubly robust.

The estimand is the average effect on the treated of starting the programme on the probability of
escalating within the horizon (a risk difference; negative = fewer escalations). The estimator is
the cross-fitted doubly robust (augmented inverse-propensity) estimator of the ATT: a LightGBM
propensity model e(x) = P(treated | as-of features) and a LightGBM outcome model m0(x) = P(escalate
| untreated, x), each predicted out of fold, then

    ATT = sum_i [T_i (Y_i - m0_i) - (1 - T_i) e_i / (1 - e_i) (Y_i - m0_i)] / sum_i T_i

It is consistent if either nuisance model is right; its 95% interval comes from the influence
function. Treated people with no comparable untreated people (e_i above `trim`) are trimmed and
counted. Subgroup effects (prevention tier, risk band) average the same per-person terms within the
subgroup, which is valid because subgroups are defined by pre-treatment features.

Docs: docs/architecture.md, "Learning".
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.model_selection import StratifiedKFold

from riskloop.models.estimators import side_by_side

Z95 = float(norm.ppf(0.975))
REPEATS = 5  # random fold splits of the cross-fitting (docs/validation.md, "Stable estimates")
TRIM = 0.95
NEAR_TRIM = 0.8  # starters kept above this propensity have few comparable untreated people
BINNING: dict[str, Any] = dict(
    max_bin=63,
    enable_bundle=False,  # the same trees (bundling is lossless here), but with half the columns per tree a
    # bundled data set builds its histograms slower: 0.24 -> 0.11 s per fit on 5,000 x 69; the same estimates,
    # 48 -> 45 s per effect step of `benchmarks/effect_stability.py 30000 9311 2`
    feature_pre_filter=False,  # each fit sets its own leaf size on the same bins
    verbose=-1,
)
NUISANCE: dict[str, Any] = dict(
    num_iterations=100,
    learning_rate=0.08,
    num_leaves=15,
    min_data_in_leaf=50,
    bagging_fraction=0.7,
    bagging_freq=1,
    feature_fraction=0.5,
    lambda_l2=1.0,
    num_threads=1,
    verbose=-1,
    deterministic=True,
    force_col_wise=True,  # as LightGBM asks beside `deterministic`; it also skips the row/column-wise timing test
    # each fit would run: 0.51 s against 0.72 s per fit on 24,000 x 69 (1 M people's trials)
)


class Binned:
    """The adjustment features `X`, binned by LightGBM once for every nuisance model fitted on some of their
    rows: a fit takes its rows' bins (`Dataset.subset`) instead of binning its rows again, which was a fifth of
    its time. The bin edges come from the features of every row, never from a treatment or an outcome, so a
    cross-fitted model still learns nothing of the held-out rows it predicts."""

    def __init__(self, X: pd.DataFrame) -> None:
        self.X = X
        self._bins = lgb.Dataset(X, np.zeros(len(X)), params=BINNING).construct()  # before any thread shares it

    def fit(self, rows: np.ndarray, values: np.ndarray, seed: int, objective: str, leaf: int) -> lgb.Booster:
        """A nuisance model of `values` (one per row of X) fitted on `rows`, one thread, deterministic."""
        rows = np.sort(rows)  # a subset keeps X's order
        subset = self._bins.subset(rows.tolist()).construct()
        subset.set_label(values[rows])
        return lgb.train({**NUISANCE, "objective": objective, "min_data_in_leaf": leaf, "seed": seed}, subset)


@dataclass(frozen=True)
class Estimate:
    """A risk difference with its standard error and 95% interval."""

    value: float
    se: float
    n_treated: int
    n_control: int

    @property
    def ci_low(self) -> float:
        return self.value - Z95 * self.se

    @property
    def ci_high(self) -> float:
        return self.value + Z95 * self.se

    def row(self, prefix: str) -> dict[str, float]:
        return {
            prefix: self.value,
            f"{prefix}_se": self.se,
            f"{prefix}_ci_low": self.ci_low,
            f"{prefix}_ci_high": self.ci_high,
        }


@dataclass(frozen=True)
class Nuisance:
    """Out-of-fold propensity `e` and untreated outcome `m0` for every row, and the rows kept after trimming;
    `repeats` holds the same from other random fold splits (repeated cross-fitting)."""

    e: np.ndarray
    m0: np.ndarray
    kept: np.ndarray
    repeats: tuple[Nuisance, ...] = ()


def leaf_size(events: int) -> int:
    """Fewest rows per leaf: NUISANCE's 50 for large samples, less when the rarer class is small, so a
    programme with 60 starts still gets a propensity model that can tell its people apart."""
    return int(np.clip(events // 10, 5, NUISANCE["min_data_in_leaf"]))


def dense(predicted: object) -> np.ndarray:
    """LightGBM's predictions of a dense frame: an array (its annotation also allows pred_contrib's sparse output)."""
    if not isinstance(predicted, np.ndarray):
        raise TypeError(f"expected an array of predictions, got {type(predicted).__name__}")
    return predicted


def fit_classifier(data: Binned, rows: np.ndarray, labels: np.ndarray, seed: int) -> lgb.Booster:
    """A nuisance classifier of `labels` (0/1, one per row of the data) on `rows`, predicting P(label = 1 | x),
    its leaf size set by the rarer class."""
    positives = int(labels[rows].sum())
    return data.fit(rows, labels, seed, "binary", leaf_size(min(positives, len(rows) - positives)))


def fit_regressor(
    data: Binned, rows: np.ndarray, values: np.ndarray, seed: int, events: int | None = None
) -> lgb.Booster:
    """A nuisance regressor of `values` (one per row of the data) on `rows`, its leaf size set by `events`
    (default: the rows with a nonzero value; of a mostly-zero outcome such as harm, the rows with any, as the
    classifier's rarer class)."""
    events = int(np.count_nonzero(values[rows])) if events is None else events
    return data.fit(rows, values, seed, "regression", leaf_size(events))


def predict(model: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """A nuisance model's predictions for `frame`: P(label = 1 | x) of a classifier, E[value | x] of a regressor."""
    return dense(model.predict(frame))


def arm_prediction(
    data: Binned, values: np.ndarray, rows: np.ndarray, test: np.ndarray, seed: int, regression: bool = False
) -> np.ndarray:
    """Predictions for the `test` rows of a model of `values` fitted on `rows` (one arm's rows of the other
    folds): P(value = 1 | x) from `fit_classifier`, or with `regression` E[value | x] from `fit_regressor`; the
    rows' mean where they hold fewer than two distinct values (without rows, the mean of all `values`)."""
    if len(rows) == 0 or values[rows].min() == values[rows].max():
        return np.full(len(test), values[rows].mean() if len(rows) else values.mean())
    fit = fit_regressor if regression else fit_classifier
    return predict(fit(data, rows, values, seed), data.X.iloc[test])


def out_of_fold(data: Binned, labels: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], seed: int) -> np.ndarray:
    """P(label = 1 | x) for every row, from a classifier fitted on the other folds."""
    p = np.empty(len(labels))
    for train, test in splits:
        p[test] = predict(fit_classifier(data, train, labels, seed), data.X.iloc[test])
    return p


def folds(t: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-fitting folds, stratified on treatment (fewer folds when few are treated)."""
    k = int(max(2, min(k, t.sum(), (1 - t).sum())))
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(t)), t))


def split_seeds(seed: int, repeats: int) -> list[int]:
    """One seed per repetition of the cross-fitting, from `seed`'s own stream: two seeds share no split
    (with seed + r, seed 0's second split would be seed 1's first)."""
    return [int(s) >> 1 for s in np.random.SeedSequence(seed).generate_state(max(1, repeats))]


def cross_fit(
    data: Binned,
    t: np.ndarray,
    y: np.ndarray,
    k: int = 5,
    seed: int = 0,
    threads: int | None = None,
    trim: float = TRIM,
    repeats: int = REPEATS,
) -> Nuisance:
    """Out-of-fold e(x) and m0(x) (m0 fitted on the untreated rows of the other folds), for `repeats`
    different random fold splits (and LightGBM seeds): the estimate is the median over splits and its
    variance adds their spread (Chernozhukov et al. 2018), so the interval allows for how the folds fell."""
    calls = [functools.partial(_cross_fit_once, data, t, y, k, s, trim) for s in split_seeds(seed, repeats)]
    splits = side_by_side(calls, threads)
    return dataclasses.replace(splits[0], repeats=tuple(splits[1:]))


def _cross_fit_once(data: Binned, t: np.ndarray, y: np.ndarray, k: int, seed: int, trim: float) -> Nuisance:
    splits = folds(t, k, seed)
    e, m0 = out_of_fold(data, t, splits, seed), np.empty(len(t))
    for train, test in splits:
        m0[test] = arm_prediction(data, y, train[t[train] == 0], test, seed)
    return Nuisance(e, m0, ~((t == 1) & (e > trim)))


def att_terms(t: np.ndarray, y: np.ndarray, nuisance: Nuisance, trim: float = TRIM) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (treated residual, weighted control residual) of the ATT's estimating equation."""
    e = np.clip(nuisance.e, 1e-6, trim)
    residual = y - nuisance.m0
    return t * residual, (1 - t) * e / (1 - e) * residual


def standard_error(influence: np.ndarray, clusters: np.ndarray | None) -> float:
    """From per-row influence values (mean zero); rows of one cluster (a person seen in several monthly
    cohorts) are summed first, so repeated rows of a person do not pass for independent evidence."""
    n = len(influence)
    if clusters is not None:
        influence = np.bincount(pd.factorize(clusters)[0], weights=influence)
    return float(np.sqrt((influence**2).sum()) / n)


def att(
    t: np.ndarray, y: np.ndarray, nuisance: Nuisance, rows: np.ndarray | None = None, clusters: np.ndarray | None = None
) -> Estimate:
    """The doubly robust ATT over `rows` (default all), trimmed rows excluded; over repeated splits, the
    median estimate with variance median(se^2 + (estimate - median)^2)."""
    each = [_att_once(t, y, n, rows, clusters) for n in (nuisance, *nuisance.repeats)]
    if len(each) == 1 or not all(np.isfinite(e.value) for e in each):
        return each[0]
    value = float(np.median([e.value for e in each]))
    se = float(np.sqrt(np.median([e.se**2 + (e.value - value) ** 2 for e in each])))
    return Estimate(value, se, each[0].n_treated, each[0].n_control)


def _att_once(
    t: np.ndarray, y: np.ndarray, nuisance: Nuisance, rows: np.ndarray | None, clusters: np.ndarray | None
) -> Estimate:
    keep = nuisance.kept if rows is None else nuisance.kept & rows
    treated_term, control_term = (a[keep] for a in att_terms(t, y, nuisance))
    tk = t[keep]
    n, n1 = int(keep.sum()), int(tk.sum())
    if n1 == 0 or n1 == n:
        return Estimate(float("nan"), float("nan"), n1, n - n1)
    value = (treated_term.sum() - control_term.sum()) / n1
    influence = (treated_term - tk * value - control_term) * n / n1
    return Estimate(float(value), standard_error(influence, None if clusters is None else clusters[keep]), n1, n - n1)


def naive(t: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None, clusters: np.ndarray | None = None) -> Estimate:
    """Treated minus untreated escalation rate, with a Wald interval: what a comparison of raw rates shows."""
    rows = np.ones(len(t), bool) if rows is None else rows
    tr, yr = t[rows], y[rows]
    n, n1 = len(tr), int(tr.sum())
    if n1 == 0 or n1 == n:
        return Estimate(float("nan"), float("nan"), n1, n - n1)
    m1, m0 = yr[tr == 1].mean(), yr[tr == 0].mean()
    influence = n * np.where(tr == 1, (yr - m1) / n1, -(yr - m0) / (n - n1))
    return Estimate(float(m1 - m0), standard_error(influence, None if clusters is None else clusters[rows]), n1, n - n1)


def overlap(t: np.ndarray, nuisance: Nuisance, trim: float = TRIM) -> dict[str, float]:
    """How comparable the treated and untreated are: propensity quantiles per arm, trimmed treated, treated
    kept with a propensity just under the trim, and the effective number of untreated people behind the
    weighted comparison."""
    e = nuisance.e
    treated, control = e[t == 1], e[t == 0]
    weights = np.clip(control, 1e-6, trim) / (1 - np.clip(control, 1e-6, trim))
    return {
        "treated_propensity_median": float(np.median(treated)) if len(treated) else float("nan"),
        "treated_propensity_p90": float(np.quantile(treated, 0.9)) if len(treated) else float("nan"),
        "control_propensity_median": float(np.median(control)) if len(control) else float("nan"),
        "control_propensity_p99": float(np.quantile(control, 0.99)) if len(control) else float("nan"),
        "trimmed_treated": int((~nuisance.kept).sum()),
        "trim_above": trim,
        "treated_near_trim": int(((treated > NEAR_TRIM) & (treated <= trim)).sum()),
        "near_trim_above": NEAR_TRIM,
        "effective_controls": float(weights.sum() ** 2 / (weights**2).sum()) if weights.sum() > 0 else 0.0,
    }


def effect_table(
    t: np.ndarray,
    y: np.ndarray,
    nuisance: Nuisance,
    subgroups: dict[str, np.ndarray],
    clusters: np.ndarray | None = None,
) -> pd.DataFrame:
    """Naive and doubly robust effects overall and within each level of each subgroup column."""
    rows = [{"subgroup": "all", "level": "all", **_pair(t, y, nuisance, np.ones(len(t), bool), clusters)}]
    for name, values in subgroups.items():
        values = pd.Series(values).astype(str).to_numpy()
        for level in sorted(np.unique(values)):
            rows.append({"subgroup": name, "level": level, **_pair(t, y, nuisance, values == level, clusters)})
    return pd.DataFrame(rows)


def _pair(
    t: np.ndarray, y: np.ndarray, nuisance: Nuisance, rows: np.ndarray, clusters: np.ndarray | None
) -> dict[str, float]:
    dr, raw = att(t, y, nuisance, rows, clusters), naive(t, y, rows, clusters)
    started = rows & (t == 1) & nuisance.kept  # the starters n_treated counts (the trimmed left out)
    return {
        "n_treated": dr.n_treated,
        "n_control": dr.n_control,
        "treated_escalated": int(y[started].sum()),
        "treated_rate": float(y[started].mean()) if started.any() else float("nan"),
        **raw.row("naive"),
        **dr.row("dr"),
    }
