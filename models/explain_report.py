"""The explainability report: a self-contained HTML page with SHAP's own plots, embedded."""

from __future__ import annotations

import base64
import io
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402
from jinja2 import Environment, select_autoescape  # noqa: E402
from markupsafe import Markup  # noqa: E402

from riskloop.models.pyfunc import RiskScorer  # noqa: E402


def stratified_sample(scored: pd.DataFrame, size: int, seed: int) -> pd.Index:
    """Up to `size` rows with every risk band equally represented (high bands are what lists use)."""
    per_band = max(1, size // 20)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(rows, size=min(per_band, len(rows)), replace=False)
              for _, rows in scored.groupby("band").indices.items()]
    return scored.index[np.sort(np.concatenate(chosen))]


def _png(draw) -> str:
    plt.close("all")
    draw()
    buffer = io.BytesIO()
    plt.gcf().savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close("all")
    return base64.b64encode(buffer.getvalue()).decode()


TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Explainability: {{ model }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px}th{background:#f2f2f2}
img{max-width:100%}.note{background:#eef5ff;padding:0.6em;border-left:4px solid #4a7bd0}</style></head><body>
<h1>Why the model ranks people as it does</h1>
<p>Model <code>{{ model }}</code>; as-of {{ as_of }}; {{ cohort }} people in the cohort; generated {{ today }}.</p>
<p class="note">Attributions are SHAP values on the <strong>uncalibrated model's log-odds</strong>
({{ method }}): each person's attributions plus the base value add up to the model's raw score. Calibration then maps
that score to a probability without changing the order. Global plots use a sample of {{ sample }} people with every
risk band equally represented, never the whole population. Protected characteristics and age are never given as reasons.</p>
<h2>Global importance</h2><p>Mean absolute attribution: how much each feature moves scores, on average.</p>
<img src="data:image/png;base64,{{ bar }}" alt="global importance">
<h2>Direction and spread (beeswarm)</h2><p>Each dot is a person; colour is the feature's value, position its push on risk.</p>
<img src="data:image/png;base64,{{ beeswarm }}" alt="beeswarm">
<h2>Dependence on the top features</h2>
{% for name, png in dependence %}<h3>{{ name }}</h3><img src="data:image/png;base64,{{ png }}" alt="dependence {{ name }}">{% endfor %}
<h2>How importance changed across temporal splits</h2>
{% if over_time %}<img src="data:image/png;base64,{{ over_time }}" alt="importance over splits">{% endif %}
<h2>Stability of explanations</h2>{{ stability }}
<p>Top-10 overlap: the share of the ten most important features that stay in the top ten from one temporal split's
model to the next. First-reason change: among people that two consecutive models both put on a list, the share whose
first reason differs. High overlap and a low change rate mean practitioners see consistent reasons.</p>
{% if person %}<h2>Person {{ person }}</h2>
<p>Calibrated risk {{ person_risk }}, band {{ person_band }} ({{ person_label }}). Reasons:</p>
<ol>{% for r in person_reasons %}{% if r %}<li>{{ r }}</li>{% endif %}{% endfor %}</ol>
<img src="data:image/png;base64,{{ waterfall }}" alt="waterfall">{% endif %}
</body></html>"""


def render_explain_report(scorer: RiskScorer, snapshot: pd.DataFrame, model_name: str, as_of: date,
                          sample_size: int = 20_000, person: str | None = None, seed: int = 0,
                          top_dependence: int = 3) -> str:
    """HTML for a scored snapshot: global importance, beeswarm, dependence, change over splits, person."""
    scored = scorer.score(snapshot)
    rows = stratified_sample(scored, sample_size, seed)
    X = snapshot.loc[rows, scorer.features]
    contrib, base = scorer.attributions(X)
    numeric = X.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(float)
    explanation = shap.Explanation(values=contrib.to_numpy(), base_values=base, data=numeric.to_numpy(),
                                   feature_names=list(X.columns))
    order = contrib.abs().mean().sort_values(ascending=False)
    dependence = [(name, _png(lambda n=name: shap.plots.scatter(explanation[:, n], show=False)))
                  for name in order.index[:top_dependence]]
    over_time = ""
    if scorer.importance_by_split is not None and len(scorer.importance_by_split) > 1:
        table = scorer.importance_by_split
        top = table.mean().nlargest(8).index

        def draw():
            fig, ax = plt.subplots(figsize=(7, 4))
            for name in top:
                ax.plot(table.index, table[name], marker="o", label=name)
            ax.set(ylabel="mean |SHAP| (log-odds)", xlabel="temporal split")
            ax.tick_params(axis="x", rotation=20)
            ax.legend(fontsize=7)
        over_time = _png(draw)
    stability = pd.DataFrame([scorer.stability]).T.rename(columns={0: "value"}) if scorer.stability else pd.DataFrame()
    context = dict(model=model_name, as_of=as_of.isoformat(), cohort=f"{len(snapshot):,}", today=date.today().isoformat(),
                   method="LightGBM TreeSHAP (pred_contrib)" if hasattr(scorer.pipeline.named_steps["model"], "booster_")
                   else "exact linear decomposition", sample=f"{len(rows):,}",
                   bar=_png(lambda: shap.plots.bar(explanation, max_display=15, show=False)),
                   beeswarm=_png(lambda: shap.plots.beeswarm(explanation, max_display=15, show=False)),
                   dependence=dependence, over_time=over_time,
                   stability=Markup(stability.to_html(float_format=lambda v: f"{v:.3f}", border=0)), person=person)
    if person is not None:
        match = snapshot.index[snapshot["person_id"] == person]
        if len(match) == 0:
            raise ValueError(f"person '{person}' is not in the cohort at {as_of}")
        one = snapshot.loc[match[:1]]
        values, base_one = scorer.attributions(one)
        one_scored = scorer.score(one, reasons=3).iloc[0]
        single = shap.Explanation(values=values.to_numpy()[0], base_values=base_one[0],
                                  data=one[scorer.features].apply(lambda c: c.cat.codes if hasattr(c, "cat") else c)
                                  .astype(float).to_numpy()[0], feature_names=scorer.features)
        context.update(person_risk=f"{one_scored['risk']:.3f}", person_band=int(one_scored["band"]),
                       person_label=one_scored["band_label"],
                       person_reasons=[one_scored[f"reason_{k}"] for k in (1, 2, 3)],
                       waterfall=_png(lambda: shap.plots.waterfall(single, max_display=12, show=False)))
    return Environment(autoescape=select_autoescape(default=True)).from_string(TEMPLATE).render(**context)
