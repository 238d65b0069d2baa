"""Model quality against the synthetic world's truth (issue 4's quality goals).

On the latest temporal test split: LightGBM's ROC AUC against the oracle AUC (the world's true
escalation probabilities on the same cohort and labels; goal >= 0.97x oracle) and against the
logistic baseline (goal >= +0.01), and the expected calibration error on test (goal <= 0.02).
Usage: python benchmarks/quality.py [PEOPLE] [SEED]   (generates its world in a temporary folder)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _measure import now

from sklearn.metrics import roc_auc_score

from riskloop.experiments.config import load_config, with_data
from riskloop.pipelines.data import load_model_data
from riskloop.pipelines.train import train
from riskloop.simulation import truth
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world

people = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 2026
root = Path(__file__).resolve().parent.parent

with tempfile.TemporaryDirectory() as tmp:
    t0 = now()
    write_world(simulate(WorldConfig(people=people, seed=seed)), Path(tmp))
    config = with_data(load_config(root / "experiments" / "escalation.yaml"), Path(tmp))
    data = load_model_data(config)
    result = train(data, config)
    latest = data.splits[-1]
    test = data.frame[latest.test]
    as_of = test["as_of"].iloc[0].date()
    oracle = truth.escalation_probability(Path(tmp), as_of, config.horizon_days, config.harm_threshold)
    p_true = test[["person_id"]].merge(oracle, on="person_id", how="left")["probability"].to_numpy()
    oracle_auc = roc_auc_score(test["label"], p_true)
    rows = result.split_metrics[result.split_metrics["split"] == latest.name].set_index("group")
    lgbm = rows[rows["family"] == "lightgbm"]["roc_auc"].max()
    logistic = rows[rows["family"] == "logistic"]["roc_auc"].max()
    selected = rows.loc[result.selected.name]
    print(f"world {people:,} people (seed {seed}); latest split {latest.name}: {len(test):,} cohort rows, "
          f"prevalence {test['label'].mean():.3f}; {now() - t0:.0f} s")
    print(f"oracle AUC (true probabilities)    {oracle_auc:.4f}")
    print(f"LightGBM AUC (best of grid)        {lgbm:.4f} = {lgbm / oracle_auc:.3f}x oracle (goal >= 0.97)")
    print(f"logistic baseline AUC              {logistic:.4f}; LightGBM - logistic = {lgbm - logistic:+.4f} (goal >= +0.01)")
    print(f"selected {result.selected.name}: AUC {selected['roc_auc']:.4f}, ECE {selected['ece']:.4f} (goal <= 0.02), "
          f"precision@k {selected['precision_at_k']:.3f}, Brier {selected['brier']:.4f}")
    print(f"oracle precision@k at the same capacity: "
          f"{test['label'].to_numpy()[(-p_true).argsort()[:int(selected['k'])]].mean():.3f}")
