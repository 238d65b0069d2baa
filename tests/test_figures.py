"""What a reader sees in figures and tables: legends off the lines, tick labels apart, the dependence
plot not squashed by an outlier, counts as whole numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap

from riskloop.reports import explain_report, figures
from riskloop.reports.render import table, whole


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures drawn, kept open instead of turned into PNG bytes."""
    kept = []

    def keep(fig=None):
        kept.append(fig or plt.gcf())
        return b""

    monkeypatch.setattr(figures, "png", keep)
    monkeypatch.setattr(explain_report, "png", keep)
    yield kept
    plt.close("all")


def _box(artist, fig):
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_legends_cover_no_lines(drawn):
    rng = np.random.default_rng(0)
    y, p = rng.random(2_000) < 0.1, rng.random(2_000) * 0.3
    splits = pd.DataFrame(
        {"group": ["a", "a", "b", "b"], "split": ["s1", "s2", "s1", "s2"], "roc_auc": [0.7, 0.8, 0.75, 0.7]}
    )
    figures.calibration_plot(y, p, "calibration")
    figures.precision_at_k_plot(y, {"a": p, "b": rng.random(2_000)}, 0.05, "precision at k")
    figures.metric_over_time_plot(splits, "roc_auc", "AUC")
    figures.importance_over_splits_plot(pd.DataFrame({"f1": [0.2, 0.3], "f2": [0.1, 0.1]}, index=["s1", "s2"]))
    assert len(drawn) == 4
    for fig in drawn:
        fig.canvas.draw()
        ax = fig.axes[0]
        legend = _box(ax.get_legend(), fig)
        assert not legend.overlaps(_box(ax, fig)), ax.get_title()
        assert not legend.overlaps(_box(ax.xaxis.label, fig)), ax.get_title()


def test_forest_plot_tick_labels_do_not_collide(drawn):
    groups = [f"group {i}" for i in range(30)]
    disparities = pd.DataFrame(
        {
            "characteristic": "sex x ethnicity",
            "group": groups * 2,
            "metric": ["false_negative_rate"] * 30 + ["false_omission_rate"] * 30,
            "ratio": 1.1,
            "ci_low": 0.8,
            "ci_high": 1.5,
            "status": "pass",
            "n": 1_234,
        }
    )
    figures.disparity_plot(disparities, ("false_negative_rate", "false_omission_rate"), (0.8, 1.25), 7)
    fig = drawn[0]
    fig.canvas.draw()
    boxes = sorted((_box(t, fig) for t in fig.axes[0].get_yticklabels()), key=lambda b: b.y0)
    assert len(boxes) == 30
    assert all(low.y1 <= high.y0 for low, high in zip(boxes, boxes[1:]))


def test_dependence_plot_is_not_squashed_by_an_outlier(drawn):
    values = pd.Series(np.r_[np.linspace(0, 10, 499), 10_000.0], name="harm")
    explanation = shap.Explanation(
        values=values.to_numpy()[:, None] / 100,
        base_values=np.zeros(500),
        data=values.to_numpy()[:, None],
        feature_names=["harm"],
    )
    explain_report._dependence(explanation, "harm", values)
    low, high = drawn[0].axes[0].get_xlim()
    assert high < 20 and low > -2


def test_counts_print_as_whole_numbers():
    shown = table(pd.DataFrame({"group": ["a"], "n": [731.0], "selected": [45.0], "rate": [1.0]}))
    assert shown.rows == (("a", "731", "45", "1.000"),)
    assert whole("listed_by_both_models", 30.0) == 30 and whole("top10_overlap_mean", 1.0) == 1.0
