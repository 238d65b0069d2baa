"""The train pipeline: temporal validation of the model grid, selection by the config's rule, the
final refit, its model contract, explanation stability and the out-of-time fairness audit.

ModelData + ExperimentConfig -> TrainResult. No I/O: `riskloop.experiments.tracking` logs the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from riskloop.experiments.config import ExperimentConfig
from riskloop.models.calibration import CalibratedModel, calibrate
from riskloop.models.contract import ModelContract, config_hash, riskloop_version
from riskloop.models.estimators import ModelSpec, expand_grid, fit_model
from riskloop.models.explain import ReasonTemplates, attributions, top_reasons
from riskloop.models.fairness import FairnessAudit, audit
from riskloop.models.mitigation import Mitigation, mitigate
from riskloop.models.metrics import capacity_k, evaluate, top_k
from riskloop.models.scorer import RiskScorer, ventile_cuts
from riskloop.pipelines.data import ModelData, SplitMasks

IMPORTANCE_SAMPLE = 2_000


@dataclass
class TrainResult:
    split_metrics: pd.DataFrame     # one row per model group x split
    summary: pd.DataFrame           # per group: mean, std, regret of each metric
    selected: ModelSpec
    scorer: RiskScorer
    final_metrics: dict[str, float]  # test_* metrics (the table's test set, or the latest split)
    latest_test: pd.DataFrame        # the latest split's test rows with each group's calibrated risk
    importance_by_split: pd.DataFrame  # mean |SHAP| of the selected group's model per split x feature
    stability: dict[str, float]      # top-10 overlap across splits, first-reason changes between models
    fairness: FairnessAudit          # the selected group on the latest split's test rows
    mitigation: Mitigation | None
    mitigation_model: CalibratedModel | None  # the latest split's model that the mitigation post-processes
    mitigation_note: str                      # why mitigation was not run, if it was not


def model_specs(config: ExperimentConfig) -> list[ModelSpec]:
    """Every model group of the config's grid."""
    return expand_grid({"logistic": config.models.logistic, "lightgbm": config.models.lightgbm,
                        "prior_harm": config.models.prior_harm})


def fit_and_calibrate(spec: ModelSpec, data: ModelData, masks: SplitMasks, config: ExperimentConfig):
    """Fit on the split's fitting rows, early-stop and calibrate on its validation rows (each copied once)."""
    y = data.frame["label"].to_numpy()
    validation = data.frame.loc[masks.validation, data.features]
    model = fit_model(spec, data.frame.loc[masks.fit, data.features], y[masks.fit], validation, y[masks.validation],
                      data.categorical, config.seed, config.threads)
    calibrated, method = calibrate(model, validation, y[masks.validation], config.calibration, config.seed)
    return model, calibrated, method


def _groups(data: ModelData, mask: np.ndarray) -> np.ndarray | None:
    return data.frame.loc[mask, data.group_column].to_numpy() if data.group_column else None


def run_temporal_validation(data: ModelData, config: ExperimentConfig,
                            progress: Callable[[str], None] = lambda _: None):
    """Every model group on every split: (metrics per group x split, latest split's test scores,
    the calibrated model per (group, split); its `.model` is the fitted pipeline)."""
    specs = model_specs(config)
    rows, latest = [], data.frame.loc[data.splits[-1].test, ["person_id", "as_of", "label"]].copy()
    fitted = {}
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
            fitted[spec.name, masks.name] = calibrated
            if masks is data.splits[-1]:
                latest[spec.name] = risk
    return pd.DataFrame(rows), latest, fitted


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


def reason_templates(data: ModelData) -> ReasonTemplates:
    """Reason templates with the quartiles of the rows the final model learns from and the lookback."""
    learned = data.frame.loc[data.final.fit | data.final.validation, data.features]
    return ReasonTemplates.build(data.features, data.catalogue, data.protected, learned,
                                 data.snapshot.lookback_days if data.snapshot else None)


def explanation_stability(data: ModelData, config: ExperimentConfig, group: str, fitted: dict,
                          templates: ReasonTemplates) -> tuple[pd.DataFrame, dict[str, float]]:
    """Mean |SHAP| per split for one model group, the overlap of consecutive splits' top-10 features,
    and the share of people listed by the last two splits' models whose first reason differs."""
    rng = np.random.default_rng(config.seed)
    importance = {}
    for masks in data.splits:
        rows = np.flatnonzero(masks.test)
        sample = np.sort(rng.choice(rows, size=min(IMPORTANCE_SAMPLE, len(rows)), replace=False))
        contrib, _ = attributions(fitted[group, masks.name].estimator, data.frame.loc[sample, data.features])
        importance[masks.name] = contrib.abs().mean()
    table = pd.DataFrame(importance).T
    tops = [set(row.nlargest(10).index) for _, row in table.iterrows()]
    overlaps = [len(a & b) / 10 for a, b in zip(tops, tops[1:])]
    stability = {"top10_overlap_mean": float(np.mean(overlaps)) if overlaps else float("nan")}
    if len(data.splits) >= 2:
        test = data.frame[data.splits[-1].test]
        k = capacity_k(len(test), config.capacity)
        listed, first = [], []
        for masks in data.splits[-2:]:
            calibrated = fitted[group, masks.name]
            chosen = top_k(calibrated.predict_proba(test[data.features])[:, 1], k)
            rows = test[chosen]
            listed.append(set(rows["person_id"]))
            first.append(pd.Series(top_reasons(attributions(calibrated.estimator, rows[data.features])[0], rows[data.features],
                                               templates, 1)["reason_1"].to_numpy(), index=rows["person_id"]))
        both = sorted(listed[0] & listed[1])
        stability["listed_by_both_models"] = float(len(both))
        stability["first_reason_changed_share"] = float((first[0][both] != first[1][both]).mean()) if both else float("nan")
    return table, stability


def train(data: ModelData, config: ExperimentConfig, progress: Callable[[str], None] = lambda _: None) -> TrainResult:
    split_metrics, latest, fitted = run_temporal_validation(data, config, progress)
    summary = summarise(split_metrics)
    chosen = select(summary, config)
    spec = next(s for s in model_specs(config) if s.name == chosen)
    templates = reason_templates(data)
    progress(f"explanation stability of {spec.name}")
    importance, stability = explanation_stability(data, config, spec.name, fitted, templates)
    progress(f"refit {spec.name} on all labelled data")
    _, calibrated, _ = fit_and_calibrate(spec, data, data.final, config)
    reference = calibrated.predict_proba(data.frame.loc[data.final.validation, data.features])[:, 1]
    scorer = RiskScorer(calibrated, model_contract(data, config, spec.name, ventile_cuts(reference)), templates,
                        importance, stability)
    if data.final.test is not None:
        test = data.frame[data.final.test]
        final = evaluate(test["label"].to_numpy(), scorer.risk(test), config.capacity, _groups(data, data.final.test))
    else:
        final = split_metrics[(split_metrics["group"] == chosen) & (split_metrics["split"] == data.splits[-1].name)].iloc[0].to_dict()
    final_metrics = {f"test_{k}": float(final[k]) for k in ("roc_auc", "average_precision", "precision_at_k",
                                                            "recall_at_k", "brier", "ece", "prevalence", "n")}
    progress("fairness audit and mitigation")
    fairness, mitigation, mitigated_base, note = audit_latest_split(data, config, spec.name, fitted, latest)
    return TrainResult(split_metrics, summary, spec, scorer, final_metrics, latest, importance, stability,
                       fairness, mitigation, mitigated_base, note)


def model_contract(data: ModelData, config: ExperimentConfig, group: str, band_cuts: tuple[float, ...]) -> ModelContract:
    """The contract of the final model: how to rebuild its inputs and read its outputs."""
    text = config.source_file.read_text() if config.source_file else repr(config)
    learned = data.final.fit | data.final.validation
    return ModelContract(
        name=config.name, registered_model=config.registered_model, model_group=group, snapshot=data.snapshot,
        features=tuple(data.features), categorical=tuple(data.categorical), protected=tuple(data.protected),
        protected_as_features=tuple(sorted(set(data.features) & set(data.protected))), audit=config.fairness,
        capacity=config.capacity, band_cuts=band_cuts, bands=config.bands, training_window=data.window(learned),
        data_fingerprint=data.fingerprint, config_hash=config_hash(text), riskloop_version=riskloop_version())


def audit_latest_split(data: ModelData, config: ExperimentConfig, group: str, fitted: dict, latest: pd.DataFrame):
    """Audit the selected group's latest-split model out of time; mitigate on validation, compare on test."""
    masks = data.splits[-1]
    test = data.frame[masks.test]
    fairness = audit(test["label"].to_numpy(), latest[group].to_numpy(), test, data.protected, config.fairness,
                     config.capacity, config.seed)
    sensitive = config.fairness.mitigate_on
    if sensitive is None or sensitive not in data.frame:
        return fairness, None, None, f"no mitigation column ('{sensitive}') in this data"
    validation = data.frame[masks.validation]
    one_class = [g for g, labels in validation.groupby(sensitive, observed=True)["label"] if labels.nunique() < 2]
    if one_class:
        return fairness, None, None, (f"not run: in the validation slice, {sensitive} = {', '.join(map(str, one_class))} "
                                      "has only one outcome class, so group thresholds cannot be fitted")
    model = fitted[group, masks.name]

    def risk(frame: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(frame[data.features])[:, 1]

    mitigation = mitigate(risk, validation[data.features], validation["label"].to_numpy(), validation[sensitive],
                          test[data.features], test["label"].to_numpy(), test[sensitive], config.fairness.use,
                          config.capacity, config.seed)
    return fairness, mitigation, model, ""
