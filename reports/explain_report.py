"""The explainability report: SHAP's own plots of a cohort explanation, in one self-contained page."""

from __future__ import annotations

from datetime import date

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap

from riskloop.pipelines.explain import CohortExplanation
from riskloop.reports.disclosure import disclose, disclose_text
from riskloop.reports.figures import importance_over_splits_plot, png
from riskloop.reports.render import render, table
from riskloop.reports.words import words


def _numeric(values: pd.DataFrame) -> pd.DataFrame:
    return values.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(float)


def _draw(plot) -> bytes:
    plt.close("all")
    plot()
    return png(plt.gcf())


def _dependence(explanation: shap.Explanation, name: str, values: pd.Series) -> bytes:
    def plot():
        # no histogram: SHAP draws it over the points, hiding most of them at skewed features
        shap.plots.scatter(explanation[:, name], hist=False, show=False)
        low, high = np.nanquantile(values, [0.01, 0.99])
        if high > low:
            plt.gca().set_xlim(low - 0.05 * (high - low), high + 0.05 * (high - low))

    return _draw(plot)


#: Features drawn in the importance and beeswarm plots; the rest are summed into one bar.
SHOWN = 15
#: Stability verdicts: (measure, (at least this: "stable", at least this: "moderately stable"), higher is better).
STABLE = {"top10_overlap_mean": (0.8, 0.6, True), "first_reason_changed_share": (0.2, 0.4, False)}
MEANING = {
    "top10_overlap_mean": "of the ten most important features, this share stays in the top ten from one model to the next",
    "first_reason_changed_share": (
        "of the people both models listed, this share would be given a different first reason by the newer model"
    ),
}


def verdict(measure: str, value: float) -> str:
    """A stability measure's reading: stable, moderately stable or unstable, by the thresholds in `STABLE`."""
    good, fair, higher = STABLE[measure]
    passes = (lambda edge: value >= edge) if higher else (lambda edge: value <= edge)
    return "stable" if passes(good) else "moderately stable" if passes(fair) else "unstable"


def stability_table(stability: dict[str, float], threshold: int) -> pd.DataFrame:
    """The stability measures with a reading in words and a verdict; a count of people disclosed."""
    rows = []
    for key, value in stability.items():
        if key in STABLE:
            good, fair, higher = STABLE[key]
            edges = f"stable {'at least' if higher else 'at most'} {good:.1f}, moderately stable {fair:.1f}"
            rows.append(
                {
                    "measure": words(key),
                    "value": value,
                    "reading": f"{MEANING[key]} ({value:.0%})",
                    "verdict": f"{verdict(key, value)} ({edges})",
                }
            )
        else:
            rows.append({"measure": words(key), "value": disclose(value, threshold), "reading": "", "verdict": ""})
    return pd.DataFrame(rows)


def rest_note(order: pd.Series) -> str:
    """What the importance plot's last bar ("Sum of N other features") means, with its figures."""
    rest = order.iloc[SHOWN - 1 :]
    if len(rest) <= 1:
        return ""
    return (
        f"The last bar adds up the mean absolute attributions of the {len(rest)} features not drawn ({rest.sum():.2f} "
        f"in all, against {order.iloc[0]:.2f} for {order.index[0]}): it is long because there are many of them, "
        f"not because any one matters much; the largest of them moves scores by {rest.iloc[0]:.2f} on average, "
        f"the median one by {rest.median():.3f}."
    )


def render_explain_report(
    explained: CohortExplanation,
    model_name: str,
    as_of: date,
    importance_by_split: pd.DataFrame | None,
    stability: dict[str, float],
    top_dependence: int = 3,
    disclosure_threshold: int = 7,
) -> str:
    values = _numeric(explained.values)
    explanation = shap.Explanation(
        values=explained.contributions.to_numpy(),
        base_values=explained.base,
        data=values.to_numpy(),
        feature_names=list(values.columns),
    )
    order = explained.contributions.abs().mean().sort_values(ascending=False)
    t = disclosure_threshold
    sample_note = (
        f"Global plots use all {disclose_text(len(values), t)} people in the cohort."
        if explained.whole_cohort
        else f"Global plots use a sample of {disclose_text(len(values), t)} of the "
        f"{disclose_text(explained.cohort_size, t)} people, with every risk band equally represented."
    )
    context = {
        "title": f"Explainability: {model_name}",
        "model": model_name,
        "as_of": as_of.isoformat(),
        "cohort": disclose_text(explained.cohort_size, t),
        "disclosure": t,
        "rest_note": rest_note(order),
        "method": explained.method,
        "sample_note": sample_note,
        "bar": _draw(lambda: shap.plots.bar(explanation, max_display=SHOWN, show=False)),
        "beeswarm": _draw(lambda: shap.plots.beeswarm(explanation, max_display=SHOWN, show=False)),
        "dependence": [(n, _dependence(explanation, n, values[n])) for n in order.index[:top_dependence]],
        "over_time": (
            importance_over_splits_plot(importance_by_split)
            if importance_by_split is not None and len(importance_by_split) > 1
            else None
        ),
        "stability": table(stability_table(stability, t)) if stability else None,
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
