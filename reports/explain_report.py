"""The explainability report: SHAP's own plots of a cohort explanation, in one self-contained page."""

from __future__ import annotations

from datetime import date

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap

from riskloop.pipelines.explain import CohortExplanation
from riskloop.reports.figures import importance_over_splits_plot, png
from riskloop.reports.render import render, table, whole
from riskloop.reports.words import words


def _numeric(values: pd.DataFrame) -> pd.DataFrame:
    return values.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(float)


def _draw(plot) -> bytes:
    plt.close("all")
    plot()
    return png(plt.gcf())


def _dependence(explanation: shap.Explanation, name: str, values: pd.Series) -> bytes:
    def plot():
        shap.plots.scatter(explanation[:, name], show=False)
        low, high = np.nanquantile(values, [0.01, 0.99])
        if high > low:
            plt.gca().set_xlim(low - 0.05 * (high - low), high + 0.05 * (high - low))

    return _draw(plot)


def render_explain_report(
    explained: CohortExplanation,
    model_name: str,
    as_of: date,
    importance_by_split: pd.DataFrame | None,
    stability: dict[str, float],
    top_dependence: int = 3,
) -> str:
    values = _numeric(explained.values)
    explanation = shap.Explanation(
        values=explained.contributions.to_numpy(),
        base_values=explained.base,
        data=values.to_numpy(),
        feature_names=list(values.columns),
    )
    order = explained.contributions.abs().mean().sort_values(ascending=False)
    sample_note = (
        f"Global plots use all {len(values):,} people in the cohort."
        if explained.whole_cohort
        else f"Global plots use a sample of {len(values):,} of the {explained.cohort_size:,} people, with every "
        "risk band equally represented."
    )
    context = {
        "title": f"Explainability: {model_name}",
        "model": model_name,
        "as_of": as_of.isoformat(),
        "cohort": f"{explained.cohort_size:,}",
        "method": explained.method,
        "sample_note": sample_note,
        "bar": _draw(lambda: shap.plots.bar(explanation, max_display=15, show=False)),
        "beeswarm": _draw(lambda: shap.plots.beeswarm(explanation, max_display=15, show=False)),
        "dependence": [(n, _dependence(explanation, n, values[n])) for n in order.index[:top_dependence]],
        "over_time": (
            importance_over_splits_plot(importance_by_split)
            if importance_by_split is not None and len(importance_by_split) > 1
            else None
        ),
        "stability": table(
            pd.DataFrame(
                {"measure": [words(k) for k in stability], "value": [whole(k, v) for k, v in stability.items()]}
            )
        )
        if stability
        else None,
        "person": explained.person,
        "waterfall": None,
    }
    person = explained.person
    if person is not None:
        single = shap.Explanation(
            values=person.contributions.to_numpy(),
            base_values=person.base,
            data=_numeric(person.values.to_frame().T).to_numpy()[0],
            feature_names=list(person.values.index),
        )
        context["waterfall"] = _draw(lambda: shap.plots.waterfall(single, max_display=12, show=False))
    return render("explain_report.html", **context)
