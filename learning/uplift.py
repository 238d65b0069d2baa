"""Who benefits: per-person effect of a programme (uplift) by T- and X-learners on LightGBM, predicted
out of fold, and judged by Qini curves on the rows each model did not see.

Effects are risk differences (negative = fewer escalations); `benefit` = -effect, so targeting by
benefit puts the people a programme helps most first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

from riskloop.learning.effects import Binned, Nuisance, fit_classifier, fit_regressor, folds, predict
from riskloop.models.estimators import side_by_side

LEARNERS = ("t_learner", "x_learner")
Predict = Callable[[pd.DataFrame], np.ndarray]


def _fitted(data: Binned, y: np.ndarray, rows: np.ndarray, seed: int, regression: bool = False) -> Predict:
    """A LightGBM model of y on the data's `rows` as a predict function (a constant where it cannot be fitted)."""
    if len(rows) < 20 or (not regression and not 0 < y[rows].sum() < len(rows)):
        constant = float(y[rows].mean()) if len(rows) else 0.0
        return lambda target: np.full(len(target), constant)
    if regression:
        model = fit_regressor(data, rows, y, seed, events=len(rows))  # imputed effects: every row
    else:
        model = fit_classifier(data, rows, y, seed)
    return lambda target: predict(model, target)


def arm_models(
    data: Binned, t: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int
) -> tuple[Predict, Predict, Predict, Predict]:
    """(m1, m0, tau1, tau0) learned on `rows`: an outcome model per arm (the T-learner is m1 - m0), and the
    X-learner's per-arm models of the imputed effects (y - m0(x) for the treated, m1(x) - y for the untreated)."""
    treated, control = rows[t[rows] == 1], rows[t[rows] == 0]
    mu1, mu0 = _fitted(data, y, treated, seed), _fitted(data, y, control, seed)
    imputed = np.zeros(len(t))
    imputed[treated] = y[treated] - mu0(data.X.iloc[treated])
    imputed[control] = mu1(data.X.iloc[control]) - y[control]
    tau1 = _fitted(data, imputed, treated, seed, regression=True)
    tau0 = _fitted(data, imputed, control, seed, regression=True)
    return mu1, mu0, tau1, tau0


def uplift(
    data: Binned,
    t: np.ndarray,
    y: np.ndarray,
    nuisance: Nuisance,
    k: int = 5,
    seed: int = 0,
    threads: int | None = None,
) -> pd.DataFrame:
    """Out-of-fold effect per person from each learner (columns `t_learner`, `x_learner`); the X-learner
    blends its arms by the propensity (`nuisance.e`, itself out of fold)."""
    out = np.empty((len(t), 2))
    splits = folds(t, k, seed + 1)
    fitted = side_by_side([functools.partial(arm_models, data, t, y, train, seed) for train, _ in splits], threads)
    for (_, test), (mu1, mu0, tau1, tau0) in zip(splits, fitted):
        target, e = data.X.iloc[test], nuisance.e[test]
        out[test] = np.column_stack([mu1(target) - mu0(target), e * tau0(target) + (1 - e) * tau1(target)])
    return pd.DataFrame(out, columns=list(LEARNERS), index=data.X.index)


def qini_curve(
    y: np.ndarray, t: np.ndarray, benefit: np.ndarray, points: int = 50, control_weight: np.ndarray | None = None
) -> pd.DataFrame:
    """Escalations prevented among the top share targeted by `benefit` (highest first), estimated as
    control rate x treated targeted - treated escalations; with the random-targeting line.

    Outside a trial the untreated differ from the treated: `control_weight` (the odds e/(1 - e) of the
    propensity) makes the untreated in each top share stand for the treated there."""
    order = np.argsort(-benefit, kind="stable")
    y, t = np.asarray(y, float)[order], np.asarray(t)[order]
    w = np.ones(len(y)) if control_weight is None else np.asarray(control_weight, float)[order]
    n_t, n_c = np.cumsum(t), np.cumsum((1 - t) * w)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * (1 - t) * w)
    prevented = np.where(n_c > 0, y_c * n_t / np.where(n_c > 0, n_c, 1), 0.0) - y_t
    at = np.unique(np.linspace(0, len(y) - 1, points).round().astype(int))
    share = (at + 1) / len(y)
    return pd.DataFrame({"share": share, "prevented": prevented[at], "random": prevented[-1] * share})


def qini_coefficient(curve: pd.DataFrame) -> float:
    """Escalations prevented beyond random targeting, averaged over every targeting share (0 = no better
    than random; the area between the Qini curve and the random line)."""
    gap = (curve["prevented"] - curve["random"]).to_numpy()
    return float(np.trapezoid(gap, curve["share"].to_numpy()))


def fit_x_learner(data: Binned, t: np.ndarray, y: np.ndarray, seed: int = 0) -> Predict:
    """An X-learner fitted on all rows, as a function giving each new person's predicted effect: what a
    targeting policy uses for the next cycle's cohort."""
    everyone = np.arange(len(t))
    _, _, tau1, tau0 = arm_models(data, t, y, everyone, seed)
    propensity = _fitted(data, t.astype(float), everyone, seed)
    return lambda new: (lambda e: e * tau0(new) + (1 - e) * tau1(new))(propensity(new))
