"""How much the learning cycle's effect estimates move with the cycle's seed alone (issue 34, item 2).

One world and one champion; the learning cycle's "what worked" step (`riskloop.learning.cycle.analyse`,
what `riskloop learn` runs, with the learning settings' default repetitions of cross-fitting, or REPEATS)
for N_SEEDS cycle seeds on the same data and date. Per programme, over the seeds: the mean doubly robust
estimate of the effect on the treated, its SD, the mean interval half-width, SD / half-width (goal <= 0.25),
the narrowest and widest interval and their spread (max - min) / mean width (goal <= 25%).

The cycle seeds are 0, 1000, 2000, ...: far apart, so that no two cycles share a fold split or a sample
even where a step derives its draws as seed + r. The world and the champion (the closed loop's config:
one LightGBM, half-yearly as-of dates) are set up once, kept in /tmp and not timed; LightGBM on 1 thread.

Usage: python benchmarks/effect_stability.py [PEOPLE=30000] [WORLD_SEED=9311] [N_SEEDS=10] [REPEATS]
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import now, peak_rss_gib

from riskloop.artifacts.dataset import read_dataset
from riskloop.experiments.config import load_config
from riskloop.experiments.registry import LoadedModel
from riskloop.features.snapshot import PreparedData
from riskloop.features.validate import Dataset
from riskloop.learning.cycle import LearnSettings, analyse, closed_as_of, trials
from riskloop.learning.effects import Z95
from riskloop.learning.linkage import TREATMENT_WINDOW_DAYS
from riskloop.pipelines.data import from_dataset
from riskloop.pipelines.train import train
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world
from riskloop.studies.closed_loop import model_config

THREADS = 1
ESCALATION = Path(__file__).resolve().parent.parent / "experiments" / "escalation.yaml"
SEED_STEP = 1000
SD_GOAL, WIDTH_GOAL = 0.25, 0.25


def world_and_champion(people: int, world_seed: int) -> tuple[Path, LoadedModel]:
    """The world's folder and a champion trained on it, built once and kept under /tmp."""
    folder = Path(tempfile.gettempdir(), f"effect-stability-{people}-{world_seed}")
    world, model_file = folder / "world", folder / "champion.pkl"
    if not model_file.exists():
        t0 = now()
        sim = simulate(WorldConfig(people=people, seed=world_seed))
        write_world(sim, world)
        config = model_config(load_config(ESCALATION), world, sim.config.end, THREADS)
        data = from_dataset(config, PreparedData.from_dataset(read_dataset(world)))
        scorer = train(data, config).scorer
        model_file.write_bytes(pickle.dumps(LoadedModel("bench:effect-stability", None, None, None, scorer)))
        print(f"set-up: world of {people:,} people (seed {world_seed}) and champion in {now() - t0:.0f} s", flush=True)
    return world, pickle.loads(model_file.read_bytes())


def estimates(champion: LoadedModel, dataset: Dataset, seeds: list[int], repeats: int) -> pd.DataFrame:
    """The overall doubly robust estimate and interval of every programme, one row per (seed, programme)."""
    prepared = PreparedData.from_dataset(dataset)
    as_of = closed_as_of(dataset.end, champion.contract.data_set_snapshot.horizon_days, TREATMENT_WINDOW_DAYS)
    stacked = trials(champion.scorer, prepared, as_of, TREATMENT_WINDOW_DAYS)
    rows = []
    for seed in seeds:
        t0 = now()
        results = analyse(champion, prepared, stacked, seed, THREADS, None, repeats)
        seconds = now() - t0
        for result in results:
            overall = result.overall
            if overall is not None:
                rows.append(
                    {
                        "seed": seed,
                        "programme": result.programme,
                        "treated": result.n_treated,
                        "dr": overall["dr"],
                        "half_width": Z95 * overall["dr_se"],
                        "seconds": seconds,
                    }
                )
        print(f"cycle seed {seed}: {seconds:.0f} s", flush=True)
    return pd.DataFrame(rows)


def stability(frame: pd.DataFrame) -> pd.DataFrame:
    """Per programme, in points (percentage points of escalation): how far the estimate and its interval move."""
    by = frame.groupby("programme")
    width = 2 * frame["half_width"] * 100
    table = pd.DataFrame(
        {
            "treated": by["treated"].mean(),
            "mean_estimate": by["dr"].mean() * 100,
            "sd_estimate": by["dr"].std(ddof=1) * 100,
            "mean_half_width": by["half_width"].mean() * 100,
            "min_width": width.groupby(frame["programme"]).min(),
            "max_width": width.groupby(frame["programme"]).max(),
        }
    )
    table["sd_over_half_width"] = table["sd_estimate"] / table["mean_half_width"]
    table["width_spread"] = (table["max_width"] - table["min_width"]) / (2 * table["mean_half_width"])
    table["pass"] = np.where(
        (table["sd_over_half_width"] <= SD_GOAL) & (table["width_spread"] <= WIDTH_GOAL), "pass", "FAIL"
    )
    return table


def main(people: int, world_seed: int, n_seeds: int, repeats: int = LearnSettings.repeats) -> None:
    world, champion = world_and_champion(people, world_seed)
    dataset = read_dataset(world)
    seeds = [SEED_STEP * i for i in range(n_seeds)]
    t0 = now()
    frame = estimates(champion, dataset, seeds, repeats)
    wall = now() - t0
    table = stability(frame)
    print(
        f"\n{people:,} people (world seed {world_seed}), {n_seeds} cycle seeds {seeds[0]}..{seeds[-1]}, "
        f"{repeats} repetitions of cross-fitting, LightGBM on {THREADS} thread; estimates in points:"
    )
    print(table.round(3).to_string())
    print(
        f"goals: sd_over_half_width <= {SD_GOAL}; width_spread = (max - min) / mean width <= {WIDTH_GOAL:.0%}\n"
        f"wall {wall:.0f} s ({wall / n_seeds:.0f} s per cycle's effect step), peak RSS {peak_rss_gib():.2f} GiB"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [30_000, 9311, 10][len(args) :]))
