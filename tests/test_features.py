"""Point-in-time features: hand-computed values, no leakage, label edges, determinism, splits."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskloop.artifacts.dataset import read_dataset
from riskloop.artifacts.snapshots import read_snapshots, write_snapshots
from riskloop.features import rules
from riskloop.features.area_profile import area_profile
from riskloop.features.catalogue import build_catalogue
from riskloop.features.rules import Rule
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot, build_snapshots, horizon_harm
from riskloop.features.splits import as_of_schedule, temporal_splits
from riskloop.features.validate import Dataset, validate_tables
from riskloop.features.vocabulary import INCIDENT_TYPES, ROLES
from tests.conftest import TODAY, hand_tables

T = date(2024, 1, 1)


def dataset_of(
    incidents: list[tuple], interventions: list[tuple] = (), end=date(2025, 12, 31), attention: list[str] | None = None
) -> Dataset:
    """A hand-written data set: people p1..p4 in two areas of 1,000 residents (`attention`: its incidents')."""
    tables = {
        "areas": pd.DataFrame(
            {
                "area_id": ["A", "B"],
                "local_authority": ["Cardiff", "Cardiff"],
                "population": [1000, 1000],
                "deprivation_rank": [1, 2],
            }
        ),
        "people": pd.DataFrame(
            {
                "person_id": ["p1", "p2", "p3", "p4"],
                "area_id": ["A", "A", "B", "B"],
                "birth_date": ["1990-01-01", "1992-06-01", "2000-01-01", "1970-01-01"],
                "sex": ["M", "F", "M", "F"],
                "ethnicity": ["White", "White", "Black", "Asian"],
            }
        ),
        "incidents": pd.DataFrame(
            incidents, columns=["incident_id", "person_id", "date", "type", "role", "harm"]
        ).assign(**({"attention": attention} if attention is not None else {})),
        "interventions": pd.DataFrame(
            list(interventions),
            columns=["intervention_id", "person_id", "programme", "start_date", "tier", "end_date", "completed"],
        ),
    }
    tables = {k: v.astype(str).replace({"None": ""}) for k, v in tables.items()}
    valid, quarantined, report = validate_tables(tables, TODAY)
    assert report.quarantined == 0, quarantined
    return Dataset(**valid, fingerprint="hand", end=end, report=report)


HAND_INCIDENTS = [
    ("i1", "p1", "2023-12-01", "domestic_abuse", "perpetrator", 4.0),  # 31 days before T
    ("i1", "p2", "2023-12-01", "domestic_abuse", "victim", 4.0),
    ("i2", "p1", "2023-03-01", "domestic_abuse", "suspect", 7.5),  # 306 days before T
    ("i3", "p1", "2021-06-01", "violence_with_injury", "perpetrator", 8.0),  # 944 days
    ("i4", "p2", "2023-11-01", "theft", "victim", 1.0),
    ("i5", "p3", "2023-12-31", "asb", "perpetrator", 0.5),  # the day before T
    ("i6", "p3", "2024-01-01", "violence_with_injury", "perpetrator", 9.0),  # on T: neither feature nor label
    ("i7", "p1", "2024-06-01", "violence_with_injury", "suspect", 8.0),  # label window
    ("i8", "p2", "2024-12-31", "sexual_offence", "victim", 12.0),  # T + 365: last day of the window
    ("i9", "p3", "2025-01-01", "violence_with_injury", "perpetrator", 8.0),  # T + 366: outside
]
HAND_INTERVENTIONS = [
    ("v1", "p1", "drive", "2023-02-01", "tertiary", "2023-10-01", "true"),
    ("v2", "p2", "iris", "2023-12-15", "secondary", "2024-03-01", "true"),  # ends after T: not yet complete
    ("v3", "p3", "diversion", "2024-02-01", "secondary", "", ""),  # starts after T
]


@pytest.fixture(scope="module")
def hand_snapshot() -> pd.DataFrame:
    d = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS, HAND_INTERVENTIONS))
    return build_snapshot(d, T, SnapshotConfig()).set_index("person_id")


def test_hand_computed_features(hand_snapshot):
    p1, p2, p3 = (hand_snapshot.loc[p] for p in ("p1", "p2", "p3"))
    assert list(hand_snapshot.index) == ["p1", "p2", "p3"]  # p4 has no incident: not in the cohort
    assert p1["perp_domestic_abuse_count_90d"] == 1 and p1["susp_domestic_abuse_count_90d"] == 0
    assert p1["susp_domestic_abuse_count_365d"] == 1 and p1["perp_violence_with_injury_count_365d"] == 0
    assert p1["perp_violence_with_injury_count_1095d"] == 1
    assert p1["offending_harm_365d"] == 11.5 and p1["offending_harm_1095d"] == 19.5
    assert p1["days_since_offending"] == 31 and p1["days_since_victim"] == 1096
    assert p1["offending_trend_90d"] == pytest.approx(1 - 1 / 3)
    assert p1["co_involved_people_1095d"] == 1 and p2["co_involved_people_1095d"] == 1
    assert p2["victim_repeat_365d"] == 1 and p2["vict_theft_count_90d"] == 1
    assert p2["victim_harm_365d"] == 5.0 and p2["days_since_victim"] == 31
    assert p3["days_since_any"] == 1 and p3["perp_asb_count_90d"] == 1
    assert p3["perp_violence_with_injury_count_90d"] == 0  # the incident on T is not a feature
    assert p1["age"] == pytest.approx(34.0, abs=0.01)
    assert p1["prior_drive_count"] == 1 and p1["prior_drive_completed"] == 1 and p1["active_drive"] == 0
    assert p2["prior_iris_count"] == 1 and p2["prior_iris_completed"] == 0 and p2["active_iris"] == 1
    assert p3["prior_diversion_count"] == 0
    # area A: 5 involvements of residents in the year before T (i1 x2, i2, i4, none else) per 1,000
    assert p1["area_domestic_abuse_rate_365d"] == 3.0 and p1["area_theft_rate_365d"] == 1.0
    assert p3["area_asb_rate_365d"] == 1.0
    assert p1["la_domestic_abuse_rate_365d"] == 1.5  # 3 over 2,000 residents
    assert p1["area_deprivation_decile"] == 5 and p3["area_deprivation_decile"] == 10


def test_label_edges(hand_snapshot):
    assert hand_snapshot.loc["p1", "label"] == 1  # suspect in violence with injury in the window
    assert hand_snapshot.loc["p3", "label"] == 0  # on T and on T+366 are both outside (T, T+H]
    d = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS, HAND_INTERVENTIONS))
    victims = build_snapshot(d, T, SnapshotConfig(label="repeat_victimisation")).set_index("person_id")
    assert victims.loc["p2", "label"] == 1  # victim on T + 365: inside
    assert victims.loc["p1", "label"] == 0


def test_the_harm_outcome_sums_the_labels_role_over_the_labels_horizon():
    """All the harm of the incidents in which a person has the label's role in (T, T + horizon], high-harm or
    not: p1's violence (8.0) and a minor theft (0.5) in the window; p2's sexual offence on T + 365 is a
    victim's, counted for victimisation only; p3's incidents on T and T + 366 lie outside, and one on T + 365
    (2.0) inside. p1 is recorded in the theft twice (perpetrator and suspect): one incident, its harm once."""
    minor = [
        ("i10", "p1", "2024-09-01", "theft", "perpetrator", 0.5),
        ("i10", "p1", "2024-09-01", "theft", "suspect", 0.5),
        ("i11", "p3", "2024-12-31", "criminal_damage", "suspect", 2.0),
    ]
    d = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS + minor))
    people = np.arange(4)  # p1..p4, in the prepared (sorted) order
    assert horizon_harm(d, people, T, SnapshotConfig()).tolist() == [8.5, 0.0, 2.0, 0.0]
    assert horizon_harm(d, people, T, SnapshotConfig(label="repeat_victimisation")).tolist() == [0.0, 12.0, 0.0, 0.0]
    assert horizon_harm(d, people[::-1], T, SnapshotConfig()).tolist() == [0.0, 2.0, 0.0, 8.5]
    # the label counts the high-harm offending only: p3's harm is no escalation
    labels = build_snapshot(d, T, SnapshotConfig()).set_index("person_id")["label"]
    assert labels.to_dict() == {"p1": 1.0, "p2": 0.0, "p3": 0.0}
    short = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS + minor, end=date(2024, 12, 30)))
    assert np.isnan(horizon_harm(short, people, T, SnapshotConfig())).all()  # NaN where the label is


#: Incidents the police found proactively: p1's drugs before T, p4's only incident, and p3's high-harm public
#: order offence in the label window (p3's reported history has no label event there).
PROACTIVE_INCIDENTS = [
    ("j1", "p1", "2023-11-15", "drugs", "perpetrator", 1.0),
    ("j2", "p4", "2023-10-01", "public_order", "perpetrator", 1.0),
    ("j3", "p3", "2024-03-01", "public_order", "perpetrator", 9.0),
]


def test_reported_only_snapshots_leave_proactive_incidents_out_of_features_and_labels():
    attention = ["reported"] * len(HAND_INCIDENTS) + ["proactive"] * len(PROACTIVE_INCIDENTS)
    d = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS + PROACTIVE_INCIDENTS, attention=attention))
    every = build_snapshot(d, T, SnapshotConfig()).set_index("person_id")
    assert every.loc["p4", "perp_public_order_count_365d"] == 1 and every.loc["p1", "perp_drugs_count_90d"] == 1
    assert every.loc["p1", "offending_harm_365d"] == 12.5 and every.loc["p3", "label"] == 1
    reported = build_snapshot(d, T, SnapshotConfig(incidents="reported")).set_index("person_id")
    assert list(reported.index) == ["p1", "p2", "p3"]  # p4's only incident was found proactively
    assert reported.loc["p1", "perp_drugs_count_90d"] == 0 and reported.loc["p1", "offending_harm_365d"] == 11.5
    assert reported.loc["p3", "label"] == 0  # the proactive public order offence is no label event
    # exactly the snapshot of the same data without its proactive incidents
    without = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS, attention=["reported"] * len(HAND_INCIDENTS)))
    pd.testing.assert_frame_equal(reported, build_snapshot(without, T, SnapshotConfig()).set_index("person_id"))


def test_reported_only_snapshots_need_every_incidents_attention():
    unknown = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS))
    with pytest.raises(ValueError, match="incidents: reported needs the incidents table's optional 'attention' column"):
        build_snapshot(unknown, T, SnapshotConfig(incidents="reported"))
    blank = ["reported"] * (len(HAND_INCIDENTS) - 2) + ["", ""]
    partly = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS, attention=blank))
    with pytest.raises(ValueError, match="2 are blank"):
        build_snapshot(partly, T, SnapshotConfig(incidents="reported"))
    assert len(build_snapshot(partly, T, SnapshotConfig())) == 3  # every incident, as before


def test_the_harm_outcome_reads_the_incidents_the_snapshot_does():
    attention = ["reported"] * len(HAND_INCIDENTS) + ["proactive"] * len(PROACTIVE_INCIDENTS)
    d = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS + PROACTIVE_INCIDENTS, attention=attention))
    assert horizon_harm(d, np.arange(4), T, SnapshotConfig()).tolist() == [8.0, 0.0, 9.0, 0.0]
    assert horizon_harm(d, np.arange(4), T, SnapshotConfig(incidents="reported")).tolist() == [8.0, 0.0, 0.0, 0.0]


def test_no_label_when_the_horizon_passes_the_data_end():
    d = PreparedData.from_dataset(dataset_of(HAND_INCIDENTS, end=date(2024, 12, 30)))
    frame = build_snapshot(d, T, SnapshotConfig())
    assert frame["label"].isna().all()
    _, meta = build_snapshots(d, [T, date(2023, 6, 1)], SnapshotConfig())
    assert meta.unlabelled_rows == len(frame)


def test_harm_threshold_is_configurable():
    incidents = HAND_INCIDENTS + [("i10", "p3", "2024-05-01", "stalking_harassment", "perpetrator", 5.0)]
    d = PreparedData.from_dataset(dataset_of(incidents))
    assert build_snapshot(d, T, SnapshotConfig(harm_threshold=6.0)).set_index("person_id").loc["p3", "label"] == 0
    assert build_snapshot(d, T, SnapshotConfig(harm_threshold=4.0)).set_index("person_id").loc["p3", "label"] == 1


def test_protected_columns_travel_but_are_not_features(hand_snapshot):
    names = {s.name for s in build_catalogue(("drive",))}
    for column in ("sex", "ethnicity", "age_band", "deprivation_quintile"):
        assert column in hand_snapshot.columns and column not in names
    assert hand_snapshot.loc["p3", "ethnicity"] == "Black" and hand_snapshot.loc["p1", "age_band"] == "25-34"


record = st.tuples(
    st.sampled_from(["p1", "p2", "p3", "p4"]),
    st.integers(0, 700),
    st.sampled_from(INCIDENT_TYPES),
    st.sampled_from(ROLES),
    st.floats(0, 20, allow_nan=False),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(added=st.lists(record, max_size=6), drop=st.sets(st.integers(0, 9), max_size=3), shift=st.integers(1, 30))
def test_records_on_or_after_t_never_change_features(added, drop, shift):
    base = build_snapshot(
        PreparedData.from_dataset(dataset_of(HAND_INCIDENTS, HAND_INTERVENTIONS)), T, SnapshotConfig()
    )
    future = [
        (f"n{k}", p, (pd.Timestamp(T) + pd.Timedelta(days=d)).date().isoformat(), t, r, round(h, 2))
        for k, (p, d, t, r, h) in enumerate(added)
    ]
    kept = [row for k, row in enumerate(HAND_INCIDENTS) if not (k in drop and row[2] >= T.isoformat())]
    changed = [
        (i, p, (pd.Timestamp(d) + pd.Timedelta(days=shift)).date().isoformat() if d >= T.isoformat() else d, t, r, h)
        for i, p, d, t, r, h in kept
    ]
    # an intervention starting on T, and a later end for one that was still running at T
    interventions = [
        HAND_INTERVENTIONS[0],
        HAND_INTERVENTIONS[1][:5] + ("2024-09-01", "false"),
        HAND_INTERVENTIONS[2],
        ("v9", "p4", "drive", "2024-01-01", "tertiary", "", ""),
    ]
    changed_ds = dataset_of(changed + future, interventions)
    after = build_snapshot(PreparedData.from_dataset(changed_ds), T, SnapshotConfig())
    features = [s.name for s in build_catalogue(("diversion", "drive", "iris"))]
    pd.testing.assert_frame_equal(base[["person_id"] + features], after[["person_id"] + features])


def test_a_record_before_t_changes_the_features_it_should():
    before = build_snapshot(PreparedData.from_dataset(dataset_of(HAND_INCIDENTS)), T, SnapshotConfig()).set_index(
        "person_id"
    )
    extra = HAND_INCIDENTS + [("i99", "p2", "2023-12-20", "theft", "perpetrator", 2.0)]
    after = build_snapshot(PreparedData.from_dataset(dataset_of(extra)), T, SnapshotConfig()).set_index("person_id")
    diff = [c for c in before.columns if not before[c].equals(after[c])]
    assert set(diff) == {
        "perp_theft_count_90d",
        "perp_theft_count_365d",
        "perp_theft_count_1095d",
        "offending_harm_90d",
        "offending_harm_365d",
        "offending_harm_1095d",
        "any_count_90d",
        "any_count_365d",
        "any_count_1095d",
        "days_since_offending",
        "days_since_any",
        "offending_trend_90d",
        "any_trend_90d",
        "area_theft_rate_365d",
        "area_theft_trend_365d",
        "la_theft_rate_365d",
        "offending_count_decayed_180d",
        "offending_harm_decayed_180d",
    }


def test_same_inputs_give_byte_identical_snapshots(world_20k, tmp_path):
    config = SnapshotConfig()
    for name in ("a", "b"):
        d = PreparedData.from_dataset(read_dataset(world_20k, today=TODAY))
        frame, meta = build_snapshots(d, [date(2022, 1, 1), date(2023, 1, 1)], config)
        write_snapshots(frame, meta, tmp_path / f"{name}.parquet")
    assert (
        hashlib.sha256((tmp_path / "a.parquet").read_bytes()).digest()
        == hashlib.sha256((tmp_path / "b.parquet").read_bytes()).digest()
    )
    frame, meta = read_snapshots(tmp_path / "a.parquet")
    assert meta.label == "escalation" and "sex" in meta.protected and "sex" not in meta.features
    assert frame.groupby("as_of")["label"].mean().between(0.01, 0.2).all()


def test_the_order_of_the_rows_read_changes_nothing(world_20k):
    """People and incidents in any order give the snapshot of the written (sorted) data set, row for row."""
    dataset = read_dataset(world_20k, today=TODAY)
    shuffled = dataclasses.replace(
        dataset,
        people=dataset.people.sample(frac=1.0, random_state=1),
        incidents=dataset.incidents.sample(frac=1.0, random_state=2),
    )
    assert not shuffled.people["person_id"].is_monotonic_increasing
    written, read = (build_snapshot(PreparedData.from_dataset(d), T, SnapshotConfig()) for d in (dataset, shuffled))
    pd.testing.assert_frame_equal(written, read)


def test_temporal_splits_fit_on_every_label_closed_before_the_test_date():
    dates = as_of_schedule(date(2020, 1, 1), date(2024, 12, 31), 6)
    assert dates[0] == date(2020, 1, 1) and dates[-1] == date(2024, 7, 1) and len(dates) == 10
    splits = temporal_splits(dates, 365)
    assert splits[-1].test == date(2024, 7, 1) and splits[-1].validation == date(2023, 7, 1)
    assert splits[-1].fit == (
        date(2020, 1, 1),
        date(2020, 7, 1),
        date(2021, 1, 1),
        date(2021, 7, 1),
        date(2022, 1, 1),
        date(2022, 7, 1),
        date(2023, 1, 1),
    )
    for s in splits:
        closed = [t for t in dates if (pd.Timestamp(t) + pd.Timedelta(days=365)).date() < s.test]
        assert s.fit + (s.validation,) == tuple(closed)
    # a label window ending exactly on the test date is still open then
    assert date(2023, 1, 1) not in [
        s.validation for s in temporal_splits([date(2022, 1, 1), date(2023, 1, 1), date(2024, 1, 1)], 365)
    ]
    assert len(temporal_splits(dates, 365, n_test=2)) == 2


def test_area_profile(world_20k):
    dataset = read_dataset(world_20k, today=TODAY)
    prepared = PreparedData.from_dataset(dataset)
    snapshot = build_snapshot(prepared, date(2023, 1, 1), SnapshotConfig())
    catalogue = prepared.catalogue(SnapshotConfig())
    areas = area_profile(snapshot, dataset.areas, catalogue)
    assert areas["cohort"].sum() == len(snapshot)
    assert set(areas["area_id"]) <= set(dataset.areas["area_id"])
    assert (
        areas[["share_female", "repeat_victim_share", "intervention_coverage"]]
        .apply(lambda c: c.between(0, 1).all())
        .all()
    )
    las = area_profile(snapshot, dataset.areas, catalogue, level="local_authority")
    involvement = [
        c for c in snapshot.columns if c.endswith("_count_365d") and c[:5] in ("perp_", "susp_", "vict_", "subj_")
    ]
    assert las.filter(like="_involvements_365d").to_numpy().sum() == snapshot[involvement].to_numpy().sum()
    assert las["cohort"].sum() == len(snapshot) and las["population"].sum() == dataset.areas["population"].sum()
    with pytest.raises(ValueError, match="one as-of date"):
        area_profile(pd.concat([snapshot, snapshot.assign(as_of=pd.Timestamp("2024-01-01"))]), dataset.areas, catalogue)


def test_the_local_engine_enforces_a_rule_planted_in_the_declaration(monkeypatch):
    """Validation is the declaration of `features.rules`: a rule added there quarantines (and cascades)."""
    planted = Rule("people", "allowed", ("sex",), "sex: '{value}' is not the planted F", allowed=("F",))
    monkeypatch.setattr(rules, "RULES", rules.RULES + (planted,))
    _, quarantined, report = validate_tables(hand_tables(), TODAY)
    assert quarantined["people"]["reason"].tolist() == ["sex: 'M' is not the planted F"] * 2
    assert report.tables["people"].reasons == {"sex": 2}
    assert set(quarantined["incidents"]["person_id"]) == {"p1", "p3"} and report.tables["interventions"].valid == 0
