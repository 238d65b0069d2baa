"""riskloop's training path vs bare `lightgbm.train` on 500 k snapshot rows (goal: ratio <= 1.3, peak <= 3 GiB),
and the library path for the same work (`LGBMClassifier`, which riskloop now fits itself, with scikit-learn's
`CalibratedClassifierCV(FrozenEstimator)` per method where riskloop calibrates through `CalibratedModel`).

The rows (500 k from the 2022-01-01 snapshot, 100 k validation rows from 2023-01-01) are written to
Parquet once; each side then runs in a fresh process that reads them, so the peak memory of each is
its own. riskloop: encode, fit with early stopping on the validation slice, choose and fit the
calibration, compute the ventile bands, log params/metrics and the pyfunc model to MLflow (a
temporary SQLite store). Bare: `lightgbm.train` with the same parameters for the same number of
boosting rounds (the best iteration plus the early-stopping patience that riskloop's run went through).
Usage: python benchmarks/train.py WORLD_DIR [ROWS]   (a full-Wales world from `riskloop generate --people 3100000`)
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

from _measure import run_isolated

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshots

world = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "seed": 42,
    "num_threads": 2,
    "verbose": -1,
    "deterministic": True,
}

with tempfile.TemporaryDirectory() as tmp:
    prepared = PreparedData.from_dataset(read_dataset(world))
    frame, meta = build_snapshots(prepared, [date(2022, 1, 1), date(2023, 1, 1)], SnapshotConfig())
    del prepared
    features = list(meta.features)
    first = frame["as_of"] == "2022-01-01"
    frame[first].sample(n=min(rows, int(first.sum())), random_state=0)[features + ["label"]].to_parquet(
        f"{tmp}/fit.parquet"
    )
    frame[~first].sample(n=100_000, random_state=0)[features + ["label"]].to_parquet(f"{tmp}/val.parquet")
    del frame

    riskloop_code = f"""
import os, mlflow, pandas as pd, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from _measure import scorer_for
from riskloop.experiments.pyfunc import RiskModel
from riskloop.experiments.tracking import pyfunc_requirements
from riskloop.models.calibration import calibrate
from riskloop.models.estimators import ModelSpec, fit_model
os.chdir({tmp!r})
mlflow.set_tracking_uri("sqlite:///{tmp}/mlflow.db")
mlflow.set_experiment("bench")
fit, val = pd.read_parquet("fit.parquet"), pd.read_parquet("val.parquet")
features = [c for c in fit.columns if c != "label"]
X, y = fit[features], fit["label"].to_numpy()
del fit
Xv, yv = val[features], val["label"].to_numpy()
t0 = time.perf_counter()  # reading is set-up; training starts here
spec = ModelSpec("lightgbm", (("learning_rate", 0.05), ("min_child_samples", 50), ("n_estimators", 600), ("num_leaves", 15)))
with mlflow.start_run():
    model = fit_model(spec, X, y, Xv, yv, [], seed=42, threads=2)
    val_scores = model.predict_proba(Xv)[:, 1]
    calibrated, method = calibrate(model, val_scores, yv, ("isotonic", "sigmoid"), seed=42)
    scorer = scorer_for(calibrated, features, val_scores)
    mlflow.log_params(dict(spec.params))
    mlflow.log_metric("validation_rows", len(yv))
    mlflow.pyfunc.log_model(name="model", python_model=RiskModel(scorer), pip_requirements=pyfunc_requirements())
print("train_s", time.perf_counter() - t0)
print("trees", len(model.named_steps["model"].evals_result_["valid_0"]["binary_logloss"]))  # rounds run
print("shape", len(y), len(features), len(yv))
"""
    riskloop_wall, riskloop_rss, out = run_isolated(riskloop_code)
    figures = dict(line.split() for line in out.splitlines() if line.split()[0] in ("train_s", "trees"))
    shape = next(line.split()[1:] for line in out.splitlines() if line.startswith("shape"))
    trees = int(figures["trees"])
    riskloop_s = float(figures["train_s"])

    bare_code = f"""
import lightgbm as lgb, numpy as np, pandas as pd
fit = pd.read_parquet("{tmp}/fit.parquet")
X, y = fit.drop(columns="label").to_numpy(np.float64), fit["label"].to_numpy()
del fit
t0 = time.perf_counter()
lgb.train({PARAMS!r}, lgb.Dataset(X, y), num_boost_round={trees})
print("train_s", time.perf_counter() - t0)
"""
    bare_wall, bare_rss, out = run_isolated(bare_code)
    bare_s = float(out.split()[1])

    library_code = f"""
import lightgbm as lgb, pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
fit, val = pd.read_parquet("{tmp}/fit.parquet"), pd.read_parquet("{tmp}/val.parquet")
X, y, Xv, yv = fit.drop(columns="label"), fit["label"], val.drop(columns="label"), val["label"]
t0 = time.perf_counter()
clf = lgb.LGBMClassifier(n_estimators=600, learning_rate=0.05, num_leaves=15, min_child_samples=50, subsample=0.8,
                         subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, random_state=42, n_jobs=2,
                         verbose=-1, deterministic=True)
clf.fit(X, y, eval_set=[(Xv, yv)], callbacks=[lgb.early_stopping(50, verbose=False)])
for method in ("isotonic", "sigmoid"):
    CalibratedClassifierCV(FrozenEstimator(clf), method=method).fit(Xv, yv)
print("train_s", time.perf_counter() - t0)
"""
    library_wall, library_rss, out = run_isolated(library_code)
    library_s = float(out.split()[1])

n, n_features, n_val = map(int, shape)
print(f"{n:,} training rows x {n_features} features, {n_val:,} validation rows; {trees} trees")
print(f"bare lightgbm.train     {bare_s:7.1f} s  ({n / bare_s:,.0f} rows/s); process peak RSS {bare_rss:.2f} GiB")
print(
    f"riskloop (fit + early stopping + calibration + MLflow) {riskloop_s:7.1f} s  ({n / riskloop_s:,.0f} rows/s); "
    f"process peak RSS {riskloop_rss:.2f} GiB (goal <= 3)"
)
print(f"ratio riskloop / bare   {riskloop_s / bare_s:7.2f}  (goal <= 1.3)")
print(
    f"library path (LGBMClassifier with early stopping + CalibratedClassifierCV(FrozenEstimator) per method, no "
    f"MLflow) {library_s:7.1f} s = {library_s / bare_s:.2f}x bare; peak RSS {library_rss:.2f} GiB"
)
