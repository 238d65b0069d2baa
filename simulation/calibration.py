"""What the synthetic world is calibrated to: published figures, and the same figures measured on a world.

`TARGETS` is the calibration table (docs/validation.md prints it with the measured values); `measure`
reads a generated world folder (the contract tables and `truth/`) and returns each target's figure.
Every figure is measured over the world's whole calendar years after its first, and the yearly ones are
averaged over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Incident types that are crimes in police recorded crime, by offence group (the key of the group's share
#: among the figures); the rest are non-crime incidents.
CRIME_GROUPS = {
    "share_violence": ("domestic_abuse", "violence_with_injury", "violence_without_injury", "stalking_harassment"),
    "share_sexual": ("sexual_offence",),
    "share_theft": ("theft",),
    "share_damage": ("criminal_damage",),
    "share_public_order": ("public_order",),
    "share_drugs": ("drugs",),
}
CRIME_TYPES = tuple(t for types in CRIME_GROUPS.values() for t in types)
OFFENDING_ROLES = ("perpetrator", "suspect")
#: Violence as the crime survey counts it (domestic violence included).
VIOLENCE_TYPES = ("domestic_abuse", "violence_with_injury", "violence_without_injury")


@dataclass(frozen=True)
class Target:
    """One published figure (or a documented, reasoned value where none was found), the band the world's
    value must fall in, and where the figure comes from."""

    key: str
    what: str
    published: str
    low: float
    high: float
    source: str


def _band(low: float, high: float | None = None, tolerance: float = 0.2) -> tuple[float, float]:
    """The published value (or range), widened by `tolerance` relative on each side."""
    return round(low * (1 - tolerance), 4), round((low if high is None else high) * (1 + tolerance), 4)


_ONS_FORCES = (
    "ONS police recorded crime by force, year ending Sep 2023, as reported in the Western Telegraph "
    "(westerntelegraph.co.uk/news/24084676); Census 2021 population of Wales 3,107,500"
)
_GWENT = "Gwent Police and Crime Panel, Oct-Dec 2018, South Wales Argus (southwalesargus.co.uk/news/17528264)"
_CSEW_DA = (
    "ONS, Domestic abuse in England and Wales overview, Nov 2022 and Nov 2023; Crime in England and Wales, YE Sep 2024"
)

#: The calibration table: docs/validation.md prints it with a world's values (benchmarks/calibration.py).
TARGETS: tuple[Target, ...] = (
    Target(
        "recorded_crime_per_1000",
        "police recorded crime (excluding fraud) per 1,000 residents a year",
        "Wales 86.7 (269,561 crimes, YE Sep 2023); England and Wales 91.9 (YE Sep 2022)",
        *_band(86.7),
        _ONS_FORCES,
    ),
    Target(
        "share_violence",
        "violence against the person, share of recorded crime",
        "about 40% (Gwent, YE Mar 2022) to 48.8% (Dyfed-Powys, YE Sep 2023)",
        *_band(0.40, 0.488),
        _ONS_FORCES + "; South Wales Argus (southwalesargus.co.uk/news/20590728)",
    ),
    Target(
        "share_stalking",
        "stalking and harassment, share of recorded crime",
        "12-14% England and Wales (reasoned: the national table was not found); 21.8% Dyfed-Powys",
        *_band(0.12, 0.218),
        _ONS_FORCES,
    ),
    Target(
        "share_sexual",
        "sexual offences, share of recorded crime",
        "3.6% England and Wales (195,300, YE Mar 2023); 3.9% Dyfed-Powys",
        *_band(0.036, 0.039),
        "ONS via Cambrian News (tindle .../627980); " + _ONS_FORCES,
    ),
    Target(
        "share_theft",
        "theft offences (burglary, vehicle, shoplifting and other theft), share of recorded crime",
        "28% England and Wales (25.1 of 89.3 per 1,000, YE Mar 2022); 16.3% Dyfed-Powys",
        *_band(0.28),
        "ONS via Cambrian News (cambrian-news.co.uk/.../556249)",
    ),
    Target(
        "share_damage",
        "criminal damage and arson, share of recorded crime",
        "about 10% England and Wales (reasoned); 16.0% Gwent (Oct-Dec 2018)",
        *_band(0.10, 0.16),
        _GWENT,
    ),
    Target(
        "share_public_order",
        "public order offences, share of recorded crime",
        "8-10% England and Wales (reasoned); 12.2% Gwent (Oct-Dec 2018)",
        *_band(0.08, 0.122),
        _GWENT,
    ),
    Target(
        "share_drugs",
        "drug offences, share of recorded crime",
        "2.7% Gwent (Oct-Dec 2018); about 3% England and Wales (reasoned)",
        *_band(0.027, 0.03),
        _GWENT,
    ),
    Target(
        "share_domestic_abuse",
        "domestic-abuse-related share of recorded crime",
        "about 16% (889,918 domestic-abuse-related crimes, YE Mar 2023)",
        *_band(0.16),
        "ONS, Domestic abuse in England and Wales overview, Nov 2023",
    ),
    Target(
        "domestic_abuse_victims_adults",
        "adults (16+) who experienced domestic abuse in the last year (survey: true incidents)",
        "4.4% (YE Mar 2023), 4.5% (YE Sep 2024), 5.0% (YE Mar 2022)",
        *_band(0.044, 0.05),
        _CSEW_DA,
    ),
    Target(
        "crime_victims_adults",
        "adults (16+) who were victims of a crime in the last year (survey: true incidents)",
        "16.1% of adults, any headline crime (YE Mar 2023)",
        *_band(0.161),
        "ONS, Crime in England and Wales: victim characteristics, YE Mar 2023",
    ),
    Target(
        "repeat_violence_incident_share",
        "share of violent incidents suffered by repeat victims (a minority of victims, a majority of incidents)",
        "about 54% (650,000 of 1.2 million violent incidents, YE Mar 2020)",
        *_band(0.54),
        "ONS, The nature of violent crime in England and Wales, YE Mar 2020",
    ),
    Target(
        "top_tenth_offending_share",
        "share of recorded offending by the most prolific tenth of offenders",
        "9% of offenders received 52% of convictions (2000-2016); a tenth, nearly half (to 2020/21)",
        *_band(0.5),
        "Ministry of Justice, Prolific offenders (2019, 2023); Cambridge Study: 7% of males, half of convictions",
    ),
    Target(
        "female_offending_share",
        "share of recorded offending involvements by women and girls",
        "15.9%: almost 114,000 of about 717,000 arrests (YE Mar 2024)",
        *_band(0.159),
        "Home Office, Police powers and procedures YE Mar 2024, as reported by right360.news (27 Sep 2024)",
    ),
    Target(
        "asb_per_1000",
        "anti-social behaviour incidents recorded by police per 1,000 residents a year",
        "about 21 in Wales (5,500 a month, March 2020); about 17 in England and Wales (YE Mar 2024)",
        *_band(17, 21),
        "Western Mail, 15 June 2020; Home Office via Doncaster Free Press (2024)",
    ),
    Target(
        "missing_person_per_1000",
        "missing-person reports per 1,000 residents a year",
        "about 5 (nearly 330,000 UK incidents, 2023/24)",
        *_band(5),
        "Missing People, from the NCA UK Missing Persons Unit data",
    ),
    Target(
        "missing_children_share",
        "share of missing-person reports about a child",
        "61% (England and Wales) to 64% (UK, 2023/24)",
        *_band(0.61, 0.64),
        "NCA UK Missing Persons Unit data, via Missing People",
    ),
    Target(
        "mental_health_per_1000",
        "mental health concerns recorded by police per 1,000 residents a year",
        "5.1-7.8% of police contacts (found); 10-20 per 1,000 (reasoned: the contact rate was not found)",
        10.0,
        20.0,
        "Kane, Cattell and Wire (2021), Criminal Behaviour and Mental Health 31(4)",
    ),
    Target(
        "child_concern_per_1000",
        "child concerns (safeguarding notifications) recorded by police per 1,000 residents a year",
        "not found; reasoned about 10 (of the order of domestic-abuse crimes)",
        6.0,
        15.0,
        "reasoned (no published rate found)",
    ),
    Target(
        "ace_one_or_more",
        "adults with at least one adverse childhood experience",
        "47%",
        0.44,
        0.50,
        "Bellis et al. (2015), Welsh ACE study, Public Health Wales",
    ),
    Target(
        "ace_four_or_more",
        "adults with four or more adverse childhood experiences",
        "14%",
        0.11,
        0.17,
        "Bellis et al. (2015), Welsh ACE study, Public Health Wales",
    ),
)

#: The most recorded offending involvements one person may have in a year: "at most a few dozen". A reasoned
#: bound: career totals of 50-100+ convictions accumulate over 10-30 years (Ministry of Justice, Onward 2019),
#: and the Cambridge Study counts about 39 self-reported offences per conviction.
MAX_RECORDED_OFFENDING_A_YEAR = 40

#: A published figure the world does not reach, shown beside the table (not a test).
NOT_CALIBRATED = (
    Target(
        "most_victimised_incident_share",
        "share of incidents suffered by the most victimised 4% of victims",
        "38-44% of all crime reported to the survey (British Crime Survey 2000)",
        0.38,
        0.44,
        "Home Office Crime Reduction Toolkit, citing Kershaw et al. (2000)",
    ),
)


def _present_counts(people: pd.DataFrame, truth_people: pd.DataFrame, years: range) -> dict[int, np.ndarray]:
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


def _years_of(first: pd.Timestamp, last: pd.Timestamp) -> range:
    """The whole calendar years after the first of a world whose incidents run from `first` to `last`."""
    return range(first.year + 1, last.year + 1 if (last.month, last.day) == (12, 31) else last.year)


def measure(world: Path) -> dict[str, float]:
    """Each target's figure on the generated world in `world` (its contract tables and truth/)."""
    world = Path(world)
    people = pd.read_parquet(world / "people.parquet", columns=["person_id", "birth_date", "sex"])
    truth_people = pd.read_parquet(
        world / "truth" / "people.parquet", columns=["person_id", "arrived_date", "died_date", "left_date", "ace_count"]
    )
    columns = ["incident_id", "person_id", "date", "type", "role"]
    recorded = pd.read_parquet(world / "incidents.parquet", columns=columns)
    true = pd.read_parquet(world / "truth" / "incidents.parquet", columns=columns)
    for frame in (recorded, true):
        frame["year"] = pd.to_datetime(frame["date"]).dt.year
    years = _years_of(pd.to_datetime(true["date"]).min(), pd.to_datetime(true["date"]).max())
    present = _present_counts(people, truth_people, years)
    residents = np.mean([mask.sum() for mask in present.values()])
    recorded = recorded[recorded["year"].isin(years)]
    incidents = recorded.drop_duplicates("incident_id")

    def per_1000(types: tuple[str, ...]) -> float:
        return float(incidents["type"].isin(types).sum() / len(years) / residents * 1000)

    crimes = incidents[incidents["type"].isin(CRIME_TYPES)]
    figures: dict[str, float] = {
        "recorded_crime_per_1000": per_1000(CRIME_TYPES),
        **{key: float(crimes["type"].isin(types).mean()) for key, types in CRIME_GROUPS.items()},
        "share_stalking": float((crimes["type"] == "stalking_harassment").mean()),
        "share_domestic_abuse": float((crimes["type"] == "domestic_abuse").mean()),
        "asb_per_1000": per_1000(("asb",)),
        "missing_person_per_1000": per_1000(("missing_person",)),
        "mental_health_per_1000": per_1000(("mental_health_concern",)),
        "child_concern_per_1000": per_1000(("child_concern",)),
        "missing_children_share": _missing_children_share(incidents, people),
        "ace_one_or_more": float((truth_people["ace_count"] >= 1).mean()),
        "ace_four_or_more": float((truth_people["ace_count"] >= 4).mean()),
    }
    figures.update(_victimisation(people, true, present, years))
    figures.update(_offending(recorded, people.set_index("person_id")["sex"]))
    return figures


def _victimisation(
    people: pd.DataFrame, true: pd.DataFrame, present: dict[int, np.ndarray], years: range
) -> dict[str, float]:
    """Per year (true incidents, as a victim survey counts them): the adults who were victims of domestic
    abuse and of any crime; among victims of violence, the repeat victims' share of the incidents; among
    victims of any crime, the most victimised 4 per cent's share of the incidents."""
    birth = pd.to_datetime(people["birth_date"])
    figures: dict[str, list[float]] = {k: [] for k in ("da", "any", "repeat", "top")}
    victims = true[(true["role"] == "victim") & true["type"].isin(CRIME_TYPES)]
    for year in years:
        adult = ((pd.Timestamp(f"{year}-07-01") - birth).dt.days >= 16 * 365.25).to_numpy() & present[year]
        adults = people.loc[adult, "person_id"]
        of_year = victims[victims["year"] == year]
        figures["da"].append(adults.isin(of_year.loc[of_year["type"] == "domestic_abuse", "person_id"]).mean())
        figures["any"].append(adults.isin(of_year["person_id"]).mean())
        violence = of_year[of_year["type"].isin(VIOLENCE_TYPES)].groupby("person_id").size()
        figures["repeat"].append(violence[violence >= 2].sum() / violence.sum())
        counts = np.sort(of_year.groupby("person_id").size().to_numpy())[::-1]
        figures["top"].append(counts[: max(1, round(0.04 * len(counts)))].sum() / counts.sum())
    return {
        "domestic_abuse_victims_adults": float(np.mean(figures["da"])),
        "crime_victims_adults": float(np.mean(figures["any"])),
        "repeat_violence_incident_share": float(np.mean(figures["repeat"])),
        "most_victimised_incident_share": float(np.mean(figures["top"])),
    }


def _missing_children_share(incidents: pd.DataFrame, people: pd.DataFrame) -> float:
    """The share of recorded missing-person reports that are about a child (under 18 on the day)."""
    missing = incidents[incidents["type"] == "missing_person"].merge(people, on="person_id")
    age = (pd.to_datetime(missing["date"]) - pd.to_datetime(missing["birth_date"])).dt.days / 365.25
    return float((age < 18).mean())


def _offending(recorded: pd.DataFrame, sex: pd.Series) -> dict[str, float]:
    """Recorded offending: the most prolific tenth of offenders' share of it; women's share; the most one
    person had in one year, and the most involvements in any role."""
    offending = recorded[recorded["role"].isin(OFFENDING_ROLES)]
    per_person = np.sort(offending.groupby("person_id").size().to_numpy())[::-1]
    top = max(1, round(0.1 * len(per_person)))
    return {
        "top_tenth_offending_share": float(per_person[:top].sum() / per_person.sum()),
        "female_offending_share": float((offending["person_id"].map(sex) == "F").mean()),
        "max_offending_per_year": float(offending.groupby(["person_id", "year"]).size().max()),
        "max_involvements_per_year": float(recorded.groupby(["person_id", "year"]).size().max()),
    }
