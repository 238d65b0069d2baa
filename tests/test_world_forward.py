"""The world runs forward: demography keeps it stable, `extend` continues it under a policy."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from riskloop.artifacts.dataset import read_dataset
from riskloop.simulation.dynamics import OFFENDING_PROGRAMMES, OFFENDING_ROLES, PROACTIVE, offending_hazards
from riskloop.simulation.parameters import PROACTIVE_TYPES, WorldConfig
from riskloop.simulation.truth import (
    escalation_probability_from,
    offending_counts,
    recorded_escalations,
    true_escalations,
)
from riskloop.simulation.world import Enrolment, Surveillance, extend, month_starts, simulate, write_world

SMALL = WorldConfig(people=4_000, seed=3, start=date(2019, 1, 1), end=date(2021, 12, 31))


def events(sim) -> pd.DataFrame:
    return pd.DataFrame(sim.events.concatenated())


def test_simulate_and_extend_are_deterministic():
    a, b = simulate(SMALL), simulate(SMALL)
    pd.testing.assert_frame_equal(events(a), events(b))
    for sim in (a, b):
        extend(
            sim,
            3,
            enrol=lambda s, m: Enrolment(np.arange(50), "drive"),
            surveillance=Surveillance(np.arange(100), 2.0, 40),
        )
    pd.testing.assert_frame_equal(events(a), events(b))
    assert a.people.person_id.tolist() == b.people.person_id.tolist()


def test_extending_without_policy_is_generating_a_longer_world():
    extended = simulate(SMALL)
    extend(extended, 6)
    longer = simulate(WorldConfig(people=4_000, seed=3, start=date(2019, 1, 1), end=date(2022, 6, 30)))
    assert extended.config == longer.config and extended.months == longer.months == 42
    pd.testing.assert_frame_equal(events(extended), events(longer))
    assert str(extended.end) == "2022-06-30"


def test_only_a_world_ending_on_a_month_end_extends():
    with pytest.raises(ValueError, match="month's last day"):
        extend(simulate(WorldConfig(people=500, seed=1, end=date(2019, 6, 15))), 1)


def present_at(people: pd.DataFrame, day: str) -> pd.Series:
    t = pd.Timestamp(day)
    return (
        (pd.to_datetime(people["birth_date"]) <= t)
        & ~(pd.to_datetime(people["arrived_date"]) > t)
        & ~(pd.to_datetime(people["died_date"]) <= t)
        & ~(pd.to_datetime(people["left_date"]) <= t)
    )


@pytest.fixture(scope="module")
def people_20k(world_20k) -> pd.DataFrame:
    return pd.read_parquet(world_20k / "people.parquet").merge(
        pd.read_parquet(world_20k / "truth" / "people.parquet"), on="person_id"
    )


def test_population_size_and_ages_stay_stable_over_seven_years(people_20k):
    sizes, young, old = [], [], []
    for year in range(2019, 2026):
        present = people_20k[present_at(people_20k, f"{year}-07-01")]
        age = (pd.Timestamp(f"{year}-07-01") - pd.to_datetime(present["birth_date"])).dt.days / 365.25
        sizes.append(len(present)), young.append((age < 18).mean()), old.append((age >= 65).mean())
    assert max(abs(s / 20_000 - 1) for s in sizes) < 0.01, sizes
    assert np.ptp(young) < 0.02 and np.ptp(old) < 0.02, (young, old)
    assert people_20k["died_date"].notna().sum() > 1_000 and people_20k["arrived_date"].notna().sum() > 1_000
    assert (pd.to_datetime(people_20k["birth_date"]) > "2019-01-01").sum() > 1_000


def test_escalation_label_prevalence_has_no_strong_trend(world_20k, people_20k):
    incidents = pd.read_parquet(world_20k / "incidents.parquet")
    label = incidents[
        incidents["role"].isin(["perpetrator", "suspect"])
        & ((incidents["harm"] > 6) | incidents["type"].isin(["violence_with_injury", "sexual_offence"]))
    ]
    rates = []
    for year in range(2019, 2025):
        t = pd.Timestamp(f"{year}-07-01")
        window = label[
            (pd.to_datetime(label["date"]) > t) & (pd.to_datetime(label["date"]) <= t + pd.Timedelta(days=365))
        ]
        rates.append(
            people_20k.loc[present_at(people_20k, f"{year}-07-01"), "person_id"].isin(window["person_id"]).mean()
        )
    assert max(abs(r / np.mean(rates) - 1) for r in rates) < 0.15, rates


def test_nobody_has_incidents_while_absent(world_20k, people_20k):
    true_incidents = pd.read_parquet(world_20k / "truth" / "incidents.parquet").merge(people_20k, on="person_id")
    day = pd.to_datetime(true_incidents["date"])
    assert not (day >= pd.to_datetime(true_incidents["died_date"])).any()
    assert not (day >= pd.to_datetime(true_incidents["left_date"])).any()
    assert not (day < pd.to_datetime(true_incidents["arrived_date"])).any()
    assert not (day < pd.to_datetime(true_incidents["birth_date"])).any()


def test_babies_live_with_a_mother_of_childbearing_age(people_20k):
    babies = people_20k[(pd.to_datetime(people_20k["birth_date"]) > "2019-01-01") & people_20k["arrived_date"].isna()]
    women = people_20k.loc[people_20k["sex"] == "F", ["household_id", "birth_date", "person_id"]]
    pairs = babies[["person_id", "household_id", "birth_date"]].merge(
        women, on="household_id", suffixes=("", "_mother")
    )
    age = (pd.to_datetime(pairs["birth_date"]) - pd.to_datetime(pairs["birth_date_mother"])).dt.days / 365.25
    with_mother = pairs.loc[(age > 15.9) & (age < 46), "person_id"].unique()  # 16-45 when the month began
    assert len(with_mother) == len(babies)


def test_an_extended_world_satisfies_the_contract(tmp_path):
    sim = simulate(SMALL)
    extend(sim, 6, enrol=lambda s, m: Enrolment(np.arange(m, m + 20), "youth_early_action"))
    write_world(sim, tmp_path / "world")
    dataset = read_dataset(tmp_path / "world", today=date(2023, 1, 1))
    assert dataset.report.quarantined == 0
    assert dataset.end == date(2022, 6, 30)
    assert dataset.incidents["date"].max() > pd.Timestamp("2022-01-01")
    effects = pd.read_parquet(tmp_path / "world" / "truth" / "effects.parquet")
    assert effects["person_id"].nunique() == len(dataset.people) == len(sim.people)


def riskiest(sim, n: int) -> np.ndarray:
    hz = offending_hazards(
        sim.people, sim.state, sim.months, month_starts(sim.config, sim.months + 1)[-1], sim.config.dynamics
    )
    return np.argsort(-hz.offending)[:n]


def test_enrolment_starts_programmes_and_reduces_true_offending():
    base, treated = simulate(SMALL), simulate(SMALL)
    listed = riskiest(treated, 100)
    rows_before = sum(len(p) for p in treated.interventions.person)
    free = listed[treated.state.effect_until["drive"][listed] <= 36]  # the rest are in DRIVE's window already
    extend(base, 12)
    extend(treated, 12, enrol=lambda s, m: Enrolment(listed, "drive") if m == 36 else None)
    enrolled = np.concatenate(treated.interventions.person)[rows_before:]
    assert len(free) > 80 and np.isin(free, enrolled).all()
    before = offending_counts(base, 37, 48, harm_threshold=None)
    after = offending_counts(treated, 37, 48, harm_threshold=None)
    assert after[free].sum() < 0.9 * before[free].sum(), (after[free].sum(), before[free].sum())
    assert (after[free] <= before[free]).mean() > 0.95
    others = np.setdiff1d(np.arange(len(base.people)), listed)
    assert (before[others] == after[others]).mean() > 0.99  # common random numbers: the rest barely moves


def recorded_share(sim, people: np.ndarray, proactive: bool, months: tuple[int, int]) -> float:
    """Recorded / true offending involvements of `people` in `months`, of the proactive types or the reported."""
    e = events(sim)
    starts = month_starts(sim.config, months[1] + 1)
    rows = e[
        e["person"].isin(people)
        & e["role"].isin(OFFENDING_ROLES)
        & (e["type"].map(lambda code: PROACTIVE[code]) == proactive)
        & (e["day"] >= starts[months[0]])
        & (e["day"] < starts[months[1]])
    ]
    return float(rows["recorded"].mean())


def test_attention_raises_the_recording_of_proactive_offences_only_and_not_offending():
    base, watched = simulate(SMALL), simulate(SMALL)
    listed = riskiest(watched, 300)
    extend(base, 12)
    extend(watched, 12, surveillance=Surveillance(listed, 3.0, until_month=48))
    first_base, first_watched = (
        events(s).pipe(
            lambda e: e[(e["day"] >= np.datetime64("2022-01-01")) & (e["day"] < np.datetime64("2022-02-01"))]
        )
        for s in (base, watched)
    )
    first_base, first_watched = (e.reset_index(drop=True) for e in (first_base, first_watched))
    pd.testing.assert_frame_equal(first_base.drop(columns="recorded"), first_watched.drop(columns="recorded"))
    reported = ~first_base["type"].map(lambda code: PROACTIVE[code])
    assert reported.sum() > 100 and (first_base["recorded"][reported] == first_watched["recorded"][reported]).all()
    proactive_base, proactive_watched = (recorded_share(s, listed, True, (36, 48)) for s in (base, watched))
    reported_base, reported_watched = (recorded_share(s, listed, False, (36, 48)) for s in (base, watched))
    assert 0.3 < proactive_base < 0.7 and proactive_watched > proactive_base + 0.15 and proactive_watched < 0.97
    assert abs(reported_watched - reported_base) < 0.03
    others = np.setdiff1d(np.arange(len(base.people)), listed)
    assert abs(recorded_share(watched, others, True, (36, 48)) - recorded_share(base, others, True, (36, 48))) < 0.03
    true_base, true_watched = (offending_counts(s, 36, 48, None) for s in (base, watched))
    assert (true_base == true_watched).mean() > 0.99


def test_the_written_world_says_which_incidents_were_found_proactively(tmp_path):
    sim = simulate(WorldConfig(people=1_500, seed=5, start=date(2019, 1, 1), end=date(2019, 12, 31)))
    write_world(sim, tmp_path)
    incidents = read_dataset(tmp_path).incidents
    proactive = incidents["type"].isin(PROACTIVE_TYPES)
    assert proactive.any() and (~proactive).any()
    assert (incidents["attention"] == np.where(proactive, "proactive", "reported")).all()


def test_truth_helpers_count_true_and_recorded_escalations():
    sim = simulate(SMALL)
    true, recorded = true_escalations(sim, 12, 24), recorded_escalations(sim, 12, 24)
    assert (recorded <= true).all() and 0 < recorded.sum() < true.sum()
    e = sim.events.concatenated()
    assert np.isin(e["role"], OFFENDING_ROLES).any()
    probability = escalation_probability_from(sim, replicates=2)
    absent = ~sim.people.present
    assert (probability["probability"].to_numpy()[absent] == 0).all() and absent.any()
    assert len(probability) == len(sim.people)
    helped = np.zeros(len(sim.people), bool)
    for programme in OFFENDING_PROGRAMMES:
        helped |= sim.state.effect_until[programme] > sim.months
    assert helped.sum() > 10
    unhelped = escalation_probability_from(sim, replicates=2, programme_effects=False)["probability"].to_numpy()
    now = probability["probability"].to_numpy()
    assert (unhelped[helped] > now[helped]).mean() > 0.9  # without their programme they are at more risk
    assert (unhelped[~helped] == now[~helped]).mean() > 0.98  # others differ only through a helped partner


def test_households_moving_within_their_authority_stay_in_it():
    """With three or more local authorities the areas' order is not the names' alphabetical order."""
    from riskloop.simulation.demography import _households_move
    from riskloop.simulation.parameters import MOVE_WITHIN_AUTHORITY

    config = WorldConfig(people=360_000, seed=5, start=date(2019, 1, 1), end=date(2019, 1, 31))
    sim = simulate(config)
    names = list(dict.fromkeys(sim.areas.local_authority))
    assert len(names) >= 3 and names != sorted(names)
    before = sim.people.area.copy()
    present = sim.people.present.copy()
    _households_move(config, sim.areas, sim.people, sim.streams(1))
    moved = present & (sim.people.area != before)
    authority = sim.areas.local_authority
    same = authority[sim.people.area[moved]] == authority[before[moved]]
    assert moved.sum() > 100
    assert same.mean() >= MOVE_WITHIN_AUTHORITY  # within-authority moves, plus moves anywhere that land at home
