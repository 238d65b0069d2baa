"""The train pipeline: temporal validation of the model grid, selection by the config's rule, the
final refit, its model contract, explanation stability and the out-of-time fairness audit.

ModelData + ExperimentConfig -> TrainResult. No I/O: `riskloop.experiments.tracking` logs the result.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import effective_n_jobs

from riskloop.experiments.config import ExperimentConfig
from riskloop.models.calibration import calibrate
from riskloop.models.contract import ModelContract, config_hash, riskloop_version
from riskloop.models.estimators import ModelSpec, expand_grid, fit_model, predict_with, side_by_side
from riskloop.models.explain import ReasonTemplates, attributions, top_reasons
from riskloop.models.fairness import FairnessAudit, audit
from riskloop.models.families import PRIOR_HARM_FEATURE
from riskloop.models.group_calibration import (
    GroupwiseMap,
    Method,
    Multicalibration,
    Verdict,
    WithinGroupMap,
    choose,
    fit_maps,
)
from riskloop.models.metrics import capacity_k, evaluate, top_k
from riskloop.models.mitigation import Mitigation, mitigate
from riskloop.models.proxies import proxy_strength
from riskloop.models.scorer import RiskScorer, ventile_cuts
from riskloop.pipelines.data import ModelData, SplitMasks

IMPORTANCE_SAMPLE = 2_000
#: memory temporal validation's side-by-side fits may hold at once (each a copy of its split's rows and LightGBM's
#: binned data: on the demo's data two fits at once raised the peak by 0.3 GiB, 1.6x a split's rows as floats)
FIT_MEMORY = 4 * 2**30


@dataclass
class TrainResult:
    split_metrics: pd.DataFrame  # one row per model group x split
    summary: pd.DataFrame  # per group: mean, std, regret of each metric
    selected: ModelSpec
    scorer: RiskScorer
    final_metrics: dict[str, float]  # test_* metrics of the registered model on its unseen test window
    latest_test: pd.DataFrame  # the latest split's test rows with each group's calibrated risk
    importance_by_split: pd.DataFrame  # mean |SHAP| of the selected group's model per split x feature
    stability: dict[str, float]  # top-10 overlap across splits, first-reason changes between models
    fairness: FairnessAudit  # the registered model on its unseen test rows
    mitigation: Mitigation | None  # post-processes the registered model's risk
    mitigation_note: str  # why mitigation was not run, if it was not
    warnings: list[str]  # what makes its figures less reliable (e.g. prevalence shift)
    proxies: pd.DataFrame  # per feature x protected column: how well the feature alone tells a group apart
    proxy_cost: dict[str, float | str]  # test metrics with and without the config's proxy features
    within: tuple[Verdict, ...] = ()  # calibrate_within: each map judged on the test window, the chosen first


def model_specs(config: ExperimentConfig) -> list[ModelSpec]:
    """Every model group of the config's grid."""
    return expand_grid(config.models.grids())


def fit_and_calibrate(spec: ModelSpec, data: ModelData, masks: SplitMasks, config: ExperimentConfig):
    """Fit on the split's fitting rows, early-stop and calibrate on its validation rows (each copied once).
    Returns (pipeline, calibrated model, calibration method, the pipeline's validation scores)."""
    y = data.frame["label"].to_numpy()
    validation = data.frame.loc[masks.validation, data.features]
    model = fit_model(
        spec,
        data.frame.loc[masks.fit, data.features],
        y[masks.fit],
        validation,
        y[masks.validation],
        data.categorical,
        config.seed,
        config.threads,
    )
    scores = model.predict_proba(validation)[:, 1]
    calibrated, method = calibrate(model, scores, y[masks.validation], config.calibration, config.seed)
    return model, calibrated, method, scores


def _groups(data: ModelData, mask: np.ndarray) -> np.ndarray | None:
    return data.frame.loc[mask, data.group_column].to_numpy() if data.group_column else None


RANKING = ("roc_auc", "average_precision", "precision_at_k", "recall_at_k")
SUMMARISED = (
    "roc_auc",
    "average_precision",
    "precision_at_k",
    "recall_at_k",
    "brier",
    "ece",
    *(f"val_{m}" for m in RANKING),
)


def run_temporal_validation(
    data: ModelData, config: ExperimentConfig, progress: Callable[[str], None] = lambda _: None
):
    """Every model group on every split: (metrics per group x split, latest split's test scores,
    the calibrated model per (group, split); its `.estimator` is the fitted pipeline).

    Each row holds the test metrics and, prefixed `val_`, the ranking metrics on the validation slice
    (from the uncalibrated scores, which calibration does not reorder): selection reads only those.
    The (split, group) fits are independent: they run side by side on `config.threads` (default: the CPUs
    this process may use), each on one thread (or a share of them when the fits are fewer than the CPUs;
    `models.estimators.side_by_side`), the largest splits first so
    that no core waits alone on a large fit at the end; no more at once than `FIT_MEMORY` holds.
    """
    tasks = [(masks, spec) for masks in data.splits for spec in model_specs(config)]
    # one thread a fit, unless there are fewer fits than CPUs (a backtest's one new split): then they share them
    each = dataclasses.replace(config, threads=max(1, effective_n_jobs(config.threads or -1) // len(tasks)))
    largest_first = sorted(range(len(tasks)), key=lambda i: -int(tasks[i][0].fit.sum()))
    done = side_by_side(
        [functools.partial(_measure_on_split, tasks[i][1], data, tasks[i][0], each, progress) for i in largest_first],
        fits_at_once(data, config.threads),
    )
    measured = [done[largest_first.index(i)] for i in range(len(tasks))]
    latest = data.frame.loc[data.splits[-1].test, ["person_id", "as_of", "label"]].copy()
    fitted = {}
    for (masks, spec), (_, calibrated, risk) in zip(tasks, measured):
        predict_with(spec, calibrated.estimator, config.threads)
        fitted[spec.name, masks.name] = calibrated
        if masks is data.splits[-1]:
            latest[spec.name] = risk
    return pd.DataFrame([row for row, _, _ in measured]), latest, fitted


def fits_at_once(data: ModelData, threads: int | None) -> int:
    """How many temporal validation fits run side by side: one per thread (None: every CPU this process may use),
    at most as many as `FIT_MEMORY` holds, each holding about twice its largest split's rows as floats."""
    rows = max(int((m.fit | m.validation).sum()) for m in data.splits)
    per_fit = 2 * 8 * rows * max(1, len(data.features))
    return max(1, min(effective_n_jobs(threads or -1), FIT_MEMORY // per_fit))


def _measure_on_split(
    spec: ModelSpec, data: ModelData, masks: SplitMasks, config: ExperimentConfig, progress: Callable[[str], None]
):
    """One model group fitted and calibrated on one split: (its metrics row, the calibrated model, test risk)."""
    progress(f"{spec.name} on {masks.name}")
    y = data.frame["label"].to_numpy()
    model, calibrated, method, val_scores = fit_and_calibrate(spec, data, masks, config)
    risk = calibrated.predict_proba(data.frame.loc[masks.test, data.features])[:, 1]
    metrics = evaluate(y[masks.test], risk, config.capacity, _groups(data, masks.test))
    validation = evaluate(y[masks.validation], val_scores, config.capacity)
    row = {
        "group": spec.name,
        "family": spec.family,
        "split": masks.name,
        "calibration": method,
        "best_iteration": getattr(model.named_steps["model"], "best_iteration_", None),
        **metrics,
        **{f"val_{m}": validation[m] for m in RANKING},
    }
    return row, calibrated, risk


def summarise(split_metrics: pd.DataFrame, metrics: tuple[str, ...] = SUMMARISED) -> pd.DataFrame:
    """Per model group: mean and spread across splits, and regret (distance to the split's best)."""
    out = split_metrics.groupby("group")[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    for m in metrics:
        best = split_metrics.groupby("split")[m].transform("min" if m in ("brier", "ece") else "max")
        out[f"{m}_regret"] = (best - split_metrics[m]).abs().groupby(split_metrics["group"]).mean()
    out["family"] = split_metrics.groupby("group")["family"].first()
    return out


def select(summary: pd.DataFrame, config: ExperimentConfig) -> str:
    """On validation only: the best mean selection metric among groups within the AUC tolerance of the
    best mean validation AUC. Test metrics are reported, never used to choose."""
    best_auc = summary["val_roc_auc_mean"].max()
    eligible = summary[summary["val_roc_auc_mean"] >= best_auc - config.selection.auc_tolerance]
    ranked = eligible.sort_values(
        [f"val_{config.selection.metric}_mean", "val_roc_auc_mean"], ascending=False, kind="stable"
    )
    return ranked.index[0]


def reason_templates(data: ModelData, masks: SplitMasks | None = None) -> ReasonTemplates:
    """Reason templates with the quartiles of the rows the final model (or `masks`' model) learns from and the
    lookback."""
    masks = masks or data.final
    learned = data.frame.loc[masks.fit | masks.validation, data.features]
    return ReasonTemplates.build(
        data.features, data.catalogue, data.protected, learned, data.snapshot.lookback_days if data.snapshot else None
    )


def explanation_stability(
    data: ModelData, config: ExperimentConfig, group: str, fitted: dict, templates: ReasonTemplates
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Mean |SHAP| per split for one model group, the overlap of consecutive splits' top-10 features,
    and the share of people listed by the last two splits' models whose first reason differs."""
    rng = np.random.default_rng(config.seed)
    test = data.frame[data.splits[-1].test]
    k = capacity_k(len(test), config.capacity)
    importance, listed, first = {}, [], []
    for i, masks in enumerate(data.splits):
        calibrated = fitted[group, masks.name]
        rows = np.flatnonzero(masks.test)
        sample = np.sort(rng.choice(rows, size=min(IMPORTANCE_SAMPLE, len(rows)), replace=False))
        contrib, _ = attributions(calibrated.estimator, data.frame.loc[sample, data.features])
        importance[masks.name] = contrib.abs().mean()
        if len(data.splits) >= 2 and i >= len(data.splits) - 2:  # the last two, while this model's SHAP tables are kept
            chosen = test[top_k(calibrated.predict_proba(test[data.features])[:, 1], k)]
            listed.append(set(chosen["person_id"]))
            reasons = top_reasons(
                attributions(calibrated.estimator, chosen[data.features])[0], chosen[data.features], templates, 1
            )
            first.append(pd.Series(reasons["reason_1"].to_numpy(), index=chosen["person_id"]))
    table = pd.DataFrame(importance).T
    tops = [set(row.nlargest(10).index) for _, row in table.iterrows()]
    overlaps = [len(a & b) / 10 for a, b in zip(tops, tops[1:])]
    stability = {"top10_overlap_mean": float(np.mean(overlaps)) if overlaps else float("nan")}
    if len(data.splits) >= 2:
        both = sorted(listed[0] & listed[1])
        stability["listed_by_both_models"] = float(len(both))
        stability["first_reason_changed_share"] = (
            float((first[0][both] != first[1][both]).mean()) if both else float("nan")
        )
    return table, stability


def train(data: ModelData, config: ExperimentConfig, progress: Callable[[str], None] = lambda _: None) -> TrainResult:
    split_metrics, latest, fitted = run_temporal_validation(data, config, progress)
    summary = summarise(split_metrics)
    chosen = select(summary, config)
    spec = next(s for s in model_specs(config) if s.name == chosen)
    test = data.frame[data.final.test]
    # the chosen group without the proxy features is fitted on one thread beside what follows (mostly Python)
    with ThreadPoolExecutor(1) as beside:
        without = beside.submit(metrics_without_proxies, spec, data, dataclasses.replace(config, threads=1), test)
        return _chosen(data, config, spec, split_metrics, summary, latest, fitted, test, without, progress)


def _chosen(
    data: ModelData,
    config: ExperimentConfig,
    spec: ModelSpec,
    split_metrics: pd.DataFrame,
    summary: pd.DataFrame,
    latest: pd.DataFrame,
    fitted: dict,
    test: pd.DataFrame,
    without: Future[tuple[list[str], dict[str, float]] | None],
    progress: Callable[[str], None],
) -> TrainResult:
    """The chosen group's registered model, its figures, explanations and audits; `without`: the metrics
    without the proxy features (`metrics_without_proxies`), being fitted beside."""
    templates = reason_templates(data)
    progress(f"explanation stability of {spec.name}")
    importance, stability = explanation_stability(data, config, spec.name, fitted, templates)
    final = data.final
    if final is data.splits[-1]:  # the latest split's model: fitted and scored on its unseen test window already
        calibrated = fitted[spec.name, final.name]
        reference = calibrated.estimator.predict_proba(data.frame.loc[final.validation, data.features])[:, 1]
        test_risk = latest[spec.name].to_numpy()
    else:
        progress(f"fit {spec.name} for registration")
        _, calibrated, _, reference = fit_and_calibrate(spec, data, final, config)
        test_risk = calibrated.predict_proba(test[data.features])[:, 1]
    within: WithinGroupMap | None = None
    verdicts: tuple[Verdict, ...] = ()
    if config.calibrate_within:
        progress(f"calibration within {' x '.join(config.calibrate_within)}")
        within, verdicts = within_group_map(data, config, calibrated.calibrate_scores(reference), test, test_risk)
        test_risk = within.apply(test_risk, test)  # what will be served: the metrics and the audit judge it
    scorer = RiskScorer(
        calibrated,
        model_contract(data, config, spec.name, ventile_cuts(reference)),
        templates,
        importance,
        stability,
        within,
    )
    final_metrics = {
        f"test_{k}": float(v)
        for k, v in evaluate(test["label"].to_numpy(), test_risk, config.capacity, _groups(data, final.test)).items()
        if k in ("roc_auc", "average_precision", "precision_at_k", "recall_at_k", "brier", "ece", "prevalence", "n")
    }
    progress("fairness audit and mitigation")
    fairness, mitigation, note = audit_final(data, config, scorer, test, test_risk)
    progress("proxies of protected characteristics")
    audited = [c for c in data.protected if c not in data.features]
    proxies = proxy_strength(test[data.features], test[audited], config.fairness.min_group_size, seed=config.seed)
    return TrainResult(
        split_metrics,
        summary,
        spec,
        scorer,
        final_metrics,
        latest,
        importance,
        stability,
        fairness,
        mitigation,
        note,
        prevalence_shift(data),
        proxies,
        proxy_cost(without.result(), final_metrics),
        verdicts,
    )


def all_closed(data: ModelData) -> SplitMasks:
    """Every closed label as one fit: every as-of date but the latest to fit, the latest to early-stop and
    calibrate, as the splits do with the data's end as their test date. No rows are left unseen."""
    as_of = data.frame["as_of"].to_numpy()
    latest = as_of == as_of.max()
    return SplitMasks("all-closed", ~latest, latest, np.zeros(len(as_of), dtype=bool))


def refit_scorer(
    data: ModelData,
    config: ExperimentConfig,
    spec: ModelSpec,
    within_method: Method | None,
    progress: Callable[[str], None] = lambda _: None,
) -> RiskScorer:
    """The model group `spec` fitted on every closed label (`all_closed`), its risk mapped within the config's
    `calibrate_within` columns by `within_method` (chosen out of time by `train`), its contract saying `refit`."""
    masks = all_closed(data)
    progress(f"refit {spec.name} on every closed label")
    _, calibrated, _, reference = fit_and_calibrate(spec, data, masks, config)
    within = None
    if within_method is not None:
        maps = within_maps(data, masks, config, calibrated.calibrate_scores(reference))
        within = next(m for m in maps if m.method == within_method)
    contract = model_contract(data, config, spec.name, ventile_cuts(reference), refit=True)
    return RiskScorer(calibrated, contract, reason_templates(data, masks), within=within)


def refit_on_all_closed(
    data: ModelData, config: ExperimentConfig, trained: TrainResult, progress: Callable[[str], None] = lambda _: None
) -> TrainResult:
    """`trained`'s model group fitted again on every closed label, its latest split's test window included
    (a learning cycle's challenger: the newest outcomes are the ones most worth learning from). Its figures,
    fairness audit and within-group map choice stay those measured out of time on the latest split, by the
    same procedure without that window; its importance gains a row for the refit model (on the same rows)."""
    within = trained.scorer.within.method if trained.scorer.within is not None else None
    scorer = refit_scorer(data, config, trained.selected, within, progress)
    rng = np.random.default_rng(config.seed)
    rows = np.flatnonzero(data.final.test)  # the rows the split models' importance was measured on
    sample = np.sort(rng.choice(rows, size=min(IMPORTANCE_SAMPLE, len(rows)), replace=False))
    contrib, _ = attributions(scorer.calibrated.estimator, data.frame.loc[sample, data.features])
    importance = pd.concat([trained.importance_by_split, contrib.abs().mean().rename("all-closed").to_frame().T])
    scorer = dataclasses.replace(scorer, importance_by_split=importance, stability=trained.scorer.stability)
    return dataclasses.replace(trained, scorer=scorer, importance_by_split=importance)


def procedure_model(
    data: ModelData,
    config: ExperimentConfig,
    within_method: Method | None,
    progress: Callable[[str], None] = lambda _: None,
    measured: pd.DataFrame | None = None,
) -> RiskScorer:
    """The model the retraining procedure makes, without the figures `train` measures around it: temporal
    validation, selection, and the chosen group refitted on every closed label (a learning cycle's backtest).
    `measured`: split metrics the procedure already measured on the same rows (`train`'s on the data that
    `data` is a `cut_to_schedule` of): its splits that `data` has too are not fitted again."""
    done = set(measured["split"]) if measured is not None else set()
    todo = [m for m in data.splits if m.name not in done]
    frames = [] if measured is None else [measured[measured["split"].isin([m.name for m in data.splits])]]
    if todo:
        frames.append(run_temporal_validation(dataclasses.replace(data, splits=todo), config, progress)[0])
    split_metrics = pd.concat([f for f in frames if len(f)], ignore_index=True)
    chosen = select(summarise(split_metrics), config)
    return refit_scorer(data, config, next(s for s in model_specs(config) if s.name == chosen), within_method, progress)


def within_maps(
    data: ModelData, masks: SplitMasks, config: ExperimentConfig, calibration_risk: np.ndarray
) -> tuple[GroupwiseMap, Multicalibration]:
    """Every method's map within the config's `calibrate_within` columns, fitted on `masks`' calibration rows
    (`calibration_risk`: their pooled calibrated risk)."""
    validation = data.frame[masks.validation]
    return fit_maps(
        calibration_risk,
        validation["label"].to_numpy(),
        validation,
        config.calibrate_within,
        config.fairness.min_events,
    )


def within_group_map(
    data: ModelData, config: ExperimentConfig, calibration_risk: np.ndarray, test: pd.DataFrame, test_risk: np.ndarray
) -> tuple[WithinGroupMap, tuple[Verdict, ...]]:
    """Both maps within the config's `calibrate_within` columns, fitted on the final split's calibration window
    (`calibration_risk`: its pooled calibrated risk) and judged out of time on its test window (`test_risk`: the
    pooled calibrated risk there) by `group_calibration.CHOICE_RULE`. Returns the chosen map and the verdicts,
    the chosen first.

    The temporal-validation splits stay pooled-calibrated: the map is fitted once, for the registered model."""
    maps = within_maps(data, data.final, config, calibration_risk)
    verdicts = [judge_map(m, data, config, test, test_risk) for m in maps]
    best = choose(verdicts)
    chosen = next(m for m in maps if m.method == best.method)
    return chosen, (best, *(v for v in verdicts if v is not best))


def judge_map(
    within: WithinGroupMap, data: ModelData, config: ExperimentConfig, test: pd.DataFrame, test_risk: np.ndarray
) -> Verdict:
    """A map's figures on the test window: the gate's calibration failures over every protected group and
    intersection (the audit the gate runs, with fewer bootstrap resamples: they do not enter calibration),
    Brier score, expected calibration error and ROC AUC."""
    y = test["label"].to_numpy()
    risk = within.apply(test_risk, test)
    fairness = dataclasses.replace(config.fairness, bootstrap=100)
    gate = audit(y, risk, test, data.protected, fairness, config.capacity, config.seed)
    metrics = evaluate(y, risk, config.capacity)
    return Verdict(
        within.method,
        within.corrects(),
        len(gate.calibration_failures()),
        float(metrics["brier"]),
        float(metrics["ece"]),
        float(metrics["roc_auc"]),
    )


def metrics_without_proxies(
    spec: ModelSpec, data: ModelData, config: ExperimentConfig, test: pd.DataFrame
) -> tuple[list[str], dict[str, float]] | None:
    """The config's proxy features that are features, and the test metrics of the same model group fitted
    without them (what `features_exclude` would cost); None when none of them is a feature."""
    dropped = [f for f in config.proxy_features if f in data.features]
    kept = [f for f in data.features if f not in dropped]
    if not dropped or not kept or (spec.family == "prior_harm" and PRIOR_HARM_FEATURE not in kept):
        return None
    without = dataclasses.replace(data, features=kept, categorical=[c for c in data.categorical if c in kept])
    _, calibrated, _, _ = fit_and_calibrate(spec, without, data.final, config)
    return dropped, evaluate(test["label"].to_numpy(), calibrated.predict_proba(test[kept])[:, 1], config.capacity)


def proxy_cost(
    without: tuple[list[str], dict[str, float]] | None, final_metrics: dict[str, float]
) -> dict[str, float | str]:
    """The registered model's test metrics beside those without the proxy features; empty when none was dropped."""
    if without is None:
        return {}
    dropped, metrics = without
    return {
        "dropped": ", ".join(dropped),
        **{f"{m}_with": final_metrics[f"test_{m}"] for m in ("roc_auc", "precision_at_k")},
        **{f"{m}_without": float(metrics[m]) for m in ("roc_auc", "precision_at_k")},
    }


def prevalence_shift(data: ModelData, tolerance: float = 1.5) -> list[str]:
    """A warning when the test window's label prevalence differs from training's by more than `tolerance`x."""
    y = data.frame["label"].to_numpy()
    learned = y[data.final.fit | data.final.validation].mean()
    tested = y[data.final.test].mean()
    if learned > 0 and tested > 0 and 1 / tolerance <= tested / learned <= tolerance:
        return []
    return [
        f"The test window's prevalence ({tested:.1%}) differs from training's ({learned:.1%}) by more than "
        f"{tolerance}x (label or prior shift): calibration measured on test is unreliable, and risks will be "
        "biased in the direction of training's prevalence until the model is recalibrated on recent data."
    ]


def model_contract(
    data: ModelData, config: ExperimentConfig, group: str, band_cuts: tuple[float, ...], refit: bool = False
) -> ModelContract:
    """The contract of the final model (fitted `all_closed` if `refit`): how to rebuild its inputs and read its
    outputs. Its test window is the final split's, where the figures were measured."""
    final = all_closed(data) if refit else data.final
    return ModelContract(
        name=config.name,
        registered_model=config.registered_model,
        model_group=group,
        snapshot=data.snapshot,
        features=tuple(data.features),
        categorical=tuple(data.categorical),
        protected=tuple(data.protected),
        protected_as_features=tuple(sorted(set(data.features) & set(data.protected))),
        scored_as_untreated=data.scored_as_untreated,
        calibrated_within=config.calibrate_within,
        audit=config.fairness,
        capacity=config.capacity,
        band_cuts=band_cuts,
        bands=config.bands,
        training_window=data.window(final.fit),
        calibration_window=data.window(final.validation),
        test_window=data.window(data.final.test),
        refit=refit,
        programmes=data.programmes,
        data_fingerprint=data.fingerprint,
        config_hash=config.source_hash or config_hash(repr(config)),
        riskloop_version=riskloop_version(),
    )


def audit_final(
    data: ModelData, config: ExperimentConfig, scorer: RiskScorer, test: pd.DataFrame, test_risk: np.ndarray
):
    """Audit the registered model on its unseen test rows; mitigate on its validation rows, compare on test.
    Returns (fairness audit, mitigation or None, why mitigation was not run)."""
    fairness = audit(
        test["label"].to_numpy(), test_risk, test, data.protected, config.fairness, config.capacity, config.seed
    )
    sensitive = config.fairness.mitigate_on
    if sensitive is None or sensitive not in data.frame:
        return fairness, None, f"no mitigation column ('{sensitive}') in this data"
    validation = data.frame[data.final.validation]
    one_class = [g for g, labels in validation.groupby(sensitive, observed=True)["label"] if labels.nunique() < 2]
    if one_class:
        return (
            fairness,
            None,
            (
                f"not run: in the validation slice, {sensitive} = {', '.join(map(str, one_class))} "
                "has only one outcome class, so group thresholds cannot be fitted"
            ),
        )
    mitigation = mitigate(
        scorer.risk,
        validation[scorer.input_columns],
        validation["label"].to_numpy(),
        validation[sensitive],
        test[scorer.input_columns],
        test["label"].to_numpy(),
        test[sensitive],
        config.fairness.use,
        config.capacity,
        config.seed,
    )
    return fairness, mitigation, ""
