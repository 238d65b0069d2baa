"""Threads on a shared machine (issue 36, item 4): `riskloop train` alone, and beside busy processes that
want every core, with OpenMP's waiting left to libgomp (`default`: spin 300,000 times, then sleep; riskloop
before), PASSIVE (sleep at once) and a short spin (GOMP_SPINCOUNT=10000: riskloop's default now). A fair share of C cores beside B busy loops is C / (B + 1) of them: with 2 cores
and 2 busy loops, a run that uses both cores alone takes about 1.5x to 2x its time alone.

Usage: python benchmarks/threads.py [PEOPLE=20000] [SEED=5151] [BUSY=2]
Prints the wall time of each run and its ratio to the run alone, measured in the same run.

`python benchmarks/threads.py demos`: `riskloop demo` alone, then two demos started together (each in its own
folder with its own MLflow store); goal: each of the two within 2.5x the time of the one alone.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import now

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "riskloop.cli"]


def busy_loop() -> None:
    while True:
        pass


#: The environment of each run: riskloop sets GOMP_SPINCOUNT only where it is absent, so `default` passes
#: libgomp's own count; an empty OMP_WAIT_POLICY is read by libgomp as no policy.
POLICIES = {
    "default": {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "300000"},
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin 10000": {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"},
}


def train(world: Path, out: Path, policy: str) -> float:
    env = {**os.environ, **POLICIES[policy], "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow.db'}"}
    t0 = now()
    command = [*CLI, "train", "--config", str(ROOT / "experiments" / "escalation.yaml"), "--data", str(world)]
    subprocess.run(
        [*command, "--out", str(out / policy.replace(" ", "-"))], env=env, cwd=out, check=True, capture_output=True
    )
    return now() - t0


def demos(count: int) -> list[float]:
    """`count` demos started together; each one's wall seconds from the common start."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        t0 = now()
        for i in range(count):
            folder = Path(tmp, f"demo-{i}")
            folder.mkdir()
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
            command = [*CLI, "demo", "--dir", str(folder / "riskloop-demo")]
            runs.append(subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.DEVNULL))
        walls = {}
        while len(walls) < count:
            for i, run in enumerate(runs):
                if i not in walls and run.poll() is not None:
                    if run.returncode:
                        raise SystemExit(f"demo {i} failed with exit code {run.returncode}")
                    walls[i] = now() - t0
            time.sleep(0.5)  # poll without taking a core from the demos
        return [walls[i] for i in range(count)]


def demo_pair() -> None:
    (alone,) = demos(1)
    print(f"riskloop demo alone: {alone:.1f} s", flush=True)
    for i, wall in enumerate(demos(2)):
        print(f"two demos started together, demo {i}: {wall:.1f} s, {wall / alone:.2f}x alone (goal <= 2.5x)")
    print(f"{os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable by this process")


def main(people: int, seed: int, busy: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp, "world")
        subprocess.run(
            [*CLI, "generate", "--out", str(world), "--people", str(people), "--seed", str(seed)], check=True
        )
        alone = {policy: train(world, Path(tmp), policy) for policy in POLICIES}
        for policy, wall in alone.items():
            print(f"train on {people:,} people alone, wait policy {policy}: {wall:.1f} s", flush=True)
        for policy in POLICIES:
            loops = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(busy)]
            for loop in loops:
                loop.start()
            try:
                wall = train(world, Path(tmp), policy)
            finally:
                for loop in loops:
                    loop.terminate()
            print(
                f"beside {busy} busy loops, wait policy {policy}: {wall:.1f} s, {wall / alone[policy]:.2f}x its time "
                f"alone, {wall / alone['PASSIVE']:.2f}x PASSIVE alone",
                flush=True,
            )
        print(f"{os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable by this process")


if __name__ == "__main__":
    if sys.argv[1:] == ["demos"]:
        demo_pair()
    else:
        args = [int(a) for a in sys.argv[1:]]
        main(*(args + [20_000, 5151, 2][len(args) :]))
