"""How many people per as-of date training needs: the default config's `max_people_per_as_of` (issue 36 item 3,
"sample where statistics allow").

For each MAX (people per as-of date; `all`: the whole cohort) `train` runs the default escalation config
(experiments/escalation.yaml, 2 LightGBM threads) in a fresh process, so that its wall time and peak memory are
its own; its registered model then scores the whole cohort of its unseen test date (not only the sampled
people), where ROC AUC, precision at k (per local authority, as the lists work) and ECE are measured. A sample
that statistics allow leaves those figures within their sampling error of the whole cohort's.
Usage: python benchmarks/sampling.py WORLD_DIR MAX [MAX ...]   e.g. /work/w1m 15000 30000 60000 all
"""

from __future__ import annotations

import sys
from pathlib import Path

from _measure import run_isolated

world = Path(sys.argv[1])
ESCALATION = Path(__file__).resolve().parent.parent / "experiments" / "escalation.yaml"

print(f"world {world}; default config {ESCALATION.name}, 2 threads")
print(f"{'max people':>11} {'train s':>8} {'peak GiB':>9} {'rows':>10} {'AUC':>7} {'prec@k':>7} {'ECE':>7}  test date")
for limit in sys.argv[2:]:
    wall, rss, out = run_isolated(
        f"""
import dataclasses
from pathlib import Path
from riskloop.artifacts.dataset import read_dataset
from riskloop.experiments.config import load_config, with_data
from riskloop.features.snapshot import PreparedData
from riskloop.models.metrics import evaluate
from riskloop.pipelines.data import from_dataset
from riskloop.pipelines.score import score_cohort
from riskloop.pipelines.train import train

config = with_data(load_config(Path({str(ESCALATION)!r})), Path({str(world)!r}))
config = dataclasses.replace(config, threads=2, max_people_per_as_of={None if limit == "all" else int(limit)})
prepared = PreparedData.from_dataset(read_dataset(config.data))
data = from_dataset(config, prepared)
result = train(data, config)
test_date = data.frame.loc[data.final.test, "as_of"].max().date()
frame = score_cohort(result.scorer, prepared, test_date).frame
m = evaluate(frame["label"].to_numpy(), frame["risk"].to_numpy(), config.capacity, frame["local_authority"].to_numpy())
print(len(data.frame), m["roc_auc"], m["precision_at_k"], m["ece"], test_date, len(frame))
"""
    )
    rows, auc, precision, ece, test_date, cohort = out.split()[-6:]
    print(
        f"{limit:>11} {wall:8.1f} {rss:9.2f} {int(rows):10,} {float(auc):7.4f} {float(precision):7.4f} "
        f"{float(ece):7.4f}  {test_date} (whole cohort: {int(cohort):,})",
        flush=True,
    )
