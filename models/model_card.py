"""The model card: a self-contained HTML page (plots embedded) for analysts and governance boards."""

from __future__ import annotations

import base64
from datetime import date

import pandas as pd
from jinja2 import Environment, select_autoescape

from riskloop.models.fairness_report import card_summary

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model card: {{ name }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}.warn{background:#fff3cd;padding:0.6em;border-left:4px solid #e0a800}
img{max-width:100%}
</style></head><body>
<h1>Model card: {{ name }}</h1>
<p>Generated {{ today }} by riskloop. Registered as <code>{{ registered }}</code>; model group <code>{{ selected }}</code>;
data fingerprint <code>{{ fingerprint }}</code>.</p>
{% for w in warnings %}<p class="warn">{{ w }}</p>{% endfor %}
<h2>Intended use</h2>
<p>Advisory prioritisation of people for <strong>early, supportive intervention</strong> by a community safety
partnership. Scores are advice to practitioners, who decide. The model must not be used for punitive decisions
(arrest, charging, sentencing, exclusion from services), and nobody should be treated differently because of a
score alone.</p>
<h2>Data, population and label</h2>
<ul>
<li>Source: <code>{{ source }}</code>; {{ rows }} labelled rows.</li>
<li>Population: {{ population }}</li>
<li>Label: <strong>{{ label }}</strong>. {{ label_text }}</li>
<li>Features: {{ n_features }} ({{ feature_note }}). Protected characteristics ({{ protected }}) are kept for audit only{% if not warnings %} and are not model features{% endif %}.</li>
</ul>
<h2>Performance over time</h2>
<p>Temporal validation: each split trains on data whose labels had closed before its test date. Selection rule:
best mean {{ selection }}. Capacity k = {{ capacity }} of the cohort.</p>
{{ summary_table }}
<img src="data:image/png;base64,{{ auc_plot }}" alt="ROC AUC over time">
<img src="data:image/png;base64,{{ pk_plot }}" alt="precision at k">
<h3>Test metrics of the selected model</h3>
{{ final_table }}
<h2>Calibration</h2>
<p>Probabilities are calibrated on a validation slice in time ({{ calibration }}), never on test data.</p>
<img src="data:image/png;base64,{{ cal_plot }}" alt="calibration plot">
<h2>Fairness</h2>
<p><strong>{{ fairness_summary }}</strong></p>
<p>Out-of-time audit on the latest test split at the capacity operating point; the full report with intervals,
mitigation and findings is <code>fairness_report.html</code>. Primary disparities:</p>
{{ disparity_table }}
<p>Performance and calibration by protected characteristic (group sizes shown; small groups are noisy):</p>
{{ fairness_table }}
<h2>Limitations</h2>
<ul>
<li>Labels are <em>recorded</em> incidents: where some areas or groups are policed more intensely, recorded
outcomes over-state their true behaviour and the model inherits that bias.</li>
<li>Interventions change outcomes: people who were helped may look lower-risk than they were. Retraining on such
outcomes needs the treatment-aware learning loop.</li>
<li>Risk is estimated for a cohort of people already known to partners (an incident in the lookback window);
it says nothing about anyone else.</li>
<li>Performance drifts as recording practice and services change; check the metrics over time before each use.</li>
</ul>
</body></html>
"""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.3f}", border=0, na_rep="-")


def render_model_card(config, data, result, plots: dict[str, bytes]) -> str:
    b64 = {k: base64.b64encode(v).decode() for k, v in plots.items()}
    fairness = result.fairness.by_group[["characteristic", "group", "n", "observed", "mean_predicted", "roc_auc",
                                         "selection_rate", "small"]]
    summary = result.summary[[c for c in result.summary.columns if c.endswith(("_mean", "_std")) or c == "roc_auc_regret"]]
    label_text = ("Involvement as perpetrator or suspect in a high-harm incident (harm above "
                  f"{config.harm_threshold:g}, violence with injury or sexual offence) within {config.horizon_days} "
                  "days after the as-of date." if config.label == "escalation" and config.data is not None else
                  "High-harm victimisation within the horizon." if config.data is not None else
                  f"The table's column <code>{config.table.label_column}</code>.")
    env = Environment(autoescape=select_autoescape(default=True))
    from markupsafe import Markup

    return env.from_string(TEMPLATE).render(
        name=config.name, today=date.today().isoformat(), registered=config.registered_model,
        selected=result.selected.name, fingerprint=data.fingerprint, warnings=data.warnings, source=data.source,
        rows=f"{len(data.frame):,}",
        population=("people with at least one recorded incident in the 3 years before each as-of date"
                    if config.data is not None else "the rows of the supplied table"),
        label=config.label if config.data is not None else config.table.label_column, label_text=Markup(label_text),
        n_features=len(data.features),
        feature_note="point-in-time counts, harm, recency, trends, interventions, age and area rates"
        if data.catalogue is not None else "the table's feature columns",
        protected=", ".join(data.protected) or "none named",
        selection=f"{config.selection.metric} within {config.selection.auc_tolerance} ROC AUC of the best",
        capacity=f"{config.capacity:.0%}", summary_table=Markup(_table(summary)),
        final_table=Markup(_table(pd.DataFrame([result.final_metrics]).T.rename(columns={0: "value"}))),
        calibration=", ".join(sorted(result.split_metrics["calibration"].unique())),
        fairness_table=Markup(_table(fairness)), fairness_summary=card_summary(result.fairness),
        disparity_table=Markup(_table(result.fairness.disparities.loc[result.fairness.disparities["primary"],
            ["characteristic", "group", "reference", "metric", "ratio", "ci_low", "ci_high", "status", "n"]])),
        auc_plot=b64["auc_over_time.png"],
        pk_plot=b64["precision_at_k.png"], cal_plot=b64["calibration.png"],
    )
