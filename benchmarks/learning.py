"""The learning loop against the synthetic world's truth (issue 14's acceptance figures).

coverage  [SEEDS PEOPLE FIRST_SEED] For each seed (FIRST_SEED, 0 by default, onwards): a world run to 2024-01-01; in the cohort then, each programme gets people by a
          referral rule that follows recorded harm (confounded, with overlap); the world's next year is
          run with those places and again without them (common random numbers), so each person's effect
          on the recorded escalation label is known. The doubly robust estimate of the effect on the
          treated (and the naive difference) is set against it. Prints coverage and bias over seeds.
policies  `riskloop simulate` for each policy (and retraining) over seeds: escalations prevented against
          the `none` policy of the same seed, with intervals over seeds; the model's AUC against true risk
          with no new places and with no programme at all; the recorded/true ratio of the listed. With
          SURVEILLANCE above 1, only none and risk targeting with either retraining, to show how naive
          retraining drifts. MODIFIER picks what the programmes' effects vary with (the world's
          `Dynamics.effect_modifier`: unrecorded ACEs, or recorded area deprivation).
retraining  The same for none and POLICY (risk or uplift) targeting with either retraining only (no
          surveillance), and the paired differences of treatment-aware minus naive retraining per cycle:
          both AUCs, and how far below their risk without programmes the model ranks the people a
          programme is helping; in a world whose programmes work EFFECT_SCALE times as well (Dynamics),
          with PLACES places a year (a hundredth of the people, at least 50, unless given).
          Paired twice: between the two loops of a seed (whose worlds part after cycle 1, as each
          model lists other people), and on the same data (each loop also retrains the other way each
          cycle, `compare_retraining`), which isolates the retraining from the world's path.
same-data The same-data pairing only: one treatment-aware loop per seed (no none or naive loop), each
          cycle's data also retrained naively; a third of the time, for larger worlds. With the ceiling:
          a model retrained naively each cycle on the same world run with no programme effect (the same
          seed and places, `LoopSettings.ceiling`), the best a treatment-aware retraining could rank,
          and it thinned to the recorded world's count of positive rows (information parted from bias).
learn     Wall time and peak memory of one learning cycle (`learn` and its report, as `riskloop learn` runs
          them, in a fresh process) on a world of PEOPLE. Set-up, not timed: the world,
          and a champion trained and registered with the closed loop's config (one LightGBM, half-yearly
          as-of dates over four years), which the cycle's retrain uses too.

LightGBM runs on 2 threads (BENCH_THREADS=1 when two benchmarks share the 2 cores).
Usage: python benchmarks/learning.py coverage [SEEDS=20] [PEOPLE=20000]
       python benchmarks/learning.py policies [SEEDS=3] [PEOPLE=20000] [CYCLES=4] [SURVEILLANCE=1.0]
                                          [MODIFIER=aces|deprivation] [FIRST_SEED=0]
       python benchmarks/learning.py retraining [SEEDS=3] [PEOPLE=20000] [CYCLES=4] [POLICY=risk] [EFFECT_SCALE=1]
                                            [PLACES=PEOPLE/100]
       python benchmarks/learning.py same-data [the same as retraining]
       python benchmarks/learning.py learn [PEOPLE=1000000]
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import now, run_isolated
from scipy.special import expit

from riskloop.artifacts.dataset import read_dataset
from riskloop.experiments.config import load_config
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot
from riskloop.learning.effects import Binned, att, cross_fit, naive
from riskloop.simulation.parameters import PROGRAMMES, WorldConfig
from riskloop.simulation.truth import offending_counts
from riskloop.simulation.world import Enrolment, extend, simulate, write_world
from riskloop.studies.closed_loop import LoopSettings, model_config, run_loop

THREADS = int(os.environ.get("BENCH_THREADS", 2))  # LightGBM threads; 1 when two benchmarks share 2 cores
ESCALATION = Path(__file__).resolve().parent.parent / "experiments" / "escalation.yaml"
AS_OF = date(2024, 1, 1)
SHARE = 0.02  # mean share of the cohort referred to each programme
MOST = 0.2  # the most any one person is referred to each programme: all four at most 0.8, so everyone may be a control


def referral(snapshot: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Programme index per cohort row (-1: none), more likely with more recent recorded harm and for the young;
    at most MOST likely for any one programme, so the most harmful still have untreated peers (overlap)."""
    harm = np.log1p(snapshot["offending_harm_365d"].to_numpy())
    young = (snapshot["age"].to_numpy() < 25).astype(float)
    score = (harm - harm.mean()) / (harm.std() or 1) + 0.5 * young
    p = np.minimum(expit(np.log(SHARE / (1 - SHARE)) - 0.6 + 1.0 * score), MOST)
    u = rng.random(len(snapshot))
    choice = np.full(len(snapshot), -1)
    for k in range(len(PROGRAMMES)):
        take = (choice < 0) & (u >= k * p) & (u < (k + 1) * p)
        choice[take] = k
    return choice


def coverage_seed(seed: int, people: int) -> list[dict]:
    sim = simulate(WorldConfig(people=people, seed=seed, end=AS_OF - timedelta(days=1)))
    with tempfile.TemporaryDirectory() as tmp:
        write_world(sim, Path(tmp))
        prepared = PreparedData.from_dataset(read_dataset(Path(tmp), today=AS_OF))
    snapshot = build_snapshot(prepared, AS_OF, SnapshotConfig())
    index = pd.Index(sim.people.person_id).get_indexer(snapshot["person_id"].astype(str))
    present = sim.people.present[index]
    snapshot, index = snapshot[present].reset_index(drop=True), index[present]
    choice = referral(snapshot, np.random.default_rng([seed, 11]))
    first = sim.months
    untreated = copy.deepcopy(sim)
    extend(
        sim,
        12,
        lambda s, m: [Enrolment(index[choice == k], p) for k, p in enumerate(PROGRAMMES)] if m == first else None,
    )
    extend(untreated, 12)
    y1 = offending_counts(sim, first, first + 12, recorded_only=True)[index] > 0
    y0 = offending_counts(untreated, first, first + 12, recorded_only=True)[index] > 0
    features = [
        c
        for c in snapshot.columns
        if c not in ("person_id", "area_id", "local_authority", "as_of", "label", *SnapshotConfig().protected)
        and snapshot[c].dtype != object
    ]
    rows = []
    for k, programme in enumerate(PROGRAMMES):
        rows_ = (choice == k) | (choice < 0)
        t = (choice[rows_] == k).astype(int)
        y = y1[rows_].astype(int)
        X = snapshot.loc[rows_, features].reset_index(drop=True)
        dr = att(t, y, cross_fit(Binned(X), t, y, 5, seed, THREADS))
        raw = naive(t, y)
        truth = float((y1[choice == k].astype(int) - y0[choice == k].astype(int)).mean())
        rows.append(
            {
                "seed": seed,
                "programme": programme,
                "treated": int(t.sum()),
                "truth": truth,
                "dr": dr.value,
                "dr_ci_low": dr.ci_low,
                "dr_ci_high": dr.ci_high,
                "naive": raw.value,
                "covered": dr.ci_low <= truth <= dr.ci_high,
            }
        )
    return rows


def coverage(seeds: int, people: int, first_seed: int = 0) -> None:
    t0 = now()
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        rows += coverage_seed(seed, people)
        print(f"seed {seed}: {now() - t0:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    summary = frame.groupby("programme").agg(
        treated=("treated", "mean"),
        truth=("truth", "mean"),
        dr=("dr", "mean"),
        naive=("naive", "mean"),
        coverage=("covered", "mean"),
        dr_bias=("dr", lambda s: (s - frame.loc[s.index, "truth"]).mean()),
        naive_bias=("naive", lambda s: (s - frame.loc[s.index, "truth"]).mean()),
        dr_ci_width=("dr_ci_high", lambda s: (s - frame.loc[s.index, "dr_ci_low"]).mean()),
    )
    print(
        f"doubly robust effect on the treated vs the truth, {seeds} seeds ({first_seed}..{first_seed + seeds - 1}) "
        f"x {people:,} people, as of {AS_OF}:"
    )
    print(summary.round(4).to_string())
    print(f"overall coverage {frame['covered'].mean():.3f}; {now() - t0:.0f} s")


RANKING = ["model_auc_vs_true_risk", "model_auc_vs_true_risk_unhelped", "helped_rank_shift"]


def policies(
    seeds: int,
    people: int,
    cycles: int,
    surveillance: float,
    every_policy: bool = True,
    retrained: str = "risk",
    effect_scale: float = 1.0,
    compare: bool = False,
    places: int | None = None,
    same_data_only: bool = False,
    effect_modifier: str = "aces",
    first_seed: int = 0,
) -> None:
    base = load_config(ESCALATION)
    if same_data_only:  # one loop per seed, each cycle's data retrained both ways
        runs = [(retrained, "treatment-aware")]
    else:
        runs = [("none", "treatment-aware"), (retrained, "treatment-aware"), (retrained, "naive")]
        if (
            surveillance == 1.0 and every_policy
        ):  # the policies; with surveillance, how risk targeting's retraining drifts
            runs[2:2] = [("random", "treatment-aware"), ("uplift", "treatment-aware")]
    places = places or max(50, people // 100)
    print(
        f"{seeds} seeds x {people:,} people, {cycles} cycles, {places} places a year on DRIVE, "
        f"surveillance {surveillance:g}, programme effects x {effect_scale:g} varying with {effect_modifier}, "
        f"seeds from {first_seed}",
        flush=True,
    )
    frames = []
    for seed in range(first_seed, first_seed + seeds):
        for policy, retrain in runs:
            t0 = now()
            with tempfile.TemporaryDirectory() as tmp:
                settings = LoopSettings(
                    people,
                    seed,
                    cycles,
                    places,
                    policy,
                    retrain,
                    surveillance,
                    "drive",
                    THREADS,
                    effect_scale,
                    compare and policy != "none",
                    same_data_only,
                    effect_modifier=effect_modifier,  # type: ignore[arg-type]  # LoopSettings checks it
                )
                frames.append(run_loop(settings, base, Path(tmp)).assign(seed=seed))
            print(f"seed {seed} {policy} {retrain}: {now() - t0:.0f} s", flush=True)
    frame = pd.concat(frames, ignore_index=True)
    if ("none", "treatment-aware") in runs:  # escalations prevented are counted against the none policy's loop
        for measure, what in (("true_escalations", "true escalations"), ("true_offending_harm", "true offending harm")):
            totals = frame.groupby(["seed", "policy", "retrain"])[measure].sum().unstack(["policy", "retrain"])
            prevented = totals.rsub(totals[("none", "treatment-aware")], axis=0).drop(
                columns=[("none", "treatment-aware")]
            )
            mean, half = prevented.mean(), 1.96 * prevented.std(ddof=1) / np.sqrt(len(prevented))
            print(f"{what} prevented over {cycles} cycles against no places (mean over {seeds} seeds, 95% interval):")
            for column in prevented.columns:
                print(
                    f"  {column[0]:>7} ({column[1]}): {mean[column]:8.1f}  ({mean[column] - half[column]:.1f} to "
                    f"{mean[column] + half[column]:.1f})"
                )
    by_cycle = frame.groupby(["policy", "retrain", "cycle"])[
        [
            "model_auc_vs_true_risk",
            "model_auc_vs_true_risk_unhelped",
            "helped_rank_shift",
            "recorded_true_ratio_listed",
            "recorded_true_ratio_others",
            "true_effect_on_label",
            "dr_estimate",
            "naive_estimate",
            "last_cycles_places_top_ranked_again",
        ]
    ].mean()
    print(by_cycle.round(3).to_string())
    paired = frame[frame["policy"] == retrained].set_index(["seed", "cycle", "retrain"])[RANKING].unstack("retrain")
    if {"naive", "treatment-aware"} <= set(paired.columns.get_level_values("retrain")) and seeds > 1:
        by = (
            paired.xs("treatment-aware", axis=1, level="retrain") - paired.xs("naive", axis=1, level="retrain")
        ).groupby(level="cycle")
        print_paired(
            by,
            f"{retrained} targeting, treatment-aware minus naive retraining, between the loops "
            f"(mean over {seeds} seeds, 95% interval):",
        )
    if compare:
        same = frame[frame["policy"] == retrained].set_index(["seed", "retrain", "cycle"])
        model, other = same[RANKING], same[[f"other_retrain_{name}" for name in RANKING]].set_axis(RANKING, axis=1)
        on_aware = same.index.get_level_values("retrain") == "treatment-aware"
        aware, naive_ = pd.concat([model[on_aware], other[~on_aware]]), pd.concat([other[on_aware], model[~on_aware]])
        paths = "the treatment-aware loop's path" if same_data_only else "the mean of both loops' paths"
        print_paired(
            (aware - naive_).groupby(level=["seed", "cycle"]).mean().groupby(level="cycle"),
            f"{retrained} targeting, treatment-aware minus naive retraining on the same data "
            f"({paths}, over {seeds} seeds, 95% interval):",
        )
    if same_data_only:  # the ceiling: retrained naively on the same world with no programme effect
        ceiling, thinned = (
            same[[f"{which}_{name}" for name in RANKING]].set_axis(RANKING, axis=1)
            for which in ("ceiling", "thinned_ceiling")
        )
        for title, difference in (
            ("the ceiling (retrained on the world with no programme effect) minus naive retraining", ceiling - naive_),
            ("the ceiling minus treatment-aware retraining", ceiling - aware),
            (
                "the thinned ceiling (its positive rows left out at random down to the recorded "
                "world's count) minus naive retraining",
                thinned - naive_,
            ),
        ):
            print_paired(
                difference.groupby(level="cycle"), f"{title} (over {seeds} seeds, 95% interval):", skip_first=False
            )


def print_paired(by, title: str, skip_first: bool = True) -> None:
    """Per cycle, mean and 95% interval; after the first unless told (when both scored with the burn-in model)."""
    mean, half = by.mean(), (1.96 * by.std(ddof=1)).div(np.sqrt(by.size()), axis=0)
    print(title)
    for cycle in mean.index[int(skip_first) :]:
        m, h = mean.loc[cycle], half.loc[cycle]
        print(
            f"  cycle {cycle}: "
            + "; ".join(
                f"{name} {m[name]:+.4f} ({m[name] - h[name]:+.4f} to {m[name] + h[name]:+.4f})" for name in RANKING
            )
        )


def learn_time(people: int) -> None:
    import pickle

    from mlflow.tracking import MlflowClient

    from riskloop.experiments.store import configure_tracking
    from riskloop.experiments.tracking import log_training
    from riskloop.pipelines.data import from_dataset
    from riskloop.pipelines.train import train

    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # the SQLite store keeps artifacts in ./mlruns
        os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = f"sqlite:///{tmp}/mlflow.db"
        configure_tracking()
        world = Path(tmp, "world")
        t0 = now()
        sim = simulate(WorldConfig(people=people, seed=1))
        counts = write_world(sim, world)
        end = sim.config.end
        del sim
        print(
            f"set-up: world of {people:,} people ({counts['incidents']:,} incidents) in {now() - t0:.0f} s", flush=True
        )
        config = model_config(load_config(ESCALATION), world, end, THREADS)
        t0 = now()
        data = from_dataset(config, PreparedData.from_dataset(read_dataset(world)))
        outcome = log_training(config, data, train(data, config), Path(tmp, "champion"))
        MlflowClient().set_registered_model_alias(config.registered_model, "champion", outcome.model_version)
        print(
            f"set-up: champion v{outcome.model_version} on {len(data.frame):,} snapshot rows in {now() - t0:.0f} s",
            flush=True,
        )
        del data
        Path(tmp, "config.pkl").write_bytes(pickle.dumps(config))
        wall, rss, out = run_isolated(f"""
import pickle
from pathlib import Path
from riskloop.experiments.store import configure_tracking
from riskloop.jobs.learn import LearnJob, learn
configure_tracking()
config = pickle.loads(Path({tmp!r}, "config.pkl").read_bytes())
result = learn(LearnJob(f"models:/{{config.registered_model}}@champion", Path({str(world)!r}), config,
                        Path({tmp!r}, "learn"), threads={THREADS})).result
print("cohort", len(result.outcomes), "promoted", result.promoted)
""")
    print(
        f"riskloop learn on {people:,} people: {wall:.0f} s ({wall / 60:.1f} min; goal <= 10 min), "
        f"peak RSS {rss:.2f} GiB; {out.strip()}"
    )


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "coverage"
    words = sys.argv[2:]
    args = [float(a) for a in words[: 3 if mode in ("retraining", "same-data") else 4 if mode == "policies" else None]]
    if mode == "coverage":
        coverage(
            int(args[0]) if args else 20,
            int(args[1]) if len(args) > 1 else 20_000,
            int(args[2]) if len(args) > 2 else 0,
        )
    elif mode in ("retraining", "same-data"):
        policies(
            *(int(a) for a in (args + [3, 20_000, 4][len(args) :])[:3]),
            1.0,
            every_policy=False,
            retrained=words[3] if len(words) > 3 else "risk",
            effect_scale=float(words[4]) if len(words) > 4 else 1.0,
            compare=True,
            places=int(words[5]) if len(words) > 5 else None,
            same_data_only=mode == "same-data",
        )
    elif mode == "learn":
        learn_time(int(args[0]) if args else 1_000_000)
    elif mode == "policies":
        policies(
            *(int(a) for a in (args + [3, 20_000, 4][len(args) :])[:3]),
            float(words[3]) if len(words) > 3 else 1.0,
            effect_modifier=words[4] if len(words) > 4 else "aces",
            first_seed=int(words[5]) if len(words) > 5 else 0,
        )
    else:
        raise SystemExit(__doc__)
