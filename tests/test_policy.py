"""Off-policy evaluation of targeting rules (learning.policy) on small synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from riskloop.learning.effects import cross_fit
from riskloop.learning.policy import (
    NONE,
    RANDOM,
    RISK,
    UPLIFT,
    USED,
    VALUE,
    Logged,
    evaluate,
    rules,
    simultaneous_z,
    top,
    treated_outcome,
)

N, K, REPEATS = 6_000, 3, 2


def world(heterogeneous: bool, seed: int = 0):
    """Risk rises with `harm`; the rule used places by harm (confounded); the effect (a risk difference) is
    -0.30 for people with `marker` above 0.7 and 0 otherwise, or -0.09 for everyone (the same on average)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"harm": rng.random(N), "marker": rng.random(N), "noise": rng.random(N)})
    p0 = 0.15 + 0.35 * X["harm"].to_numpy()
    effect = np.where(X["marker"].to_numpy() > 0.7, -0.30, 0.0) if heterogeneous else np.full(N, -0.09)
    p1 = p0 + effect
    t = (rng.random(N) < expit(-2.2 + 1.5 * X["harm"].to_numpy())).astype(int)
    y = (rng.random(N) < np.where(t == 1, p1, p0)).astype(int)
    return X, t, y, p0, p1, -effect


def evaluated(heterogeneous: bool, seed: int = 0, repeats: int = REPEATS):
    X, t, y, p0, p1, benefit = world(heterogeneous, seed)
    nuisance = cross_fit(X, t, y, K, seed, 1, repeats=repeats)
    logged = Logged(t, y, nuisance, treated_outcome(X, t, y, K, seed, 1, repeats=repeats))
    policies = rules(t, p0, benefit)
    truth = {name: 1000 * float(np.mean(pi * p1 + (1 - pi) * p0)) for name, pi in policies.items()}
    return evaluate(logged, policies), truth, policies, t


def test_uplift_wins_with_evidence_when_effects_follow_a_recorded_feature() -> None:
    result, truth, policies, t = evaluated(heterogeneous=True)
    assert result.recommended == UPLIFT
    assert result.words.startswith(f"Change to {UPLIFT}") and "per 1,000 of the cohort" in result.words
    table = result.table
    assert table.loc[UPLIFT, "difference high (per 1,000)"] < 0
    assert truth[UPLIFT] < min(truth[r] for r in (USED, RISK, RANDOM, NONE))
    # every rule fills the places the rule used filled
    for name in (USED, RISK, UPLIFT, RANDOM):
        assert table.loc[name, "places"] == pytest.approx(t.sum())
    assert table.loc[NONE, "places"] == 0


def test_no_evidence_to_change_when_everyone_benefits_alike() -> None:
    result, truth, _, _ = evaluated(heterogeneous=False)
    assert result.recommended is None
    assert result.words.startswith("No evidence to change")
    # the rule used does prevent more than placing nobody, and the evaluation sees it
    assert result.table.loc[NONE, "difference low (per 1,000)"] > 0
    assert "none" in result.words


def test_the_differences_hold_together_however_many_rules_are_compared() -> None:
    """Four rules compared with the rule used get intervals of the difference wide enough to hold at once
    (Bonferroni, z 2.50 against 1.96 for one comparison): the same estimate, a wider interval."""
    X, t, y, p0, _, benefit = world(heterogeneous=True)
    nuisance = cross_fit(X, t, y, K, 0, 1, repeats=REPEATS)
    logged = Logged(t, y, nuisance, treated_outcome(X, t, y, K, 0, 1, repeats=REPEATS))
    policies = rules(t, p0, benefit)
    alone = evaluate(logged, {USED: policies[USED], UPLIFT: policies[UPLIFT]}).table.loc[UPLIFT]
    together = evaluate(logged, policies).table.loc[UPLIFT]
    diff = "difference vs used (per 1,000)"
    assert together[diff] == pytest.approx(alone[diff])
    assert together[VALUE] == pytest.approx(alone[VALUE]) and together[f"{VALUE} low"] == pytest.approx(
        alone[f"{VALUE} low"]
    )

    def half(row: pd.Series) -> float:
        return (row["difference high (per 1,000)"] - row["difference low (per 1,000)"]) / 2

    assert half(together) / half(alone) == pytest.approx(simultaneous_z(4) / simultaneous_z(1))
    assert simultaneous_z(1) == pytest.approx(1.95996, abs=1e-4) and simultaneous_z(4) == pytest.approx(
        2.4977, abs=1e-4
    )


def test_intervals_cover_the_known_values() -> None:
    """Over 6 draws of each world, the value and difference intervals of the four modelled rules cover the
    expected values (given each person's features and placement) nearly always: a 95% interval misses
    about 5 of 96 by chance, so more than 12 misses is a fault (binomial tail below 1 in 1,000)."""
    misses, intervals = 0, 0  # noqa: SIM113 (two counters)
    for heterogeneous in (True, False):
        for seed in range(10, 16):
            result, truth, _, _ = evaluated(heterogeneous, seed, repeats=1)
            table = result.table
            for name in (RISK, UPLIFT, RANDOM, NONE):
                difference = truth[name] - truth[USED]
                misses += not table.loc[name, f"{VALUE} low"] <= truth[name] <= table.loc[name, f"{VALUE} high"]
                misses += not (
                    table.loc[name, "difference low (per 1,000)"]
                    <= difference
                    <= table.loc[name, "difference high (per 1,000)"]
                )
                intervals += 2
    assert intervals == 96
    assert misses <= 12


def test_capacity_per_month_with_weighted_rows() -> None:
    t = np.array([1, 0, 0, 0, 1, 1, 0, 0])
    month = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    weight = np.array([1, 1, 1, 1, 1, 1, 2, 2.0])  # month 2's untreated rows stand for two each
    score = np.array([0.1, 0.9, 0.8, 0.2, 0.1, 0.2, 0.9, 0.3])
    policies = rules(t, score, -score, month, weight)
    assert policies[RISK].tolist() == [0, 1, 0, 0, 0, 0, 1, 0]  # one place in month 1, two in month 2
    assert policies[UPLIFT].tolist() == [1, 0, 0, 0, 1, 1, 0, 0]
    assert policies[RANDOM].tolist() == pytest.approx([0.25] * 4 + [2 / 6] * 4)
    assert top(np.array([3.0, 2.0, 1.0]), np.full(3, 2.0), None, None).tolist() == [1, 1, 0]


def test_the_rule_used_must_be_among_the_rules() -> None:
    X, t, y, p0, _, _ = world(False)
    nuisance = cross_fit(X, t, y, K, 0, 1, repeats=1)
    with pytest.raises(ValueError, match="rule used"):
        evaluate(Logged(t, y, nuisance, treated_outcome(X, t, y, K, 0, 1, repeats=1)), {RISK: p0})


def test_the_learning_report_shows_the_rules_with_units_and_follows_the_evidence() -> None:
    from riskloop.learning import report
    from riskloop.learning.policy import COLUMNS, PolicyEvaluation, recommend
    from riskloop.learning.programmes import ProgrammeResult

    values = {
        USED: [40, 30.0, 28.0, 32.0, 0.0, 0.0, 0.0],
        RISK: [40, 29.0, 27.0, 31.0, -1.0, -2.5, 0.5],
        UPLIFT: [40, 26.0, 24.0, 28.0, -4.0, -6.0, -2.0],
        RANDOM: [40, 31.0, 29.0, 33.0, 1.0, -0.5, 2.5],
        NONE: [0, 33.0, 31.0, 35.0, 3.0, 1.0, 5.0],
    }
    table = pd.DataFrame.from_dict(values, orient="index", columns=list(COLUMNS))
    shown = report.targeting_view(table, 7)
    assert list(shown.columns) == ["places (starts)", *report.TARGETING_COLUMNS]
    assert all("(per 1,000 people)" in c for c in report.TARGETING_COLUMNS)
    assert shown.loc[USED, "difference from the rule used (per 1,000 people)"] == "-"
    assert shown.loc[UPLIFT, "difference from the rule used (per 1,000 people)"] == "-4.0"
    effects = pd.DataFrame(
        {
            "subgroup": ["all"],
            "level": ["all"],
            "n_treated": [40],
            "dr": [-0.1],
            "dr_ci_low": [-0.15],
            "dr_ci_high": [-0.05],
        }
    )
    changed = ProgrammeResult(
        "drive", 40, effects, None, None, None, None, "", PolicyEvaluation(table, *recommend(table))
    )
    assert changed.targeting is not None and changed.targeting.recommended == UPLIFT
    assert "fill its places by uplift ranking" in report.verdict(changed)
    kept_table = table.assign(**{"difference high (per 1,000)": [0.0, 0.5, 1.0, 2.5, 5.0]})
    kept = ProgrammeResult(
        "drive", 40, effects, None, None, None, None, "", PolicyEvaluation(kept_table, *recommend(kept_table))
    )
    assert "no evidence to change how its places are filled" in report.verdict(kept)
