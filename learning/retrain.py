"""Treatment-aware retraining: a model of the risk of escalation *if no programme is started*.

A naive retrain learns from outcomes that programmes changed: the people a programme helped escalate
less, so the model learns that their profile is low risk and lists such people less next time
(Coston et al. 2020; Perdomo et al. 2020). riskloop treats a programme start as censoring of the
untreated outcome (inverse probability of censoring weighting):

1. a training row whose person started a programme inside its label window has no untreated outcome
   to learn from, so it is left out;
2. the untreated rows are weighted by 1 / (1 - e(x)), e(x) the out-of-fold probability of starting a
   programme in the window given the as-of features (capped at `MAX_WEIGHT`), so the people like
   those who were treated still count as much as they would have;
3. the model does not read intervention history (prior, completed, active programmes): a programme is
   not a risk factor, so being helped can neither lower nor raise a person's place on the next list.

This is chosen over "treatment as a feature, scored as untreated" because it needs no feature that
exists only at training time, keeps the contract's features as-of, and relies only on the propensity
model for the weights. Both need no unmeasured confounding of referral given the as-of features.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from riskloop.features.snapshot import PreparedData
from riskloop.learning.effects import folds, out_of_fold
from riskloop.learning.linkage import person_index, starts_within
from riskloop.pipelines.data import ModelData

MAX_WEIGHT = 10.0
PROPENSITY_CONTROLS = 200_000   # untreated rows per propensity fit; beyond it, a random sample
INTERVENTION_FAMILIES = ("intervention", "intervention_completed", "intervention_active")


def treated_in_label_window(data: ModelData, prepared: PreparedData) -> np.ndarray:
    """Per training row: did the person start any programme in (as_of, as_of + horizon]?"""
    people = person_index(prepared, data.frame["person_id"])
    t = data.frame["as_of"].to_numpy().astype("datetime64[D]").astype(np.int64)
    return starts_within(prepared, people, t, t + data.snapshot.horizon_days)


def censoring_weights(data: ModelData, treated: np.ndarray, seed: int, threads: int | None) -> np.ndarray:
    """1 / (1 - e(x)) per row, e out of fold (each fold's model sees at most PROPENSITY_CONTROLS untreated
    rows, with its odds corrected), capped at MAX_WEIGHT."""
    t = treated.astype(int)
    e = out_of_fold(data.frame[data.features], t, folds(t, 5, seed), seed, threads, PROPENSITY_CONTROLS)
    return np.minimum(1 / np.clip(1 - e, 1 / MAX_WEIGHT, 1), MAX_WEIGHT)


def treatment_aware(data: ModelData, prepared: PreparedData, seed: int = 0, threads: int | None = None) -> ModelData:
    """The model data with treated rows censored, censoring weights, and no intervention features."""
    if data.snapshot is None or data.catalogue is None:
        raise ValueError("treatment-aware retraining needs a riskloop data set (it reads the interventions table)")
    treated = treated_in_label_window(data, prepared)
    weights = censoring_weights(data, treated, seed, threads) if 0 < treated.sum() < len(treated) else np.ones(len(treated))
    keep = ~treated
    history = {s.name for s in data.catalogue if s.family in INTERVENTION_FAMILIES}
    masks = lambda m: dataclasses.replace(m, **{k: getattr(m, k)[keep] for k in ("fit", "validation", "test")  # noqa: E731
                                                if getattr(m, k) is not None})
    note = (f"treatment-aware: {int(treated.sum()):,} of {len(treated):,} training rows started a programme inside their "
            f"label window and were censored; the rest are weighted by 1/(1 - P(start)) (max {weights[keep].max():.2f})")
    splits = [masks(m) for m in data.splits]
    position = [i for i, m in enumerate(data.splits) if m is data.final]
    final = splits[position[0]] if position else masks(data.final)
    return dataclasses.replace(
        data, frame=data.frame[keep].reset_index(drop=True), features=[f for f in data.features if f not in history],
        splits=splits, final=final, weights=weights[keep],
        warnings=[*data.warnings, note])
