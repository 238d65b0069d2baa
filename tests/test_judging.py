"""A challenger judged against the champion on outcomes neither learned from (`learning.judging`)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from riskloop.learning.judging import TOLERANCE, compared, shadow_comparison

T = date(2024, 7, 1)


def outcomes_and_risk(n: int = 4_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    risk = rng.beta(1, 12, n)
    return (rng.random(n) < risk).astype(int), risk


def test_a_challenger_is_called_worse_only_beyond_the_tolerance():
    label, risk = outcomes_and_risk()
    same = compared("backtest", T, "the retraining", label, risk, risk + 1e-9, 0.05)
    assert not same.reasons and same.people == len(label)
    noisy = np.clip(risk + np.random.default_rng(1).normal(0, 0.2, len(risk)), 0, 1)
    worse = compared("backtest", T, "the retraining", label, risk, noisy, 0.05)
    drop = worse.metrics.loc["champion", "roc_auc"] - worse.metrics.loc["challenger", "roc_auc"]
    assert drop > TOLERANCE and any(
        r.startswith("roc_auc on the outcomes of 2024-07-01 (backtest)") for r in worse.reasons
    )
    better = compared("backtest", T, "the retraining", label, noisy, risk, 0.05)
    assert not better.reasons


def test_the_shadow_is_judged_on_the_people_both_scored_whose_outcome_is_known():
    label, risk = outcomes_and_risk(1_000)
    ids = [f"p{i}" for i in range(len(label))]
    outcomes = pd.DataFrame({"person_id": ids, "label": label.astype(float)})
    outcomes.loc[:99, "label"] = np.nan  # left the area: no outcome
    shadow = pd.DataFrame({"person_id": ids[50:] + ["someone-else"], "risk": [*risk[50:], 0.5]})
    shadow["shadow_risk"] = 1 - shadow["risk"]  # ranks everyone backwards
    judged = shadow_comparison(outcomes, shadow, "riskloop-escalation v7", 0.05, T)
    assert judged.judge == "shadow" and judged.people == 900
    assert judged.challenger == "riskloop-escalation v7 (scored in shadow)"
    assert judged.metrics.loc["challenger", "roc_auc"] < 0.5 < judged.metrics.loc["champion", "roc_auc"]
    assert judged.reasons and "(shadow)" in judged.reasons[0]
