"""Tiny hand-written agency extracts in the layout of docs/examples/ingest/mapping.yaml (for the ingest tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

REPO = Path(__file__).parent.parent
EXAMPLE = REPO / "docs" / "examples" / "ingest" / "mapping.yaml"
KEY = "k" * 40
#: names, birth dates and agency ids in the extracts: none may leave the private folder
PERSONAL = (
    "Dafydd",
    "Dafyd",
    "JONES",
    "Sian",
    "EVANS",
    "Ffion",
    "MORGAN",
    "Rhys",
    "WILLIAMS",
    "1990-05-17",
    "12/08/1985",
    "N1",
    "P2",
    "K1",
)

OCCURRENCES = pd.DataFrame(
    {
        "OccurrenceRef": ["OC1", "OC2", "OC3", "OC4", "OC5"],
        "HOOffenceCode": ["008/02", "046/01", "999/99", "800/01", "046/01"],
        "CommittedDate": ["2021-03-04", "04/03/2021", "4 Mar 2021", "31/02/2021", "2021-04-01"],
        "LSOA": ["E01", "E02", "E01", "E02", "E02"],
        "HowReported": ["999", "PATROL", "101", "ONLINE", "101"],
    }
)
_NOMINAL = [
    "OccurrenceRef",
    "NominalRef",
    "InvolvementRole",
    "Surname",
    "Forenames",
    "DOB",
    "Sex",
    "OfficerDefinedEthnicity",
    "HomeLSOA",
]
NOMINALS = pd.DataFrame(
    [
        ["OC1", "N1", "OFFENDER", "JONES", "Dafydd", "1990-05-17", "M", "IC1", "E01"],
        ["OC1", "N2", "VICTIM", "EVANS", "Sian", "12/08/1985", "F", "IC9", "E01"],
        ["OC2", "N3", "SUSPECT", "JONES", "Dafyd", "1990-05-17", "M", "IC1", "E01"],
        ["OC2", "N4", "WITNESS", "PRICE", "Tom", "1970-01-01", "M", "IC1", "E02"],
        ["OC3", "N1", "OFFENDER", "JONES", "Dafydd", "1990-05-17", "M", "IC1", "E01"],
        ["OC4", "N2", "VICTIM", "EVANS", "Sian", "12/08/1985", "F", "IC9", "E01"],
        ["OC1", "N5", "INFORMANT", "WILLIAMS", "Rhys", "", "M", "IC1", "E02"],
        ["OC2", "N6", "OFFENDER", "MORGAN", "Ffion", "", "F", "IC2", "E02"],
    ],
    columns=_NOMINAL,
)
COUNCIL = pd.DataFrame(
    {
        "CaseRef": ["C1", "C2"],
        "PersonRef": ["P1", "P2"],
        "FullName": ["Sian Evans", "JONES, Dafydd"],
        "DateOfBirth": ["1985-08-12", ""],
        "Gender": ["Female", "Male"],
        "HomeLSOA": ["E01", "E01"],
        "ReportedOn": ["2021-05-01", "02/06/2021"],
        "Category": ["ASB1", "ASB2"],
        "PartyRole": ["Victim", "Perpetrator"],
    }
)
PROVIDERS = pd.DataFrame(
    {
        "Provider": ["DRIVE"],
        "ClientID": ["K1"],
        "FirstName": ["Dafydd"],
        "LastName": ["Jones"],
        "DOB": ["17/05/1990"],
        "SelfDefinedEthnicity": ["W1"],
        "Tier": ["Tier 2"],
        "StartDate": ["2021-07-01"],
        "EndDate": ["2021-12-01"],
        "Outcome": ["Completed"],
    }
)
LSOA = pd.DataFrame(
    {
        "LSOA": ["E01", "E02"],
        "LocalAuthority": ["Cardiff", "Cardiff"],
        "Population": ["1500", "1600"],
        "WIMDRank": ["10", "900"],
    }
)
HARM = pd.DataFrame(
    {"HOOffenceCode": ["008/02", "046/01", "800/01", "ASB1", "ASB2"], "Weight": ["4", "0.25", "0.25", "0.25", "1"]}
)
TABLES = {
    "police_occurrences": OCCURRENCES,
    "police_nominals": NOMINALS,
    "provider_cases": PROVIDERS,
    "lsoa_lookup": LSOA,
    "harm_weights": HARM,
}


def write_extracts(folder: Path, mapping_text: str | None = None) -> Path:
    """The extracts and the worked example mapping (or `mapping_text`) in `folder`; returns the mapping file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in TABLES.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    COUNCIL.to_excel(folder / "council_asb.xlsx", sheet_name="cases", index=False)
    mapping = folder / "mapping.yaml"
    if mapping_text is None:
        shutil.copy(EXAMPLE, mapping)
    else:
        mapping.write_text(mapping_text)
    return mapping
