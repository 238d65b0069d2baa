"""riskloop's training path vs bare `lightgbm.train` on 500 k snapshot rows (issue 4; goal ratio <= 1.5).

riskloop: encode, fit with early stopping on a validation slice, choose and fit the calibration,
compute the ventile bands, log params/metrics and the pyfunc model to MLflow (a temporary SQLite
store). Bare: `lightgbm.train` with the same parameters for the same number of boosting rounds (the best
iteration plus the early-stopping patience that riskloop's run went through).
Usage: python benchmarks/train.py WORLD_DIR [ROWS]   (a full-Wales world from `riskloop generate --people 3100000`)
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date

from _measure import now, peak_rss_gib, scorer_for

import lightgbm as lgb
import numpy as np

from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshots
from riskloop.features.validate import load_dataset
from riskloop.experiments.pyfunc import RiskModel
from riskloop.experiments.tracking import pyfunc_requirements
from riskloop.models.calibration import calibrate
from riskloop.models.estimators import ModelSpec, fit_model

world = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
prepared = PreparedData.from_dataset(load_dataset(world, quarantine=False))
frame, meta = build_snapshots(prepared, [date(2022, 1, 1), date(2023, 1, 1)], SnapshotConfig())
train_rows = frame[frame["as_of"] == "2022-01-01"].sample(n=min(rows, (frame["as_of"] == "2022-01-01").sum()), random_state=0)
val_rows = frame[frame["as_of"] == "2023-01-01"].sample(n=100_000, random_state=0)
features = list(meta.features)
X, y, Xv, yv = train_rows[features], train_rows["label"].to_numpy(), val_rows[features], val_rows["label"].to_numpy()
spec = ModelSpec("lightgbm", (("learning_rate", 0.05), ("min_child_samples", 50), ("n_estimators", 600), ("num_leaves", 15)))

with tempfile.TemporaryDirectory() as tmp:
    os.chdir(tmp)
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    mlflow.set_experiment("bench")  # store creation is set-up, not training
    t0 = now()
    with mlflow.start_run():
        model = fit_model(spec, X, y, Xv, yv, [], seed=42)
        calibrated, method = calibrate(model, Xv, yv, ("isotonic", "sigmoid"), seed=42)
        scorer = scorer_for(calibrated, features, calibrated.predict_proba(Xv)[:, 1])
        mlflow.log_params(dict(spec.params))
        mlflow.log_metric("validation_rows", len(yv))
        mlflow.pyfunc.log_model(name="model", python_model=RiskModel(scorer), pip_requirements=pyfunc_requirements())
    riskloop_s = now() - t0
    trees = model.named_steps["model"].best_iteration_ + model.named_steps["model"].early_stopping_rounds

lgb_params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50,
              "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0, "seed": 42,
              "num_threads": 2, "verbose": -1, "deterministic": True}
t0 = now()
lgb.train(lgb_params, lgb.Dataset(X.to_numpy(np.float64), y), num_boost_round=trees)
bare_s = now() - t0
print(f"{len(y):,} training rows x {len(features)} features, {len(yv):,} validation rows; {trees} trees")
print(f"bare lightgbm.train     {bare_s:7.1f} s  ({len(y) / bare_s:,.0f} rows/s)")
print(f"riskloop (fit + early stopping + calibration + MLflow) {riskloop_s:7.1f} s  ({len(y) / riskloop_s:,.0f} rows/s)")
print(f"ratio riskloop / bare   {riskloop_s / bare_s:7.2f}  (goal <= 1.5); peak RSS {peak_rss_gib():.2f} GiB")
