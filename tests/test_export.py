"""The agency-extract exporter: the spec'd files, faults at their rates, truth that matches, and linkage of the
exported people measured against that truth (clean: both >= 0.99; with faults: both >= 0.95)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from riskloop.ingest.linkage import LinkageSettings, link_people
from riskloop.simulation.accuracy import pairwise_accuracy, read_truth_records
from riskloop.simulation.export import CLEAN, UNMAPPED_CODE, Faults, export_extracts, harm_weights
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world

COLUMNS = {
    "police_occurrences.csv": ["OccurrenceRef", "HOOffenceCode", "CommittedDate", "LSOA", "HowReported"],
    "police_nominals.csv": [
        "OccurrenceRef",
        "NominalRef",
        "InvolvementRole",
        "Surname",
        "Forenames",
        "DOB",
        "Sex",
        "OfficerDefinedEthnicity",
        "HomeLSOA",
    ],
    "provider_cases.csv": [
        "Provider",
        "ClientID",
        "FirstName",
        "LastName",
        "DOB",
        "SelfDefinedEthnicity",
        "Tier",
        "StartDate",
        "EndDate",
        "Outcome",
    ],
    "lsoa_lookup.csv": ["LSOA", "LocalAuthority", "Population", "WIMDRank"],
    "harm_weights.csv": ["HOOffenceCode", "Weight"],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(simulate(WorldConfig(people=20_000, seed=11)), out)
    return out


@pytest.fixture(scope="module")
def faulty(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("faulty")
    return out, export_extracts(world, out, seed=1)


@pytest.fixture(scope="module")
def clean(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    return out, export_extracts(world, out, seed=1, faults=CLEAN)


def read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name, dtype=str, keep_default_na=False)


def test_the_extracts_have_the_spec_columns(faulty):
    out, export = faulty
    for name, columns in COLUMNS.items():
        assert list(read(out, name).columns) == columns, name
    asb = pd.read_excel(out / "council_asb.xlsx", sheet_name="cases", dtype=str)
    assert list(asb.columns) == [
        "CaseRef",
        "PersonRef",
        "FullName",
        "DateOfBirth",
        "Gender",
        "HomeLSOA",
        "ReportedOn",
        "Category",
        "PartyRole",
    ]
    assert export.counts["council_asb"] == len(asb) > 0


def test_every_extract_id_is_a_truth_record_and_the_other_way_round(faulty):
    out, export = faulty
    truth = read_truth_records(out)
    nominals = read(out, "police_nominals.csv")
    asb = pd.read_excel(out / "council_asb.xlsx", sheet_name="cases", dtype=str)
    provider = read(out, "provider_cases.csv")
    ids = pd.concat(
        [
            pd.DataFrame({"source": "police", "source_id": nominals["NominalRef"]}),
            pd.DataFrame({"source": "council", "source_id": asb["PersonRef"]}),
            pd.DataFrame({"source": "provider", "source_id": provider["ClientID"]}),
        ]
    ).drop_duplicates()
    assert set(map(tuple, ids.to_numpy())) == set(map(tuple, truth[["source", "source_id"]].to_numpy()))
    assert len(export.records) == len(truth)
    per_person = truth.groupby("person_id").size()
    assert per_person.max() >= 3  # some people are under three identifiers or more
    second = truth[truth["source_id"].str.startswith("M")]
    assert (
        len(second) > 0
        and second["person_id"].isin(truth.loc[truth["source_id"].str.startswith("N"), "person_id"]).all()
    )


def test_faults_appear_at_their_rates_and_the_clean_preset_has_none(faulty, clean):
    out, export = faulty
    council = export.records[export.records["source"] == "council"]
    police = export.records[export.records["source"] == "police"]
    assert 0.1 < council["birth_date"].isna().mean() < 0.2
    assert 0.01 < police["birth_date"].isna().mean() < 0.05
    dates = read(out, "police_occurrences.csv")["CommittedDate"]
    assert dates.str.contains("/").any() and dates.str.contains(" ").any() and dates.str.contains("-").any()
    codes = read(out, "police_occurrences.csv")["HOOffenceCode"]
    assert (codes == UNMAPPED_CODE).any() and not codes.isin(harm_weights()["HOOffenceCode"]).all()
    clean_out, clean_export = clean
    assert clean_export.records["birth_date"].notna().all()
    clean_dates = read(clean_out, "police_occurrences.csv")["CommittedDate"]
    assert clean_dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert read(clean_out, "police_occurrences.csv")["HOOffenceCode"].isin(harm_weights()["HOOffenceCode"]).all()


def test_the_truth_contract_is_the_world_with_band_weights(world, faulty):
    out, _ = faulty
    truth = pd.read_parquet(out / "_truth" / "contract" / "incidents.parquet")
    world_incidents = pd.read_parquet(world / "incidents.parquet")
    assert len(truth) == len(world_incidents)
    assert set(truth["harm"]) <= {0.25, 1.0, 4.0, 16.0}
    police = read(out, "police_occurrences.csv")
    weight = dict(zip(harm_weights()["HOOffenceCode"], harm_weights()["Weight"]))
    joined = truth.merge(police, left_on="incident_id", right_on="OccurrenceRef").drop_duplicates("incident_id")
    assert len(joined) > 0 and (joined["HOOffenceCode"].map(weight) == joined["harm"]).all()
    people = pd.read_parquet(out / "_truth" / "contract" / "people.parquet")
    assert set(people["person_id"]) == set(read_truth_records(out)["person_id"])


def test_the_export_is_deterministic_from_the_seed(world, faulty, tmp_path):
    out, _ = faulty
    export_extracts(world, tmp_path, seed=1)
    for name in [*COLUMNS, "_truth/records.csv"]:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.slow
def test_linkage_finds_the_clean_worlds_people(clean):
    out, export = clean
    accuracy = pairwise_accuracy(link_people(export.records, LinkageSettings(seed=1)).clusters, read_truth_records(out))
    # measured 0.998 / 1.000 (world seed 11, export seed 1)
    assert accuracy.precision >= 0.99 and accuracy.recall >= 0.99, accuracy


@pytest.mark.slow
def test_linkage_finds_the_faulty_worlds_people(faulty):
    out, export = faulty
    accuracy = pairwise_accuracy(link_people(export.records, LinkageSettings(seed=1)).clusters, read_truth_records(out))
    # measured 0.980 / 0.984 (world seed 11, export seed 1; 0.982 / 0.968 before stop 47); the goal is 0.95
    assert accuracy.precision >= 0.95 and accuracy.recall >= 0.95, accuracy


def test_pairwise_accuracy_counts_pairs():
    truth = pd.DataFrame(
        {"source": ["a", "a", "b", "b"], "source_id": ["1", "2", "1", "2"], "person_id": ["x", "x", "x", "y"]}
    )
    clusters = truth[["source", "source_id"]].assign(cluster_key=["k", "k", "m", "m"])
    accuracy = pairwise_accuracy(clusters, truth)
    assert (accuracy.true_pairs, accuracy.predicted_pairs, accuracy.real_pairs) == (1, 2, 3)
    with pytest.raises(ValueError, match="no cluster"):
        pairwise_accuracy(clusters.iloc[:3], truth)


def test_the_command_writes_the_extracts_or_fails_in_one_line(world, tmp_path):
    from typer.testing import CliRunner

    from riskloop.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["export-extracts", "--data", str(world), "--out", str(tmp_path / "x"), "--clean"])
    assert done.exit_code == 0, done.output
    assert "council_asb" in done.output and (tmp_path / "x" / "_truth" / "records.csv").is_file()
    assert Faults().missing_dob > CLEAN.missing_dob == 0.0
    failed = runner.invoke(app, ["export-extracts", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "y")])
    assert failed.exit_code == 2 and "not a world written by `riskloop generate`" in failed.output
