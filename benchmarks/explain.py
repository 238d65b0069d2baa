"""Explanation cost on a full-Wales world (issue 6).

In one run: bare `pred_contrib` rows/s against riskloop's reason codes rows/s on the same rows
(goal >= 0.8 of bare: templating must be cheap), and the wall time to score the cohort and explain
the top 5% of the 3.1 M population with the selected LightGBM configuration.
Usage: python benchmarks/explain.py WORLD_DIR [ROWS]
"""

from __future__ import annotations

import sys
from datetime import date

import numpy as np
from _measure import bare_matrix, now, peak_rss_gib, scorer_for

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot, build_snapshots
from riskloop.models.calibration import calibrate
from riskloop.models.estimators import ModelSpec, fit_model

world = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
config = SnapshotConfig()
dataset = read_dataset(world)
prepared = PreparedData.from_dataset(dataset)
frame, meta = build_snapshots(prepared, [date(2022, 1, 1), date(2023, 1, 1)], config)
features = list(meta.features)
fit_rows = frame[frame["as_of"] == "2022-01-01"].sample(n=300_000, random_state=0)
val_rows = frame[frame["as_of"] == "2023-01-01"].sample(n=100_000, random_state=0)
spec = ModelSpec(
    "lightgbm", (("learning_rate", 0.05), ("min_child_samples", 50), ("n_estimators", 600), ("num_leaves", 15))
)
model = fit_model(
    spec, fit_rows[features], fit_rows["label"].to_numpy(), val_rows[features], val_rows["label"].to_numpy(), [], 42
)
val_scores = model.predict_proba(val_rows[features])[:, 1]
calibrated, _ = calibrate(model, val_scores, val_rows["label"].to_numpy(), ("isotonic", "sigmoid"), 42)
scorer = scorer_for(calibrated, features, val_scores, prepared.catalogue(config), meta.protected)
booster = model.named_steps["model"].booster_
trees, leaves = booster.num_trees(), 15

cohort = build_snapshot(prepared, date(2024, 1, 1), config)
sample = cohort.sample(n=min(rows, len(cohort)), random_state=1)
t0 = now()
booster.predict(bare_matrix(sample[features]), pred_contrib=True)
bare_s = now() - t0
t0 = now()
reasons = scorer.reasons(sample, 3)
reasons_s = now() - t0
print(f"model: {trees} trees x {leaves} leaves, {len(features)} features; {len(sample):,} rows")
print(f"bare pred_contrib        {len(sample) / bare_s:10,.0f} rows/s")
print(
    f"riskloop reason codes    {len(sample) / reasons_s:10,.0f} rows/s  = {bare_s / reasons_s:.2f} of bare (goal >= 0.8)"
)

t0 = now()
risk = scorer.risk(cohort)
top = cohort.iloc[np.argsort(-risk, kind="stable")[: int(0.05 * len(dataset.people))]]
scorer.score(top, reasons=3)
explain_s = now() - t0
print(
    f"score the cohort ({len(cohort):,}) and explain the top 5% of {len(dataset.people):,} people "
    f"({len(top):,}): {explain_s:.1f} s; peak RSS {peak_rss_gib():.2f} GiB"
)
