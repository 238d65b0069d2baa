"""The data contract: one test per rule, each asserting the quarantine reason and the counts."""

from __future__ import annotations

import re
import tempfile
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskloop.artifacts.dataset import COVERAGE_FILE, read_dataset, write_quarantine
from riskloop.features import keys as key_lookup
from riskloop.features.io import DataError
from riskloop.features.keys import key_positions, repeated_keys
from riskloop.features.snapshot import SnapshotConfig, check_coverage
from riskloop.features.validate import Dataset, validate_tables
from riskloop.jobs.common import open_dataset
from tests.conftest import TODAY, hand_tables, write_tables


def quarantine_of(tables, table):
    valid, quarantined, report = validate_tables(tables, TODAY)
    t = report.tables[table]
    assert t.read == t.valid + t.quarantined
    return valid[table], quarantined[table], t


def test_valid_data_passes_untouched():
    tables = hand_tables()
    valid, quarantined, report = validate_tables(tables, TODAY)
    assert report.quarantined == 0
    assert len(valid["incidents"]) == 4
    assert valid["incidents"]["harm"].tolist() == [4.5, 4.5, 9.0, 0.5]
    assert str(valid["people"]["birth_date"].dtype).startswith("datetime64")


@pytest.mark.parametrize(
    "table, column, value, expected",
    [
        ("incidents", "date", "2023-13-45", "date: not a valid date ('2023-13-45')"),
        ("incidents", "harm", "-1", "harm: -1 is below 0"),
        ("incidents", "harm", "lots", "harm: not a valid float ('lots')"),
        ("incidents", "role", "bystander", "role: 'bystander' is not one of victim, perpetrator, suspect, subject"),
        ("incidents", "type", "shoplifting", "type: 'shoplifting' is not one of"),
        ("incidents", "attention", "patrol", "attention: 'patrol' is not one of reported, proactive"),
        ("incidents", "date", "2027-01-01", "date: 2027-01-01 is after today (2026-01-01)"),
        ("incidents", "person_id", "", "person_id: missing"),
        ("people", "sex", "male", "sex: 'male' is not one of F, M, X, U"),
        ("people", "birth_date", "", "birth_date: missing"),
        ("areas", "population", "1.5", "population: not a valid int ('1.5')"),
        ("areas", "deprivation_rank", "0", "deprivation_rank: 0 is below 1"),
        ("interventions", "tier", "quaternary", "tier: 'quaternary' is not one of primary, secondary, tertiary"),
        ("interventions", "end_date", "2023-01-01", "end_date: before start_date"),
        ("incidents", "harm", "inf", "harm: not a finite number ('inf')"),
        ("incidents", "harm", "Infinity", "harm: not a finite number ('Infinity')"),
        ("incidents", "harm", "-inf", "harm: not a finite number ('-inf')"),
        ("incidents", "harm", "1e309", "harm: not a finite number ('1e309')"),
        ("incidents", "harm", "nan", "harm: not a finite number ('nan')"),
        ("incidents", "harm", "NaN", "harm: not a finite number ('NaN')"),
        ("areas", "population", "inf", "population: not a finite number ('inf')"),
        ("people", "birth_date", "0001-01-01", "birth_date: 0001-01-01 is before 1900-01-01"),
        ("people", "birth_date", "1905-12-31", "birth_date: 1905-12-31 gives an age over 120 years today (2026-01-01)"),
        ("incidents", "date", "1899-12-31", "date: 1899-12-31 is before 1900-01-01"),
        ("interventions", "start_date", "1066-10-14", "start_date: 1066-10-14 is before 1900-01-01"),
    ],
)
def test_row_rule_quarantines_with_reason(table, column, value, expected):
    tables = hand_tables()
    tables[table].loc[0, column] = value
    valid, quarantined, report = quarantine_of(tables, table)
    assert report.quarantined == 1 and report.valid == report.read - 1
    assert quarantined["row"].tolist() == [1]
    assert expected in quarantined["reason"].iloc[0]


def test_the_optional_attention_column_is_kept_and_a_blank_one_is_unknown():
    tables = hand_tables()
    tables["incidents"]["attention"] = ["reported", "proactive", " proactive ", None]
    valid, _, report = quarantine_of(tables, "incidents")
    assert report.quarantined == 0
    assert valid["attention"].tolist()[:3] == ["reported", "proactive", "proactive"]
    assert pd.isna(valid["attention"].iloc[3])


def test_person_missing_from_people_is_quarantined():
    tables = hand_tables()
    tables["incidents"].loc[3, "person_id"] = "ghost"
    _, quarantined, report = quarantine_of(tables, "incidents")
    assert report.quarantined == 1
    assert quarantined["reason"].iloc[0] == "person_id: 'ghost' not found in valid people"


def test_rejected_parent_rejects_its_children():
    tables = hand_tables()
    tables["people"].loc[2, "sex"] = "?"  # p3 is rejected, so is p3's incident
    _, quarantined, report = quarantine_of(tables, "incidents")
    assert report.quarantined == 1 and quarantined["person_id"].iloc[0] == "p3"


def test_duplicate_ids_are_all_quarantined():
    tables = hand_tables()
    tables["people"] = pd.concat([tables["people"], tables["people"].iloc[[0]]], ignore_index=True)
    valid, quarantined, report = quarantine_of(tables, "people")
    assert report.read == 4 and report.quarantined == 2
    assert quarantined["row"].tolist() == [1, 4]
    assert all("duplicate person_id" in r for r in quarantined["reason"])


@given(
    st.integers(1, 3).flatmap(
        lambda width: st.lists(st.tuples(*[st.sampled_from(["a", "b", "ab", " a", "", None])] * width), max_size=30)
    )
)
def test_repeated_keys_are_the_rows_whose_whole_key_is_present_and_on_another_row(rows):
    """DuckDB's check and pandas' marking together (as from `AGGREGATED_ROWS` rows) give exactly what pandas alone
    gives (a missing part never repeats)."""
    width = len(rows[0]) if rows else 1
    key = pd.DataFrame(rows, columns=[f"k{i}" for i in range(width)], dtype="string[pyarrow]")
    expected = key.duplicated(keep=False) & key.notna().all(axis=1)
    with pytest.MonkeyPatch.context() as patch:  # per example: hypothesis runs many in one test
        patch.setattr(key_lookup, "AGGREGATED_ROWS", 0)
        pd.testing.assert_series_equal(repeated_keys(key), expected, check_names=False)


TEXT = st.sampled_from(["a", "b", "ab", " a", "", "é", None])
STRING_TYPES = st.sampled_from([object, "string[pyarrow]", "string[python]", "category"])


@given(st.lists(TEXT, max_size=30), st.lists(TEXT, max_size=12), STRING_TYPES, STRING_TYPES, st.integers(0, 13))
def test_key_positions_are_each_values_first_place_among_the_keys(values, keys, value_type, key_type, joined_from):
    """Arrow's lookup and DuckDB's join (taken from `JOINED_KEYS` keys) give each value's first position among the
    keys, -1 for none, whether keys repeat or not and whatever the strings' dtype (a missing value is never found)."""
    expected = np.array([keys.index(k) if k is not None and k in keys else -1 for k in values], dtype=np.int64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_lookup, "JOINED_KEYS", joined_from)
        found = key_positions(pd.Series(values, dtype=value_type), pd.Series(keys, dtype=key_type))
    assert found.dtype == np.int64
    np.testing.assert_array_equal(found, expected)


def test_duckdb_would_spill_to_the_system_temporary_folder_not_the_working_directory():
    """An in-memory DuckDB spills to `.tmp` in the working directory by default: a user's folder would gain it."""
    with key_lookup._duckdb() as db:
        assert db.sql("SELECT current_setting('temp_directory')").fetchall() == [(tempfile.gettempdir(),)]


def test_incident_before_birth_is_quarantined():
    tables = hand_tables()
    tables["incidents"].loc[3, "date"] = "2001-01-01"
    _, quarantined, _ = quarantine_of(tables, "incidents")
    assert quarantined["reason"].iloc[0] == "date: before the person's birth_date"


def test_several_broken_rules_are_all_named():
    tables = hand_tables()
    tables["incidents"].loc[2, ["harm", "role"]] = ["-3", "witness"]
    _, quarantined, _ = quarantine_of(tables, "incidents")
    reason = quarantined["reason"].iloc[0]
    assert "harm: -3 is below 0" in reason and "role: 'witness'" in reason


def test_missing_table_and_column_are_fatal(tmp_path):
    tables = hand_tables()
    folder = write_tables(tmp_path / "d", {k: v for k, v in tables.items() if k != "interventions"})
    with pytest.raises(DataError, match="missing table 'interventions'"):
        read_dataset(folder, today=TODAY)
    tables["incidents"] = tables["incidents"].drop(columns=["harm"])
    folder = write_tables(tmp_path / "e", tables)
    with pytest.raises(DataError, match="incidents.csv: missing required column 'harm'"):
        read_dataset(folder, today=TODAY)


@pytest.mark.parametrize(
    "header, hint",
    [
        ("area_id, local_authority, population, deprivation_rank", "the header's names have spaces around them"),
        ("area_id;local_authority;population;deprivation_rank", "the header is one name holding ';'"),
        ("area_id\tlocal_authority\tpopulation\tdeprivation_rank", "the header is one name holding '\\t'"),
    ],
)
def test_a_missing_column_says_what_the_header_suggests(tmp_path, header, hint):
    folder = write_tables(tmp_path / "d", hand_tables())
    (folder / "areas.csv").write_text(header + "\n")
    with pytest.raises(
        DataError, match="areas.csv: missing required column '(area_id|local_authority)': " + re.escape(hint)
    ):
        read_dataset(folder, today=TODAY)


def test_the_coverage_file_needs_only_its_end_and_a_bad_end_is_a_clear_error(tmp_path):
    folder = write_tables(tmp_path / "d", hand_tables())
    assert read_dataset(folder, today=TODAY).end == date(2023, 7, 1)  # no dataset.json: the last incident
    (folder / COVERAGE_FILE).write_text('{"end": "2023-12-31"}')
    assert read_dataset(folder, today=TODAY).end == date(2023, 12, 31)
    (folder / COVERAGE_FILE).write_text('{"kind": "extract"}')
    assert read_dataset(folder, today=TODAY).end == date(2023, 7, 1)
    (folder / COVERAGE_FILE).write_text('{"end": "31/12/2023"}')
    with pytest.raises(DataError, match="dataset.json: not a readable coverage"):
        read_dataset(folder, today=TODAY)


def test_reading_keeps_the_quarantine_in_memory_the_job_writes_it_and_inputs_stay_untouched(tmp_path):
    tables = hand_tables()
    tables["incidents"].loc[1, "harm"] = "-2"
    folder = write_tables(tmp_path / "d", tables)
    before = {p.name: p.read_bytes() for p in folder.glob("*.csv")}
    dataset = read_dataset(folder, today=TODAY)
    assert not (folder / "_quarantine").exists()  # reading writes nothing
    assert dataset.quarantine["incidents"]["reason"].tolist() == ["harm: -2 is below 0"]
    dataset = open_dataset(folder, today=TODAY)  # a job writes it beside the data
    assert {p.name: p.read_bytes() for p in folder.glob("*.csv")} == before
    q = pd.read_csv(folder / "_quarantine" / "incidents.csv")
    assert q["reason"].tolist() == ["harm: -2 is below 0"] and q["row"].tolist() == [2]
    assert len(dataset.incidents) == 3
    # fixing the input and validating again removes the stale quarantine file
    write_tables(folder, hand_tables())
    open_dataset(folder, today=TODAY)
    assert not (folder / "_quarantine" / "incidents.csv").exists()


@pytest.mark.parametrize("emptied", ["areas", "people"])
def test_header_only_parent_rejects_its_children_without_crashing(emptied):
    tables = hand_tables()
    tables[emptied] = tables[emptied].iloc[:0]
    valid, quarantined, report = validate_tables(tables, TODAY)
    assert all(t.reconciles for t in report.tables.values())
    assert len(valid["people"]) == len(valid["incidents"]) == len(valid["interventions"]) == 0
    assert set(quarantined["incidents"]["reason"]) == {
        f"person_id: '{p}' not found in valid people" for p in ("p1", "p2", "p3")
    }


def test_every_person_rejected_rejects_every_incident():
    tables = hand_tables()
    tables["people"]["sex"] = "?"
    _, quarantined, report = quarantine_of(tables, "incidents")
    assert report.valid == 0 and report.quarantined == 4


def test_surrounding_whitespace_is_stripped_from_every_string():
    tables = hand_tables()
    tables["people"].loc[0, ["person_id", "area_id", "birth_date", "sex"]] = ["p1 ", "\tA1", " 1990-05-01\n", " M "]
    tables["incidents"].loc[0, ["person_id", "harm"]] = [" p1", "4.5 "]
    valid, _, report = validate_tables(tables, TODAY)
    assert report.quarantined == 0
    assert valid["people"].loc[0, ["person_id", "area_id", "sex"]].tolist() == ["p1", "A1", "M"]
    assert valid["people"].loc[0, "birth_date"] == pd.Timestamp("1990-05-01")
    assert valid["incidents"]["person_id"].tolist() == ["p1", "p2", "p1", "p3"]


def test_keys_differing_only_by_whitespace_are_duplicates():
    tables = hand_tables()
    tables["people"] = pd.concat([tables["people"], tables["people"].iloc[[0]]], ignore_index=True)
    tables["people"].loc[3, "person_id"] = "p1 "
    _, quarantined, report = quarantine_of(tables, "people")
    assert quarantined["row"].tolist() == [1, 4]
    assert all("duplicate person_id" in r for r in quarantined["reason"])


def test_time_zones_are_converted_to_utc_and_dropped():
    tables = hand_tables()
    tables["incidents"]["date"] = [
        "2023-02-01T10:00:00Z",
        "2023-02-01T23:30:00-05:00",
        "2023-06-10T08:15:00",
        "2023-07-01T09:00:00+05:00",
    ]
    valid, _, report = validate_tables(tables, TODAY)
    assert report.quarantined == 0
    assert valid["incidents"]["date"].astype(str).tolist() == [
        "2023-02-01 10:00:00",
        "2023-02-02 04:30:00",
        "2023-06-10 08:15:00",
        "2023-07-01 04:00:00",
    ]


def test_time_zone_aware_parquet_timestamps_are_read_as_utc(tmp_path):
    tables = hand_tables()
    folder = write_tables(tmp_path / "d", tables)
    incidents = tables["incidents"].assign(
        date=pd.to_datetime(tables["incidents"]["date"]).dt.tz_localize("Europe/London")
    )
    (folder / "incidents.csv").unlink()
    incidents.to_parquet(folder / "incidents.parquet")
    dataset = read_dataset(folder, today=TODAY)
    assert dataset.report.quarantined == 0
    # midnight in London: the same instant in UTC, an hour earlier in summer
    assert dataset.incidents["date"].astype(str).tolist() == [
        "2023-02-01 00:00:00",
        "2023-02-01 00:00:00",
        "2023-06-09 23:00:00",
        "2023-06-30 23:00:00",
    ]


def test_a_time_on_today_is_not_in_the_future():
    tables = hand_tables()
    tables["incidents"].loc[0, "date"] = f"{TODAY.isoformat()}T23:59:59"
    _, _, report = validate_tables(tables, TODAY)
    assert report.quarantined == 0


def test_a_column_stored_as_a_type_its_values_cannot_be_read_from_is_quarantined(tmp_path):
    """Integer dates (20230201) were read as nanoseconds since 1970 and passed as valid; a boolean harm as 0/1."""
    tables = hand_tables()
    folder = write_tables(tmp_path / "d", tables)
    (folder / "incidents.csv").unlink()
    tables["incidents"].assign(
        date=pd.to_datetime(tables["incidents"]["date"]).dt.strftime("%Y%m%d").astype("int64"),
        harm=[True, True, False, True],
    ).to_parquet(folder / "incidents.parquet")
    dataset = read_dataset(folder, today=TODAY)
    counts = dataset.report.tables["incidents"]
    assert (counts.read, counts.valid, counts.quarantined) == (4, 0, 4)
    reasons = dataset.quarantine["incidents"]["reason"].tolist()
    assert reasons[0] == "date: not a valid date ('20230201'); harm: not a valid float ('True')"


def test_bytes_that_are_not_utf8_are_one_error_naming_the_file_and_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = hand_tables()
    folder = write_tables(tmp_path / "d", tables)
    (folder / "people.csv").unlink()
    people = {name: pa.array(values.tolist()) for name, values in tables["people"].items()}
    people["ethnicity"] = pa.array([b"\xffWhite", b"Black", b"Asian"], pa.binary())
    pq.write_table(pa.table(people), folder / "people.parquet")
    with pytest.raises(DataError, match=r"people.parquet: column 'ethnicity' holds bytes that are not UTF-8 text"):
        read_dataset(folder, today=TODAY)


def test_whole_number_float_ids_are_the_integer_keys_they_hold(tmp_path):
    """pandas writes an integer id column with a gap as floats: 17.0 is the person 17, not the key '17.0'."""
    tables = hand_tables()
    for name, column in (("people", "person_id"), ("incidents", "person_id"), ("interventions", "person_id")):
        tables[name][column] = tables[name][column].str[1:]
    folder = write_tables(tmp_path / "d", tables)
    (folder / "people.csv").unlink()
    tables["people"].assign(person_id=tables["people"]["person_id"].astype(float)).to_parquet(folder / "people.parquet")
    dataset = read_dataset(folder, today=TODAY)
    assert dataset.report.quarantined == 0
    assert dataset.people["person_id"].tolist() == ["1", "2", "3"]


def test_a_table_in_both_formats_is_refused(tmp_path):
    folder = write_tables(tmp_path / "d", hand_tables())
    hand_tables()["incidents"].to_parquet(folder / "incidents.parquet")
    with pytest.raises(DataError, match="both incidents.parquet and incidents.csv are present"):
        read_dataset(folder, today=TODAY)


def test_quarantine_csv_reads_back_exactly(tmp_path):
    tables = hand_tables()
    tables["people"].loc[0, "sex"] = "x\ry"
    tables["people"].loc[1, "ethnicity"] = 'say "hi",\nthen\r\nleave '
    _, quarantined, _ = validate_tables(tables, TODAY)
    write_quarantine(tmp_path, quarantined)
    back = pd.read_csv(tmp_path / "_quarantine" / "people.csv", dtype=str, keep_default_na=False)
    assert len(back) == 2
    pd.testing.assert_frame_equal(back, quarantined["people"].astype(str).reset_index(drop=True))


def test_no_valid_rows_is_a_data_error():
    tables = hand_tables()
    tables["people"] = tables["people"].iloc[:0]
    valid, _, report = validate_tables(tables, TODAY)
    dataset = Dataset(**valid, fingerprint="hand", end=TODAY, report=report, source="hand")
    dataset.require_rows("areas")
    with pytest.raises(DataError, match=r"hand: no valid rows in people \(0 read, 0 quarantined\)"):
        dataset.require_rows("areas", "people")


@pytest.mark.parametrize("horizon", [0, -30])
def test_horizon_must_be_positive(horizon):
    with pytest.raises(ValueError, match=f"horizon_days must be at least 1 \\(got {horizon}\\)"):
        SnapshotConfig(horizon_days=horizon)


@pytest.mark.parametrize(
    "as_of, message",
    [
        ("2023-07-02", r"as-of 2023-07-02 is after the data's end \(2023-07-01\)"),
        ("2023-02-01", r"as-of 2023-02-01 is not after the data's first incident \(2023-02-01\)"),
        ("2020-01-01", r"as-of 2020-01-01 is not after the data's first incident"),
    ],
)
def test_as_of_outside_the_data_is_refused(as_of, message):
    valid, _, report = validate_tables(hand_tables(), TODAY)
    dataset = Dataset(**valid, fingerprint="hand", end=date(2023, 7, 1), report=report)
    check_coverage(dataset, [date(2023, 2, 2), date(2023, 7, 1)])
    with pytest.raises(ValueError, match=message):
        check_coverage(dataset, [date(2023, 5, 1), date.fromisoformat(as_of)])


def test_a_reason_quotes_at_most_100_characters_of_a_huge_value(tmp_path):
    """A 1 MB cell is kept whole in the quarantined row, but its reason quotes 100 characters and says so."""
    tables = hand_tables()
    tables["people"].loc[0, "sex"] = "s" * 2**20
    tables["incidents"].loc[3, "person_id"] = "g" * 2**20
    tables["incidents"].loc[1, "harm"] = "7" * 99 + "x"  # 100 characters: quoted whole
    folder = write_tables(tmp_path / "d", tables)
    quarantine = read_dataset(folder, today=TODAY).quarantine
    people, incidents = quarantine["people"], quarantine["incidents"].set_index("row")
    assert (
        people["reason"].iloc[0] == (f"sex: '{'s' * 100}…' (1,048,576 characters) is not one of F, M, X, U")
        and len(people["sex"].iloc[0]) == 2**20
    )
    assert incidents.loc[4, "reason"] == f"person_id: '{'g' * 100}…' (1,048,576 characters) not found in valid people"
    assert incidents.loc[2, "reason"] == f"harm: not a valid float ('{'7' * 99}x')"


def test_a_duplicated_csv_header_is_one_line_naming_the_file_and_column(tmp_path):
    folder = write_tables(tmp_path / "d", hand_tables())
    (folder / "people.csv").write_text(
        "person_id,area_id,sex,birth_date,sex,ethnicity,area_id\np1,A1,M,1990-05-01,F,White,A2\n"
    )
    with pytest.raises(DataError) as raised:
        read_dataset(folder, today=TODAY)
    assert str(raised.value) == f"{folder / 'people.csv'}: duplicated columns 'area_id', 'sex' (keep one of each)"


def test_duplicated_parquet_columns_are_one_line_naming_the_file_and_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = write_tables(tmp_path / "d", hand_tables())
    areas = pa.Table.from_pandas(hand_tables()["areas"])
    pq.write_table(areas.append_column("population", areas["population"]), folder / "areas.parquet")
    (folder / "areas.csv").unlink()
    with pytest.raises(DataError) as raised:
        read_dataset(folder, today=TODAY)
    assert str(raised.value) == f"{folder / 'areas.parquet'}: duplicated column 'population' (keep one)"
