"""Per programme: did it work (naive vs doubly robust, overall, by prevention tier and by risk band),
for whom (T- and X-learner uplift, Qini on held-out rows, and against the truth where known), and which
targeting rule would have prevented more at the same places (learning.policy)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd
from joblib import effective_n_jobs
from scipy.stats import spearmanr

from riskloop.learning.effects import REPEATS, TRIM, Binned, cross_fit, effect_table, overlap
from riskloop.learning.policy import Logged, PolicyEvaluation, arm_outcomes, evaluate, rules
from riskloop.learning.uplift import LEARNERS, qini_coefficient, qini_curve, uplift
from riskloop.models.estimators import side_by_side
from riskloop.reports.words import words

MIN_TREATED = 20

#: person_id column, programme -> each person's true effect (only the synthetic world has it). Called from the
#: programmes' worker threads (`analyse_programmes`): it must only read what it shares.
TrueEffect = Callable[[pd.Series, str], np.ndarray]


@dataclass(frozen=True)
class ProgrammeResult:
    programme: str
    n_treated: int
    effects: pd.DataFrame | None  # effect_table: naive and doubly robust, overall and by subgroup
    overlap: dict[str, float] | None
    qini: dict[str, pd.DataFrame] | None  # learner -> Qini curve on out-of-fold predictions
    who_benefits: pd.DataFrame | None  # learner -> Qini coefficient (and, with truth, agreement with it)
    benefit: pd.DataFrame | None  # person_id + each learner's out-of-fold benefit (-effect)
    note: str = ""
    targeting: PolicyEvaluation | None = None  # which targeting rule prevents more, at the same places

    @property
    def overall(self) -> pd.Series | None:
        return None if self.effects is None else self.effects.iloc[0]


def analyse_programme(
    programme: str,
    X: pd.DataFrame,
    outcomes: pd.DataFrame,
    subgroups: dict[str, pd.Series],
    seed: int = 0,
    threads: int | None = None,
    truth: TrueEffect | None = None,
    k: int = 3,
    repeats: int = REPEATS,
) -> ProgrammeResult:
    """Effects and uplift of one programme (rows of `X` and `outcomes` align; `outcomes` has person_id,
    `started_<programme>` and `escalated`; a person on several rows is one cluster for the intervals). With
    `risk` (the learning cycle's trials, which also carry `harm`, `month` and `weight`), the targeting rules too."""
    labelled = outcomes["escalated"].notna().to_numpy()
    clusters = outcomes["person_id"].to_numpy()[labelled]
    t = outcomes[f"started_{programme}"].to_numpy()[labelled].astype(int)
    y = outcomes["escalated"].to_numpy()[labelled].astype(int)
    n_treated = int(t.sum())
    if not estimable(outcomes, programme):  # no count in the note: it is shown as it is
        who = "started" if n_treated < MIN_TREATED else "did not start"
        return ProgrammeResult(
            programme,
            n_treated,
            None,
            None,
            None,
            None,
            None,
            f"Too few to estimate: fewer than {MIN_TREATED} people {who} {words(programme)} in the window.",
        )
    data = Binned(X[labelled].reset_index(drop=True))
    nuisance = cross_fit(data, t, y, k, seed, threads, repeats=repeats)
    groups = {name: pd.Series(values).to_numpy()[labelled] for name, values in subgroups.items()}
    effects = effect_table(t, y, nuisance, groups, clusters)
    predicted = uplift(data, t, y, nuisance, k, seed, threads)
    benefit = pd.DataFrame({"person_id": clusters, **{name: -predicted[name].to_numpy() for name in LEARNERS}})
    e = np.clip(nuisance.e, 1e-6, TRIM)
    curves = {name: qini_curve(y, t, benefit[name].to_numpy(), control_weight=e / (1 - e)) for name in LEARNERS}
    who = pd.DataFrame({"learner": list(LEARNERS), "qini_coefficient": [qini_coefficient(curves[n]) for n in LEARNERS]})
    if truth is not None:
        true_effect = truth(pd.Series(clusters), programme)
        who["spearman_with_true_effect"] = [spearmanr(benefit[n], true_effect).statistic for n in LEARNERS]
        top = lambda s: np.mean(true_effect[s >= np.quantile(s, 0.9)])  # noqa: E731
        who["true_effect_top_decile"] = [top(benefit[n].to_numpy()) for n in LEARNERS]
        who["true_effect_everyone"] = float(np.mean(true_effect))
    targeting = None
    if "risk" in outcomes:  # the learning cycle's trials: each rule at the places the rule used filled, per month
        harm = outcomes["harm"].to_numpy(dtype=float)[labelled]
        logged = Logged(
            t,
            nuisance,
            *arm_outcomes(data, t, y, harm, nuisance, k, seed, threads),
            outcomes["weight"].to_numpy()[labelled] if "weight" in outcomes else None,
            clusters,
            outcomes["month"].to_numpy()[labelled] if "month" in outcomes else None,
        )
        risk = outcomes["risk"].to_numpy()[labelled]
        targeting = evaluate(logged, rules(t, risk, benefit["x_learner"].to_numpy(), logged.groups, logged.weight))
    return ProgrammeResult(programme, n_treated, effects, overlap(t, nuisance), curves, who, benefit, "", targeting)


class EstimationSettings(TypedDict, total=False):
    """`analyse_programme`'s settings shared by every programme."""

    seed: int
    truth: TrueEffect | None
    k: int
    repeats: int


def analyse_programmes(
    X: pd.DataFrame,
    outcomes: pd.DataFrame,
    subgroups: dict[str, pd.Series],
    threads: int | None = None,
    **settings: Unpack[EstimationSettings],
) -> list[ProgrammeResult]:
    """`analyse_programme` of every programme in `outcomes`, side by side with the threads shared between them
    (on two CPUs, two programmes at a time with one thread each): a programme's fits wait for each other at
    every step, and another programme fills the gaps. The results do not depend on the threads."""
    names = programme_names(outcomes)
    estimated = [p for p in names if estimable(outcomes, p)]  # the others return at once, on no thread of their own
    cpus = effective_n_jobs(threads or -1)
    at_once = max(1, min(len(estimated), cpus))
    shares = {p: cpus // at_once + (i < cpus % at_once) for i, p in enumerate(estimated)}
    calls = [
        functools.partial(analyse_programme, p, X, outcomes, subgroups, threads=shares.get(p, 1), **settings)
        for p in names
    ]
    return side_by_side(calls, at_once)


def estimable(outcomes: pd.DataFrame, programme: str) -> bool:
    """At least `MIN_TREATED` labelled people started the programme, and as many did not."""
    started = outcomes[f"started_{programme}"].to_numpy()[outcomes["escalated"].notna().to_numpy()]
    n_treated = int(started.sum())
    return n_treated >= MIN_TREATED and len(started) - n_treated >= MIN_TREATED


def programme_names(outcomes: pd.DataFrame) -> list[str]:
    return [c.removeprefix("started_") for c in outcomes.columns if c.startswith("started_")]
