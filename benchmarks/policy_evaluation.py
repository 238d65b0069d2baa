"""Which targeting works, checked against the world's truth (issue 34, item 3).

For each seed (FIRST_SEED onwards, 1000 by default: seeds no test uses) and each world (the default,
whose programme effects vary with unrecorded ACEs, and `Dynamics(effect_modifier="deprivation")`, whose
effects vary with recorded area deprivation): a world run to 2024-01-01; in the cohort then, PROGRAMME's
places go by a logged referral rule that follows recorded harm and youth (confounded, with overlap: at
most MOST likely for anyone), about SHARE of the cohort. The world's next year is run twice with common
random numbers, with the whole cohort placed and with nobody placed, so each person's escalation (the
recorded label) and recorded harm (the summed harm of their recorded offending, of any harm: the harm
outcome) with and without a place are known; the logged data are the one with the referral rule's places.
`riskloop.learning.policy` evaluates, from the logged data alone, the rule used, risk ranking (by the
out-of-fold untreated risk m0, a treatment-aware risk model), uplift ranking (by the out-of-fold X-learner,
as the learning cycle ranks), random and none, all at the rule used's number of places. The truth of a
rule is the cohort's mean of its potential outcomes under it, per 1,000, for each outcome.

Prints per world and outcome (escalations, harm): coverage of the value intervals over (seed, rule) (goal
>= 90%), of the difference intervals (simultaneous over the four rules compared, as the report uses them);
then how often a change is recommended with evidence (by escalations) and how often it is wrong (the truth
says the rule used prevents more; goal <= 5% of seeds), how often the truth has uplift beating risk ranking,
and how often the evaluation recommends uplift ranking (goal in the deprivation world: a majority).
LightGBM on 1 thread.

Usage: python benchmarks/policy_evaluation.py [SEEDS=20] [PEOPLE=20000] [FIRST_SEED=1000] [WORLDS=aces,deprivation]
"""

from __future__ import annotations

import copy
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import now
from scipy.special import expit, logit

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot
from riskloop.learning.effects import Binned, cross_fit
from riskloop.learning.policy import (
    ESCALATIONS,
    HARM,
    UPLIFT,
    USED,
    Columns,
    Logged,
    arm_outcomes,
    evaluate,
    rules,
    top,
)
from riskloop.learning.uplift import uplift
from riskloop.simulation.parameters import PARTIAL_EFFECT, Dynamics, WorldConfig
from riskloop.simulation.truth import offending_counts
from riskloop.simulation.world import Enrolment, extend, simulate, write_world

THREADS = 1
AS_OF = date(2024, 1, 1)
PROGRAMME = "drive"  # the programme the closed loop targets; its effect varies with ACEs (or deprivation)
SHARE = 0.05  # mean share of the cohort the logged rule places
MOST = 0.5  # the most likely anyone is to be placed: the most harmful still have unplaced peers
K = 3  # folds, as the learning cycle's analyse_programme
ORACLE = "oracle: risk x true effect"


def logged_rule(snapshot: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """The rule used: placed with a probability rising with recent recorded harm and for the young."""
    harm = np.log1p(snapshot["offending_harm_365d"].to_numpy())
    young = (snapshot["age"].to_numpy() < 25).astype(float)
    score = (harm - harm.mean()) / (harm.std() or 1) + 0.5 * young
    p = np.minimum(expit(logit(SHARE) - 0.6 + 1.0 * score), MOST)
    return (rng.random(len(snapshot)) < p).astype(int)


def seed_rows(seed: int, people: int, modifier: str) -> list[dict]:
    config = WorldConfig(
        people=people, seed=seed, end=AS_OF - timedelta(days=1), dynamics=Dynamics(effect_modifier=modifier)
    )
    sim = simulate(config)
    with tempfile.TemporaryDirectory() as tmp:
        write_world(sim, Path(tmp))
        prepared = PreparedData.from_dataset(read_dataset(Path(tmp), today=AS_OF))
    snapshot = build_snapshot(prepared, AS_OF, SnapshotConfig())
    index = pd.Index(sim.people.person_id).get_indexer(snapshot["person_id"].astype(str))
    present = sim.people.present[index]
    snapshot, index = snapshot[present].reset_index(drop=True), index[present]
    t = logged_rule(snapshot, np.random.default_rng([seed, 17]))
    first = sim.months
    placed = copy.deepcopy(sim)
    extend(placed, 12, lambda s, m: [Enrolment(index, PROGRAMME)] if m == first else None)
    extend(sim, 12)
    y1 = (offending_counts(placed, first, first + 12, recorded_only=True)[index] > 0).astype(int)
    y0 = (offending_counts(sim, first, first + 12, recorded_only=True)[index] > 0).astype(int)
    recorded_harm = dict(harm_threshold=None, recorded_only=True, harm_weighted=True)
    h1 = offending_counts(placed, first, first + 12, **recorded_harm)[index]
    h0 = offending_counts(sim, first, first + 12, **recorded_harm)[index]
    y, harm = np.where(t == 1, y1, y0), np.where(t == 1, h1, h0)  # the logged world: outcomes under the rule used
    features = [
        c
        for c in snapshot.columns
        if c not in ("person_id", "area_id", "local_authority", "as_of", "label", *SnapshotConfig().protected)
        and snapshot[c].dtype != object
    ]
    X = snapshot[features]
    nuisance = cross_fit(data := Binned(X), t, y, K, seed, THREADS)
    risk = np.mean([n.m0 for n in (nuisance, *nuisance.repeats)], axis=0)
    benefit = -uplift(data, t, y, nuisance, K, seed, THREADS)["x_learner"].to_numpy()
    policies = rules(t, risk, benefit)
    # Not a rule a partnership could use: the risk model times each person's true expected effect (its
    # completion-weighted proportional reduction), to show what knowing who benefits would be worth.
    completion = sim.people.completion[PROGRAMME][index]
    expected = sim.people.effect[PROGRAMME][index] * (completion + (1 - completion) * PARTIAL_EFFECT)
    oracle = top(risk * expected, np.full(len(t), float(t.sum())), None, None)
    logged = Logged(t, nuisance, *arm_outcomes(data, t, y, harm, nuisance, K, seed, THREADS))
    result = evaluate(logged, policies)  # the recommendation is among the five rules
    table = pd.concat([result.table, evaluate(logged, {USED: policies[USED], ORACLE: oracle}).table.loc[[ORACLE]]])
    policies[ORACLE] = oracle
    potential = {ESCALATIONS: (y0, y1), HARM: (h0, h1)}
    truth = {
        columns: {name: 1000 * float(np.mean(pi * treated + (1 - pi) * untreated)) for name, pi in policies.items()}
        for columns, (untreated, treated) in potential.items()
    }
    truth[ESCALATIONS][USED], truth[HARM][USED] = 1000 * float(y.mean()), 1000 * float(harm.mean())
    wrong = result.recommended is not None and truth[ESCALATIONS][result.recommended] > truth[ESCALATIONS][USED]
    return [
        {
            "world": modifier,
            "seed": seed,
            "outcome": columns.outcome,
            "rule": name,
            "cohort": len(t),
            "places": int(t.sum()),
            "recommended": result.recommended,
            "wrong": wrong,
            **versus_truth(table.loc[name], columns, truth[columns][name], truth[columns][USED]),
        }
        for columns in potential
        for name in policies
    ]


def versus_truth(row: pd.Series, columns: Columns, truth: float, truth_used: float) -> dict[str, float | bool]:
    """One rule's estimate of one outcome beside its truth: value and difference from the rule used, covered or not."""
    true_difference = truth - truth_used
    return {
        "truth": truth,
        "estimate": row[columns.value],
        "covered": row[columns.low] <= truth <= row[columns.high],
        "true_difference": true_difference,
        "difference": row[columns.difference],
        "difference_low": row[columns.difference_low],
        "difference_high": row[columns.difference_high],
        "difference_covered": row[columns.difference_low] <= true_difference <= row[columns.difference_high],
    }


def summary(frame: pd.DataFrame) -> None:
    for world, rows in frame.groupby("world", sort=False):
        seeds = rows["seed"].nunique()
        per_seed = rows.groupby("seed").first()
        print(
            f"\nworld: effects vary with {world} ({seeds} seeds, mean cohort {per_seed['cohort'].mean():,.0f}, "
            f"mean places {per_seed['places'].mean():.0f})"
        )
        for outcome, of in rows.groupby("outcome", sort=False):
            by_rule = of.groupby("rule", sort=False)
            compared = of[of["rule"] != USED].groupby("rule", sort=False)
            table = pd.DataFrame(
                {
                    "truth": by_rule["truth"].mean(),
                    "estimate": by_rule["estimate"].mean(),
                    "value_coverage": by_rule["covered"].mean(),
                    "true_difference": compared["true_difference"].mean(),
                    "difference": compared["difference"].mean(),
                    "difference_coverage": compared["difference_covered"].mean(),
                }
            )
            print(f"\n{outcome} per 1,000 of the cohort (means over seeds):")
            print(table.round(3).to_string())
            modelled = of[~of["rule"].isin([USED, ORACLE])]  # the rule used's value is the observed mean: covered
            print(
                f"{outcome}: value intervals cover the truth in {modelled['covered'].mean():.1%} of the "
                f"{len(modelled)} modelled (seed, rule) cases (goal >= 90%); difference intervals in "
                f"{modelled['difference_covered'].mean():.1%} (simultaneous over the four rules)"
            )
        truth = rows[rows["outcome"] == ESCALATIONS.outcome].pivot(index="seed", columns="rule", values="truth")
        changed = per_seed["recommended"].notna()
        print(
            f"change recommended with evidence (by escalations) in {changed.sum()} of {seeds} seeds "
            f"({per_seed['recommended'].value_counts().to_dict()}); wrong (truth: the rule used prevents more) "
            f"in {per_seed['wrong'].sum()} of {seeds} seeds ({per_seed['wrong'].mean():.0%}; goal <= 5%)"
        )
        print(
            f"truth: uplift ranking prevents more than risk ranking in {(truth[UPLIFT] < truth['risk ranking']).sum()} "
            f"of {seeds} seeds (mean {(truth['risk ranking'] - truth[UPLIFT]).mean():+.2f} per 1,000 fewer); "
            f"evaluation recommends uplift ranking in {(per_seed['recommended'] == UPLIFT).sum()} of {seeds} seeds"
        )


def main(seeds: int, people: int, first_seed: int, worlds: list[str]) -> None:
    t0 = now()
    rows: list[dict] = []
    for world in worlds:
        for seed in range(first_seed, first_seed + seeds):
            t1 = now()
            rows += seed_rows(seed, people, world)
            print(f"{world} seed {seed}: {now() - t1:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    out = Path(tempfile.gettempdir(), f"policy-evaluation-{people}-{first_seed}-{seeds}.csv")
    frame.to_csv(out, index=False)
    print(
        f"\n{seeds} seeds ({first_seed}..{first_seed + seeds - 1}) x {people:,} people per world, {PROGRAMME}, "
        f"as of {AS_OF}, logged share {SHARE:.0%}; rows in {out}; {now() - t0:.0f} s"
    )
    summary(frame)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]) if args else 20,
        int(args[1]) if len(args) > 1 else 20_000,
        int(args[2]) if len(args) > 2 else 1000,
        args[3].split(",") if len(args) > 3 else ["aces", "deprivation"],
    )
