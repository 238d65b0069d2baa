"""The model card: a self-contained HTML page (plots embedded) for analysts and governance boards."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from riskloop.models.families import FAMILIES
from riskloop.models.families.gam import GAM
from riskloop.models.group_calibration import CHOICE_RULE, notice
from riskloop.reports.fairness_report import card_summary, shown
from riskloop.reports.figures import calibration_plot, metric_over_time_plot, precision_at_k_plot, shape_function_plot
from riskloop.reports.render import render, table, whole
from riskloop.reports.words import words


def _label_text(config) -> str:
    if config.data is None:
        return f"The table's column '{config.table_source.label_column}'."
    if config.label == "escalation":
        return (
            "Involvement as perpetrator or suspect in a high-harm incident (harm above "
            f"{config.harm_threshold:g}, violence with injury or sexual offence) within {config.horizon_days} "
            "days after the as-of date."
        )
    return f"High-harm victimisation within {config.horizon_days} days after the as-of date."


def card_plots(config, data, result) -> dict[str, bytes]:
    """The model card's figures (PNG bytes by file name): calibration, precision at k, AUC over splits, and
    for a selected GAM its shape functions."""
    latest = result.latest_test
    y = latest["label"].to_numpy()
    groups = list(result.split_metrics["group"].unique())
    plots = {
        "calibration.png": calibration_plot(
            y, latest[result.selected.name].to_numpy(), f"calibration on {data.splits[-1].name}: {result.selected.name}"
        ),
        "precision_at_k.png": precision_at_k_plot(
            y, {g: latest[g].to_numpy() for g in groups}, config.capacity, f"precision at k on {data.splits[-1].name}"
        ),
        "auc_over_time.png": metric_over_time_plot(result.split_metrics, "roc_auc", "ROC AUC across temporal splits"),
    }
    if result.selected.family == "gam":
        gam = FAMILIES["gam"]
        assert isinstance(gam, GAM)  # the registry's "gam" entry is the GAM family
        shapes = gam.shapes(result.scorer.pipeline)
        plots["shape_functions.png"] = shape_function_plot(shapes, result.importance_by_split.mean())
    return plots


def render_model_card(config, data, result, plots: dict[str, bytes]) -> str:
    contract = result.scorer.contract
    summary = result.summary[
        [c for c in result.summary.columns if c.endswith(("_mean", "_std")) or c == "roc_auc_regret"]
    ]
    fairness = result.fairness
    primary = fairness.disparities.loc[
        fairness.disparities["primary"],
        ["characteristic", "group", "reference", "metric", "ratio", "ci_low", "ci_high", "status", "n"],
    ]
    groups = fairness.by_group[
        ["characteristic", "group", "n", "observed", "mean_predicted", "roc_auc", "selection_rate", "small"]
    ]
    final = pd.DataFrame(
        {"metric": list(result.final_metrics), "value": [whole(k, v) for k, v in result.final_metrics.items()]}
    )
    final["metric"] = final["metric"].map(words)
    return render(
        "model_card.html",
        title=f"Model card: {config.name}",
        name=config.name,
        registered=config.registered_model,
        selected=result.selected.name,
        fingerprint=data.fingerprint,
        version=contract.riskloop_version,
        warnings=data.warnings + result.warnings,
        protected_features=contract.protected_as_features,
        source=Path(data.source).name,
        rows=f"{len(data.frame):,}",
        population=(
            "people with at least one recorded incident in the 3 years before each as-of date"
            if config.data is not None
            else "the rows of the supplied table"
        ),
        label=config.label if config.data is not None else config.table_source.label_column,
        label_text=_label_text(config),
        n_features=len(data.features),
        feature_note=(
            "point-in-time counts, harm, recency, trends, interventions, age and area rates"
            if data.catalogue is not None
            else "the table's feature columns"
        ),
        protected=", ".join(data.protected) or "none named",
        selection=f"{words(config.selection.metric)} within {config.selection.auc_tolerance} ROC AUC of the best",
        capacity=f"{config.capacity:.0%}",
        summary=table(summary.rename_axis("model group"), index=True),
        final=table(final),
        calibration=", ".join(sorted(result.split_metrics["calibration"].unique())),
        within=within_text(contract.calibrated_within, result.within),
        within_on=bool(contract.calibrated_within),
        fairness_summary=card_summary(fairness),
        disparities=table(shown(fairness, primary)),
        groups=table(shown(fairness, groups)),
        plots=plots,
        gate_errors=table(
            shown(fairness, fairness.errors)[
                [
                    "characteristic",
                    "group",
                    "n",
                    "metric",
                    "rate",
                    "implied_rate",
                    "excess",
                    "excess_ci_low",
                    "excess_ci_high",
                    "status",
                ]
            ]
        ),
        gate_calibration=table(shown(fairness, fairness.calibration[fairness.calibration["scope"] == "all"])),
        proxies=table(result.proxies.head(10)),
        proxy_cost=proxy_cost_text(result.proxy_cost),
        windows=(
            f"fitted on as-of dates {contract.training_window[0]} to {contract.training_window[1]}, early-stopped, "
            f"calibrated and banded on {contract.calibration_window[1]}, tested on "
            f"{contract.test_window[0]}, which it never saw"
        ),
    )


def proxy_cost_text(cost: dict) -> str:
    """What dropping the config's proxy features would cost, in one sentence."""
    if not cost:
        return "None of the configured proxy features is a feature of this model."
    return (
        f"Without {cost['dropped']}, the same model group reaches ROC AUC {cost['roc_auc_without']:.3f} "
        f"(with them {cost['roc_auc_with']:.3f}) and precision at k {cost['precision_at_k_without']:.3f} "
        f"(with them {cost['precision_at_k_with']:.3f}) on the same test window: that is what "
        "`features_exclude` would cost."
    )


def within_text(columns: tuple[str, ...], verdicts) -> str:
    """The calibration within protected groups, in words: what it does, both maps' figures, which was kept."""
    if not columns:
        return "The risk is calibrated on everyone at once (no calibrate_within)."
    figures = "; ".join(
        f"{v.method}, correcting {v.corrects}: {v.calibration_failures} calibration "
        f"failure{'' if v.calibration_failures == 1 else 's'}, Brier {v.brier:.4f}, ECE {v.ece:.4f}, "
        f"ROC AUC {v.roc_auc:.4f}"
        for v in verdicts
    )
    return (
        f"{notice(columns)} Bands are cut on the model's own score and do not move. Two maps were fitted on the "
        f"calibration window and judged on the test window by the {CHOICE_RULE} ({figures}): the {verdicts[0].method} "
        "map was kept. The temporal-validation splits above are calibrated on everyone at once."
    )
