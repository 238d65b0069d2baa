"""Threads on a shared machine (issue 36, item 4): `riskloop train` alone, and beside busy processes that
want every core, with OpenMP's threads spinning while they wait (ACTIVE, the old default) and sleeping
(PASSIVE, riskloop's default). A fair share of C cores beside B busy loops is C / (B + 1) of them: with 2 cores
and 2 busy loops, a run that uses both cores alone takes about 1.5x to 2x its time alone.

Usage: python benchmarks/threads.py [PEOPLE=20000] [SEED=5151] [BUSY=2]
Prints the wall time of each run and its ratio to the run alone, measured in the same run.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _measure import now

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "riskloop.cli"]


def busy_loop() -> None:
    while True:
        pass


def train(world: Path, out: Path, wait_policy: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": wait_policy, "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow.db'}"}
    t0 = now()
    command = [*CLI, "train", "--config", str(ROOT / "experiments" / "escalation.yaml"), "--data", str(world)]
    subprocess.run([*command, "--out", str(out / wait_policy)], env=env, cwd=out, check=True, capture_output=True)
    return now() - t0


def main(people: int, seed: int, busy: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp, "world")
        subprocess.run(
            [*CLI, "generate", "--out", str(world), "--people", str(people), "--seed", str(seed)], check=True
        )
        alone = train(world, Path(tmp), "PASSIVE")
        print(f"train on {people:,} people alone (PASSIVE): {alone:.1f} s", flush=True)
        for policy in ("ACTIVE", "PASSIVE"):
            loops = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(busy)]
            for loop in loops:
                loop.start()
            try:
                wall = train(world, Path(tmp), policy)
            finally:
                for loop in loops:
                    loop.terminate()
            print(
                f"beside {busy} busy loops, OMP_WAIT_POLICY={policy}: {wall:.1f} s, {wall / alone:.2f}x alone",
                flush=True,
            )
        print(f"{os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable by this process")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [20_000, 5151, 2][len(args) :]))
