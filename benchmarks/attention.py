"""Recording that follows attention (issue 34): does listing people feed itself, and does training on
reported incidents only stop it?

`riskloop simulate` with risk targeting and naive retraining, at the loop's default surveillance effect (1:
no extra attention on the listed) and at three times it (3: each listed person's drugs and public order
offences, the ones the police find proactively, are found with probability 1 - (1 - p)^3 for the cycle),
each trained on every recorded incident (`incidents: all`) and on the reported ones only (`incidents:
reported`, Ensign et al. 2018's remedy). Per cycle it prints the recorded/true ratio of the offending of
the listed and of the rest of the cohort, and the share of the last cycle's listed that the model ranks in
its top places again (`last_cycles_places_top_ranked_again`). A runaway would show as the listed's ratio
and their re-listing climbing cycle on cycle under naive retraining at surveillance 3, and not under the
remedy.

LightGBM runs on 2 threads (BENCH_THREADS=1 when two benchmarks share the 2 cores).
Usage: python benchmarks/attention.py [PEOPLE=10000] [CYCLES=6] [SEED=0] [SURVEILLANCE=1,3]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
from _measure import now

from riskloop.experiments.config import load_config
from riskloop.studies.closed_loop import run_loop
from riskloop.studies.settings import LoopSettings

ESCALATION = Path(__file__).resolve().parent.parent / "experiments" / "escalation.yaml"
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SHOWN = {
    "recorded_true_offending_ratio_listed": "rec/true listed",
    "recorded_true_offending_ratio_others": "rec/true others",
    "last_cycles_places_top_ranked_again": "re-listed",
    "model_auc_vs_true_risk": "AUC vs true risk",
}


def main(people: int, cycles: int, seed: int, levels: list[float]) -> None:
    base = load_config(ESCALATION)
    places = max(50, people // 100)
    print(f"{people:,} people, seed {seed}, {cycles} cycles, {places} places a year on DRIVE, risk targeting, naive")
    frames = []
    for surveillance in levels:
        for incidents in ("all", "reported"):
            settings = LoopSettings(
                people=people,
                seed=seed,
                cycles=cycles,
                capacity=places,
                policy="risk",
                retrain="naive",
                surveillance_effect=surveillance,
                threads=THREADS,
                incidents=incidents,
            )
            started = now()
            with tempfile.TemporaryDirectory() as tmp:
                cycles_run = run_loop(settings, base, Path(tmp))
            print(f"surveillance {surveillance:g}, incidents {incidents}: {now() - started:.0f} s", flush=True)
            frames.append(cycles_run.assign(surveillance=surveillance, incidents=incidents))
    frame = pd.concat(frames, ignore_index=True)
    table = frame.set_index(["surveillance", "incidents", "cycle"])[list(SHOWN)].rename(columns=SHOWN)
    print(table.round(3).to_string())


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]) if len(args) > 0 else 10_000,
        int(args[1]) if len(args) > 1 else 6,
        int(args[2]) if len(args) > 2 else 0,
        [float(x) for x in args[3].split(",")] if len(args) > 3 else [1.0, 3.0],
    )
