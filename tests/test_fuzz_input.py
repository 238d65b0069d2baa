"""Fuzzed input: hostile cells, header-only tables and duplicated rows in the hand-written data set.

Whatever the edits, validation raises nothing but DataError, every table reconciles (read = valid +
quarantined), what passes is usable (unique keys, finite numbers, known parents) and the quarantine
CSV reads back row for row.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from riskloop.artifacts.dataset import write_quarantine
from riskloop.features.io import DataError
from riskloop.features.schema import CONTRACT
from riskloop.features.validate import validate_tables
from tests.conftest import TODAY, hand_tables

HOSTILE_TEXT = [
    None,
    "",
    " ",
    "\t",
    "\u00a0",
    "\u200b",
    "p1 ",
    " p1",
    "A1 ",
    " M ",
    "\r",
    "\n",
    "a\rb",
    "a\r\nb",
    '"',
    ",",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "nan",
    "NaN",
    "-1",
    "-0",
    "1e20",
    "99999999999999999999999",
    "0x10",
    "1_000",
    "\u0663",
    "é",
    "\U0001f600",
    "null",
    "NA",
    "2023-01-01T10:00:00Z",
    "2023-01-01T10:00:00+05:00",
    "2023-06-31",
    "0001-01-01",
    "9999-12-31",
    "1899-12-31",
    "2023-01-01 10:00",
    "2027-01-01",
    "true",
    "yes",
    "p1",
    "p2",
    "A1",
    "i1",
    "victim",
    "drive",
]
HOSTILE_NUMBERS = [np.inf, -np.inf, np.nan, 1e308, -1.0, -0.0, 0.5, 2.0**62]
HOSTILE_DATES = [
    pd.NaT,
    pd.Timestamp("0001-01-01"),
    pd.Timestamp("1850-01-01"),
    pd.Timestamp("1905-12-31"),
    pd.Timestamp("2026-01-01 23:59"),
    pd.Timestamp("2100-01-01"),
    pd.Timestamp("9999-12-31"),
]
TIME_ZONES = [None, "UTC", "Asia/Kolkata", "America/New_York", "Pacific/Kiritimati"]


def edit_rows(draw, tables: dict[str, pd.DataFrame]) -> None:
    """Keep some rows of one table (perhaps none), or repeat one of its rows."""
    name = draw(st.sampled_from(sorted(tables)))
    frame = tables[name]
    if draw(st.booleans()):
        frame = frame[draw(st.lists(st.booleans(), min_size=len(frame), max_size=len(frame)))]
    elif len(frame):
        frame = frame.iloc[[*range(len(frame)), draw(st.integers(0, len(frame) - 1))]]
    tables[name] = frame.reset_index(drop=True)


@st.composite
def text_tables(draw) -> dict[str, pd.DataFrame]:
    """The hand-written tables as text (as from CSV) after a few edits: hostile cells, fewer or repeated rows."""
    cells = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=6)
    tables = {name: frame.astype(object) for name, frame in hand_tables().items()}
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 3)) == 0:
            edit_rows(draw, tables)
            continue
        frame = tables[draw(st.sampled_from(sorted(tables)))]
        if len(frame):
            frame.iat[draw(st.integers(0, len(frame) - 1)), draw(st.integers(0, frame.shape[1] - 1))] = draw(cells)
    return tables


@st.composite
def typed_tables(draw) -> dict[str, pd.DataFrame]:
    """The hand-written tables typed as Parquet holds them (floats, time-zone-aware timestamps, booleans)."""
    tables = hand_tables()
    for schema in CONTRACT:
        frame = tables[schema.name]
        for column in (c for c in schema.columns if c.name in frame and c.kind != "string"):
            if column.kind == "bool":
                frame[column.name] = frame[column.name] == "true"
                continue
            numeric = column.kind in ("int", "float")
            values = (
                pd.to_numeric(frame[column.name]).astype(float)
                if numeric
                else pd.to_datetime(frame[column.name]).astype("datetime64[s]")
            )
            if draw(st.booleans()):
                values.iat[draw(st.integers(0, len(values) - 1))] = draw(
                    st.sampled_from(HOSTILE_NUMBERS if numeric else HOSTILE_DATES)
                )
            zone = None if numeric else draw(st.sampled_from(TIME_ZONES))
            frame[column.name] = values.dt.tz_localize(zone) if zone else values
    for _ in range(draw(st.integers(0, 2))):
        edit_rows(draw, tables)
    return tables


def assert_validation_holds(tables: dict[str, pd.DataFrame]) -> None:
    try:
        valid, quarantined, report = validate_tables(tables, TODAY)
    except DataError:
        return
    for schema in CONTRACT:
        counts, rows = report.tables[schema.name], valid[schema.name]
        assert counts.read == len(tables[schema.name]) == counts.valid + counts.quarantined
        assert len(rows) == counts.valid and len(quarantined[schema.name]) == counts.quarantined
        assert not rows.duplicated(list(schema.key)).any()
        for column in schema.columns:
            if column.kind in ("int", "float"):
                assert np.isfinite(rows[column.name].dropna().to_numpy(dtype=float)).all()
        for ref in schema.references:
            assert rows[ref.column].isin(valid[ref.table][ref.table_column]).all()
    with tempfile.TemporaryDirectory() as folder:
        write_quarantine(Path(folder), quarantined)
        for name, rows in quarantined.items():
            if len(rows):
                back = pd.read_csv(Path(folder) / "_quarantine" / f"{name}.csv", dtype=str, keep_default_na=False)
                assert len(back) == len(rows)
                assert back["reason"].tolist() == rows["reason"].tolist()


@settings(max_examples=200, derandomize=True, deadline=None)
@given(text_tables())
def test_hostile_text_never_crashes_and_reconciles(tables):
    assert_validation_holds(tables)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(typed_tables())
def test_hostile_typed_values_never_crash_and_reconcile(tables):
    assert_validation_holds(tables)
