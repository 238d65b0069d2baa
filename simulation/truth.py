"""The world's truth: true escalation probabilities and true programme effects.

Only `simulation/`, tests and benchmarks may import this module: it is the yardstick for models
and the learning loop, and modelling code never sees it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from riskloop.simulation.dynamics import draw_offending, high_harm, label_event_rate, offending_hazards, advance
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import month_starts, simulate


def load_config(world_dir: Path) -> WorldConfig:
    return WorldConfig.from_json((Path(world_dir) / "truth" / "world.json").read_text())


def escalation_probability(world_dir: Path, as_of: date, horizon_days: int = 365,
                           harm_threshold: float = 6.0, replicates: int = 32,
                           seed: int = 0, equal_recording: bool = False) -> pd.DataFrame:
    """True probability that each person escalates in (as_of, as_of + horizon], per person.

    Escalation is a *recorded* offending involvement in a high-harm incident, the label the models
    learn. The world is re-run to the month of `as_of` (same seed, same state), then simulated
    forward `replicates` times with no new referrals (the untreated risk that a prioritisation
    model should estimate). Each replicate integrates the label hazard exactly (Rao-Blackwellised:
    P(no label event) = E[exp(-sum of label hazards)] over the paths of the other events, which
    still raise the person's propensity), so few replicates give a precise probability.
    With `equal_recording`, incidents after `as_of` are recorded for everyone as for the least
    policed (no area or group recording bias): the yardstick for the measurement-bias check.
    Time runs in whole months: `as_of` is taken at the start of its month.
    Returns columns person_id, probability.
    """
    config = load_config(world_dir)
    starts = month_starts(config)
    first_month = int(np.searchsorted(starts, np.datetime64(as_of, "D"), side="right")) - 1
    months = max(1, round(horizon_days / (365.25 / 12)))
    sim = simulate(config, until_month=first_month)
    rng = np.random.default_rng([config.seed, seed, first_month])
    pop, d = sim.people, config.dynamics
    if equal_recording:
        pop.recording_factor = np.ones(len(pop))
    survival = np.zeros(len(pop))
    for _ in range(replicates):
        state = sim.state.copy()
        log_survival = np.zeros(len(pop))
        for step in range(months):
            month = first_month + step
            day = starts[month] if month < len(starts) else starts[-1] + np.timedelta64(30 * (month - len(starts) + 1), "D")
            hz = offending_hazards(pop, state, month, day, d)
            log_survival -= label_event_rate(pop, hz, harm_threshold)
            off = draw_offending(pop, hz, rng)
            # Thinning: dropping the label events leaves the other events with their exact law.
            keep = ~(off.recorded & high_harm(off.type, off.harm, harm_threshold))
            harm = np.bincount(off.person[keep], weights=off.harm[keep], minlength=len(pop))
            advance(pop, state, d, rng, harm, np.zeros(len(pop)))
        survival += np.exp(log_survival)
    return pd.DataFrame({"person_id": pop.person_id.astype(str), "probability": 1 - survival / replicates})


def programme_effects(world_dir: Path) -> pd.DataFrame:
    """Each person's true individual effect of each programme (proportional hazard reduction)."""
    return pd.read_parquet(Path(world_dir) / "truth" / "effects.parquet")
