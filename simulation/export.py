"""Write a generated world as messy agency extracts, and the truth a perfect ingest reproduces.

The world's contract tables (a data set folder) become what a partnership actually receives: a police
occurrence file and its nominals, a council ASB log (Excel), provider case lists, an area lookup and the harm
weights lookup. Each agency knows a person under its own identifier (police sometimes under two), with names
drawn from embedded Welsh/UK lists and recorded with faults at the rates of `Faults`: typos, swapped name
parts, missing or mistyped dates of birth, mixed date formats, a few rows with codes no mapping knows.

`_truth/records.csv` says which world person each (source, source_id) is; `_truth/contract/` is the world's
contract tables as the extracts can reproduce them: the people who appear in some extract, incidents under
their source reference with harm replaced by the weight of the offence code's harm band.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from riskloop.artifacts.dataset import read_coverage, write_dataset
from riskloop.features.io import write_csv_atomic, write_text_atomic
from riskloop.simulation.names import draw_names

SOURCES = ("police", "council", "provider")
#: harm bands: world harm below each cut is in that band; each band's weight is what the contract then holds
HARM_CUTS = (0.5, 2.0, 8.0)
BAND_WEIGHTS = (0.25, 1.0, 4.0, 16.0)
#: Home Office style offence classes per contract type (the band is the code's subclass: 008/01 .. 008/04)
OFFENCE_CLASS = {
    "violence_with_injury": "008",
    "violence_without_injury": "105",
    "sexual_offence": "017",
    "stalking_harassment": "195",
    "domestic_abuse": "009",
    "asb": "800",
    "criminal_damage": "058",
    "theft": "046",
    "public_order": "066",
    "drugs": "092",
    "child_concern": "901",
    "missing_person": "902",
    "mental_health_concern": "903",
}
#: the council's own ASB categories by type and band
COUNCIL_CATEGORY = {"asb": "ASB", "criminal_damage": "DAM"}
#: the share of each type's incidents the council logs (the rest are police occurrences)
COUNCIL_SHARE = {"asb": 0.8, "criminal_damage": 0.25}
POLICE_ROLE = {"victim": "VICTIM", "perpetrator": "OFFENDER", "suspect": "SUSPECT", "subject": "SUBJECT"}
COUNCIL_ROLE = {
    "victim": "Victim",
    "perpetrator": "Perpetrator",
    "suspect": "Alleged Perpetrator",
    "subject": "Subject",
}
REPORTED = ("999", "101", "ONLINE")
PROACTIVE = ("STOP_SEARCH", "PATROL", "WARRANT")
#: officer-defined ethnicity (IC codes: no code for Mixed, which officers record as IC9)
POLICE_ETHNICITY = {
    "White": ("IC1", "IC2"),
    "Black": ("IC3",),
    "Asian": ("IC4", "IC5"),
    "Other": ("IC6",),
    "Mixed": ("IC9",),
    "Unknown": ("IC9", ""),
}
#: self-defined ethnicity, census style (16 codes and not stated)
CENSUS_ETHNICITY = {
    "White": ("W1", "W2", "W3", "W4"),
    "Mixed": ("M1", "M2", "M3", "M4"),
    "Asian": ("A1", "A2", "A3", "A4"),
    "Black": ("B1", "B2", "B3"),
    "Other": ("O1",),
    "Unknown": ("NS", ""),
}
COUNCIL_GENDER = {"F": "Female", "M": "Male", "X": "Other", "U": "Unknown"}
PROVIDER_TIER = {"primary": "Tier 1", "secondary": "Tier 2", "tertiary": "Tier 3"}
UNMAPPED_CODE = "999/99"
UNMAPPED_ROLE = "INFORMANT"
UNMAPPED_ETHNICITY = "IC0"
EXCEL_ROWS = 1_048_575


@dataclass(frozen=True)
class Faults:
    """How messy the extracts are: each rate is per record (an agency's person id) unless said otherwise."""

    name_typo: float = 0.05  # one letter dropped, doubled, changed or two swapped in one name part
    swapped_names: float = 0.03  # forename recorded as surname and surname as forename
    missing_dob: float = 0.03  # police and providers
    council_missing_dob: float = 0.15  # the council more often has no date of birth
    dob_typo: float = 0.01  # day off by one, or day and month swapped
    unparseable_dob: float = 0.005  # a date of birth no parser reads
    second_police_id: float = 0.05  # per police person with two or more involvements: a second NominalRef
    mixed_dates: bool = True  # ISO, UK and "4 Mar 2021" mixed within each column (else ISO)
    surname_first: float = 0.3  # council FullName as "SURNAME, Forename"
    unmapped: float = 0.002  # per occurrence: an extra row with an unmapped offence code, role or ethnicity


CLEAN = Faults(
    name_typo=0.0,
    swapped_names=0.0,
    missing_dob=0.0,
    council_missing_dob=0.0,
    dob_typo=0.0,
    unparseable_dob=0.0,
    second_police_id=0.0,
    mixed_dates=False,
    surname_first=0.0,
    unmapped=0.0,
)


@dataclass(frozen=True)
class Export:
    """Row counts of the files written, and the person records as a perfect transform reads them."""

    counts: dict[str, int]
    records: pd.DataFrame  # the person-records seam: source, source_id, first_name, last_name, birth_date, sex, area_id


def harm_band(harm: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(HARM_CUTS), harm, side="right")


def harm_weights() -> pd.DataFrame:
    """The lookup the partnership supplies: each offence code (and council category) with its band weight."""
    codes = [f"{c}/{b + 1:02d}" for c in OFFENCE_CLASS.values() for b in range(len(BAND_WEIGHTS))]
    codes += [f"{c}{b + 1}" for c in COUNCIL_CATEGORY.values() for b in range(len(BAND_WEIGHTS))]
    weights = [BAND_WEIGHTS[int(code[-1]) - 1] for code in codes]
    return pd.DataFrame({"HOOffenceCode": codes, "Weight": weights})


def _format_dates(dates: pd.Series, rng: np.random.Generator, mixed: bool) -> pd.Series:
    """Dates as text: ISO, or (mixed) ISO, UK day/month/year and "4 Mar 2021" at random; missing as blank."""
    iso = dates.dt.strftime("%Y-%m-%d")
    if mixed:
        style = rng.integers(0, 3, len(dates))
        uk = dates.dt.strftime("%d/%m/%Y")
        long = dates.dt.day.astype("Int64").astype("string") + dates.dt.strftime(" %b %Y")
        iso = iso.where(style == 0, uk.where(style == 1, long))
    return iso.fillna("")


def _typo(names: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One edit in each name: a letter dropped, doubled or replaced, or two neighbours swapped."""
    out = names.copy()
    for i, name in enumerate(names):
        if len(name) < 3:
            continue
        at = int(rng.integers(1, len(name) - 1))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            out[i] = name[:at] + name[at + 1 :]
        elif kind == 1:
            out[i] = name[:at] + name[at] + name[at:]
        elif kind == 2:
            out[i] = name[:at] + "aeiounrst"[int(rng.integers(0, 9))] + name[at + 1 :]
        else:
            out[i] = name[: at - 1] + name[at] + name[at - 1] + name[at + 1 :]
    return out


def _records(ids: pd.DataFrame, people: pd.DataFrame, rng: np.random.Generator, faults: Faults) -> pd.DataFrame:
    """Each agency record (`ids`: source, source_id, person_id) as the agency holds it, faults included."""
    person = people.loc[ids["person_id"].to_numpy()]
    first = person["first_name"].to_numpy(dtype=object).copy()
    last = person["last_name"].to_numpy(dtype=object).copy()
    n = len(ids)
    typo = rng.random(n) < faults.name_typo
    in_last = rng.random(n) < 0.6
    last[typo & in_last] = _typo(last[typo & in_last], rng)
    first[typo & ~in_last] = _typo(first[typo & ~in_last], rng)
    swap = rng.random(n) < faults.swapped_names
    first[swap], last[swap] = last[swap], first[swap].copy()
    birth = pd.to_datetime(person["birth_date"]).to_numpy().copy()
    mistyped = rng.random(n) < faults.dob_typo
    shifted = birth[mistyped] + np.where(rng.random(mistyped.sum()) < 0.5, 1, -1).astype("timedelta64[D]")
    birth[mistyped] = shifted
    missing_rate = np.where(ids["source"].to_numpy() == "council", faults.council_missing_dob, faults.missing_dob)
    birth[rng.random(n) < missing_rate] = np.datetime64("NaT")
    return pd.DataFrame(
        {
            "source": ids["source"].to_numpy(),
            "source_id": ids["source_id"].to_numpy(),
            "first_name": first,
            "last_name": last,
            "birth_date": pd.to_datetime(birth),
            "sex": person["sex"].to_numpy(),
            "area_id": person["area_id"].to_numpy(),
            "unparseable_dob": rng.random(n) < faults.unparseable_dob,
        }
    )


def _dob_text(records: pd.DataFrame, rng: np.random.Generator, faults: Faults) -> pd.Series:
    text = _format_dates(records["birth_date"], rng, faults.mixed_dates)
    return text.where(~records["unparseable_dob"].to_numpy(), "00/00/0000")


def _pick(options: dict[str, tuple[str, ...]], values: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """For each value, one of its codes at random."""
    draw = rng.random(len(values))
    return np.array([options[v][int(d * len(options[v]))] for v, d in zip(values, draw)], dtype=object)


def _ids(prefix: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct identifiers that say nothing of the order people were made in."""
    numbers = rng.choice(max(10 * count, 1000), size=count, replace=False)
    return np.array([f"{prefix}{n:08d}" for n in numbers], dtype=object)


def _police_ids(involved: pd.DataFrame, rng: np.random.Generator, faults: Faults) -> pd.Series:
    """A NominalRef per police involvement: one per person, two for some people with several involvements."""
    people = np.sort(involved["person_id"].unique())
    first = dict(zip(people, _ids("N", 2 * len(people), rng)[: len(people)]))
    counts = involved["person_id"].value_counts()
    doubled = [p for p in people if counts[p] >= 2 and rng.random() < faults.second_police_id]
    second = dict(zip(doubled, _ids("M", max(len(doubled), 1), rng)))
    refs = involved["person_id"].map(first).to_numpy(dtype=object)
    later = involved["person_id"].duplicated().to_numpy()  # a person's first involvement keeps the first ref
    use_second = involved["person_id"].isin(second).to_numpy() & later & (rng.random(len(involved)) < 0.5)
    refs[use_second] = involved["person_id"][use_second].map(second).to_numpy()
    return pd.Series(refs, index=involved.index)


def _route(incidents: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """True where an incident (all its rows) goes to the council log rather than the police."""
    ids = np.sort(incidents["incident_id"].unique())
    draw = pd.Series(rng.random(len(ids)), index=ids)
    share = incidents["type"].map(COUNCIL_SHARE).fillna(0.0).to_numpy()
    return incidents["incident_id"].map(draw).to_numpy() < share


def _codes(incidents: pd.DataFrame, council: np.ndarray) -> np.ndarray:
    band = harm_band(incidents["harm"].to_numpy()) + 1
    police = incidents["type"].map(OFFENCE_CLASS).to_numpy(dtype=object) + [f"/{b:02d}" for b in band]
    council_code = incidents["type"].map(COUNCIL_CATEGORY).fillna("").to_numpy(dtype=object) + band.astype(str)
    return np.where(council, council_code, police)


@dataclass(frozen=True)
class _Tables:
    areas: pd.DataFrame
    people: pd.DataFrame
    incidents: pd.DataFrame
    interventions: pd.DataFrame


def _read_world(world: Path) -> _Tables:
    names = ("areas", "people", "incidents", "interventions")
    missing = [n for n in names if not (world / f"{n}.parquet").is_file()]
    if missing:
        raise ValueError(f"{world} is not a world written by `riskloop generate` (no {missing[0]}.parquet)")
    read = {n: pd.read_parquet(world / f"{n}.parquet") for n in names}
    return _Tables(**read)


def export_extracts(world: Path, out: Path, seed: int, faults: Faults = Faults()) -> Export:
    """Write the world's (a data set folder) agency extracts and their truth to `out`."""
    world, out = Path(world), Path(out)
    tables = _read_world(world)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    incidents = tables.incidents.reset_index(drop=True)
    interventions = tables.interventions.reset_index(drop=True)
    involved = np.union1d(incidents["person_id"].unique(), interventions["person_id"].unique())
    people = tables.people.set_index("person_id").loc[involved]
    people["first_name"], people["last_name"] = draw_names(people["sex"].to_numpy() == "F", streams[0])

    council = _route(incidents, streams[1])
    incidents["code"] = _codes(incidents, council)
    incidents["source"] = np.where(council, "council", "police")
    incidents["source_id"] = ""
    police_rows = ~council
    incidents.loc[police_rows, "source_id"] = _police_ids(incidents[police_rows], streams[2], faults)
    council_people = np.sort(incidents.loc[council, "person_id"].unique())
    council_ref = dict(zip(council_people, _ids("C", len(council_people), streams[2])))
    incidents.loc[council, "source_id"] = incidents.loc[council, "person_id"].map(council_ref)
    incidents["ref"] = np.where(
        council,
        "ASB/" + pd.to_datetime(incidents["date"]).dt.strftime("%Y") + "/" + incidents["incident_id"].astype(str),
        "OC" + incidents["incident_id"].astype(str).str.zfill(9),
    )
    client = interventions[["programme", "person_id"]].drop_duplicates().reset_index(drop=True)
    client["source_id"] = _ids("", len(client), streams[3])
    client["source_id"] = client["programme"].str[:3].str.upper() + client["source_id"]
    interventions = interventions.merge(client, on=["programme", "person_id"], how="left")
    interventions["source"] = "provider"

    ids = (
        pd.concat(
            [incidents[["source", "source_id", "person_id"]], interventions[["source", "source_id", "person_id"]]]
        )
        .drop_duplicates(["source", "source_id"])
        .sort_values(["source", "source_id"])
        .reset_index(drop=True)
    )
    records = _records(ids, people, streams[4], faults)
    record = records.set_index(["source", "source_id"])
    dob = pd.Series(_dob_text(records, streams[5], faults).to_numpy(), index=record.index)
    rng = streams[6]
    counts: dict[str, int] = {}

    out.mkdir(parents=True, exist_ok=True)
    police = incidents[police_rows]
    occurrences = police.drop_duplicates("incident_id")
    areas_of = people["area_id"]
    extra = occurrences.sample(frac=faults.unmapped, random_state=seed) if faults.unmapped else occurrences[:0]
    occurrence_file = pd.DataFrame(
        {
            "OccurrenceRef": pd.concat([occurrences["ref"], "X" + extra["ref"]]).to_numpy(),
            "HOOffenceCode": np.r_[occurrences["code"].to_numpy(dtype=object), [UNMAPPED_CODE] * len(extra)],
            "CommittedDate": _format_dates(
                pd.to_datetime(pd.concat([occurrences["date"], extra["date"]])), rng, faults.mixed_dates
            ).to_numpy(),
            "LSOA": areas_of.loc[pd.concat([occurrences["person_id"], extra["person_id"]])].to_numpy(),
            "HowReported": _how_reported(pd.concat([occurrences["attention"], extra["attention"]]), rng),
        }
    )
    counts["police_occurrences"] = _write_csv(occurrence_file, out / "police_occurrences.csv")

    key = pd.MultiIndex.from_arrays([police["source"], police["source_id"]])
    nominal_rows = record.loc[key]
    nominals = pd.DataFrame(
        {
            "OccurrenceRef": police["ref"].to_numpy(),
            "NominalRef": police["source_id"].to_numpy(),
            "InvolvementRole": police["role"].map(POLICE_ROLE).to_numpy(),
            "Surname": nominal_rows["last_name"].str.upper().to_numpy(),
            "Forenames": nominal_rows["first_name"].to_numpy(),
            "DOB": dob.loc[key].to_numpy(),
            "Sex": nominal_rows["sex"].to_numpy(),
            "OfficerDefinedEthnicity": _pick(POLICE_ETHNICITY, people.loc[police["person_id"], "ethnicity"], rng),
            "HomeLSOA": nominal_rows["area_id"].to_numpy(),
        }
    )
    nominals = pd.concat([nominals, _unmapped_nominals(nominals, extra, rng)], ignore_index=True)
    counts["police_nominals"] = _write_csv(nominals, out / "police_nominals.csv")

    cases = incidents[council]
    key = pd.MultiIndex.from_arrays([cases["source"], cases["source_id"]])
    case_rows = record.loc[key]
    surname_first = rng.random(len(cases)) < faults.surname_first
    full = np.where(
        surname_first,
        case_rows["last_name"].str.upper() + ", " + case_rows["first_name"],
        case_rows["first_name"] + " " + case_rows["last_name"],
    )
    roles = cases["role"].map(COUNCIL_ROLE).to_numpy(dtype=object)
    roles[(cases["role"] == "victim").to_numpy() & (rng.random(len(cases)) < 0.3)] = "Complainant"
    asb = pd.DataFrame(
        {
            "CaseRef": cases["ref"].to_numpy(),
            "PersonRef": cases["source_id"].to_numpy(),
            "FullName": full,
            "DateOfBirth": dob.loc[key].to_numpy(),
            "Gender": case_rows["sex"].map(COUNCIL_GENDER).to_numpy(),
            "HomeLSOA": case_rows["area_id"].to_numpy(),
            "ReportedOn": _format_dates(pd.to_datetime(cases["date"]), rng, faults.mixed_dates).to_numpy(),
            "Category": cases["code"].to_numpy(),
            "PartyRole": roles,
        }
    )
    if len(asb) > EXCEL_ROWS:
        raise ValueError(f"the council log has {len(asb)} rows, more than one Excel sheet holds")
    asb.to_excel(out / "council_asb.xlsx", sheet_name="cases", index=False)
    counts["council_asb"] = len(asb)

    key = pd.MultiIndex.from_arrays([interventions["source"], interventions["source_id"]])
    client_rows = record.loc[key]
    completed = interventions["completed"]
    provider = pd.DataFrame(
        {
            "Provider": interventions["programme"].str.upper().to_numpy(),
            "ClientID": interventions["source_id"].to_numpy(),
            "FirstName": client_rows["first_name"].to_numpy(),
            "LastName": client_rows["last_name"].to_numpy(),
            "DOB": dob.loc[key].to_numpy(),
            "SelfDefinedEthnicity": _pick(CENSUS_ETHNICITY, people.loc[interventions["person_id"], "ethnicity"], rng),
            "Tier": interventions["tier"].map(PROVIDER_TIER).to_numpy(),
            "StartDate": _format_dates(pd.to_datetime(interventions["start_date"]), rng, faults.mixed_dates).to_numpy(),
            "EndDate": _format_dates(pd.to_datetime(interventions["end_date"]), rng, faults.mixed_dates).to_numpy(),
            "Outcome": np.where(completed.isna(), "", np.where(completed.fillna(False), "Completed", "Disengaged")),
        }
    )
    counts["provider_cases"] = _write_csv(provider, out / "provider_cases.csv")

    areas = tables.areas
    lookup = pd.DataFrame(
        {
            "LSOA": areas["area_id"],
            "LocalAuthority": areas["local_authority"],
            "Population": areas["population"],
            "WIMDRank": areas["deprivation_rank"],
        }
    )
    counts["lsoa_lookup"] = _write_csv(lookup, out / "lsoa_lookup.csv")
    counts["harm_weights"] = _write_csv(harm_weights(), out / "harm_weights.csv")

    counts["truth_records"] = _write_csv(ids, out / "_truth" / "records.csv")
    _write_truth(tables, people, incidents, out / "_truth" / "contract", world)
    seam = records.drop(columns="unparseable_dob")
    seam.loc[records["unparseable_dob"].to_numpy(), "birth_date"] = pd.NaT
    return Export(counts, seam)


def _how_reported(attention: pd.Series, rng: np.random.Generator) -> np.ndarray:
    reported = np.asarray(REPORTED, dtype=object)[rng.integers(0, len(REPORTED), len(attention))]
    proactive = np.asarray(PROACTIVE, dtype=object)[rng.integers(0, len(PROACTIVE), len(attention))]
    values = attention.to_numpy(dtype=object)
    return np.where(values == "proactive", proactive, np.where(values == "reported", reported, ""))


def _unmapped_nominals(nominals: pd.DataFrame, extra: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """For each extra (unmapped) occurrence: a nominal of a known person on it, and one on a real occurrence
    with a role and an ethnicity code no mapping knows."""
    if extra.empty:
        return nominals[:0]
    donors = nominals.sample(n=len(extra), random_state=int(rng.integers(0, 2**31)))
    on_extra = donors.assign(OccurrenceRef=("X" + extra["ref"]).to_numpy())
    odd = donors.assign(InvolvementRole=UNMAPPED_ROLE, OfficerDefinedEthnicity=UNMAPPED_ETHNICITY)
    return pd.concat([on_extra, odd], ignore_index=True)


def _write_csv(frame: pd.DataFrame, path: Path) -> int:
    write_csv_atomic(frame, path)
    return len(frame)


def _write_truth(tables: _Tables, people: pd.DataFrame, incidents: pd.DataFrame, folder: Path, world: Path) -> None:
    """The contract tables a perfect ingest of the extracts makes (world person ids)."""
    truth_people = tables.people[tables.people["person_id"].isin(people.index)]
    truth_incidents = incidents.assign(
        incident_id=incidents["ref"], harm=np.asarray(BAND_WEIGHTS)[harm_band(incidents["harm"].to_numpy())]
    )[list(tables.incidents.columns)]
    coverage = read_coverage(world)
    if coverage is None:
        raise ValueError(f"{world} has no dataset.json: export a world written by `riskloop generate`")
    frames = {
        "areas": tables.areas,
        "people": truth_people,
        "incidents": truth_incidents,
        "interventions": tables.interventions,
    }
    write_dataset(folder, {n: pa.Table.from_pandas(f, preserve_index=False) for n, f in frames.items()}, coverage)
    write_text_atomic(
        "Not an input to ingest: which world person each agency record is, and the contract tables a perfect "
        "ingest of these extracts reproduces (incident ids are the source references, harm the band weight).\n",
        folder.parent / "README.txt",
    )
