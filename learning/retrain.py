"""Treatment-aware retraining: a model of the risk of escalation *if no programme is started*.

A naive retrain learns from outcomes that programmes changed: the people a programme helped escalate
less, so the model learns that their profile is low risk and lists such people less next time
(Coston et al. 2020; Perdomo et al. 2020). riskloop treats a programme start as censoring of the
untreated outcome (inverse probability of censoring weighting):

1. a training row whose person started a programme inside its label window, before the label's event,
   has no untreated outcome after the start, so it is left out. A row whose event came first keeps
   its label: the outcome was seen before any programme could change it. Referral follows an
   incident, often the escalation itself, so leaving those rows out too would drop the positives of
   exactly the people programmes take, and the model would learn that their profile is low risk: the
   naive error by another route;
2. each kept row is weighted by 1 / G(t | x), the probability of not being censored by the day t its
   outcome was known (the event's day, or the window's end): G(t | x) = 1 - e(x) F(t), with e(x) the
   out-of-fold probability of starting a programme in the window given the as-of features and F the
   share of the window's starts made by day t (their timing taken as the same for everyone), capped
   at `MAX_WEIGHT`; so the people like those who were treated still count as much as they would have;
3. the model does not read intervention history (prior, completed, active programmes): a programme is
   not a risk factor, so being helped can neither lower nor raise a person's place on the next list.

This is chosen over "treatment as a feature, scored as untreated" because it needs no feature that
exists only at training time, keeps the contract's features as-of, and relies only on the propensity
model for the weights; a start inside the window also follows the window's own incidents, so as a
feature it would carry the outcome. Both need no unmeasured confounding of referral given the as-of
features.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from riskloop.features.snapshot import PreparedData, label_event
from riskloop.learning.effects import folds, out_of_fold
from riskloop.learning.linkage import NEVER, first_day_within, person_index
from riskloop.pipelines.data import ModelData

MAX_WEIGHT = 10.0
PROPENSITY_CONTROLS = 200_000   # untreated rows per propensity fit; beyond it, a random sample
INTERVENTION_FAMILIES = ("intervention", "intervention_completed", "intervention_active")


@dataclasses.dataclass(frozen=True)
class LabelWindow:
    """Per training row, in days: its as-of day, its first programme start and its first label event in
    (as_of, as_of + horizon] (NEVER when none)."""

    as_of: np.ndarray
    start: np.ndarray
    event: np.ndarray
    horizon: int

    @property
    def started(self) -> np.ndarray:
        return self.start != NEVER

    @property
    def censored(self) -> np.ndarray:
        """Started before the outcome was known: no event yet on the start's day."""
        return self.started & (self.event >= self.start)

    def known_after(self) -> np.ndarray:
        """Days from as-of until the outcome was known: the event's, or the whole window."""
        return np.minimum(self.event, self.as_of + self.horizon) - self.as_of

    def share_started_by(self, days: np.ndarray) -> np.ndarray:
        """F(days): the share of the window's starts made within `days` of as-of."""
        offsets = np.sort(self.start[self.started] - self.as_of[self.started])
        return np.searchsorted(offsets, days, side="right") / max(len(offsets), 1)


def label_window(data: ModelData, prepared: PreparedData) -> LabelWindow:
    """The first programme start and the first label event inside each training row's label window."""
    people = person_index(prepared, data.frame["person_id"])
    t = data.frame["as_of"].to_numpy().astype("datetime64[D]").astype(np.int64)
    h = data.snapshot.horizon_days
    programmes = prepared.iv_person >= 0
    incidents = np.flatnonzero(prepared.inc_person >= 0)
    events = incidents[label_event(prepared, incidents, data.snapshot)]
    return LabelWindow(t, first_day_within(prepared.iv_person[programmes], prepared.iv_start[programmes], people, t, t + h),
                       first_day_within(prepared.inc_person[events], prepared.inc_day[events], people, t, t + h), h)


def censoring_weights(data: ModelData, window: LabelWindow, seed: int, threads: int | None) -> np.ndarray:
    """1 / (1 - e(x) F(t)) per row, e out of fold (each fold's model sees at most PROPENSITY_CONTROLS rows
    with no start, with its odds corrected), capped at MAX_WEIGHT."""
    started = window.started.astype(int)
    e = out_of_fold(data.frame[data.features], started, folds(started, 5, seed), seed, threads, PROPENSITY_CONTROLS)
    return np.minimum(1 / np.clip(1 - e * window.share_started_by(window.known_after()), 1 / MAX_WEIGHT, 1), MAX_WEIGHT)


def treatment_aware(data: ModelData, prepared: PreparedData, seed: int = 0, threads: int | None = None) -> ModelData:
    """The model data with rows censored at their start, censoring weights, and no intervention features."""
    if data.snapshot is None or data.catalogue is None:
        raise ValueError("treatment-aware retraining needs a riskloop data set (it reads the interventions table)")
    window = label_window(data, prepared)
    started, keep = window.started, ~window.censored
    weights = censoring_weights(data, window, seed, threads) if 0 < started.sum() < len(started) else np.ones(len(keep))
    history = {s.name for s in data.catalogue if s.family in INTERVENTION_FAMILIES}
    note = (f"treatment-aware: {int((~keep).sum()):,} of {len(keep):,} training rows started a programme inside their "
            f"label window before their outcome was known and were censored ({int((started & keep).sum()):,} more "
            f"had their outcome event before their start and keep their label); the rest are weighted by "
            f"1/P(not yet censored) (max {weights[keep].max():.2f})")
    return dataclasses.replace(data.rows(keep), features=[f for f in data.features if f not in history],
                               weights=weights[keep], warnings=[*data.warnings, note])
