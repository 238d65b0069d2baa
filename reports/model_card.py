"""The model card: a self-contained HTML page (plots embedded) for analysts and governance boards."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from riskloop.artifacts.training import PLOTS
from riskloop.models.families import FAMILIES
from riskloop.models.families.gam import GAM
from riskloop.models.group_calibration import CHOICE_RULE, notice
from riskloop.reports import published
from riskloop.reports.disclosure import disclose
from riskloop.reports.fairness_report import card_summary, worded
from riskloop.reports.figures import calibration_plot, metric_over_time_plot, precision_at_k_plot, shape_function_plot
from riskloop.reports.render import COUNTS, render, table
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
    calibration, precision, auc, shape = PLOTS
    plots = {
        calibration: calibration_plot(
            y, latest[result.selected.name].to_numpy(), f"calibration on {data.splits[-1].name}: {result.selected.name}"
        ),
        precision: precision_at_k_plot(
            y, {g: latest[g].to_numpy() for g in groups}, config.capacity, f"precision at k on {data.splits[-1].name}"
        ),
        auc: metric_over_time_plot(result.split_metrics, "roc_auc", "ROC AUC across temporal splits"),
    }
    if result.selected.family == "gam":
        gam = FAMILIES["gam"]
        assert isinstance(gam, GAM)  # the registry's "gam" entry is the GAM family
        shapes = gam.shapes(result.scorer.pipeline)
        plots[shape] = shape_function_plot(shapes, result.importance_by_split.mean())
    return plots


#: The summary's columns in the order the card shows them: what selection reads (validation), then the test.
VALIDATION = ("val_roc_auc", "val_{metric}")
TESTED = ("roc_auc", "precision_at_k", "brier", "ece")


def performance(result, metric: str) -> pd.DataFrame:
    """Per model group: the validation metrics selection reads, then the test metrics, each as mean ± spread
    across the temporal splits; the selected group first and marked."""
    summary = result.summary
    columns = [c.format(metric=metric) for c in VALIDATION] + list(TESTED)
    columns = list(dict.fromkeys(columns))
    out = pd.DataFrame(index=summary.index)
    out["choice"] = ["selected" if g == result.selected.name else "" for g in summary.index]
    for c in columns:
        heading = words(c.removeprefix("val_")) + (" (validation)" if c.startswith("val_") else " (test)")
        out[heading] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(summary[c + "_mean"], summary[c + "_std"])]
    order = sorted(out.index, key=lambda g: (g != result.selected.name, -summary.loc[g, f"val_{metric}_mean"]))
    out = out.loc[order]
    out.index = [readable(g) for g in out.index]
    return out.rename_axis("model group")


def readable(group: str) -> str:
    """A model group's name with its settings apart, so that it wraps: 'lightgbm, num_leaves=31, ...'."""
    if "=" not in group:
        return group
    family, settings = group.split("_", 1)
    return ", ".join([family, *(f"{k}={v}" for k, v in re.findall(r"([A-Za-z][A-Za-z_]*?)=([^_]+)", settings))])


def proxies(frame: pd.DataFrame, top: int = 10) -> tuple[str, pd.DataFrame]:
    """(the features a protected column follows from exactly, in words; the strongest other proxies). A
    feature the group is derived from has an AUC of 0 or 1 by construction: it is named, not scored."""
    exact = frame[frame["determines"].to_numpy(bool)]
    by_column = exact.groupby("characteristic", sort=True)["feature"].apply(lambda f: ", ".join(sorted(f)))
    said = "; ".join(f"{column} follows from {features}" for column, features in by_column.items())
    rest = frame[~frame["determines"].to_numpy(bool)].drop(columns="determines").head(top)
    return said, rest


def render_model_card(config, data, result, plots: dict[str, bytes]) -> str:
    contract = result.scorer.contract
    fairness = result.fairness
    primary = fairness.disparities[fairness.disparities["primary"]]
    final = pd.DataFrame(
        {
            "metric": list(result.final_metrics),
            "value": [
                disclose(v, fairness.config.disclosure_threshold) if k in COUNTS else v
                for k, v in result.final_metrics.items()
            ],
        }
    )
    final["metric"] = final["metric"].map(words)
    errors = published.errors(fairness)
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
        source=(
            f"the data set in the folder '{Path(data.source).name}'"
            if config.data is not None
            else f"the table '{Path(data.source).name}'"
        ),
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
        summary=table(performance(result, config.selection.metric), index=True),
        final=table(final),
        calibration=", ".join(sorted(result.split_metrics["calibration"].unique())),
        within=within_text(contract.calibrated_within, result.within),
        within_on=bool(contract.calibrated_within),
        fairness_summary=card_summary(fairness),
        footnote=published.FOOTNOTE.format(threshold=fairness.config.disclosure_threshold),
        disparities=table(worded(published.disparities(fairness, primary))),
        groups=table(published.groups(fairness)),
        plots=plots,
        gate_errors=table(errors),
        harmful=fairness.errors["metric"].iloc[0] if len(fairness.errors) else "error rate",
        gate_calibration=table(
            published.calibration(fairness, fairness.calibration[fairness.calibration["scope"] == "all"])
        ),
        exact_proxies=proxies(result.proxies)[0],
        proxies=table(proxies(result.proxies)[1]),
        proxy_cost=proxy_cost_text(result.proxy_cost),
        windows=(
            f"fitted on as-of dates {contract.training_window[0]} to {contract.training_window[1]}, early-stopped, "
            f"calibrated and banded on {contract.calibration_window[1]}, "
            + (
                f"refitted on every label closed by {contract.labels_closed_by()}: its figures were measured on "
                f"{contract.test_window[0]} by the same procedure fitted without it (this model learned from it), "
                "and it is judged by a backtest one cycle earlier or in shadow"
                if contract.refit
                else f"tested on {contract.test_window[0]}, which it never saw"
            )
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
        "excluding them from the model's features (the config's features_exclude) would cost."
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
