"""The learning loop's estimators on data whose truth is known by construction: confounded referral,
a heterogeneous effect, and drift planted or absent."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from riskloop.learning.drift import drift_by_unit, drift_table, null_quantile, psi
from riskloop.learning.effects import REPEATS, Binned, att, cross_fit, effect_table, naive, overlap
from riskloop.learning.programmes import analyse_programmes
from riskloop.learning.uplift import qini_coefficient, qini_curve, uplift


def confounded(n: int, seed: int):
    """Referral rises with x0, which also raises risk; the programme halves risk where x1 > 0 only."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"x{i}" for i in range(4)])
    t = (rng.random(n) < expit(-3.0 + 1.5 * X["x0"])).astype(int)
    p0 = expit(-1.5 + X["x0"]).to_numpy()
    helped = (X["x1"] > 0).to_numpy()
    p1 = p0 * np.where(helped, 0.5, 1.0)
    y = (rng.random(n) < np.where(t == 1, p1, p0)).astype(int)
    return X, t, y, p1 - p0, helped


@pytest.fixture(scope="module")
def world():
    X, t, y, effect, helped = confounded(6_000, 1)
    return X, t, y, effect, helped, cross_fit(Binned(X), t, y, k=3, seed=0, threads=1)


def test_doubly_robust_interval_covers_the_true_effect_on_the_treated_where_the_naive_view_is_biased(world):
    X, t, y, effect, _, nuisance = world
    truth = effect[t == 1].mean()
    dr, raw = att(t, y, nuisance), naive(t, y)
    assert dr.ci_low <= truth <= dr.ci_high
    assert raw.ci_low > 0 > truth  # the naive comparison says the programme makes things worse
    assert dr.n_treated == t.sum() and dr.n_control == len(t) - t.sum()


def test_subgroup_effects_find_who_is_helped(world):
    X, t, y, effect, helped, nuisance = world
    table = effect_table(t, y, nuisance, {"x1 above 0": helped})
    by_level = table.set_index("level")
    assert by_level.loc["True", "dr_ci_high"] < 0
    assert by_level.loc["False", "dr_ci_low"] <= 0 <= by_level.loc["False", "dr_ci_high"]
    assert table.loc[0, "subgroup"] == "all" and table["n_treated"].iloc[1:].sum() == t.sum()


def test_clustered_intervals_are_wider_when_people_repeat(world):
    X, t, y, _, _, nuisance = world
    doubled = np.concatenate([t, t]), np.concatenate([y, y])
    twice = type(nuisance)(np.tile(nuisance.e, 2), np.tile(nuisance.m0, 2), np.tile(nuisance.kept, 2))  # one split
    people = np.tile(np.arange(len(t)), 2)
    independent = att(*doubled, twice)
    clustered = att(*doubled, twice, clusters=people)
    assert clustered.value == pytest.approx(independent.value)
    assert clustered.se == pytest.approx(independent.se * np.sqrt(2), rel=1e-6)


def test_repeated_splits_widen_the_interval_by_their_spread(world):
    X, t, y, _, _, nuisance = world
    assert len(nuisance.repeats) == REPEATS - 1
    each = [att(t, y, type(nuisance)(n.e, n.m0, n.kept)) for n in (nuisance, *nuisance.repeats)]
    combined = att(t, y, nuisance)
    assert combined.value == pytest.approx(np.median([e.value for e in each]))
    assert combined.se >= np.median([e.se for e in each]) - 1e-12


def test_two_seeds_share_no_fold_split():
    """Each seed's repetitions come from its own stream: with seed + r, seed 0's second split was seed 1's first,
    so neighbouring cycle seeds shared most of their estimate."""
    X, t, y, _, _ = confounded(1_500, 4)
    first, second = (cross_fit(Binned(X), t, y, k=3, seed=seed, threads=1, repeats=2) for seed in (0, 1))
    for a in (first, *first.repeats):
        assert not any(np.allclose(a.e, b.e) for b in (second, *second.repeats))


def test_the_default_repetitions_move_the_estimate_less_with_the_seed_than_one_split():
    X, t, y, _, _ = confounded(2_000, 5)
    data = Binned(X)

    def spread(repeats: int) -> float:
        values = [
            att(t, y, cross_fit(data, t, y, k=3, seed=seed, threads=1, repeats=repeats)).value for seed in range(6)
        ]
        return float(np.std(values))

    assert spread(REPEATS) < 0.75 * spread(1)


def test_overlap_reports_propensities_and_trimming(world):
    _, t, _, _, _, nuisance = world
    summary = overlap(t, nuisance)
    assert summary["treated_propensity_median"] > summary["control_propensity_median"]
    assert summary["trimmed_treated"] == int((~nuisance.kept).sum())
    started = nuisance.e[t == 1]
    assert summary["treated_near_trim"] == int(((started > 0.8) & (started <= 0.95)).sum())
    assert 0 < summary["effective_controls"] <= (t == 0).sum()


def test_uplift_ranks_the_helped_first_and_beats_random_targeting(world):
    X, t, y, _, helped, nuisance = world
    predicted = uplift(Binned(X), t, y, nuisance, k=3, seed=0, threads=1)
    for learner in predicted:
        benefit = -predicted[learner].to_numpy()
        assert benefit[helped].mean() > benefit[~helped].mean()
    curve = qini_curve(y, t, -predicted["t_learner"].to_numpy())
    assert qini_coefficient(curve) > 0
    assert curve["random"].iloc[-1] == pytest.approx(curve["prevented"].iloc[-1])


def test_qini_of_a_perfect_and_a_reversed_ranking():
    y = np.array([1, 1, 0, 0, 0, 0, 1, 1])
    t = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    good = np.array([8, 7, 6, 5, 4, 3, 2, 1.0])  # the helped (untreated escalate, treated do not) first
    assert qini_coefficient(qini_curve(y, t, good)) > 0 > qini_coefficient(qini_curve(y, t, -good))


def test_psi_is_zero_for_the_same_sample_and_flags_a_planted_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, rng.normal(0.5, 1, 20_000)) > 0.1
    frame = pd.DataFrame({"same": reference, "moved": reference, "area": "A"})
    current = pd.DataFrame({"same": rng.normal(size=5_000), "moved": rng.normal(0.6, 1, 5_000), "area": "A"})
    table = drift_table(frame, current, ["same", "moved"]).set_index("column")
    assert table.loc["moved", "verdict"] in ("shift", "major shift")
    assert table.loc["same", "verdict"] == "stable"


def test_small_areas_are_not_flagged_by_noise():
    """50 people drawn from the reference itself: PSI often exceeds 0.1 by chance, the null knows it."""
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"risk": rng.beta(1, 20, 50_000), "la": "all"})
    current = pd.DataFrame({"risk": rng.beta(1, 20, 40 * 50), "la": np.repeat([f"area {i}" for i in range(40)], 50)})
    table = drift_by_unit(reference, current, "risk", "la")
    assert (table["psi"] > 0.1).mean() > 0.5  # the rule of thumb alone would flag most of them
    assert table["flagged"].mean() <= 0.05  # the bootstrap null flags about 1 in 100
    assert null_quantile(reference["risk"].to_numpy(), 50) > 0.1


def test_psi_counts_missing_values_in_their_own_bin():
    reference = np.r_[np.arange(1000.0), np.full(10, np.nan)]
    assert psi(reference, np.r_[np.arange(1000.0), np.full(500, np.nan)]) > 0.1


def test_effect_plots_leave_out_subgroups_whose_starters_are_suppressed():
    from riskloop.learning.report import shown_in_plot

    effects = pd.DataFrame({"level": ["all", "low", "none", "high"], "n_treated": [60, 3, 0, 12]})
    assert shown_in_plot(effects, 7)["level"].tolist() == ["all", "none", "high"]
    assert shown_in_plot(effects, 12)["level"].tolist() == ["all", "none"]


def test_intervals_past_100_points_are_clipped_and_the_estimate_called_unstable(monkeypatch):
    """A doubly robust interval of -145 to +54.6 points: shown as -100 to +54.6 in the table, the plot's
    axis and the verdict, and called unstable in words."""
    from riskloop.learning import report
    from riskloop.learning.programmes import ProgrammeResult
    from riskloop.reports import figures

    effects = pd.DataFrame(
        {
            "subgroup": ["all", "tier"],
            "level": ["all", "tertiary"],
            "n_treated": [60, 30],
            "n_control": [900, 100],
            "treated_escalated": [15, 10],
            "treated_rate": [0.25, 1 / 3],
            "naive": [0.02, 0.05],
            "naive_ci_low": [-0.08, -0.3],
            "naive_ci_high": [0.12, 0.4],
            "dr": [-0.452, -0.1],
            "dr_ci_low": [-1.45, -0.5],
            "dr_ci_high": [0.546, 0.3],
        }
    )
    result = ProgrammeResult("youth_early_action", 60, effects, None, None, None, None)
    view = report._effects_view(result, 7)
    assert view["DR 95% low (points)"].tolist() == ["-100.0", "-50.0"] and view["DR 95% high (points)"].tolist() == [
        "+54.6",
        "+30.0",
    ]
    assert view["note"].tolist() == ["unstable", ""]
    said = report.verdict(result)
    assert said.startswith("No conclusion, the estimate is unstable: -45.2 points (95% interval -100.0 to +54.6)")
    assert "-145" not in said
    drawn = {}
    monkeypatch.setattr(figures, "png", lambda fig: drawn.update(axes=fig.axes[0]) or b"")
    figures.effect_plot(effects, "youth early action")
    low, high = drawn["axes"].get_xlim()
    assert -110 < low and high < 110
    assert "everyone (unstable)" in [t.get_text() for t in drawn["axes"].get_yticklabels()]


def _assert_same(one, two) -> None:
    """Equal results, field by field: frames, arrays, dicts and dataclasses of them."""
    if isinstance(one, pd.DataFrame):
        pd.testing.assert_frame_equal(one, two)
    elif isinstance(one, np.ndarray):
        np.testing.assert_array_equal(one, two)
    elif isinstance(one, dict):
        assert one.keys() == two.keys()
        for key in one:
            _assert_same(one[key], two[key])
    elif dataclasses.is_dataclass(one):
        for field in dataclasses.fields(one):
            _assert_same(getattr(one, field.name), getattr(two, field.name))
    else:
        assert one == two or (one != one and two != two)  # NaN equals NaN here


def test_programmes_side_by_side_give_what_one_thread_gives():
    """Every field of every programme's result, targeting and truth included, at 1, 2 and 4 threads (4 on
    three estimable programmes: shares of 2, 1, 1; a programme too few started runs on no share)."""
    X, t, y, effect, _ = confounded(2_000, 5)
    rng = np.random.default_rng(6)
    outcomes = pd.DataFrame(
        {
            "person_id": np.arange(len(t)),
            "started_a": t,
            "started_b": rng.permutation(t),
            "started_c": (rng.random(len(t)) < 0.2).astype(int),
            "started_few": (np.arange(len(t)) < 5).astype(int),
            "escalated": np.where(rng.random(len(t)) < 0.05, np.nan, y),
            "harm": y * rng.gamma(2.0, 3.0, len(t)),
            "risk": X["x0"].to_numpy(),
            "month": np.arange(len(t)) % 3,
            "weight": np.ones(len(t)),
        }
    )
    truth = lambda person_id, programme: effect[person_id.to_numpy()]  # noqa: E731
    groups = {"band": pd.Series(np.arange(len(t)) % 2)}
    runs = [
        analyse_programmes(X, outcomes, groups, seed=0, threads=threads, truth=truth, repeats=2)
        for threads in (1, 2, 4)
    ]
    assert [r.programme for r in runs[0]] == ["a", "b", "c", "few"]
    assert runs[0][0].targeting is not None and runs[0][3].effects is None
    for other in runs[1:]:
        for one, two in zip(runs[0], other, strict=True):
            _assert_same(one, two)
