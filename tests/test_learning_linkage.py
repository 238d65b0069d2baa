"""Outcome linkage on a hand-written data set: programme starts in a window, returned lists."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from conftest import TODAY, hand_tables, write_tables

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData
from riskloop.learning.cycle import closed_as_of
from riskloop.learning.linkage import (
    NEVER,
    first_day_within,
    monthly_cohorts,
    person_index,
    programme_starts,
    starts_within,
)


def prepared(tmp_path) -> PreparedData:
    return PreparedData.from_dataset(read_dataset(write_tables(tmp_path / "data", hand_tables()), today=TODAY))


def test_a_start_counts_inside_its_window_only(tmp_path):
    data = prepared(tmp_path)  # p1 starts drive on 2023-03-01
    people = pd.Series(["p1", "p2", "p3"])
    inside = programme_starts(data, people, date(2023, 2, 28), 30)
    assert inside["started_drive"].tolist() == [True, False, False]
    assert inside["completed_drive"].tolist() == [True, False, False]
    assert not programme_starts(data, people, date(2023, 3, 1), 180)["started_drive"].any()  # (T, T + window]
    index = person_index(data, people)
    t = np.full(3, int(np.datetime64("2023-01-01", "D").astype(np.int64)))
    assert starts_within(data, index, t, t + 59).tolist() == [True, False, False]
    assert starts_within(data, index, t, t + 58).tolist() == [False, False, False]


def test_the_first_event_inside_each_window_is_found_per_person():
    person, day = np.array([2, 0, 0, 1, 0]), np.array([5, 30, 10, 7, 20])
    people = np.array([0, 0, 0, 1, 2, 3])
    start, end = np.array([0, 10, 30, 7, 0, 0]), np.array([100, 25, 100, 100, 5, 100])
    assert first_day_within(person, day, people, start, end).tolist() == [10, 20, NEVER, NEVER, 5, NEVER]
    assert first_day_within(person[:0], day[:0], people, start, end).tolist() == [NEVER] * 6


def test_monthly_cohorts_and_the_latest_closed_date():
    assert monthly_cohorts(date(2024, 11, 1), 90) == [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1)]
    assert closed_as_of(date(2025, 12, 31), 365, 180) == date(2024, 7, 1)
    assert closed_as_of(date(2025, 12, 31), 365) == date(2024, 12, 1)
