"""The world's truth: true escalation probabilities and true programme effects.

Only `simulation/`, tests and benchmarks may import this module: it is the yardstick for models
and the learning loop, and modelling code never sees it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from riskloop.simulation.dynamics import (
    OFFENDING_ROLES,
    advance,
    draw_offending,
    high_harm,
    label_event_rate,
    offending_hazards,
)
from riskloop.simulation.parameters import PARTIAL_EFFECT, WorldConfig
from riskloop.simulation.streams import Streams
from riskloop.simulation.world import Simulation, month_starts, simulate


def load_config(world_dir: Path) -> WorldConfig:
    return WorldConfig.from_json((Path(world_dir) / "truth" / "world.json").read_text())


def escalation_probability(
    world_dir: Path,
    as_of: date,
    horizon_days: int = 365,
    harm_threshold: float = 6.0,
    replicates: int = 32,
    seed: int = 0,
    equal_recording: bool = False,
) -> pd.DataFrame:
    """True probability that each person escalates in (as_of, as_of + horizon], per person.

    The world is re-run from its config to the month of `as_of` (same seed, same state; a world
    extended with a policy's enrolments is not replayed: use `escalation_probability_from` on the
    simulation itself), then `escalation_probability_from` integrates the hazard forward.
    Time runs in whole months: `as_of` is taken at the start of its month.
    Returns columns person_id, probability (everyone ever present by `as_of`).
    """
    return escalation_probability_from(
        world_at(world_dir, as_of), horizon_days, harm_threshold, replicates, seed, equal_recording
    )


def world_at(world_dir: Path, as_of: date) -> Simulation:
    """The generated world at `world_dir` re-run from its config to the start of the month of `as_of`."""
    config = load_config(world_dir)
    first_month = int(np.searchsorted(month_starts(config), np.datetime64(as_of, "D"), side="right")) - 1
    return simulate(config, until_month=first_month)


def escalation_probability_from(
    sim: Simulation,
    horizon_days: int = 365,
    harm_threshold: float = 6.0,
    replicates: int = 32,
    seed: int = 0,
    equal_recording: bool = False,
    programme_effects: bool = True,
) -> pd.DataFrame:
    """True escalation probability over the horizon from the start of month `sim.months`.

    Escalation is a *recorded* offending involvement in a high-harm incident, the label the models
    learn. The state is simulated forward `replicates` times with no new referrals (the untreated
    risk that a prioritisation model should estimate) and no demography (who is present at the
    start stays). Each replicate integrates the label hazard exactly (Rao-Blackwellised:
    P(no label event) = E[exp(-sum of label hazards)] over the paths of the other events, which
    still raise the person's propensity), so few replicates give a precise probability. The
    dead and those who left have probability 0. With `equal_recording`, incidents are recorded for
    everyone as for the least policed (no area or group recording bias, no surveillance): the
    yardstick for the measurement-bias check. Without `programme_effects`, the programmes already started
    stop working now: the risk without their help from here on (the past they changed stays), what a
    treatment-aware model estimates. `sim` is not changed.
    """
    config, pop, d = sim.config, sim.people, sim.config.dynamics
    first_month = sim.months
    months = max(1, round(horizon_days / (365.25 / 12)))
    starts = month_starts(config, first_month + months)
    survival = np.zeros(len(pop))
    for replicate in range(replicates):
        state = sim.state.copy()
        if not programme_effects:
            state.effect_until = {p: np.minimum(until, first_month) for p, until in state.effect_until.items()}
        log_survival = np.zeros(len(pop))
        for month in range(first_month, first_month + months):
            streams = Streams((config.seed, seed, replicate), month)
            recording, attention = (
                (np.ones(len(pop)), np.ones(len(pop)))
                if equal_recording
                else (pop.recording_factor, state.attention(month))
            )
            hz = offending_hazards(pop, state, month, starts[month], d)
            log_survival -= label_event_rate(hz, recording, attention, harm_threshold)
            off = draw_offending(hz, recording, attention, streams)
            # Thinning: dropping the label events leaves the other events with their exact law.
            keep = ~(off.recorded & high_harm(off.type, off.harm, harm_threshold))
            harm = np.bincount(off.person[keep], weights=off.harm[keep], minlength=len(pop))
            advance(state, d, streams, harm, np.zeros(len(pop)))
        survival += np.exp(log_survival)
    return pd.DataFrame({"person_id": pop.person_id.astype(str), "probability": 1 - survival / replicates})


def offending_counts(
    sim: Simulation,
    from_month: int,
    to_month: int,
    harm_threshold: float | None = 6.0,
    recorded_only: bool = False,
    harm_weighted: bool = False,
) -> np.ndarray:
    """Per person: offending involvements (perpetrator or suspect) in months [from_month, to_month).

    True ones by default (recorded or not: the truth), or only the recorded ones; high-harm ones
    (the escalation label's events) unless `harm_threshold` is None; their summed harm instead of
    their number with `harm_weighted`. Indexed like `sim.people`.
    """
    starts = month_starts(sim.config, max(to_month, sim.months) + 1)
    e = sim.events.concatenated()
    keep = (e["day"] >= starts[from_month]) & (e["day"] < starts[to_month]) & np.isin(e["role"], OFFENDING_ROLES)
    if harm_threshold is not None:
        keep &= high_harm(e["type"], e["harm"], harm_threshold)
    if recorded_only:
        keep &= e["recorded"]
    return np.bincount(e["person"][keep], weights=e["harm"][keep] if harm_weighted else None, minlength=len(sim.people))


def true_escalations(sim: Simulation, from_month: int, to_month: int, harm_threshold: float = 6.0) -> np.ndarray:
    """Per person: true high-harm offending involvements in months [from_month, to_month), recorded or not."""
    return offending_counts(sim, from_month, to_month, harm_threshold)


def recorded_escalations(sim: Simulation, from_month: int, to_month: int, harm_threshold: float = 6.0) -> np.ndarray:
    """Per person: recorded high-harm offending involvements in months [from_month, to_month)."""
    return offending_counts(sim, from_month, to_month, harm_threshold, recorded_only=True)


def programme_effects(world_dir: Path) -> pd.DataFrame:
    """Each person's true individual effect of each programme (proportional hazard reduction)."""
    return pd.read_parquet(Path(world_dir) / "truth" / "effects.parquet")


def expected_programme_effects(world_dir: Path) -> pd.Series:
    """Each person's true effect of starting each programme, expected over completion (a non-completer
    keeps PARTIAL_EFFECT of it, as the world's dynamics apply it), indexed by (programme, person_id)."""
    effects = programme_effects(world_dir)
    completion = effects["completion_probability"]
    expected = effects["effect"] * (completion + (1 - completion) * PARTIAL_EFFECT)
    return pd.Series(expected.to_numpy(), index=pd.MultiIndex.from_frame(effects[["programme", "person_id"]]))
