"""Is the synthetic world stable over the years? Population and escalation-label prevalence per year.

For each 1 July as-of date T: the population present (alive, in Wales), its under-18 and 65+
shares, the share of adults victims of domestic abuse in the next year, and the recorded
escalation label (a recorded high-harm offending involvement in (T, T + 365]) among the snapshot
cohort (anyone with a recorded incident in the 1,095 days before T, as `features` builds it) and
among the whole population present at T. A loop must not mistake a trend here for its own success.
Usage: python benchmarks/world_stability.py [PEOPLE] [SEED]
"""

from __future__ import annotations

import sys

import numpy as np

from riskloop.simulation.dynamics import ROLE_CODE, high_harm
from riskloop.simulation.parameters import TYPE_CODE, WorldConfig
from riskloop.simulation.world import simulate

PEOPLE = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 7

sim = simulate(WorldConfig(people=PEOPLE, seed=SEED))
e = sim.events.concatenated()
rec = e["recorded"]
day = e["day"][rec].astype(np.int64)
person = e["person"][rec]
offending = np.isin(e["role"][rec], [ROLE_CODE["perpetrator"], ROLE_CODE["suspect"]])
label_rows = offending & high_harm(e["type"][rec], e["harm"][rec], 6.0)
pop = sim.people
birth = pop.birth_day.astype(np.int64)
never = np.iinfo(np.int64).max
present_from = np.maximum(birth, np.where(np.isnat(pop.arrived_day), birth, pop.arrived_day.astype(np.int64)))
present_until = np.minimum(
    np.where(np.isnat(pop.died_day), never, pop.died_day.astype(np.int64)),
    np.where(np.isnat(pop.left_day), never, pop.left_day.astype(np.int64)),
)
print(
    f"{'as of':>10} {'present':>8} {'under 18':>8} {'65+':>6} {'DA victim':>9} {'cohort':>7} {'cohort label':>12} {'pop label':>9}"
)

all_day = e["day"].astype(np.int64)
da_victim = (e["type"] == TYPE_CODE["domestic_abuse"]) & (e["role"] == ROLE_CODE["victim"])


for year in range(2019, 2025):
    t = int(np.datetime64(f"{year}-07-01", "D").astype(np.int64))
    present = (present_from <= t) & (present_until > t) & (birth <= t)
    cohort = np.unique(person[(day < t) & (day >= t - 1095)])
    labelled = np.unique(person[label_rows & (day > t) & (day <= t + 365)])
    cohort_rate = np.isin(cohort, labelled).mean()
    pop_rate = np.isin(np.flatnonzero(present), labelled).mean()
    age = (t - birth[present]) / 365.25
    victims = np.unique(e["person"][da_victim & (all_day > t) & (all_day <= t + 365)])
    da_rate = np.isin(np.flatnonzero(present & ((t - birth) >= 18 * 365.25)), victims).mean()
    print(
        f"{year}-07-01 {present.sum():>8,} {(age < 18).mean():>8.3f} {(age >= 65).mean():>6.3f} {da_rate:>9.4f} "
        f"{len(cohort):>7,} {cohort_rate:>12.4f} {pop_rate:>9.4f}",
        flush=True,
    )
