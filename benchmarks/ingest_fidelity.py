"""What `riskloop ingest` reproduces of a world (issue 35's acceptance), through the commands a user runs:
`riskloop generate`, `riskloop export-extracts`, `riskloop ingest` with the worked example mapping. Against the
exporter's truth (`_truth/`): linkage precision and recall (pairwise, over the records ingested), the world's
people, incidents and interventions found in the contract, and the features at an as-of date of every person
whose records all landed in one cluster of their own (the truth's birth dates cut to the month, as the
ingest writes them, so what differs is what linkage and quarantine changed).

Usage: python benchmarks/ingest_fidelity.py [PEOPLE=20000] [WORLD_SEED=6061] [EXPORT_SEED=17] [AS_OF=2024-01-01]
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import now

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot
from riskloop.ingest.transform import record_ids
from riskloop.simulation.accuracy import pairwise_accuracy, read_truth_records

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "riskloop.cli"]
#: the exporter's source names -> the worked example mapping's feeds about people
SOURCES = {"police": "police_nominals", "council": "council_asb", "provider": "provider_cases"}


def run(*args: str, env: dict[str, str] | None = None) -> float:
    t0 = now()
    subprocess.run([*CLI, *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return now() - t0


def main(people: int, world_seed: int, export_seed: int, as_of: date) -> None:
    key = secrets.token_hex(32)
    with tempfile.TemporaryDirectory() as tmp:
        world, extracts, out = Path(tmp, "world"), Path(tmp, "extracts"), Path(tmp, "contract")
        run("generate", "--out", str(world), "--people", str(people), "--seed", str(world_seed))
        run("export-extracts", "--data", str(world), "--out", str(extracts), "--seed", str(export_seed))
        shutil.copy(ROOT / "docs" / "examples" / "ingest" / "mapping.yaml", extracts / "mapping.yaml")
        seconds = run(
            "ingest",
            "--mapping",
            str(extracts / "mapping.yaml"),
            "--out",
            str(out),
            env={**os.environ, "RISKLOOP_PSEUDONYM_KEY": key},
        )
        ingested = read_dataset(out)
        link = pd.read_parquet(out / "_private" / "link_table.parquet")
        records = read_truth_records(extracts).assign(source=lambda f: f["source"].map(SOURCES))
        linked = records.merge(
            link[["source", "source_id", "cluster_key", "person_id"]],
            on=["source", "source_id"],
            suffixes=("_world", ""),
        )
        accuracy = pairwise_accuracy(
            link[["source", "source_id", "cluster_key"]],
            linked[["source", "source_id", "person_id_world"]].rename(columns={"person_id_world": "person_id"}),
        )
        truth = {
            n: pd.read_parquet(extracts / "_truth" / "contract" / f"{n}.parquet")
            for n in ("areas", "people", "incidents", "interventions")
        }
        # a world person maps to an ingested one when all their records (and only theirs) form one written cluster
        by_person = linked.groupby("person_id_world")["person_id"].agg(["nunique", "first"])
        by_cluster = linked.groupby("person_id")["person_id_world"].nunique()
        whole = by_person[(by_person["nunique"] == 1) & by_person["first"].map(by_cluster).eq(1)]
        whole = whole[whole["first"].isin(ingested.people["person_id"])]
        world_people = truth["people"]["person_id"].nunique()
        recorded = linked["person_id_world"].nunique()
        print(f"{people:,} people (world seed {world_seed}), extracts seed {export_seed}; ingest {seconds:.1f} s")
        print(f"linkage over the records ingested: precision {accuracy.precision:.4f}, recall {accuracy.recall:.4f}")
        print(
            f"world people in the extracts {recorded:,} of {world_people:,}; written as exactly one contract person "
            f"{len(whole):,} ({len(whole) / recorded:.1%}); contract people {len(ingested.people):,}"
        )
        ours = set(ingested.incidents["incident_id"])
        ids = truth["incidents"]["incident_id"].astype(str).drop_duplicates()
        found = np.zeros(len(ids), bool)
        for source in ("police_nominals", "council_asb"):  # an incident's id: the keyed hash of its agency reference
            found |= record_ids(source + ":" + ids, key.encode(), "i").isin(ours).to_numpy()
        print(f"incidents: {found.mean():.1%} of the world's {len(ids):,} found in the contract")
        # an intervention has no single agency reference: found when its person, programme and start date are
        to_ours = whole["first"]
        world_iv = (
            truth["interventions"].assign(person_id=lambda f: f["person_id"].map(to_ours)).dropna(subset=["person_id"])
        )
        key_columns = ["person_id", "programme", "start_date"]
        ours_iv = ingested.interventions.assign(start_date=lambda f: pd.to_datetime(f["start_date"]))
        world_iv = world_iv.assign(start_date=lambda f: pd.to_datetime(f["start_date"]))
        matched = world_iv.merge(ours_iv[key_columns].drop_duplicates(), on=key_columns, how="left", indicator=True)
        print(
            f"interventions: world {len(truth['interventions']):,}, contract {len(ingested.interventions):,}; of the "
            f"{len(world_iv):,} of people written whole, {(matched['_merge'] == 'both').mean():.1%} found"
        )
        # features at the as-of date, world (birth dates cut to the month) against ingested, person by person
        cut = Path(tmp, "world_cut")
        cut.mkdir()
        shutil.copy(world / "dataset.json", cut / "dataset.json")
        month = lambda f: pd.to_datetime(f["birth_date"]).dt.to_period("M").dt.to_timestamp()  # noqa: E731
        for name, frame in {**truth, "people": truth["people"].assign(birth_date=month)}.items():
            frame.to_parquet(cut / f"{name}.parquet", index=False)
        world_data = read_dataset(cut)
        config = SnapshotConfig()
        ours_snap = build_snapshot(PreparedData.from_dataset(ingested), as_of, config).set_index("person_id")
        world_snap = build_snapshot(PreparedData.from_dataset(world_data), as_of, config).set_index("person_id")
        pairs = whole.reset_index()[["person_id_world", "first"]]
        pairs = pairs[pairs["person_id_world"].isin(world_snap.index) & pairs["first"].isin(ours_snap.index)]
        features = [
            c for c in world_snap.columns if c in ours_snap.columns and pd.api.types.is_numeric_dtype(world_snap[c])
        ]
        a = world_snap.loc[pairs["person_id_world"], features].to_numpy(float)
        b = ours_snap.loc[pairs["first"], features].to_numpy(float)
        same = np.isclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)
        own = np.array([not f.startswith(("area_", "la_")) for f in features])  # the person's own, not their area's
        print(
            f"the person's own {own.sum()} features: identical rows {same[:, own].all(axis=1).mean():.1%}, values "
            f"{same[:, own].mean():.2%}; area features (rates over everyone's incidents): values {same[:, ~own].mean():.2%}"
        )
        in_world_cohort = len(world_snap)
        print(
            f"features at {as_of}: cohort world {in_world_cohort:,}, ingested {len(ours_snap):,}; "
            f"{len(pairs):,} people compared on {len(features)} numeric features: identical rows "
            f"{same.all(axis=1).mean():.1%}, identical values {same.mean():.2%}"
        )
        worst = pd.Series(1 - same.mean(axis=0), index=features).sort_values(ascending=False).head(5)
        print("features that differ most (share of people):", ", ".join(f"{k} {v:.1%}" for k, v in worst.items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    defaults = ["20000", "6061", "17", "2024-01-01"]
    people, world_seed, export_seed, as_of = args + defaults[len(args) :]
    main(int(people), int(world_seed), int(export_seed), date.fromisoformat(as_of))
