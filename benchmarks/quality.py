"""Model quality against the synthetic world's truth (issue 4's quality goals, issue 10's feature goal).

Trains the escalation experiment as `riskloop train` does: selection on validation data only, the
registered model being the latest split's, whose test window it never saw. On that window:
ROC AUC against the oracle AUC (the world's true escalation probabilities on the same cohort and
labels; goal >= 0.965x oracle) and against the logistic baseline (goal >= +0.01); the expected
calibration error over 10 and 20 equal-frequency bins (goal <= 0.02); calibration among the top 5%
(mean predicted vs observed). The grid also holds the interpretable spline GAM (`GAM_GRID`), and every
family's group chosen on validation (as selection would within that family) is reported on the same
test window beside the oracle.
Usage: python benchmarks/quality.py [PEOPLE] [SEED]   (generates its world in a temporary folder)
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from _measure import now
from sklearn.metrics import roc_auc_score

from riskloop.experiments.config import load_config, with_data
from riskloop.jobs.model import model_data
from riskloop.models.metrics import capacity_k, expected_calibration_error, top_k
from riskloop.pipelines.train import train
from riskloop.simulation import truth
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world

THREADS = 2  # LightGBM threads, pinned so the figures are reproducible across machines
GAM_GRID = {"n_knots": [5], "degree": [3], "C": [0.1, 1.0]}
TOP_SHARE = 0.05


people = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 2026
root = Path(__file__).resolve().parent.parent

with tempfile.TemporaryDirectory() as tmp:
    t0 = now()
    write_world(simulate(WorldConfig(people=people, seed=seed)), Path(tmp))
    config = with_data(load_config(root / "experiments" / "escalation.yaml"), Path(tmp))
    config = dataclasses.replace(config, threads=THREADS, models=dataclasses.replace(config.models, gam=GAM_GRID))
    data = model_data(config)
    result = train(data, config)
    chosen = result.selected.name
    latest = data.splits[-1]
    test = data.frame[latest.test]
    y = test["label"].to_numpy()
    as_of = test["as_of"].iloc[0].date()
    oracle = truth.escalation_probability(Path(tmp), as_of, config.horizon_days, config.harm_threshold)
    p_true = test[["person_id"]].merge(oracle, on="person_id", how="left")["probability"].to_numpy()
    oracle_auc = roc_auc_score(y, p_true)
    rows = result.split_metrics[result.split_metrics["split"] == latest.name].set_index("group")
    lgbm_best = rows[rows["family"] == "lightgbm"]["roc_auc"].max()
    logistic = rows[rows["family"] == "logistic"]["roc_auc"].max()
    selected = rows.loc[chosen]
    risk = result.latest_test[chosen].to_numpy()
    top = top_k(risk, capacity_k(len(risk), TOP_SHARE))
    fit_dates = data.frame.loc[latest.fit, "as_of"]
    print(
        f"world {people:,} people (seed {seed}); latest split {latest.name}: {len(test):,} cohort rows, "
        f"prevalence {y.mean():.3f}; fit on {fit_dates.nunique()} snapshots "
        f"{fit_dates.min().date()} .. {fit_dates.max().date()} ({latest.fit.sum():,} rows), "
        f"{len(data.features)} features; {now() - t0:.0f} s"
    )
    print(f"oracle AUC (true probabilities)    {oracle_auc:.4f}")
    print(f"selected on validation: {chosen}")
    print(
        f"  AUC {selected['roc_auc']:.4f} = {selected['roc_auc'] / oracle_auc:.3f}x oracle (goal >= 0.965); "
        f"precision@k {selected['precision_at_k']:.3f}, Brier {selected['brier']:.4f}"
    )
    print(
        f"  ECE {selected['ece']:.4f} (10 bins), {expected_calibration_error(y, risk, bins=20):.4f} "
        f"(20 equal-frequency bins) (goal <= 0.02)"
    )
    print(
        f"  top {TOP_SHARE:.0%} ({top.sum():,} people): mean predicted {risk[top].mean():.3f}, "
        f"observed {y[top].mean():.3f}"
    )
    print(f"LightGBM AUC, best of grid on test {lgbm_best:.4f} = {lgbm_best / oracle_auc:.3f}x oracle")
    print(
        f"logistic baseline AUC              {logistic:.4f}; selected - logistic = "
        f"{selected['roc_auc'] - logistic:+.4f} (goal >= +0.01)"
    )
    print(f"oracle precision@k at the same capacity: {y[(-p_true).argsort()[: int(selected['k'])]].mean():.3f}")
    print("each family's group chosen on validation (the latest split), on its test window:")
    for family, groups in rows.groupby("family", sort=False):
        best = groups.loc[groups["val_roc_auc"].idxmax()]
        print(
            f"  {family:<10} {best.name:<60} AUC {best['roc_auc']:.4f} = {best['roc_auc'] / oracle_auc:.3f}x "
            f"oracle; precision@k {best['precision_at_k']:.3f}"
        )
