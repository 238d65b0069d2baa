"""The ingest: a mapping file validated in one line, every source row accounted for, pseudonyms at the edge,
personal data only in the private folder, and lists re-identified only with the right key."""

from __future__ import annotations

import os
import re
import shutil
import stat
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskloop.artifacts.dataset import read_dataset
from riskloop.cli import app
from riskloop.features.io import DataError
from riskloop.ingest.linkage import Linkage
from riskloop.ingest.mapping import MappingError, PeopleRules, Source, load_mapping
from riskloop.ingest.sources import read_source, read_sources
from riskloop.ingest.transform import (
    build_contract,
    harm_lookup,
    parse_dates,
    person_records,
    reconcile_people,
    split_full_name,
    transform_feed,
)
from riskloop.jobs.ingest import IngestJob, ReidentifyJob, ingest, reidentify
from tests.ingest_extracts import EXAMPLE, KEY, NOMINALS, PERSONAL, write_extracts

runner = CliRunner()


@pytest.fixture(autouse=True)
def _key(monkeypatch) -> None:
    monkeypatch.setenv("RISKLOOP_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ingest")
    os.environ["RISKLOOP_PSEUDONYM_KEY"] = KEY
    try:
        done = ingest(IngestJob(write_extracts(folder / "extracts"), folder / "out"))
    finally:
        del os.environ["RISKLOOP_PSEUDONYM_KEY"]
    return done


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    return write_extracts(tmp_path, EXAMPLE.read_text().replace(old, new, 1))


def test_an_unknown_key_is_one_line(tmp_path):
    mapping = _edited(tmp_path, "    harm_code: HOOffenceCode", "    harm_codes: HOOffenceCode")
    with pytest.raises(MappingError, match=r"^mapping.yaml: incidents\[0\]: unknown key 'harm_codes'$"):
        load_mapping(mapping)


def test_a_typo_in_a_required_key_names_the_typo(tmp_path):
    mapping = _edited(tmp_path, "date_formats:", "date_format:")
    with pytest.raises(MappingError, match="^mapping.yaml: unknown key 'date_format'$"):
        load_mapping(mapping)


def test_a_value_outside_the_contract_vocabulary_is_one_line(tmp_path):
    mapping = _edited(tmp_path, "VICTIM: victim", "VICTIM: injured_party")
    with pytest.raises(MappingError, match=r"incidents\[0\]\.values\.role: 'injured_party' is not a contract role"):
        load_mapping(mapping)


def test_a_source_named_but_not_declared_is_one_line(tmp_path):
    mapping = _edited(tmp_path, "  - source: council_asb", "  - source: council_log")
    with pytest.raises(MappingError, match=r"incidents\[1\]\.source: 'council_log' is not one of the declared"):
        load_mapping(mapping)


def test_a_missing_column_is_one_line_before_any_work(tmp_path):
    mapping = _edited(tmp_path, "last_name: Surname", "last_name: Surnam")
    out = tmp_path / "out"
    with pytest.raises(
        DataError, match=r"incidents\[0\]\.person\.last_name: source police_nominals has no column 'Surnam'"
    ):
        ingest(IngestJob(mapping, out))
    assert not out.exists()


def test_no_key_is_one_line_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("RISKLOOP_PSEUDONYM_KEY")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="no pseudonym key: set RISKLOOP_PSEUDONYM_KEY"):
        ingest(IngestJob(write_extracts(tmp_path), out))
    assert not out.exists()


def test_each_source_kind_reads_as_text(tmp_path, monkeypatch):
    frame = pd.DataFrame({"Ref": ["A1", "A2"], "Count": pd.array([3, None], dtype="Int64"), "Name": [" Sian ", ""]})
    frame.to_csv(tmp_path / "x.csv", index=False)
    frame.to_parquet(tmp_path / "x.parquet")
    frame.to_excel(tmp_path / "x.xlsx", sheet_name="cases", index=False)
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    frame.to_sql("cases", engine, index=False)
    engine.dispose()
    monkeypatch.setenv("CASES_DB", f"sqlite:///{tmp_path / 'x.db'}")
    declared = {
        "csv": {"file": "x.csv"},
        "parquet": {"file": "x.parquet"},
        "excel": {"file": "x.xlsx", "sheet": "cases"},
        "table": {"database": {"url_env": "CASES_DB", "table": "cases"}},
        "query": {"database": {"url_env": "CASES_DB", "query": "select * from cases"}},
    }
    for name, spec in declared.items():
        read = read_source(name, Source.model_validate(spec, context={"base": tmp_path}))
        assert list(read["Ref"]) == ["A1", "A2"], name
        assert read["Name"].iloc[0] == "Sian" and pd.isna(read["Name"].iloc[1]), name
        assert read["Count"].iloc[0] == "3" and pd.isna(read["Count"].iloc[1]), name


def test_a_file_that_is_not_utf8_is_one_line_saying_so(tmp_path):
    (tmp_path / "x.csv").write_bytes("Ref,Name\nA1,Siân\n".encode("cp1252"))
    source = Source.model_validate({"file": "x.csv"}, context={"base": tmp_path})
    with pytest.raises(
        DataError, match=r"^source police: x.csv is not UTF-8 text \(it holds the byte 0xe2\): save it as UTF-8"
    ):
        read_source("police", source)


def test_a_missing_database_variable_is_one_line_without_the_url(monkeypatch):
    monkeypatch.delenv("POLICE_DB", raising=False)
    source = Source.model_validate({"database": {"url_env": "POLICE_DB", "table": "nominals"}})
    with pytest.raises(DataError, match="^source police: set the environment variable POLICE_DB"):
        read_source("police", source)
    monkeypatch.setenv("POLICE_DB", "postgresql://user:secret@127.0.0.1:1/none")
    with pytest.raises(DataError) as caught:
        read_source("police", source)
    assert "secret" not in str(caught.value) and "POLICE_DB" in str(caught.value)
    monkeypatch.setenv("POLICE_DB", "sqlite://")  # reachable, without the table: the error names the source
    with pytest.raises(DataError, match="^source police: cannot read table dbo.nominals"):
        read_source("police", Source.model_validate({"database": {"url_env": "POLICE_DB", "table": "dbo.nominals"}}))


def test_every_row_is_ingested_excluded_or_quarantined(ingested):
    feeds = {f.feed: f for f in ingested.summary.feeds}
    assert all(f.reconciles for f in feeds.values())
    police = feeds["incidents[0]"]
    assert police.read == len(NOMINALS)
    assert police.excluded == {"InvolvementRole 'WITNESS'": 1}
    assert police.quarantined["unmapped HOOffenceCode value"] == 1
    assert police.quarantined["no harm weight for code"] == 1
    assert police.quarantined["unmapped InvolvementRole value"] == 1
    assert police.quarantined["unparseable date in CommittedDate"] == 1
    assert police.quarantined["person not written: no birth date in any linked record"] == 1
    unmapped = ingested.summary.unmapped
    assert set(zip(unmapped["column"], unmapped["value"])) == {
        ("HOOffenceCode", "999/99"),
        ("InvolvementRole", "INFORMANT"),
    }
    joins = ingested.summary.joins.iloc[0]
    assert (joins["source"], joins["rows"], joins["not joined"]) == ("police_occurrences", 5, 1)  # OC5: nobody on it
    quarantine = pd.read_csv(ingested.out / "_private" / "quarantine" / "incidents_0_police_nominals.csv")
    assert len(quarantine) == police.quarantined_rows
    assert quarantine.loc[quarantine["OccurrenceRef"] == "OC3", "reason"].iloc[0] == (
        "unmapped HOOffenceCode value '999/99'; no harm weight for code '999/99'"
    )


def test_the_contract_data_set_is_valid_and_pseudonymised(ingested):
    data = read_dataset(ingested.out)
    assert data.report.quarantined == 0
    assert len(data.incidents) == ingested.counts["incidents"] > 0
    assert data.people["person_id"].str.fullmatch(r"p[0-9a-f]{24}").all()
    assert data.incidents["incident_id"].str.fullmatch(r"i[0-9a-f]{24}").all()
    assert (data.people["birth_date"].dt.day == 1).all()  # the month of birth, never the day
    assert set(data.incidents["harm"]) <= {4.0, 0.25, 1.0}
    assert set(data.incidents["attention"].dropna()) <= {"reported", "proactive"}


def test_no_personal_data_outside_the_private_folder(ingested):
    shared = [p for p in ingested.out.rglob("*") if p.is_file() and "_private" not in p.parts]
    assert {p.name for p in shared} >= {"people.parquet", "incidents.parquet", "ingest_report.html", "dataset.json"}
    for path in shared:
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).astype(str).to_csv()
        else:
            text = re.sub(r"data:image/png;base64,[^\"]+", "", path.read_text())
        found = [value for value in PERSONAL if value in text]
        assert not found, f"{path.name} holds {found}"
    link = pd.read_parquet(ingested.out / "_private" / "link_table.parquet")
    assert {"Dafydd", "EVANS"} <= set(link["first_name"]) | set(link["last_name"])


def test_the_private_folder_is_the_teams_only(ingested):
    private = ingested.out / "_private"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    for path in private.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def test_reidentify_gives_the_list_its_source_ids_with_the_right_key_only(ingested, tmp_path, monkeypatch):
    people = read_dataset(ingested.out).people
    lists = tmp_path / "lists"
    (lists / "Cardiff").mkdir(parents=True)
    pd.DataFrame({"person_id": people["person_id"], "rank": range(1, len(people) + 1)}).to_csv(
        lists / "Cardiff" / "E01.csv", index=False
    )
    out = tmp_path / "reidentified"
    (written,) = reidentify(ReidentifyJob(lists, ingested.out, out))
    assert written == out / "Cardiff" / "E01.csv"
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE((out / "Cardiff").stat().st_mode) == 0o700
    back = pd.read_csv(written)
    assert set(back.columns) == {"person_id", "rank", "source", "source_id"}
    assert set(back["person_id"]) == set(people["person_id"])
    assert "N1" in set(back["source_id"])
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    monkeypatch.setenv("RISKLOOP_PSEUDONYM_KEY", "w" * 40)
    with pytest.raises(DataError, match="not the one this link table was made with"):
        reidentify(ReidentifyJob(lists, ingested.out, tmp_path / "other"))


def test_reidentify_writes_nowhere_it_would_overwrite_a_list_or_sit_beside_the_contract(ingested, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "top.csv").write_text("person_id\np1\n")
    for out, why in [
        (lists / "top.csv", "is a file"),
        (lists, "is inside --lists"),
        (lists / "named", "is inside --lists"),
        (ingested.out / "for_the_team", "is inside --ingest"),
    ]:
        with pytest.raises(DataError, match=why):
            reidentify(ReidentifyJob(lists, ingested.out, out))
    assert (lists / "top.csv").read_text() == "person_id\np1\n" and not (ingested.out / "for_the_team").exists()


def test_the_ingest_report_shows_what_to_complete(ingested):
    html = ingested.report.read_text()
    for text in ("Rows per feed", "Values with no mapping", "999/99", "INFORMANT", "Linking people across agencies"):
        assert text in html
    assert "please report this as a bug" not in html
    assert html.count("data:image/png;base64,") == 1


def test_the_commands(tmp_path):
    mapping = write_extracts(tmp_path / "extracts")
    result = runner.invoke(app, ["ingest", "--mapping", str(mapping), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "rows read = ingested + excluded + quarantined" in result.output
    lists = tmp_path / "lists"
    lists.mkdir()
    pd.read_parquet(tmp_path / "out" / "people.parquet")[["person_id"]].to_csv(lists / "top.csv", index=False)
    result = runner.invoke(
        app, ["reidentify", "--lists", str(lists), "--ingest", str(tmp_path / "out"), "--out", str(tmp_path / "back")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "back" / "top.csv").exists()
    bad = runner.invoke(app, ["ingest", "--mapping", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "mapping file not found" in bad.output


def test_a_killed_ingest_leaves_the_previous_output_whole_or_none(tmp_path, monkeypatch):
    import riskloop.jobs.ingest as job

    mapping, out = write_extracts(tmp_path / "extracts"), tmp_path / "out"

    def killed(text: str, target: Path) -> None:  # dies writing the report, the last file
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(job, "write_text_atomic", killed)
        with pytest.raises(KeyboardInterrupt):
            ingest(IngestJob(mapping, out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extracts"]  # no data set, no personal data left
    ingest(IngestJob(mapping, out))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    stale = out / "_private" / "quarantine" / "incidents_9_gone.csv"  # a quarantine a rerun no longer makes
    stale.write_text("row,reason\n")
    with monkeypatch.context() as patched:
        patched.setattr(job, "write_text_atomic", killed)
        with pytest.raises(KeyboardInterrupt):
            ingest(IngestJob(mapping, out))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p != stale} == before
    ingest(IngestJob(mapping, out))
    assert not stale.exists() and stat.S_IMODE((out / "_private").stat().st_mode) == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extracts", "out"]


def test_a_source_with_only_its_header_reads_no_rows(tmp_path):
    mapping = write_extracts(tmp_path / "extracts")
    (mapping.parent / "provider_cases.csv").write_text(
        (mapping.parent / "provider_cases.csv").read_text().split("\n")[0]
    )
    done = ingest(IngestJob(mapping, tmp_path / "out"))
    provider = next(f for f in done.summary.feeds if f.source == "provider_cases")
    assert (provider.read, provider.ingested, provider.quarantined_rows) == (0, 0, 0)
    assert done.counts["interventions"] == 0 and done.counts["incidents"] > 0


def test_no_row_ingested_says_why_in_one_line(tmp_path):
    mapping = write_extracts(tmp_path / "extracts")
    for name, column in [("police_nominals", "InvolvementRole"), ("provider_cases", "Tier")]:
        frame = pd.read_csv(mapping.parent / f"{name}.csv", dtype=str)
        frame[column] = "NOT_MAPPED"
        frame.to_csv(mapping.parent / f"{name}.csv", index=False)
    council = pd.read_excel(mapping.parent / "council_asb.xlsx", dtype=str).assign(PartyRole="NOT_MAPPED")
    council.to_excel(mapping.parent / "council_asb.xlsx", sheet_name="cases", index=False)
    with pytest.raises(DataError) as caught:
        ingest(IngestJob(mapping, tmp_path / "out"))
    assert str(caught.value) == (
        "mapping.yaml: no row about a person could be ingested (11 read, 0 excluded, 11 quarantined; "
        "most often: unmapped InvolvementRole value (8 rows))"
    )


def test_an_out_that_is_a_file_or_holds_other_files_is_one_line(tmp_path):
    mapping = write_extracts(tmp_path / "extracts")
    with pytest.raises(DataError, match="is a file"):
        ingest(IngestJob(mapping, mapping))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds 'notes.txt', which riskloop ingest does not write"):
        ingest(IngestJob(mapping, tmp_path / "home"))
    assert (tmp_path / "home" / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (.ci/run installs it)")
def test_the_ingest_report_renders_cleanly_in_a_browser(ingested, tmp_path):
    from tests.test_reports_render import browse

    assert browse(ingested.report.read_text(), tmp_path) == []


def test_dates_are_read_with_the_declared_formats_in_order():
    cells = pd.Series(["2021-03-04", "04/03/2021", "4 Mar 2021", "31/02/2021", None], dtype="string")
    parsed = parse_dates(cells, ["%Y-%m-%d", "%d/%m/%Y", "%d %b %Y"])
    assert list(parsed[:3]) == [pd.Timestamp("2021-03-04")] * 3
    assert parsed[3:].isna().all()


def test_a_full_name_is_split_either_way_round():
    first, last = split_full_name(pd.Series(["Sian Evans", "JONES, Dafydd", "Mary Ann Hughes", None]))
    assert list(first[:3]) == ["Sian", "Dafydd", "Mary Ann"] and list(last[:3]) == ["Evans", "JONES", "Hughes"]
    assert pd.isna(first[3]) and pd.isna(last[3])


def test_a_persons_attributes_come_from_the_trusted_source_else_the_most_frequent():
    records = pd.DataFrame(
        {
            "source": ["police", "police", "police", "provider"],
            "source_id": ["N1", "N2", "N3", "K1"],
            "birth_date": pd.to_datetime(["1990-05-17", "1990-05-17", "1990-06-17", None]),
            "sex": ["M", "M", None, None],
            "ethnicity": ["White", "White", "White", "Mixed"],
            "area_id": ["E01", "E02", "E02", None],
        }
    )
    clusters = pd.DataFrame(
        {"source": records["source"], "source_id": records["source_id"], "cluster_key": "police:N1"}
    )
    trusted = reconcile_people(records, clusters, PeopleRules(precedence={"ethnicity": ["provider"]}))
    assert trusted.loc[0, "ethnicity"] == "Mixed"  # self-defined first
    assert trusted.loc[0, "birth_date"] == pd.Timestamp("1990-05-17")  # most frequent
    assert trusted.loc[0, "area_id"] == "E02" and trusted.loc[0, "sex"] == "M"
    assert reconcile_people(records, clusters, PeopleRules()).loc[0, "ethnicity"] == "White"


def test_the_same_involvement_under_two_ids_of_one_person_is_kept_once(tmp_path):
    mapping = load_mapping(write_extracts(tmp_path))
    frames = read_sources(mapping.sources)
    first = frames["police_nominals"].iloc[[0]]
    frames["police_nominals"] = pd.concat([first, first.assign(NominalRef="N9", Forenames="Dafyd")], ignore_index=True)
    key = KEY.encode()
    feeds = [
        transform_feed(
            table, 0, getattr(mapping, table)[0], frames, mapping.date_formats, harm_lookup(mapping, frames), key
        )
        for table in ("areas", "incidents")
    ]
    clusters = pd.DataFrame(
        {"source": "police_nominals", "source_id": ["N1", "N9"], "cluster_key": "police_nominals:N1"}
    )
    linkage = Linkage(clusters, pd.DataFrame(), pd.DataFrame({"size": [2], "clusters": [1]}), pd.DataFrame(), 1, 0.7)
    contract = build_contract(feeds, frames, person_records(feeds), linkage, key, mapping.people, date(2026, 1, 1))
    police = contract.feeds[1]
    assert (police.read, len(police.rows), police.merged, len(police.quarantine)) == (2, 1, 1, 0)
    assert len(contract.tables["incidents"]) == len(contract.tables["people"]) == 1
    assert set(contract.link_table["person_id"]) == set(contract.tables["people"]["person_id"])
