"""Temporal validation of the model grid, selection by the config's rule, and the final refit.

No I/O here: `experiments.tracking` logs what these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from experiments.config import ExperimentConfig
from experiments.data import ModelData, SplitMasks
from models.calibration import calibrate
from models.estimators import ModelSpec, expand_grid, fit_model
from models.metrics import evaluate
from models.pyfunc import RiskScorer, ventile_cuts


@dataclass
class FittedSplit:
    spec: ModelSpec
    split: str
    metrics: dict[str, float]
    calibration_method: str
    best_iteration: int | None


@dataclass
class TrainResult:
    split_metrics: pd.DataFrame     # one row per model group x split
    summary: pd.DataFrame           # per group: mean, std, regret of each metric
    selected: ModelSpec
    scorer: RiskScorer
    final_metrics: dict[str, float]  # test_* metrics (the table's test set, or the latest split)
    latest_test: pd.DataFrame        # the latest split's test rows with each group's calibrated risk


def fit_and_calibrate(spec: ModelSpec, data: ModelData, masks: SplitMasks, config: ExperimentConfig):
    X, y = data.frame[data.features], data.frame["label"].to_numpy()
    model = fit_model(spec, X[masks.fit], y[masks.fit], X[masks.validation], y[masks.validation],
                      data.categorical, config.seed)
    calibrated, method = calibrate(model, X[masks.validation], y[masks.validation], config.calibration, config.seed)
    return model, calibrated, method


def _groups(data: ModelData, mask: np.ndarray) -> np.ndarray | None:
    return data.frame.loc[mask, data.group_column].to_numpy() if data.group_column else None


def run_temporal_validation(data: ModelData, config: ExperimentConfig,
                            progress: Callable[[str], None] = lambda _: None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model group on every split: (metrics per group x split, latest split's test scores)."""
    specs = expand_grid({"logistic": config.models.logistic, "lightgbm": config.models.lightgbm,
                         "prior_harm": config.models.prior_harm})
    rows, latest = [], data.frame.loc[data.splits[-1].test, ["person_id", "as_of", "label"]].copy()
    for masks in data.splits:
        for spec in specs:
            progress(f"{spec.name} on {masks.name}")
            model, calibrated, method = fit_and_calibrate(spec, data, masks, config)
            risk = calibrated.predict_proba(data.frame.loc[masks.test, data.features])[:, 1]
            metrics = evaluate(data.frame.loc[masks.test, "label"].to_numpy(), risk, config.capacity,
                               _groups(data, masks.test))
            best_iteration = getattr(model.named_steps["model"], "best_iteration_", None)
            rows.append({"group": spec.name, "family": spec.family, "split": masks.name,
                         "calibration": method, "best_iteration": best_iteration, **metrics})
            if masks is data.splits[-1]:
                latest[spec.name] = risk
    return pd.DataFrame(rows), latest


def summarise(split_metrics: pd.DataFrame, metrics=("roc_auc", "average_precision", "precision_at_k",
                                                      "recall_at_k", "brier", "ece")) -> pd.DataFrame:
    """Per model group: mean and spread across splits, and regret (distance to the split's best)."""
    out = split_metrics.groupby("group")[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    for m in metrics:
        best = split_metrics.groupby("split")[m].transform("min" if m in ("brier", "ece") else "max")
        out[f"{m}_regret"] = (best - split_metrics[m]).abs().groupby(split_metrics["group"]).mean()
    out["family"] = split_metrics.groupby("group")["family"].first()
    return out


def select(summary: pd.DataFrame, config: ExperimentConfig) -> str:
    """Best mean selection metric among groups within the AUC tolerance of the best mean AUC."""
    best_auc = summary["roc_auc_mean"].max()
    eligible = summary[summary["roc_auc_mean"] >= best_auc - config.selection.auc_tolerance]
    ranked = eligible.sort_values([f"{config.selection.metric}_mean", "roc_auc_mean"], ascending=False, kind="stable")
    return ranked.index[0]


def train(data: ModelData, config: ExperimentConfig, progress: Callable[[str], None] = lambda _: None) -> TrainResult:
    split_metrics, latest = run_temporal_validation(data, config, progress)
    summary = summarise(split_metrics)
    chosen = select(summary, config)
    specs = {s.name: s for s in expand_grid({"logistic": config.models.logistic, "lightgbm": config.models.lightgbm,
                                             "prior_harm": config.models.prior_harm})}
    spec = specs[chosen]
    progress(f"refit {spec.name} on all labelled data")
    _, calibrated, _ = fit_and_calibrate(spec, data, data.final, config)
    reference = calibrated.predict_proba(data.frame.loc[data.final.validation, data.features])[:, 1]
    scorer = RiskScorer(calibrated, data.features, data.categorical, ventile_cuts(reference),
                        config.bands.medium_from, config.bands.high_from,
                        {"config": config.name, "model_group": spec.name, "data_fingerprint": data.fingerprint})
    if data.final.test is not None:
        test = data.frame[data.final.test]
        final = evaluate(test["label"].to_numpy(), scorer.risk(test), config.capacity, _groups(data, data.final.test))
    else:
        final = split_metrics[(split_metrics["group"] == chosen) & (split_metrics["split"] == data.splits[-1].name)].iloc[0].to_dict()
    final_metrics = {f"test_{k}": float(final[k]) for k in ("roc_auc", "average_precision", "precision_at_k",
                                                            "recall_at_k", "brier", "ece", "prevalence", "n")}
    final_metrics["test_auc"] = final_metrics["test_roc_auc"]
    return TrainResult(split_metrics, summary, spec, scorer, final_metrics, latest)
