"""Model quality against the synthetic world's truth, over several seeds (issue 32's quality goals).

Trains the escalation experiment as `riskloop train` does: selection on validation data only, the
registered model being the latest split's, whose test window it never saw. On that window, per seed:
ROC AUC against the oracle AUC (the world's true escalation probabilities on the same cohort and
labels; goal: mean >= 0.965x oracle) and against the logistic baseline (goal >= +0.01); precision in
the top 5% against the oracle's at the same capacity (goal: mean >= 0.9x); the expected calibration
error over 10 and 20 equal-frequency bins (goal <= 0.02); every family's group chosen on validation
beside the oracle. Then the mean and spread over the seeds.

Which signal is missing: the selected model group is refitted on the same split with truth-only
columns the records never hold (the person's adverse childhood experiences, the latent propensities
to offend and to abuse a partner), and its AUC and top-5% precision are set against the oracle's.
Usage: python benchmarks/quality.py [PEOPLE] [SEED ...]   (generates each world in a temporary folder)
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd
from _measure import now
from sklearn.metrics import roc_auc_score

from riskloop.experiments.config import load_config, with_data
from riskloop.jobs.model import model_data
from riskloop.models.metrics import capacity_k, expected_calibration_error, top_k
from riskloop.pipelines.train import fit_and_calibrate, model_specs, train
from riskloop.simulation import truth
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world

THREADS = 2  # fits side by side (one LightGBM thread each), pinned so the timings compare across machines
GAM_GRID = {"n_knots": [5], "degree": [3], "C": [0.1, 1.0]}
TOP_SHARE = 0.05
TRUTH_ONLY = {
    "adverse childhood experiences": ["ace_count"],
    "latent propensities": ["offending_trait", "domestic_trait"],
    "both": ["ace_count", "offending_trait", "domestic_trait"],
}


def precision_in_top(y, score, share: float = TOP_SHARE) -> float:
    return float(y[top_k(score, capacity_k(len(y), share))].mean())


def measure(people: int, seed: int, root: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return _measure_world(people, seed, root, Path(tmp))


def _measure_world(people: int, seed: int, root: Path, world: Path) -> dict[str, float]:
    t0 = now()
    write_world(simulate(WorldConfig(people=people, seed=seed)), world)
    config = with_data(load_config(root / "experiments" / "escalation.yaml"), world)
    config = dataclasses.replace(config, threads=THREADS, models=dataclasses.replace(config.models, gam=GAM_GRID))
    data = model_data(config)
    result = train(data, config)
    chosen = result.selected.name
    latest = data.splits[-1]
    test = data.frame[latest.test]
    y = test["label"].to_numpy()
    as_of = test["as_of"].iloc[0].date()
    oracle = truth.escalation_probability(world, as_of, config.horizon_days, config.harm_threshold)
    p_true = test[["person_id"]].merge(oracle, on="person_id", how="left")["probability"].to_numpy()
    oracle_auc = roc_auc_score(y, p_true)
    oracle_precision = precision_in_top(y, p_true)
    rows = result.split_metrics[result.split_metrics["split"] == latest.name].set_index("group")
    lgbm_best = rows[rows["family"] == "lightgbm"]["roc_auc"].max()
    logistic = rows[rows["family"] == "logistic"]["roc_auc"].max()
    selected = rows.loc[chosen]
    risk = result.latest_test[chosen].to_numpy()
    precision = precision_in_top(y, risk)
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
        f"  AUC {selected['roc_auc']:.4f} = {selected['roc_auc'] / oracle_auc:.3f}x oracle (goal: mean >= 0.965); "
        f"Brier {selected['brier']:.4f}"
    )
    print(
        f"  top {TOP_SHARE:.0%} precision {precision:.3f} = {precision / oracle_precision:.3f}x the oracle's "
        f"{oracle_precision:.3f} (goal: mean >= 0.9x)"
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
    print("each family's group chosen on validation (the latest split), on its test window:")
    for family, groups in rows.groupby("family", sort=False):
        best = groups.loc[groups["val_roc_auc"].idxmax()]
        print(
            f"  {family:<10} {best.name:<60} AUC {best['roc_auc']:.4f} = {best['roc_auc'] / oracle_auc:.3f}x "
            f"oracle; precision@k {best['precision_at_k']:.3f}"
        )
    missing = missing_signal(data, config, chosen, world, oracle_auc, oracle_precision)
    return {"auc_ratio": selected["roc_auc"] / oracle_auc, "precision_ratio": precision / oracle_precision, **missing}


def missing_signal(data, config, chosen: str, world: Path, oracle_auc: float, oracle_precision: float) -> dict:
    """The selected group refitted on the latest split with truth-only columns added, against the oracle."""
    spec = next(s for s in model_specs(config) if s.name == chosen)
    latest = data.splits[-1]
    hidden = pd.read_parquet(world / "truth" / "people.parquet")
    frame = data.frame.merge(hidden, on="person_id", how="left", validate="many_to_one")
    y = frame.loc[latest.test, "label"].to_numpy()
    print(f"which signal is missing: {chosen} refitted on {latest.name} with truth-only columns")
    out = {}
    for name, columns in TRUTH_ONLY.items():
        scratch = dataclasses.replace(data, frame=frame, features=data.features + columns)
        _, calibrated, _, _ = fit_and_calibrate(spec, scratch, latest, config)
        risk = calibrated.predict_proba(frame.loc[latest.test, scratch.features])[:, 1]
        auc, precision = roc_auc_score(y, risk) / oracle_auc, precision_in_top(y, risk) / oracle_precision
        out[f"{name}: auc_ratio"], out[f"{name}: precision_ratio"] = auc, precision
        print(f"  + {name:<30} AUC {auc:.3f}x oracle; top-5% precision {precision:.3f}x the oracle's")
    return out


if __name__ == "__main__":
    people = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    seeds = [int(s) for s in sys.argv[2:]] or [2026]
    root = Path(__file__).resolve().parent.parent
    figures = pd.DataFrame([measure(people, seed, root) for seed in seeds], index=seeds)
    print(f"over {len(seeds)} seed(s) {', '.join(map(str, seeds))}: mean (sd, min-max)")
    for column in figures.columns:
        values = figures[column]
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        print(f"  {column:<45} {values.mean():.3f} ({spread:.3f}, {values.min():.3f}-{values.max():.3f})")
