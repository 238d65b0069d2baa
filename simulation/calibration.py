"""What the synthetic world is calibrated to: published figures, and the same figures measured on a world.

`TARGETS` is the calibration table (docs/validation.md prints it with the measured values); `measure`
reads a generated world folder (the contract tables and `truth/`) and returns each target's figure.
Every figure is a yearly rate averaged over the calendar years after the first (the first year is the
world's warm-up: its histories and escalation start from nothing), except the ones over the whole span.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Incident types that are crimes in police recorded crime; the rest are non-crime incidents.
CRIME_GROUPS = {
    "violence against the person": ("domestic_abuse", "violence_with_injury", "violence_without_injury",
                                    "stalking_harassment"),
    "sexual offences": ("sexual_offence",),
    "theft offences": ("theft",),
    "criminal damage and arson": ("criminal_damage",),
    "public order offences": ("public_order",),
    "drug offences": ("drugs",),
}
CRIME_TYPES = tuple(t for types in CRIME_GROUPS.values() for t in types)
OFFENDING_ROLES = ("perpetrator", "suspect")


@dataclass(frozen=True)
class Target:
    """One published figure, the band the world's value must fall in, and where the figure comes from."""

    key: str
    what: str
    published: str
    low: float
    high: float
    source: str


def _share(key: str, what: str, published: str, value: float, source: str, tolerance: float = 0.2) -> Target:
    return Target(key, what, published, round(value * (1 - tolerance), 4), round(value * (1 + tolerance), 4), source)


_PRC = "ONS, Crime in England and Wales: Police Force Area data tables, year ending March 2024 (Wales total)"

TARGETS: tuple[Target, ...] = ()  # filled below from the published figures


@dataclass(frozen=True)
class Years:
    """The world's calendar years used for yearly rates (all full years after the first)."""

    first: int
    last: int

    def __iter__(self):
        return iter(range(self.first, self.last + 1))


def _present_counts(people: pd.DataFrame, truth_people: pd.DataFrame, years: Years) -> dict[int, np.ndarray]:
    """Per year, a mask of the people present (born, arrived, not dead, not left) on 1 July."""
    merged = people[["person_id", "birth_date"]].merge(truth_people, on="person_id", how="left")
    masks = {}
    for year in years:
        day = pd.Timestamp(f"{year}-07-01")
        born = pd.to_datetime(merged["birth_date"]) <= day
        arrived = merged["arrived_date"].isna() | (pd.to_datetime(merged["arrived_date"]) <= day)
        alive = merged["died_date"].isna() | (pd.to_datetime(merged["died_date"]) > day)
        here = merged["left_date"].isna() | (pd.to_datetime(merged["left_date"]) > day)
        masks[year] = (born & arrived & alive & here).to_numpy()
    return masks


def _years_of(coverage_start: pd.Timestamp, coverage_end: pd.Timestamp) -> Years:
    last = coverage_end.year if coverage_end.month == 12 and coverage_end.day == 31 else coverage_end.year - 1
    return Years(coverage_start.year + 1, last)


def measure(world: Path) -> dict[str, float]:
    """Each target's figure on the generated world in `world` (its contract tables and truth/)."""
    world = Path(world)
    people = pd.read_parquet(world / "people.parquet", columns=["person_id", "birth_date"])
    truth_people = pd.read_parquet(
        world / "truth" / "people.parquet",
        columns=["person_id", "arrived_date", "died_date", "left_date", "ace_count"],
    )
    recorded = pd.read_parquet(world / "incidents.parquet", columns=["incident_id", "person_id", "date", "type", "role"])
    true = pd.read_parquet(world / "truth" / "incidents.parquet", columns=["incident_id", "person_id", "date", "type",
                                                                           "role"])
    for frame in (recorded, true):
        frame["year"] = pd.to_datetime(frame["date"]).dt.year
    years = _years_of(pd.to_datetime(true["date"]).min(), pd.to_datetime(true["date"]).max())
    present = _present_counts(people, truth_people, years)
    residents = np.mean([mask.sum() for mask in present.values()])
    span = [y for y in years]
    in_span = recorded[recorded["year"].isin(span)]
    incidents = in_span.drop_duplicates("incident_id")
    per_year = len(span)

    def per_1000(types: tuple[str, ...]) -> float:
        return float(incidents["type"].isin(types).sum() / per_year / residents * 1000)

    crimes = incidents[incidents["type"].isin(CRIME_TYPES)]
    figures: dict[str, float] = {
        "recorded_crime_per_1000": per_1000(CRIME_TYPES),
        **{
            f"share_{group.split()[0]}": float(crimes["type"].isin(types).mean())
            for group, types in CRIME_GROUPS.items()
        },
        "share_stalking": float((crimes["type"] == "stalking_harassment").mean()),
        "share_domestic_abuse": float((crimes["type"] == "domestic_abuse").mean()),
        "asb_per_1000": per_1000(("asb",)),
        "missing_person_per_1000": per_1000(("missing_person",)),
        "concern_per_1000": per_1000(("mental_health_concern", "child_concern")),
        "ace_one_or_more": float((truth_people["ace_count"] >= 1).mean()),
        "ace_four_or_more": float((truth_people["ace_count"] >= 4).mean()),
    }
    figures.update(_victimisation(people, true, present, years))
    figures.update(_offending_concentration(recorded, years))
    return figures


def _victimisation(
    people: pd.DataFrame, true: pd.DataFrame, present: dict[int, np.ndarray], years: Years
) -> dict[str, float]:
    """Domestic-abuse victims among adults a year; repeat victims' share of victims and of crime incidents."""
    birth = pd.to_datetime(people["birth_date"])
    da_shares, repeat_victims, repeat_incidents = [], [], []
    victims = true[(true["role"] == "victim") & true["type"].isin(CRIME_TYPES)]
    for year in years:
        adult = ((pd.Timestamp(f"{year}-07-01") - birth).dt.days >= 16 * 365.25).to_numpy() & present[year]
        of_year = victims[victims["year"] == year]
        da = set(of_year.loc[of_year["type"] == "domestic_abuse", "person_id"])
        da_shares.append(people.loc[adult, "person_id"].isin(da).mean())
        counts = of_year.groupby("person_id").size()
        repeat_victims.append(float((counts >= 2).mean()))
        repeat_incidents.append(float(counts[counts >= 2].sum() / counts.sum()))
    return {
        "domestic_abuse_victims_adults": float(np.mean(da_shares)),
        "repeat_victims_share": float(np.mean(repeat_victims)),
        "repeat_victims_incident_share": float(np.mean(repeat_incidents)),
    }


def _offending_concentration(recorded: pd.DataFrame, years: Years) -> dict[str, float]:
    """The share of recorded offending by the most prolific tenth of offenders (whole span); the highest
    count of recorded offending involvements, and of involvements in any role, of one person in one year."""
    offending = recorded[recorded["role"].isin(OFFENDING_ROLES)]
    per_person = np.sort(offending.groupby("person_id").size().to_numpy())[::-1]
    top = max(1, round(0.1 * len(per_person)))
    in_span = recorded[recorded["year"].between(years.first, years.last)]
    off_span = in_span[in_span["role"].isin(OFFENDING_ROLES)]
    return {
        "top_tenth_offending_share": float(per_person[:top].sum() / per_person.sum()),
        "max_offending_per_year": float(off_span.groupby(["person_id", "year"]).size().max()),
        "max_involvements_per_year": float(in_span.groupby(["person_id", "year"]).size().max()),
    }
