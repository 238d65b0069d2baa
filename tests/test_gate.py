"""The fairness gate judges the model, not the base rates: the oracle passes, planted bias fails."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from riskloop.models.gate import (
    GateSettings,
    auc_interval,
    calibration_by_group,
    harmful_error_excess,
    poisson_interval,
    ranking_by_group,
    wilson,
)
from riskloop.models.metrics import capacity_k, top_k


def world(n: int = 200_000, seed: int = 0):
    """Women's base rate about a quarter of men's, as in the synthetic world (1.15% vs 4.65%)."""
    rng = np.random.default_rng(seed)
    groups = np.where(rng.random(n) < 0.5, "F", "M")
    signal = rng.normal(size=n)
    p = expit(-5.0 + 1.6 * signal + np.where(groups == "M", 1.45, 0.0))
    y = (rng.random(n) < p).astype(int)
    return y, p, groups


def selected_at(risk: np.ndarray, share: float = 0.05) -> np.ndarray:
    return top_k(risk, capacity_k(len(risk), share))


def test_intervals_are_the_textbook_ones():
    low, high = wilson(np.array([0, 5, 50]), np.array([10, 10, 100]))
    assert low[0] == 0 and high[0] == pytest.approx(0.2775, abs=1e-4)
    assert (low[1], high[1]) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert poisson_interval(np.array([0, 10]))[1] == pytest.approx([3.689, 18.390], abs=1e-3)
    assert auc_interval(0.8, 50, 50) == pytest.approx((0.7128, 0.8872), abs=1e-3)  # SE 0.0445


def test_the_oracle_passes_although_raw_error_rates_differ():
    y, p, groups = world()
    selected = selected_at(p)
    settings = GateSettings()
    errors = harmful_error_excess(y, p, selected, groups, "M", settings).set_index("group")
    # the raw false negative rate of women is far above men's: base rates, not the model
    assert errors.loc["F", "rate"] / errors.loc["M", "rate"] > 1.03
    assert errors.loc["F", "status"] in ("pass", "inconclusive") and errors.loc["F", "excess"] == pytest.approx(
        1, abs=0.05
    )
    calibration = calibration_by_group(y, p, selected, groups, settings)
    assert (calibration["status"] != "fail").all()
    assert calibration.loc[calibration["scope"] == "all", "ratio"].to_numpy() == pytest.approx([1, 1], abs=0.05)


def test_scores_inflated_by_30_percent_for_one_group_fail_calibration():
    y, p, groups = world()
    inflated = np.where(groups == "F", np.minimum(p * 1.3, 1), p)
    calibration = calibration_by_group(
        y, inflated, selected_at(inflated), groups, GateSettings(calibration_tolerance=0.15)
    )
    row = calibration.set_index(["group", "scope"]).loc[("F", "all")]
    assert row["status"] == "fail" and row["ratio"] == pytest.approx(1 / 1.3, abs=0.04)
    assert calibration.set_index(["group", "scope"]).loc[("M", "all"), "status"] == "pass"


def test_a_group_ranked_worse_shows_in_its_auc_and_its_missed_share():
    y, p, groups = world()
    rng = np.random.default_rng(1)
    noisy = np.where(groups == "F", expit(np.log(p / (1 - p)) + rng.normal(0, 1.5, len(p))), p)
    before = ranking_by_group(y, p, groups).set_index("group")
    after = ranking_by_group(y, noisy, groups).set_index("group")
    assert after.loc["F", "ci_high"] < before.loc["F", "ci_low"]  # the drop is beyond the intervals
    assert after.loc["M", "auc"] == pytest.approx(before.loc["M", "auc"])


def test_zero_events_or_tiny_groups_are_inconclusive_never_fail():
    y = np.array([0] * 300 + [1] * 30 + [0] * 20)
    risk = np.r_[np.full(300, 0.05), np.full(30, 0.5), np.full(20, 0.9)]
    groups = np.array(["A"] * 330 + ["B"] * 20)  # B: 20 people, no events at all
    excess = harmful_error_excess(y, risk, risk > 0.4, groups, "A", GateSettings()).set_index("group")
    assert excess.loc["B", "status"] == "inconclusive" and excess.loc["A", "status"] == "reference"
    calibration = calibration_by_group(y, risk, risk > 0.4, groups, GateSettings())
    assert set(calibration.loc[calibration["group"] == "B", "status"]) == {"inconclusive"}
    assert not pd.isna(calibration.loc[calibration["group"] == "A", "ratio"]).any()


def test_promotion_compares_the_ranking_within_each_group_from_the_evidence():
    from riskloop.models.evidence import ModelIdentity, decide, gate_evidence, group_auc
    from riskloop.models.fairness import AuditConfig, audit

    y, p, groups = world(60_000)
    noisy = np.where(groups == "F", expit(np.log(p / (1 - p)) + np.random.default_rng(2).normal(0, 1.5, len(p))), p)
    frame = pd.DataFrame({"sex": groups})
    metrics = {"roc_auc": 0.8, "average_precision": 0.2}
    champion, challenger = (
        gate_evidence(
            audit(y, r, frame, ["sex"], AuditConfig(bootstrap=100, intersections=()), 0.05),
            ModelIdentity("m", version, f"run{version}", "lightgbm", "fp", "hash", "0"),
            (date(2024, 1, 1), date(2024, 6, 1)),
            "split-3",
            metrics,
            {"test_roc_auc": 0.8},
        )
        for version, r in (("1", p), ("2", noisy))
    )
    new, old = group_auc(challenger), group_auc(champion)
    assert new["sex=F"] < old["sex=F"] - AuditConfig().auc_tolerance
    assert new["sex=M"] == pytest.approx(old["sex=M"])
    assert [r for r in decide(challenger, champion) if "ROC AUC" in r] == [
        f"fairness: ROC AUC within sex=F: challenger v2 {new['sex=F']:.3f} < champion v1 {old['sex=F']:.3f} "
        "by more than 0.02"
    ]
    assert not [r for r in decide(champion, challenger) if "ROC AUC" in r]
