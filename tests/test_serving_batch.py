"""Batch scoring into prioritisation lists: counts reconcile, lists are byte-identical, output is atomic."""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import math
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import weakref
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskloop.artifacts.dataset import read_dataset
from riskloop.artifacts.scores import (
    ADVISORY,
    MANIFEST_ADAPTER,
    FileEntry,
    Manifest,
    Unit,
    UnitCounts,
    lists_reconcile,
    neutralised,
    read_scores,
    restored,
    write_scores,
)
from riskloop.experiments.registry import LoadedModel
from riskloop.features.catalogue import build_catalogue
from riskloop.features.io import recover_folder, sha256_file
from riskloop.features.snapshot import PreparedData, SnapshotConfig, first_record
from riskloop.features.validate import Dataset
from riskloop.models.families import family_of
from riskloop.pipelines.score import cohort_snapshot, score_frame
from riskloop.serving import batch
from riskloop.serving.batch import score_to_lists, short_history_warning, unit_column
from riskloop.serving.capacity import Capacity, CapacityError, rank_within, tie_break
from riskloop.serving.tiers import prevention_tier
from tests.conftest import hand_manifest

AS_OF = date(2025, 7, 1)


@pytest.fixture(scope="module")
def loaded(escalation_run) -> LoadedModel:
    return LoadedModel(
        "models:/riskloop-esc-session@champion", "riskloop-esc-session", "3", "run123", escalation_run[2].scorer
    )


@pytest.fixture(scope="module")
def scored(loaded, world_20k, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "out"
    outcome = score_to_lists(loaded, read_dataset(world_20k), AS_OF, out, Capacity(share=0.05))
    return out, MANIFEST_ADAPTER.dump_python(outcome.manifest, mode="json")


def assert_folder_whole(out: Path) -> dict:
    """The folder is a complete output: every file in the manifest is there with its hash and rows."""
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert sha256_file(out / entry["path"]) == entry["sha256"], entry["path"]
    return manifest


def test_every_scored_person_is_in_the_file_and_counts_reconcile(scored):
    out, manifest = scored
    frame = pd.read_parquet(out / "prioritisation.parquet")
    counts = manifest["counts"]
    assert counts["reconciles"] and counts["scored"] == counts["cohort"] == len(frame)
    for table in counts["tables"].values():
        assert table["read"] == table["valid"] + table["quarantined"]
    for unit, row in counts["units"].items():
        rows = frame[frame["unit"] == unit]
        assert row["cohort"] == len(rows) and row["places"] == math.ceil(0.05 * len(rows))
        assert row["listed"] == rows["listed"].sum() == min(row["places"], len(rows))
        assert sorted(rows["rank"]) == list(range(1, len(rows) + 1))
        assert rows.loc[rows["listed"], "risk"].min() >= rows.loc[~rows["listed"], "risk"].max()
        assert (rows.sort_values("rank")["risk"].diff().dropna() <= 0).all()
    assert frame["person_id"].is_unique and set(frame["prevention_tier"]) <= {"primary", "secondary", "tertiary"}
    assert (frame["model_version"] == "3").all() and (frame["as_of"] == AS_OF).all()
    assert manifest["contract"]["features"] and manifest["model"]["run_id"] == "run123"
    assert sum(f["rows"] for f in manifest["files"] if f["path"].startswith("lists/")) == counts["listed"]


def test_reasons_only_for_the_listed_and_lists_are_ready_for_a_case_meeting(scored):
    out, manifest = scored
    frame = pd.read_parquet(out / "prioritisation.parquet")
    assert (frame.loc[frame["listed"], "reason_1"] != "").all()
    assert (frame.loc[~frame["listed"], ["reason_1", "reason_2", "reason_3"]] == "").all().all()
    la = frame["local_authority"].iloc[0]
    path = out / "lists" / f"{la}.csv"
    assert path.read_text().splitlines()[0] == ADVISORY
    listed = pd.read_csv(path, skiprows=1, keep_default_na=False)
    assert list(listed.columns[-2:]) == ["review_decision", "review_note"] and (listed["review_decision"] == "").all()
    expected = frame[(frame["local_authority"] == la) & frame["listed"]].sort_values("rank")
    assert listed["person_id"].tolist() == expected["person_id"].tolist()


def test_same_inputs_give_byte_identical_lists(scored, loaded, world_20k, tmp_path):
    out, manifest = scored
    again = score_to_lists(loaded, read_dataset(world_20k), AS_OF, tmp_path / "again", Capacity(share=0.05)).manifest
    lists = {f["path"]: f["sha256"] for f in manifest["files"] if f["path"].startswith("lists/")}
    assert lists == {f.path: f.sha256 for f in again.files if f.path.startswith("lists/")}


def test_capacity_from_a_file_a_number_and_per_area(scored, loaded, world_20k, tmp_path):
    out, manifest = scored
    units = list(manifest["counts"]["units"])
    (tmp_path / "places.csv").write_text(
        "local_authority,places\n" + "".join(f"{u},{i}\n" for i, u in enumerate(units))
    )
    by_file = score_to_lists(
        loaded, read_dataset(world_20k), AS_OF, tmp_path / "f", Capacity.parse(str(tmp_path / "places.csv"), 0.05)
    )
    assert [r.listed for r in by_file.manifest.counts.units.values()] == list(range(len(units)))
    per_area = score_to_lists(
        loaded, read_dataset(world_20k), AS_OF, tmp_path / "a", Capacity.parse("2", 0.05), per="area"
    )
    assert per_area.manifest.counts.reconciles
    frame = pd.read_parquet(tmp_path / "a" / "prioritisation.parquet")
    assert frame.groupby("area_id")["listed"].sum().max() == 2 and (frame["unit"] == frame["area_id"]).all()
    assert len(list((tmp_path / "a" / "lists").glob("*/*.csv"))) == frame.loc[frame["listed"], "area_id"].nunique()


@pytest.mark.parametrize(
    "text, message",
    [
        ("0", "whole number of places"),
        ("1.5", "whole number of places"),
        ("lots", "neither a CSV file"),
        ("nowhere.csv", "file not found"),
    ],
)
def test_bad_capacity_is_a_clear_error(text, message):
    with pytest.raises(CapacityError, match=message):
        Capacity.parse(text, 0.05)


def test_capacity_file_must_cover_every_unit(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("local_authority,places\nCardiff,3\n")
    with pytest.raises(CapacityError, match="no places for 1 unit"):
        Capacity.parse(str(path), 0.05).for_units(pd.Series({"Cardiff": 10, "Swansea": 4}))
    path.write_text("local_authority,places\nCardiff,-1\n")
    with pytest.raises(CapacityError, match="row 2: places must be a whole number"):
        Capacity.parse(str(path), 0.05)
    path.write_text("")
    with pytest.raises(CapacityError, match="p.csv cannot be read as a CSV file .EmptyDataError"):
        Capacity.parse(str(path), 0.05)
    with pytest.raises(CapacityError, match="cannot be read as a CSV file .IsADirectoryError"):
        Capacity.parse(str(tmp_path), 0.05)


def test_ties_are_broken_by_a_seeded_hash_not_by_row_order():
    units = pd.Series(["A"] * 4 + ["B"] * 2)
    people = pd.Series(["p1", "p2", "p3", "p4", "q1", "q2"])
    risk = np.array([0.5, 0.5, 0.5, 0.9, 0.1, 0.1])
    score = np.array([0.4, 0.4, 0.45, 0.8, 0.1, 0.1])  # the uncalibrated score separates p3 from p1, p2
    ranks = rank_within(units, risk, score, people, seed=0)
    assert ranks[3] == 1 and ranks[2] == 2 and sorted(ranks[:2]) == [3, 4] and sorted(ranks[4:]) == [1, 2]
    shuffled = [5, 2, 0, 4, 1, 3]
    again = rank_within(
        units[shuffled].reset_index(drop=True),
        risk[shuffled],
        score[shuffled],
        people[shuffled].reset_index(drop=True),
        0,
    )
    assert dict(zip(people[shuffled], again)) == dict(zip(people, ranks))
    assert any((rank_within(units, risk, score, people, seed) != ranks).any() for seed in range(1, 10))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.sampled_from([0.1, 0.5, float("nan")]), st.sampled_from([0.2, 0.3])),
        max_size=40,
    )
)
def test_ranks_are_those_of_sorting_every_row_by_its_hash(rows):
    """Hashing only the rows tied on (unit, risk, score) ranks exactly as sorting everyone by the hash would."""
    units = pd.Series([u for u, _, _ in rows], dtype=object)
    risk = np.array([r for _, r, _ in rows], dtype=float)
    score = np.array([s for _, _, s in rows], dtype=float)
    people = pd.Series([f"p{i}" for i in range(len(rows))])
    order = np.lexsort((tie_break(people, 7), -score, -risk, units.to_numpy()))
    expected = np.empty(len(rows), dtype=np.int64)
    for unit in set(units):
        in_unit = [i for i in order if units[i] == unit]
        expected[in_unit] = np.arange(1, len(in_unit) + 1)
    assert (rank_within(units, risk, score, people, 7) == expected).all()


def test_prevention_tiers_follow_the_documented_rule():
    catalogue = build_catalogue(())
    snapshot = pd.DataFrame(0.0, index=range(5), columns=[s.name for s in catalogue])
    snapshot.loc[1, "perp_theft_count_1095d"] = 1  # emerging
    snapshot.loc[2, ["perp_theft_count_1095d", "susp_drugs_count_1095d"]] = [1, 1]  # two, not worsening
    snapshot.loc[2, ["offending_harm_365d", "offending_harm_1095d"]] = [1.0, 6.0]
    snapshot.loc[3, ["perp_theft_count_1095d", "offending_harm_365d", "offending_harm_1095d"]] = [4, 1.0, 9.0]
    snapshot.loc[4, ["perp_theft_count_1095d", "susp_drugs_count_1095d"]] = [1, 1]  # two, worse this year
    snapshot.loc[4, ["offending_harm_365d", "offending_harm_1095d"]] = [5.0, 6.0]
    tiers = prevention_tier(snapshot, catalogue, SnapshotConfig())
    assert list(tiers) == ["primary", "secondary", "secondary", "tertiary", "tertiary"]
    snapshot.loc[2, "offending_trend_90d"] = 0.5  # a rising trend makes two involvements established
    assert prevention_tier(snapshot, catalogue, SnapshotConfig())[2] == "tertiary"


def test_a_data_set_handed_over_is_let_go_before_the_cohorts_features_are_built(
    loaded, world_20k, tmp_path, monkeypatch
):
    """Scoring all of Wales fits in 3 GiB because the tables read are released once prepared (issue 36)."""
    tables: list[weakref.ref] = []

    def read() -> Dataset:
        dataset = read_dataset(world_20k)
        tables.append(weakref.ref(dataset.incidents))
        return dataset

    released, real = [], batch.score_cohort

    def score_cohort(*args, **kwargs):
        gc.collect()
        released.append(tables[0]() is None)
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "score_cohort", score_cohort)
    score_to_lists(loaded, read(), AS_OF, tmp_path / "out", Capacity(share=0.05))
    assert released == [True]


def test_a_lightgbm_model_reads_the_snapshots_features_where_they_lie(loaded, world_20k):
    """No copy of the feature block on the way to LightGBM, whatever the chunk size (a chunk of rows would
    make it copy them to row order), and the same scores as chunk by chunk."""
    scorer = loaded.scorer
    assert family_of(scorer.pipeline).name == "lightgbm" and scorer.reads_in_place
    snapshot = cohort_snapshot(scorer.contract, PreparedData.from_dataset(read_dataset(world_20k)), AS_OF)
    chunk_copy = 2_000 * len(scorer.features) * 8  # what LightGBM would copy of one chunk of 2,000 rows
    assert len(snapshot) > 2 * 2_000
    tracemalloc.start()
    whole = score_frame(scorer, snapshot, chunk_rows=2_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < chunk_copy / 2, (peak, chunk_copy)
    chunked = pd.concat(
        [score_frame(scorer, snapshot.iloc[start : start + 2_000]) for start in range(0, len(snapshot), 2_000)]
    )
    pd.testing.assert_frame_equal(whole, chunked)


def test_a_run_killed_at_any_moment_leaves_the_previous_output_whole(scored, loaded, world_20k, tmp_path):
    """SIGKILL a real scoring process at several points: the folder is always the previous complete one."""
    out = tmp_path / "scores"
    score_to_lists(loaded, read_dataset(world_20k), AS_OF, out, Capacity(share=0.05))
    before = assert_folder_whole(out)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(loaded))
    script = textwrap.dedent(f"""
        import pickle; from datetime import date; from pathlib import Path
        from riskloop.serving.batch import score_to_lists, unit_column; from riskloop.serving.capacity import Capacity
        from riskloop.artifacts.dataset import read_dataset
        loaded = pickle.loads(Path({str(tmp_path / "model.pkl")!r}).read_bytes())
        score_to_lists(loaded, read_dataset(Path({str(world_20k)!r})), date(2025, 7, 1), Path({str(out)!r}), Capacity(number=7))
        print("done")
    """)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    full = time.perf_counter() - started
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.97):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if not out.exists():  # killed between the two renames: the next run restores the previous folder
            recover_folder(out)
        manifest = assert_folder_whole(out)
        assert manifest["capacity"] in (
            before["capacity"],
            {"kind": "places per unit", "places": 7, "per": "local_authority", "tie_break_seed": 0},
        )


def test_the_lists_come_back_with_the_teams_decisions(scored, tmp_path):
    """`read_scores` gives the manifest as written, who was listed, and the review decisions typed into the lists
    (a quoted note with a '#' in it stays one field)."""
    import shutil

    out = tmp_path / "returned"
    shutil.copytree(scored[0], out)
    path = sorted((out / "lists").glob("*.csv"))[0]
    returned = pd.read_csv(path, skiprows=1, dtype=str, keep_default_na=False)
    returned.loc[0, ["review_decision", "review_note"]] = ["referred", "met # twice, agreed"]
    path.write_text(ADVISORY + "\n" + returned.to_csv(index=False))
    back = read_scores(out)
    assert MANIFEST_ADAPTER.dump_python(back.manifest, mode="json") == scored[1]
    assert back.manifest.as_of == AS_OF and back.listed.sum() == scored[1]["counts"]["listed"]
    decisions = back.reviews.set_index("person_id")["review_decision"]
    first = returned.loc[0, "person_id"]
    assert decisions[first] == "referred" and (decisions.drop(first) == "").all()
    assert len(back.reviews) == scored[1]["counts"]["listed"]


def test_the_api_reads_what_riskloop_score_writes(scored):
    """The batch output is the scoring API's input: every person is found, lists come back in rank order."""
    from riskloop.serving.scores import ScoreStore

    out, manifest = scored
    store = ScoreStore.load(out)
    frame = pd.read_parquet(out / "prioritisation.parquet")
    top = frame[frame["listed"]].iloc[0]
    found = store.person(top["person_id"])
    assert found["risk"] == pytest.approx(top["risk"]) and found["reasons"][0] == top["reason_1"]
    la = top["local_authority"]
    ranks = [store.row(p)["rank"] for p in store.listed(la)]
    assert ranks == sorted(ranks) and len(ranks) == manifest["counts"]["units"][la]["listed"]


def test_a_data_set_without_what_the_features_need_is_a_clear_error(loaded, world_20k, tmp_path):
    import shutil

    from riskloop.models.contract import ContractError

    data = tmp_path / "no_households"
    shutil.copytree(world_20k, data, ignore=shutil.ignore_patterns("truth"))
    people = pd.read_parquet(data / "people.parquet").drop(columns="household_id")
    people.to_parquet(data / "people.parquet")
    with pytest.raises(
        ContractError, match="lacks what they are built from .household features need people.household_id"
    ):
        score_to_lists(loaded, read_dataset(data), AS_OF, tmp_path / "out", Capacity(share=0.05))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kept", ["all but the first programme", "none"])
def test_a_programme_without_rows_in_the_data_scores_as_zero_counts(loaded, world_20k, tmp_path, kept):
    """The model records the programmes its features were built from: an extract in which nobody started one of
    them (or with no interventions at all) gives that programme's features as zeros, where it refused."""
    import shutil

    from riskloop.features.catalogue import prior_count_feature
    from riskloop.pipelines.score import cohort_snapshot, prepare_for_scoring

    programmes = loaded.contract.programmes
    assert len(programmes) >= 2 and any(prior_count_feature(p) in loaded.contract.features for p in programmes)
    data = tmp_path / "data"
    shutil.copytree(world_20k, data, ignore=shutil.ignore_patterns("truth"))
    interventions = pd.read_parquet(data / "interventions.parquet")
    dropped = list(programmes) if kept == "none" else [programmes[0]]
    interventions[~interventions["programme"].isin(dropped)].to_parquet(data / "interventions.parquet")
    dataset = read_dataset(data)
    snapshot = cohort_snapshot(loaded.contract, prepare_for_scoring(loaded.contract, dataset, AS_OF), AS_OF)
    assert (snapshot[[prior_count_feature(p) for p in dropped]] == 0).all().all()
    if kept != "none":  # the programmes still in the data are counted as before
        assert snapshot[prior_count_feature(programmes[1])].sum() > 0
    outcome = score_to_lists(loaded, dataset, AS_OF, tmp_path / "out", Capacity(share=0.05))
    assert outcome.manifest.counts.scored == len(snapshot) > 0


def test_an_empty_cohort_is_one_clear_error_and_writes_nothing(loaded, world_20k, tmp_path):
    """No incident in the lookback: the cohort is no one. Its calibration once raised scikit-learn's own message."""
    import shutil

    data = tmp_path / "quiet"
    shutil.copytree(world_20k, data, ignore=shutil.ignore_patterns("truth"))
    incidents = pd.read_parquet(data / "incidents.parquet")
    when = pd.to_datetime(incidents["date"])
    incidents[(when < pd.Timestamp(AS_OF) - pd.Timedelta(days=1100)) | (when >= pd.Timestamp(AS_OF))].to_parquet(
        data / "incidents.parquet"
    )
    with pytest.raises(batch.ScoringError, match=f"no one is in the cohort at {AS_OF}: no valid incident in the"):
        score_to_lists(loaded, read_dataset(data), AS_OF, tmp_path / "out", Capacity(share=0.05))
    assert not (tmp_path / "out").exists()


def hand_lists(out: Path, people: dict[tuple[str, str], list[str]], per: Unit = "local_authority") -> Manifest:
    """Write a scores folder by hand: `people` gives the listed person ids of each (local authority, area);
    everyone is listed, the last of a unit at risk -0.25 (a negative number stays a number)."""
    frame = pd.DataFrame(
        [
            {"person_id": p, "area_id": area, "local_authority": la, "reason_1": f"=reason of {p}"}
            for (la, area), ids in people.items()
            for p in ids
        ]
    )
    frame["unit"] = frame[unit_column(per)]
    frame["rank"] = frame.groupby("unit").cumcount() + 1
    frame = frame.assign(
        risk=np.where(frame["rank"] == frame.groupby("unit")["rank"].transform("max"), -0.25, 0.5),
        band=3,
        band_label="-high",
        prevention_tier="@tertiary",
        reason_2="",
        reason_3="",
        listed=True,
        model_name="riskloop-escalation",
        model_version="3",
        run_id="run-abc",
        data_fingerprint="fp-123",
        as_of=AS_OF,
        scored_at="2025-07-02T03:00:00+00:00",
    )
    sizes = frame.groupby("unit").size()
    units = {str(u): UnitCounts(int(n), int(n), int(n)) for u, n in sizes.items()}

    def prioritisation(path: Path) -> int:
        frame.to_parquet(path, index=False)
        return len(frame)

    return write_scores(out, hand_manifest(AS_OF, units), per, prioritisation, frame)


def list_files(out: Path, manifest: Manifest) -> list[FileEntry]:
    """The manifest's list entries, after checking they are exactly the CSV files in the folder."""
    lists = [f for f in manifest.files if f.path.startswith("lists/")]
    assert sorted(f.path for f in lists) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv"))
    assert len({f.path.casefold() for f in lists}) == len(lists)
    return lists


def read_list(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, skiprows=1, dtype=str, keep_default_na=False)


def suffix(unit: str) -> str:
    return hashlib.sha256(unit.encode()).hexdigest()[:8]


def test_units_whose_file_names_would_clash_each_get_their_own_list(tmp_path):
    """Names that differ only in what the file-name sanitiser replaces, or in case, or before a '.', once
    wrote one file for two units (one list lost, the path twice in a manifest that still reconciled)."""
    las = ["Swan/sea", "Swan_sea", "Cardiff", "cardiff", "St. Albans", "St. Helens", "Newport", ".."]
    people = {(la, f"A{i}"): [f"p{i}-{k}" for k in range(i + 1)] for i, la in enumerate(las)}
    manifest = hand_lists(tmp_path / "out", people)
    lists = list_files(tmp_path / "out", manifest)
    assert {f.local_authority: f.rows for f in lists} == {la: i + 1 for i, la in enumerate(las)}
    assert {f.local_authority: f.path for f in lists} == {
        "Swan/sea": f"lists/Swan_sea-{suffix('Swan/sea')}.csv",
        "Swan_sea": f"lists/Swan_sea-{suffix('Swan_sea')}.csv",
        "Cardiff": f"lists/Cardiff-{suffix('Cardiff')}.csv",
        "cardiff": f"lists/cardiff-{suffix('cardiff')}.csv",
        "St. Albans": "lists/St. Albans.csv",
        "St. Helens": "lists/St. Helens.csv",
        "Newport": "lists/Newport.csv",
        "..": "lists/_.csv",
    }
    for entry in lists:
        rows = read_list(tmp_path / "out" / entry.path)
        assert (rows["local_authority"] == entry.local_authority).all() and entry.area_id is None
        assert sorted(rows["person_id"]) == sorted(
            people[entry.local_authority, f"A{las.index(entry.local_authority)}"]
        )
    assert manifest.counts.reconciles
    assert sorted(read_scores(tmp_path / "out").reviews["person_id"]) == sorted(sum(people.values(), []))


def test_areas_whose_file_names_would_clash_each_get_their_own_list(tmp_path):
    """Per area: a list per local authority and per area, none sharing a name (a local authority's folder
    never takes another's file name either)."""
    people = {
        ("Cardiff", "A/1"): ["p1"],
        ("Cardiff", "A_1"): ["p2", "p3"],
        ("cardiff", "B"): ["p4"],
        ("Cardiff.csv", "C"): ["p5"],
        ("Newport", "N1"): ["p6"],
    }
    manifest = hand_lists(tmp_path / "out", people, per="area")
    lists = list_files(tmp_path / "out", manifest)
    areas = {f.area_id: f for f in lists if f.area_id is not None}
    assert len(lists) == 9 and sorted(areas) == ["A/1", "A_1", "B", "C", "N1"]
    assert areas["N1"].path == "lists/Newport/N1.csv" and areas["A/1"].path.endswith(f"/A_1-{suffix('A/1')}.csv")
    for (la, area), ids in people.items():
        rows = read_list(tmp_path / "out" / areas[area].path)
        assert areas[area].local_authority == la and rows["person_id"].tolist() == ids
        assert (rows["area_id"] == area).all() and (rows["local_authority"] == la).all()
    assert manifest.counts.reconciles
    returned = read_list(tmp_path / "out" / areas["A_1"].path).assign(review_decision=["referred", ""])
    (tmp_path / "out" / areas["A_1"].path).write_text(ADVISORY + "\n" + returned.to_csv(index=False))
    reviews = read_scores(tmp_path / "out").reviews  # p2 is on Cardiff's list too, undecided there
    assert reviews.set_index("person_id")["review_decision"].to_dict() == {f"p{i}": "" for i in range(1, 7)} | {
        "p2": "referred"
    }


def test_counts_reconcile_only_when_every_unit_has_its_own_list_file():
    units = {"Swan/sea": UnitCounts(5, 2, 2), "Swan_sea": UnitCounts(3, 1, 1), "Newport": UnitCounts(4, 0, 0)}
    own = (
        FileEntry("prioritisation.parquet", "h0", 12),
        FileEntry("lists/Swan_sea-1.csv", "h1", 2, "Swan/sea"),
        FileEntry("lists/Swan_sea-2.csv", "h2", 1, "Swan_sea"),
    )
    assert lists_reconcile(own, units, "local_authority")
    shared = (
        own[0],
        FileEntry("lists/Swan_sea.csv", "h1", 2, "Swan/sea"),
        FileEntry("lists/Swan_sea.csv", "h2", 1, "Swan_sea"),
    )
    assert not lists_reconcile(shared, units, "local_authority")  # what the writer once did
    assert not lists_reconcile(
        (*own[:2], FileEntry("lists/swan_SEA-1.csv", "h2", 1, "Swan_sea")), units, "local_authority"
    )
    assert not lists_reconcile(own[:2], units, "local_authority")
    assert not lists_reconcile((*own, FileEntry("lists/Newport.csv", "h3", 0, "Newport")), units, "local_authority")
    assert not lists_reconcile(
        (*own[:2], FileEntry("lists/Swan_sea-2.csv", "h2", 3, "Swan_sea")), units, "local_authority"
    )


FORMULAS = [
    "=1+2",
    "+44 20",
    "-7",
    "@SUM(A1)",
    "\tx",
    "\rx",
    " =1+2",
    "\u00a0@SUM(A1)",
    "\uff1d1+2",
    " \uff0d7",
    "'=q",
    "''+q",
    "' -q",
    "'plain",
    "plain",
    " plain",
]
#: What a spreadsheet may open as a formula after any leading whitespace (full-width forms too).
STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def test_list_cells_never_open_as_formulas_and_the_decisions_come_back_to_the_right_people(tmp_path):
    """Text cells beginning with = + - @ (or their full-width forms), after any whitespace, or with a tab or
    carriage return get a leading ' (OWASP); numbers stay numbers; prioritisation.parquet stays raw; the
    review decisions map back to the people as scored."""
    out = tmp_path / "out"
    hand_lists(out, {("=LA", "-A"): FORMULAS})
    (entry,) = [f for f in read_scores(out).manifest.files if f.path.startswith("lists/")]
    with open(out / entry.path, newline="", encoding="utf-8") as handle:
        assert handle.readline() == ADVISORY + "\n"
        cells = list(csv.DictReader(handle))
    assert [c["person_id"] for c in cells] == [
        "'=1+2",
        "'+44 20",
        "'-7",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "' =1+2",
        "'\u00a0@SUM(A1)",
        "'\uff1d1+2",
        "' \uff0d7",
        "''=q",
        "'''+q",
        "'' -q",
        "'plain",
        "plain",
        " plain",
    ]
    text = [v for c in cells for k, v in c.items() if k not in ("rank", "risk", "band")]
    assert not [v for v in text if v[:1] in ("\t", "\r") or v.lstrip().startswith(STARTS)]
    assert {c["local_authority"] for c in cells} == {"'=LA"} and {c["area_id"] for c in cells} == {"'-A"}
    assert cells[0]["reason_1"] == "'=reason of =1+2" and cells[0]["band_label"] == "'-high"
    assert [float(c["risk"]) for c in cells[:2]] == [0.5, 0.5] and cells[-1]["risk"] == "-0.250000"
    assert pd.read_parquet(out / "prioritisation.parquet")["person_id"].tolist() == FORMULAS

    returned = read_list(out / entry.path)
    returned["review_decision"] = [f"decided {i}" for i in range(len(returned))]
    returned.loc[0, "person_id"] = "=1+2"  # a spreadsheet that hid the quote it was given
    (out / entry.path).write_text(ADVISORY + "\n" + returned.to_csv(index=False, quoting=csv.QUOTE_ALL))
    decisions = read_scores(out).reviews.set_index("person_id")["review_decision"]
    assert decisions.to_dict() == {p: f"decided {i}" for i, p in enumerate(FORMULAS)}


#: Any text, and text of the characters that matter here.
CELLS = st.text() | st.text(st.sampled_from("'=+-@ \t\r\n\u00a0\u3000\uff1d\uff0b\uff0d\uff20a1"))


@settings(max_examples=500, derandomize=True, deadline=None)
@given(CELLS)
def test_a_neutralised_cell_never_opens_as_a_formula_and_reads_back_as_it_was(cell):
    written = neutralised(cell)
    assert isinstance(written, str) and not (written[:1] in ("\t", "\r") or written.lstrip().startswith(STARTS))
    assert restored(written) == cell
    saved = cell.lstrip("'")  # a spreadsheet saves a cell it opened behind a ' without it
    assert restored(saved) == saved


def test_scoring_warns_when_the_cohorts_lookback_reaches_before_the_data(world_20k):
    prepared = PreparedData.from_dataset(read_dataset(world_20k))
    first = first_record(prepared)
    assert short_history_warning(first, AS_OF, 1095) == ()
    early = first + timedelta(days=400)
    (warning,) = short_history_warning(first, early, 1095)
    assert warning.startswith(
        f"the cohort at {early} looks back 1,095 days, to before the data's first record ({first})"
    )
    assert warning.endswith(f"score on or after {first + timedelta(days=1095)} for full histories")
