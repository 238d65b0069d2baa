"""Export a synthetic world as agency extracts and link its people with Splink on DuckDB.

Goal (issue #35): the full-Wales world's export (3.1 M people, about 3.6 M agency records) linked within
15 minutes and 12 GiB, with the linkage's pairwise precision and recall against the world's truth.
The world is generated first in its own process (`benchmarks/generate.py` times that); the measured process
exports the extracts (default faults) and links the person records a perfect transform reads from them.
Usage: python benchmarks/ingest.py [PEOPLE ...] [--world-seed W] [--seed S] [--clean] [--threshold T]
(world seed 7, export and linkage seed 7, default faults and threshold unless given).
"""

from __future__ import annotations

import argparse
import tempfile

from _measure import run_isolated

parser = argparse.ArgumentParser()
parser.add_argument("people", nargs="*", type=int, default=[100_000])
parser.add_argument("--world-seed", type=int, default=7)
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--clean", action="store_true", help="no faults in the extracts")
parser.add_argument("--threshold", type=float, default=None, help="match probability (default: LinkageSettings')")
args = parser.parse_args()
SETTINGS = f"seed={args.seed}" + (f", threshold={args.threshold}" if args.threshold is not None else "")

GENERATE = """
from pathlib import Path
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world
write_world(simulate(WorldConfig(people={n}, seed={world_seed})), Path({world!r}))
"""
LINK = """
from pathlib import Path
from riskloop.ingest.linkage import LinkageSettings, link_people
from riskloop.simulation.accuracy import pairwise_accuracy, read_truth_records
from riskloop.simulation.export import CLEAN, Faults, export_extracts
start = time.perf_counter()
export = export_extracts(Path({world!r}), Path({out!r}), seed={seed}, faults=CLEAN if {clean} else Faults())
exported = time.perf_counter()
linkage = link_people(export.records, LinkageSettings({settings}))
linked = time.perf_counter()
accuracy = pairwise_accuracy(linkage.clusters, read_truth_records(Path({out!r})))
print(len(export.records), exported - start, linked - exported, linkage.pairs_scored,
      accuracy.precision, accuracy.recall)
"""

print(
    f"{'people':>10} {'records':>10} {'export s':>9} {'link s':>8} {'records/s':>10} {'peak GiB':>9} "
    f"{'pairs':>12} {'precision':>10} {'recall':>7}"
)
for n in args.people:
    with tempfile.TemporaryDirectory() as world, tempfile.TemporaryDirectory() as out:
        run_isolated(GENERATE.format(n=n, world=world, world_seed=args.world_seed))
        wall, rss, stdout = run_isolated(
            LINK.format(world=world, out=out, seed=args.seed, clean=args.clean, settings=SETTINGS)
        )
    records, export_s, link_s, pairs, precision, recall = stdout.splitlines()[-1].split()
    print(
        f"{n:>10,} {int(records):>10,} {float(export_s):>9.1f} {float(link_s):>8.1f} "
        f"{int(records) / float(link_s):>10,.0f} {rss:>9.2f} {int(pairs):>12,} {float(precision):>10.4f} "
        f"{float(recall):>7.4f}",
        flush=True,
    )
