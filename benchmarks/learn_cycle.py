"""A learning cycle on a large world, the way a partnership runs it (issue 36 item 3: full Wales within 15 minutes
and 12 GiB, 1 M people within 4 minutes and 4 GiB).

For each WORLD (a `riskloop generate` folder), in a fresh folder with its own MLflow store: `riskloop train --data
WORLD` on the default config (experiments/escalation.yaml), which registers the champion, then `riskloop learn
--champion models:/riskloop-escalation@challenger --data WORLD --no-promote`. Each command is a process of its
own: its wall time and peak resident memory (the kernel's figure for that child alone, `wait4`) are its own.
Prints both, the steps of the learning cycle from its progress lines (one line per step with elapsed time when
the output is not a terminal), and what the cycle sampled (learning.json). The baseline is the training alone:
a learning cycle retrains, so it costs at least that.
Usage: python benchmarks/learn_cycle.py WORLD [WORLD ...]   e.g. /tmp/w1m /tmp/wales
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEP = re.compile(r"^\[(\d+):(\d\d):(\d\d)\] learning cycle: (.*)$", re.MULTILINE)


def run(command: list[str], folder: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS GiB, its output) of `command` run in `folder`; exits if it fails."""
    log = folder / f"{Path(command[1]).name}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of every child's
        child.returncode = os.waitstatus_to_exitcode(status)
    wall, output = time.perf_counter() - start, log.read_text()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 2**20, output


def steps(output: str, total: float) -> list[tuple[str, float]]:
    """(step, seconds) of the cycle's top-level steps, from their progress lines (training's own lines folded in)."""
    marks = [(int(h) * 3600 + int(m) * 60 + int(s), what) for h, m, s, what in STEP.findall(output)]
    top = [(t, what) for t, what in marks if not what.startswith(("logistic", "lightgbm", "prior_harm", "gam"))]
    ends = [t for t, _ in top[1:]] + [total]
    return [(what, end - t) for (t, what), end in zip(top, ends)]


riskloop = str(Path(sys.executable).parent / "riskloop")
for world in map(Path, sys.argv[1:]):
    folder = Path(tempfile.mkdtemp(prefix="learn-cycle-"))
    print(f"world {world}: default config, in {folder}", flush=True)
    wall, rss, _ = run([riskloop, "train", "--data", str(world)], folder)
    print(f"  riskloop train   {wall:7.1f} s  peak {rss:5.2f} GiB", flush=True)
    command = [riskloop, "learn", "--champion", "models:/riskloop-escalation@challenger", "--data", str(world)]
    wall, rss, output = run([*command, "--out", "cycle", "--no-promote"], folder)
    print(f"  riskloop learn   {wall:7.1f} s  peak {rss:5.2f} GiB", flush=True)
    for what, seconds in steps(output, wall):
        print(f"    {seconds:6.0f} s  {what}")
    for note in json.loads((folder / "cycle" / "learning" / "learning.json").read_text())["sampled"]:
        print(f"  sampled: {note}")
