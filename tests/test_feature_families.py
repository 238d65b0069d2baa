"""The history (days known, capped at the lookback), time-decayed and household feature families:
hand-computed values, the catalogue with and without household links, the data-start rule, and no
leakage from records dated on or after T."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.catalogue import DEFAULT_WINDOWS, build_catalogue
from riskloop.features.families import FAMILIES, Layout, families_of
from riskloop.features.families.household import Household
from riskloop.features.snapshot import (
    ID_COLUMNS,
    PreparedData,
    SnapshotConfig,
    build_snapshot,
    cohort_at,
    first_record,
    short_history,
)
from riskloop.features.validate import Dataset, validate_tables
from tests.conftest import TODAY

T = date(2024, 1, 1)
NEW_FAMILIES = ("history", "decayed", "household")
PEOPLE = pd.DataFrame(
    {
        "person_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "area_id": ["A", "A", "B", "B", "A", "B"],
        "birth_date": ["1990-01-01", "1992-06-01", "2000-01-01", "1970-01-01", "2015-03-01", "2024-06-01"],
        "sex": ["M", "F", "M", "F", "M", "F"],
        "ethnicity": ["White", "White", "Black", "Asian", "White", "Black"],
        # p1, p2 and their child p5 share H1; p3 and p6 (born after T) share H2; p4 has no household
        "household_id": ["H1", "H1", "H2", "", "H1", "H2"],
    }
)
INCIDENTS = [
    ("i1", "p1", "2023-12-01", "domestic_abuse", "perpetrator", 4.0),  # 31 days before T
    ("i1", "p2", "2023-12-01", "domestic_abuse", "victim", 4.0),
    ("i2", "p1", "2023-03-01", "domestic_abuse", "suspect", 7.5),  # 306 days
    ("i3", "p1", "2019-06-01", "violence_with_injury", "perpetrator", 8.0),  # 1,675 days: before the lookback
    ("i4", "p2", "2023-11-01", "theft", "victim", 1.0),  # 61 days
    ("i5", "p5", "2023-07-01", "child_concern", "subject", 0.5),  # 184 days
    ("i6", "p3", "2023-12-31", "asb", "perpetrator", 0.5),  # 1 day
    ("i7", "p1", "2024-01-01", "violence_with_injury", "perpetrator", 9.0),  # on T: not a feature
    ("i8", "p2", "2024-03-01", "domestic_abuse", "victim", 5.0),  # after T
    ("i9", "p4", "2022-01-01", "theft", "perpetrator", 1.5),  # 730 days
]


def household_dataset(people: pd.DataFrame = PEOPLE) -> Dataset:
    tables = {
        "areas": pd.DataFrame(
            {
                "area_id": ["A", "B"],
                "local_authority": ["Cardiff", "Cardiff"],
                "population": [1000, 1000],
                "deprivation_rank": [1, 2],
            }
        ),
        "people": people,
        "incidents": pd.DataFrame(INCIDENTS, columns=["incident_id", "person_id", "date", "type", "role", "harm"]),
        "interventions": pd.DataFrame(columns=["intervention_id", "person_id", "programme", "start_date", "tier"]),
    }
    tables = {k: v.astype(str) for k, v in tables.items()}
    valid, quarantined, report = validate_tables(tables, TODAY)
    assert report.quarantined == 0, quarantined
    return Dataset(**valid, fingerprint="households", end=date(2025, 12, 31), report=report)


@pytest.fixture(scope="module")
def snapshot() -> pd.DataFrame:
    return build_snapshot(PreparedData.from_dataset(household_dataset()), T, SnapshotConfig()).set_index("person_id")


def decayed(*records: tuple[float, int]) -> float:
    """Sum of value x 0.5^(days old / 180) over (value, days old) records."""
    return sum(value * 0.5 ** (days / 180) for value, days in records)


def test_days_known_are_capped_at_the_lookback_and_nothing_looks_back_past_it(snapshot):
    p1, p2, p3, p4 = (snapshot.loc[p] for p in ("p1", "p2", "p3", "p4"))
    assert p1["days_since_first_incident"] == 1095  # i3 is 1,675 days old: "at least 1,095 days"
    assert p1["offending_harm_1095d"] == 11.5  # i3 is outside the lookback and in no feature
    assert p2["days_since_first_incident"] == 61 and p4["days_since_first_incident"] == 730
    assert p3["days_since_first_incident"] == 1  # i7 on T is not counted
    assert not any(c.endswith("_history") for c in snapshot.columns)


def test_cohorts_a_year_apart_do_not_differ_by_the_extracts_age():
    """The same person with the same past, seen one and two years later in an extract that starts in 2019:
    every feature is the same (the whole-history counts that grew with the extract's age are gone)."""
    first = [("j1", "q1", "2019-01-02", "theft", "perpetrator", 1.5), ("j2", "q1", "2023-06-01", "asb", "suspect", 0.5)]
    later = [("j1", "q1", "2019-01-02", "theft", "perpetrator", 1.5), ("j2", "q1", "2024-06-01", "asb", "suspect", 0.5)]
    people = PEOPLE.iloc[[0]].assign(person_id="q1")
    rows = []
    for records, t in ((first, date(2024, 1, 1)), (later, date(2025, 1, 1))):
        tables = {
            "areas": pd.DataFrame(
                {"area_id": ["A"], "local_authority": ["Cardiff"], "population": [1000], "deprivation_rank": [1]}
            ),
            "people": people.drop(columns="household_id"),
            "incidents": pd.DataFrame(records, columns=["incident_id", "person_id", "date", "type", "role", "harm"]),
            "interventions": pd.DataFrame(columns=["intervention_id", "person_id", "programme", "start_date", "tier"]),
        }
        valid, _, report = validate_tables({k: v.astype(str) for k, v in tables.items()}, TODAY)
        data = Dataset(**valid, fingerprint="start", end=date(2025, 12, 31), report=report)
        frame = build_snapshot(PreparedData.from_dataset(data), t, SnapshotConfig())
        features = [
            s.name for s in build_catalogue(()) if not s.family.startswith(("age", "area", "local", "deprivation"))
        ]
        rows.append(frame[features].iloc[0])
    pd.testing.assert_series_equal(rows[0], rows[1], check_names=False)
    assert rows[0]["days_since_first_incident"] == 1095


def test_as_of_dates_whose_lookback_reaches_before_the_data_are_named():
    prepared = PreparedData.from_dataset(household_dataset())  # first record 2019-06-01; +1,095 days: 2022-05-31
    dates = [date(2022, 5, 31), date(2021, 1, 1), date(2022, 5, 30)]
    assert short_history(prepared, dates, 1095) == [date(2021, 1, 1), date(2022, 5, 30)]
    assert short_history(prepared, dates, 365) == []
    assert first_record(prepared) == date(2019, 6, 1)


def test_time_decayed_sums_halve_every_180_days(snapshot):
    p1, p2 = snapshot.loc["p1"], snapshot.loc["p2"]
    assert p1["offending_count_decayed_180d"] == pytest.approx(decayed((1, 31), (1, 306)))  # not i3: past the lookback
    assert p1["offending_harm_decayed_180d"] == pytest.approx(decayed((4.0, 31), (7.5, 306)))
    assert p2["victim_count_decayed_180d"] == pytest.approx(decayed((1, 31), (1, 61)))
    assert p2["victim_harm_decayed_180d"] == pytest.approx(decayed((4.0, 31), (1.0, 61)))
    assert p2["offending_harm_decayed_180d"] == 0


def test_household_features_count_the_other_members(snapshot):
    p1, p2, p3, p4, p5 = (snapshot.loc[p] for p in ("p1", "p2", "p3", "p4", "p5"))
    assert (p1["household_adults"], p1["household_children"], p1["household_known_members_1095d"]) == (1, 1, 2)
    assert (p5["household_adults"], p5["household_children"]) == (2, 0)
    assert (p3["household_adults"], p3["household_children"]) == (0, 0)  # p6 is born after T
    # p1's own offending is not a household involvement for p1; it is for p2 and p5
    assert p1["household_offending_count_365d"] == 0
    assert (
        p2["household_offending_count_90d"],
        p2["household_offending_count_365d"],
        p2["household_offending_count_1095d"],
    ) == (1, 2, 2)  # i3 is outside every window
    assert p1["household_victim_count_90d"] == 2 and p5["household_victim_count_365d"] == 2
    assert p2["household_domestic_abuse_count_90d"] == 1 and p2["household_domestic_abuse_count_365d"] == 2
    assert p5["household_domestic_abuse_count_365d"] == 3 and p1["household_domestic_abuse_count_365d"] == 1
    household = [c for c in snapshot.columns if c.startswith("household_")]
    assert (p4[household] == 0).all()  # no household_id: a household of one


def test_known_household_members_follow_the_widest_window():
    narrow = build_snapshot(PreparedData.from_dataset(household_dataset()), T, SnapshotConfig(windows=(90,)))
    p2 = narrow.set_index("person_id").loc["p2"]
    assert p2["household_known_members_90d"] == 1  # p1 (31 days ago), not p5 (184 days ago)
    assert p2["household_domestic_abuse_count_90d"] == 1


def test_household_family_only_for_data_with_household_links():
    for people, household_features in ((PEOPLE, 12), (PEOPLE.drop(columns="household_id"), 0)):
        prepared = PreparedData.from_dataset(household_dataset(people))
        catalogue = prepared.catalogue(SnapshotConfig())
        names = [s.name for s in catalogue]
        frame = build_snapshot(prepared, T, SnapshotConfig())
        assert list(frame.columns[len(ID_COLUMNS) : len(ID_COLUMNS) + len(names)]) == names
        assert sum(s.family == "household" for s in catalogue) == household_features


def test_new_families_have_reason_templates_in_the_house_style():
    specs = [s for s in build_catalogue(("drive",), households=True) if s.family in NEW_FAMILIES]
    sentences = {s.name: s.template.format(value=3.0) for s in specs}
    assert len(specs) == 17 and all("{" not in text for text in sentences.values())
    assert (
        sentences["household_offending_count_365d"]
        == "other people in the household were involved in 3 offences as perpetrator or suspect in the last 12 months"
    )
    assert sentences["days_since_first_incident"] == "first recorded incident 3 days ago"
    assert (
        sentences["victim_harm_decayed_180d"]
        == "recent-weighted harm index 3.0 from incidents as victim (half-life 180 days)"
    )


def test_records_on_or_after_t_never_change_the_new_families(world_20k):
    t = date(2023, 1, 1)
    dataset = read_dataset(world_20k, today=TODAY)
    before_t = dataclasses.replace(
        dataset,
        incidents=dataset.incidents[dataset.incidents["date"] < pd.Timestamp(t)],
        interventions=dataset.interventions[dataset.interventions["start_date"] < pd.Timestamp(t)],
    )
    prepared = PreparedData.from_dataset(dataset)
    names = [s.name for s in prepared.catalogue(SnapshotConfig()) if s.family in NEW_FAMILIES]
    full = build_snapshot(prepared, t, SnapshotConfig())
    cut = build_snapshot(PreparedData.from_dataset(before_t), t, SnapshotConfig())
    assert len(names) == 17 and (full[names] != 0).any().all()  # every new feature is used
    assert (full["days_since_first_incident"] == 1095).any() and full["days_since_first_incident"].max() == 1095
    pd.testing.assert_frame_equal(full[["person_id", *names]], cut[["person_id", *names]])


@pytest.mark.parametrize("windows", [DEFAULT_WINDOWS, (30, 180)])
def test_each_family_computes_exactly_its_declared_columns_in_order(windows):
    config = SnapshotConfig(windows=windows)
    prepared = PreparedData.from_dataset(household_dataset())
    layout = prepared.layout(config)
    cohort = cohort_at(prepared, T, config)
    for family in families_of(layout):
        columns = dict(family.compute(cohort))
        assert list(columns) == [s.name for s in family.specs(layout)], type(family).__name__
        assert all(np.shape(values) == (cohort.n,) for values in columns.values())
    catalogue = [s.name for s in prepared.catalogue(config)]
    assert catalogue == [s.name for f in families_of(layout) for s in f.specs(layout)]
    assert (
        list(build_snapshot(prepared, T, config).columns[len(ID_COLUMNS) : len(ID_COLUMNS) + len(catalogue)])
        == catalogue
    )


def test_the_household_family_applies_only_to_linked_data():
    linked, unlinked = Layout(("drive",), DEFAULT_WINDOWS, True), Layout(("drive",), DEFAULT_WINDOWS, False)
    assert [type(f) for f in FAMILIES if f not in families_of(unlinked)] == [Household]
    assert families_of(linked) == list(FAMILIES)
