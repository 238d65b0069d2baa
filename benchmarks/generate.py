"""Time synthetic-world generation at 100 k, 1 M and 3.1 M people over 7 years.

Goal (issue 2): 3.1 M people in <= 180 s and <= 8 GB peak on 2 cores. The bare baseline is the
cost of the random draws alone (one Poisson draw per person-month for 84 months), measured in the
same run, so the ratio shows what the world's structure costs on top of sampling.
Usage: python benchmarks/generate.py [SIZE ...]
"""

from __future__ import annotations

import sys
import tempfile

from _measure import run_isolated

SIZES = [int(s) for s in sys.argv[1:]] or [100_000, 1_000_000, 3_100_000]

BASELINE = """
import numpy as np
rng = np.random.default_rng(0)
lam = np.full({n}, 0.01)
for _ in range(84):
    rng.poisson(lam)
"""
GENERATE = """
from pathlib import Path
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world
counts = write_world(simulate(WorldConfig(people={n}, seed=7)), Path({out!r}))
print(sum(counts.values()))
"""

print(f"{'people':>10} {'wall s':>8} {'people/s':>10} {'peak GiB':>9} {'rows':>11} {'bare s':>7} {'ratio':>6}")
for n in SIZES:
    with tempfile.TemporaryDirectory() as tmp:
        wall, rss, stdout = run_isolated(GENERATE.format(n=n, out=tmp))
    bare, _, _ = run_isolated(BASELINE.format(n=n))
    print(
        f"{n:>10,} {wall:>8.1f} {n / wall:>10,.0f} {rss:>9.2f} {int(stdout):>11,} {bare:>7.1f} {wall / bare:>6.1f}",
        flush=True,
    )
