"""Temporal splits (DSSG triage's timechop idea): train only on labels that closed before the test date.

A snapshot at T has its label window (T, T + H]; its label is known at a later date t only if
T + H < t. For each test as-of date t: validation = the latest T with T + H < t (early stopping
and calibration), fit = every earlier T with T + H < t, as the final refit does with all labels
known. A fit label window may overlap the validation's, never the test's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd


@dataclass(frozen=True)
class Split:
    fit: tuple[date, ...]
    validation: date
    test: date

    @property
    def name(self) -> str:
        return f"test-{self.test.isoformat()}"


def as_of_schedule(start: date, end: date, every_months: int) -> list[date]:
    """As-of dates from `start` to `end` inclusive, every `every_months` months."""
    if every_months < 1:
        raise ValueError("every_months must be at least 1")
    dates: list[date] = []
    k = 0
    while True:
        month = start.month - 1 + k * every_months
        t = date(start.year + month // 12, month % 12 + 1, min(start.day, 28))
        if t > end:
            return dates
        dates.append(t)
        k += 1


def label_closed(as_of: date, horizon_days: int, before: date) -> bool:
    return as_of + timedelta(days=horizon_days) < before


def temporal_splits(as_of_dates: list[date], horizon_days: int, n_test: int | None = None) -> list[Split]:
    """Every feasible split, oldest first; the last `n_test` of them if given."""
    dates = sorted(set(as_of_dates))
    splits = []
    for test in dates:
        closed = [t for t in dates if label_closed(t, horizon_days, test)]
        if len(closed) >= 2:
            splits.append(Split(tuple(closed[:-1]), closed[-1], test))
    return splits[-n_test:] if n_test else splits


def splits_frame(splits: list[Split]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "split": s.name,
                "fit": f"{s.fit[0]} .. {s.fit[-1]} ({len(s.fit)})",
                "validation": s.validation.isoformat(),
                "test": s.test.isoformat(),
            }
            for s in splits
        ]
    )
