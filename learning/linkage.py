"""Outcome linkage: what happened to each person scored at T, and the monthly cohorts that effect
estimation compares.

For everyone in the cohort at T (scored by the champion on data that now reaches past T + horizon):
listed or not, the team's review decision where lists came back, which programme they started in
(T, T + treatment window], whether they completed it, and whether they escalated within the horizon
(the snapshot's label). Everything is keyed on the pseudonymised person_id.

Effects are estimated on monthly cohorts instead (one emulated trial per month of the window): a
referral follows an incident, so a programme started months after T was chosen on events after T
that the features at T cannot see. In the cohort at the first of each month, the treated are those
who start the programme within that month and their features are as of the month's first day, after
the incident that led to the referral.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from riskloop.features.snapshot import PreparedData

#: Days after T in which a programme start counts as treatment (the learning loop's window).
TREATMENT_WINDOW_DAYS = 180


def _day(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))


def person_index(prepared: PreparedData, person_id: pd.Series) -> np.ndarray:
    """Positions of `person_id` in the prepared (sorted) people; every id must be there."""
    index = pd.Index(prepared.person_id).get_indexer(pd.Series(person_id).astype(str))
    if (index < 0).any():
        raise ValueError(f"{int((index < 0).sum())} people are not in the data set")
    return index


NEVER = np.iinfo(np.int64).max


def first_day_within(
    event_person: np.ndarray,
    event_day: np.ndarray,
    people: np.ndarray,
    start_day: np.ndarray | int,
    end_day: np.ndarray | int,
) -> np.ndarray:
    """Per row: the day of person `people[i]`'s first event in (start_day[i], end_day[i]], or NEVER."""
    span = np.int64(1) << 32
    keys = np.sort(event_person.astype(np.int64) * span + event_day)
    base = people.astype(np.int64) * span
    at = np.searchsorted(keys, base + start_day, side="right")
    found = np.r_[keys, NEVER][at]
    return np.where((at < len(keys)) & (found <= base + end_day), found - base, NEVER)


def starts_within(
    prepared: PreparedData,
    people: np.ndarray,
    start_day: np.ndarray | int,
    end_day: np.ndarray | int,
    programme: int | None = None,
    completed: bool = False,
) -> np.ndarray:
    """Per row: did person `people[i]` start a programme (or the given one; with `completed`, and complete
    it) in (start_day[i], end_day[i]]?"""
    rows = prepared.iv_person >= 0
    if programme is not None:
        rows &= prepared.iv_programme == programme
    if completed:
        rows &= prepared.iv_completed
    return first_day_within(prepared.iv_person[rows], prepared.iv_start[rows], people, start_day, end_day) != NEVER


def programme_starts(prepared: PreparedData, person_id: pd.Series, as_of: date, window_days: int) -> pd.DataFrame:
    """`started_<programme>` and `completed_<programme>` per person for starts in (T, T + window]."""
    people, t = person_index(prepared, person_id), _day(as_of)
    out = {}
    for code, programme in enumerate(prepared.programmes):
        out[f"started_{programme}"] = starts_within(prepared, people, t, t + window_days, code)
        out[f"completed_{programme}"] = starts_within(prepared, people, t, t + window_days, code, completed=True)
    return pd.DataFrame(out, index=pd.Series(person_id).index)


def next_month(first: date) -> date:
    """The first day of the month after `first`'s."""
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def monthly_cohorts(first: date, window_days: int) -> list[date]:
    """The first day of each month from `first` (itself a first of month) over the window."""
    months = [first]
    for _ in range(max(1, round(window_days / 30.44)) - 1):
        months.append(next_month(months[-1]))
    return months


def link_outcomes(
    cohort: pd.DataFrame,
    prepared: PreparedData,
    as_of: date,
    window_days: int,
    listed: pd.Series | None = None,
    reviews: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per cohort member at T: ids, local authority, risk, band, listed, review decision,
    programme starts and completions, and `escalated` (the label; NaN while its horizon is open)."""
    out = cohort[["person_id", "local_authority", "area_id", "risk", "band", "band_label"]].copy()
    out["listed"] = (
        out["person_id"].map(listed).fillna(False).astype(bool)
        if listed is not None
        else pd.Series(False, index=out.index)
    )
    out["review_decision"] = (
        out["person_id"].map(reviews.set_index("person_id")["review_decision"]).fillna("")
        if reviews is not None and len(reviews)
        else ""
    )
    starts = programme_starts(prepared, cohort["person_id"], as_of, window_days)
    out = pd.concat([out, starts], axis=1)
    out["any_programme"] = starts.filter(like="started_").any(axis=1)
    out["escalated"] = cohort["label"].to_numpy()
    return out
