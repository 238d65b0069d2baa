"""Off-policy evaluation of targeting rules (learning.policy) on small synthetic data whose answer is known."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from riskloop.learning.effects import Binned, Nuisance, cross_fit, fit_regressor
from riskloop.learning.policy import (
    ESCALATIONS,
    HARM,
    NONE,
    RANDOM,
    RISK,
    UPLIFT,
    USED,
    Logged,
    Outcome,
    arm_outcomes,
    cohort_propensity,
    evaluate,
    rules,
    simultaneous_z,
    top,
)

N, K, REPEATS = 6_000, 3, 2
SEVERE, MINOR, MINOR_RATE = 8.0, 0.5, 0.3  # mean harm of an escalation, of another offence, and that offence's rate


@dataclass(frozen=True)
class World:
    """Risk rises with `harm_before`; the rule used places by it (confounded); the effect on escalation (a risk
    difference) is -0.30 for people with `marker` above 0.7 and 0 otherwise, or -0.09 for everyone (the same on
    average). Recorded harm is an escalation's (gamma, mean SEVERE) plus a minor offence's (MINOR_RATE of people,
    mean MINOR) that no programme changes, so its expected value is SEVERE p + MINOR_RATE MINOR in either arm."""

    X: pd.DataFrame
    t: np.ndarray
    y: np.ndarray
    harm: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    benefit: np.ndarray

    def truth(self, pi: np.ndarray, outcome: str) -> float:
        """The rule's expected value per 1,000 given each person's features."""
        scale, base = (1.0, 0.0) if outcome == "escalations" else (SEVERE, MINOR_RATE * MINOR)
        return 1000 * float(np.mean(pi * (scale * self.p1 + base) + (1 - pi) * (scale * self.p0 + base)))


def world(heterogeneous: bool, seed: int = 0) -> World:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"harm_before": rng.random(N), "marker": rng.random(N), "noise": rng.random(N)})
    p0 = 0.15 + 0.35 * X["harm_before"].to_numpy()
    effect = np.where(X["marker"].to_numpy() > 0.7, -0.30, 0.0) if heterogeneous else np.full(N, -0.09)
    p1 = p0 + effect
    t = (rng.random(N) < expit(-2.2 + 1.5 * X["harm_before"].to_numpy())).astype(int)
    y = (rng.random(N) < np.where(t == 1, p1, p0)).astype(int)
    harm = y * rng.gamma(2.0, SEVERE / 2, N) + (rng.random(N) < MINOR_RATE) * rng.exponential(MINOR, N)
    return World(X, t, y, harm, p0, p1, -effect)


def logged(w: World, seed: int = 0, repeats: int = REPEATS, **rows: np.ndarray) -> Logged:
    nuisance = cross_fit(data := Binned(w.X), w.t, w.y, K, seed, 1, repeats=repeats)
    return Logged(w.t, nuisance, *arm_outcomes(data, w.t, w.y, w.harm, nuisance, K, seed, 1), **rows)


def evaluated(heterogeneous: bool, seed: int = 0, repeats: int = REPEATS):
    w = world(heterogeneous, seed)
    policies = rules(w.t, w.p0, w.benefit)
    truth = {
        outcome: {name: w.truth(pi, outcome) for name, pi in policies.items()} for outcome in ("escalations", "harm")
    }
    return evaluate(logged(w, seed, repeats), policies), truth, policies, w.t


def test_uplift_wins_with_evidence_when_effects_follow_a_recorded_feature() -> None:
    result, truth, policies, t = evaluated(heterogeneous=True)
    assert result.recommended == UPLIFT
    assert result.words.startswith(f"Change to {UPLIFT}") and "per 1,000 of the cohort" in result.words
    table = result.table
    assert table.loc[UPLIFT, ESCALATIONS.difference_high] < 0
    escalations = truth["escalations"]
    assert escalations[UPLIFT] < min(escalations[r] for r in (USED, RISK, RANDOM, NONE))
    # harm follows escalation here: the recommended rule also cuts harm, and the words say by how much
    assert table.loc[UPLIFT, HARM.difference_high] < 0
    assert (
        f"Its recorded harm against the rule used: {table.loc[UPLIFT, HARM.difference]:+.1f} harm weight per 1,000"
        in result.words
    )
    # every rule fills the places the rule used filled
    for name in (USED, RISK, UPLIFT, RANDOM):
        assert table.loc[name, "places"] == pytest.approx(t.sum())
    assert table.loc[NONE, "places"] == 0


def test_no_evidence_to_change_when_everyone_benefits_alike() -> None:
    result, truth, _, _ = evaluated(heterogeneous=False)
    assert result.recommended is None
    assert result.words.startswith("No evidence to change")
    # the rule used does prevent more than placing nobody, and the evaluation sees it
    assert result.table.loc[NONE, ESCALATIONS.difference_low] > 0
    assert "none" in result.words


def test_the_differences_hold_together_however_many_rules_are_compared() -> None:
    """Four rules compared with the rule used get intervals of the difference wide enough to hold at once
    (Bonferroni, z 2.50 against 1.96 for one comparison): the same estimate, a wider interval, for both outcomes."""
    w = world(heterogeneous=True)
    data = logged(w)
    policies = rules(w.t, w.p0, w.benefit)
    alone = evaluate(data, {USED: policies[USED], UPLIFT: policies[UPLIFT]}).table.loc[UPLIFT]
    together = evaluate(data, policies).table.loc[UPLIFT]
    for outcome in (ESCALATIONS, HARM):
        assert together[outcome.difference] == pytest.approx(alone[outcome.difference])
        assert together[outcome.value] == pytest.approx(alone[outcome.value])
        assert together[outcome.low] == pytest.approx(alone[outcome.low])

        def half(row: pd.Series, c=outcome) -> float:
            return (row[c.difference_high] - row[c.difference_low]) / 2

        assert half(together) / half(alone) == pytest.approx(simultaneous_z(4) / simultaneous_z(1))
    assert simultaneous_z(1) == pytest.approx(1.95996, abs=1e-4) and simultaneous_z(4) == pytest.approx(
        2.4977, abs=1e-4
    )


def test_intervals_cover_the_known_values_and_the_estimates_centre_on_them() -> None:
    """Over 6 draws of each world, the value and difference intervals of the four modelled rules cover the
    expected values (given each person's features and placement) nearly always, for escalations and harm: a 95%
    interval misses about 10 of 192 by chance, so more than 21 misses is a fault (binomial tail below 1 in 1,000).
    And the estimates are unbiased: over the 12 draws, each rule's mean error is within 3.5 standard errors of
    that mean (the draws' own spread over root 12), for each outcome."""
    misses, intervals = 0, 0  # noqa: SIM113 (two counters)
    errors: dict[tuple[str, str], list[float]] = {}
    for heterogeneous, first in ((True, 10), (False, 20)):  # no seed shared: twelve independent draws
        for seed in range(first, first + 6):
            result, truth, _, _ = evaluated(heterogeneous, seed, repeats=1)
            table = result.table
            for outcome in (ESCALATIONS, HARM):
                true = truth[outcome.outcome]
                for name in (RISK, UPLIFT, RANDOM, NONE):
                    difference = true[name] - true[USED]
                    misses += not table.loc[name, outcome.low] <= true[name] <= table.loc[name, outcome.high]
                    misses += not (
                        table.loc[name, outcome.difference_low]
                        <= difference
                        <= table.loc[name, outcome.difference_high]
                    )
                    intervals += 2
                    errors.setdefault((outcome.outcome, name), []).append(table.loc[name, outcome.value] - true[name])
    assert intervals == 192
    assert misses <= 21
    for each in errors.values():
        assert abs(np.mean(each)) <= 3.5 * np.std(each, ddof=1) / np.sqrt(len(each))


def test_the_rule_used_is_what_happened() -> None:
    """The rule used's values are the observed weighted means of escalation and harm, no model, and its
    differences from itself are zero; the rules' places count each row by its weight, month by month."""
    w = world(heterogeneous=True)
    weight = np.where(w.t == 1, 1.0, 2.0)
    month = np.arange(N) % 3
    data = logged(w, repeats=1, weight=weight, groups=month)
    table = evaluate(data, rules(w.t, w.p0, w.benefit, month, weight)).table
    assert table.loc[USED, ESCALATIONS.value] == pytest.approx(1000 * np.average(w.y, weights=weight))
    assert table.loc[USED, HARM.value] == pytest.approx(1000 * np.average(w.harm, weights=weight))
    assert (table.loc[USED, [*ESCALATIONS.names[3:], *HARM.names[3:]]] == 0).all()
    assert table.loc[RANDOM, "places"] == pytest.approx(w.t.sum())
    assert w.t.sum() - 2 * 3 < table.loc[RISK, "places"] <= w.t.sum()  # short by under a row's weight a month


def test_the_arm_models_share_the_nuisances_fold_splits() -> None:
    """Escalation's untreated model is the nuisance's own, one per cross-fit; harm gets its own per arm, fitted
    where it can be (a treated arm with no harm gets its mean, zero)."""
    w = world(heterogeneous=True)
    nuisance = cross_fit(data := Binned(w.X), w.t, w.y, K, 0, 1, repeats=REPEATS)
    no_treated_harm = np.where(w.t == 1, 0.0, w.harm)
    escalation, harm = arm_outcomes(data, w.t, w.y, no_treated_harm, nuisance, K, 0, 1)
    assert all(a is n.m0 for a, n in zip(escalation.m0, (nuisance, *nuisance.repeats)))
    assert len(escalation.m1) == len(harm.m0) == len(harm.m1) == REPEATS
    assert all((m == 0).all() for m in harm.m1)
    assert all(m.std() > 0 for m in (*harm.m0, *escalation.m1))
    # the fitted harm on the untreated tracks its expected value, SEVERE p0 + MINOR_RATE MINOR
    assert np.corrcoef(harm.m0[0], SEVERE * w.p0)[0, 1] > 0.5


def test_the_harm_regressor_is_a_nuisance_model_on_one_thread() -> None:
    """As `fit_classifier`: one thread, deterministic, its leaf size from the rows with any harm (the rarer)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.random(2_000)})
    harm = np.where(rng.random(2_000) < 0.1, 5.0 * X["x"].to_numpy(), 0.0)
    data, rows = Binned(X), np.arange(2_000)
    model = fit_regressor(data, rows, harm, 0)
    params = model.params
    assert params["num_threads"] == 1 and params["deterministic"] and params["force_col_wise"]
    assert params["objective"] == "regression"
    assert params["min_data_in_leaf"] == int(np.count_nonzero(harm)) // 10
    assert (fit_regressor(data, rows, harm, 0).predict(X) == model.predict(X)).all()


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


def test_sampled_down_untreated_rows_are_undone_in_the_propensity_so_the_value_stays_doubly_robust() -> None:
    """Untreated rows kept with probability 1 / w (w = 4 in month 1, 1 in month 2), each standing for w people:
    a propensity fitted on the rows has w times the cohort's odds. With that propensity and a wrong (constant)
    outcome model, only the inverse weights can get 'none' right, and they must use the cohort's odds."""
    rng = np.random.default_rng(3)
    n = 200_000
    h = rng.random(n)
    month = np.where(rng.random(n) < 0.5, 1, 2)
    w_month = np.where(month == 1, 4.0, 1.0)
    e_cohort = expit(-2.5 + 1.5 * h)
    t = (rng.random(n) < e_cohort).astype(int)
    y0 = (rng.random(n) < 0.1 + 0.4 * h).astype(float)  # escalation without a place; places change nothing here
    truth_none = 1000 * float(y0.mean())
    kept = (t == 1) | (rng.random(n) < 1 / w_month)
    t, y, month, w = t[kept], y0[kept], month[kept], np.where(t[kept] == 1, 1.0, w_month[kept])
    odds = e_cohort[kept] / (1 - e_cohort[kept]) * w_month[kept]  # the rows' propensity: w times the odds
    constant = np.full(len(t), float(y.mean()))
    outcome = Outcome(y, (constant,), (constant,))
    data = Logged(t, Nuisance(odds / (1 + odds), constant, np.ones(len(t), bool)), outcome, outcome, w, None, month)
    assert cohort_propensity(data, data.nuisance.e) == pytest.approx(e_cohort[kept])
    assert cohort_propensity(dataclasses.replace(data, weight=None), data.nuisance.e) is data.nuisance.e
    none = evaluate(data, {USED: t.astype(float), NONE: np.zeros(len(t))}).table.loc[NONE]
    assert none[ESCALATIONS.low] < truth_none < none[ESCALATIONS.high]
    assert abs(none[ESCALATIONS.value] - truth_none) < 4.0  # per 1,000 (0.6); with the rows' own odds, 10.4 off


def test_the_rule_used_must_be_among_the_rules() -> None:
    w = world(False)
    with pytest.raises(ValueError, match="rule used"):
        evaluate(logged(w, repeats=1), {RISK: w.p0})


#: A hand-made policy table (COLUMNS): places, escalations' six figures, harm's six figures.
HAND_TABLE = {
    USED: [40, 30.0, 28.0, 32.0, 0.0, 0.0, 0.0, 2410.0, 2200.5, 2620.0, 0.0, 0.0, 0.0],
    RISK: [40, 29.0, 27.0, 31.0, -1.0, -2.5, 0.5, 2390.0, 2150.0, 2630.0, -20.0, -90.0, 50.0],
    UPLIFT: [40, 26.0, 24.0, 28.0, -4.0, -6.0, -2.0, 2300.0, 2080.0, 2520.0, -110.0, -190.25, -30.0],
    RANDOM: [40, 31.0, 29.0, 33.0, 1.0, -0.5, 2.5, 2430.0, 2210.0, 2650.0, 20.0, -40.0, 80.0],
    NONE: [0, 33.0, 31.0, 35.0, 3.0, 1.0, 5.0, 2460.0, 2240.0, 2680.0, 50.0, 10.0, 90.0],
}


def test_the_learning_report_shows_the_rules_with_units_and_follows_the_evidence() -> None:
    from riskloop.learning import report
    from riskloop.learning.policy import COLUMNS, PolicyEvaluation, recommend
    from riskloop.learning.programmes import ProgrammeResult

    table = pd.DataFrame.from_dict(HAND_TABLE, orient="index", columns=list(COLUMNS))
    shown = report.targeting_view(table, 7)
    assert list(shown.columns) == ["places (starts)", *report.TARGETING_COLUMNS]
    assert all("per 1,000 people" in c and "95% interval" in c for c in report.TARGETING_COLUMNS)
    escalations, escalations_difference, harm, harm_difference = report.TARGETING_COLUMNS
    assert shown.loc[USED, escalations_difference] == shown.loc[USED, harm_difference] == "-"
    assert shown.loc[UPLIFT, escalations] == "26.0 (24.0 to 28.0)"
    assert shown.loc[UPLIFT, escalations_difference] == "-4.0 (-6.0 to -2.0)"
    assert shown.loc[USED, harm] == "2,410.0 (2,200.5 to 2,620.0)"
    assert shown.loc[UPLIFT, harm_difference] == "-110.0 (-190.2 to -30.0)"
    assert shown.loc[NONE, harm_difference] == "+50.0 (+10.0 to +90.0)"
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
    assert changed.targeting.words.endswith(
        "Its recorded harm against the rule used: -110.0 harm weight per 1,000 of the cohort (simultaneous 95% "
        "interval -190.2 to -30.0; below 0: less harm)."
    )
    # the recommendation follows escalations alone: harm's interval wholly below 0 does not make a change
    kept_table = table.assign(**{ESCALATIONS.difference_high: [0.0, 0.5, 1.0, 2.5, 5.0]})
    kept = ProgrammeResult(
        "drive", 40, effects, None, None, None, None, "", PolicyEvaluation(kept_table, *recommend(kept_table))
    )
    assert kept_table.loc[UPLIFT, HARM.difference_high] < 0
    assert "no evidence to change how its places are filled" in report.verdict(kept)
