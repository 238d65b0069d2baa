"""End to end: a generated world exported as messy agency extracts, ingested with the worked example mapping,
gives a valid contract data set close to the world's own (the exporter's truth)."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest

from riskloop.artifacts.dataset import read_dataset
from riskloop.ingest.transform import record_ids
from riskloop.jobs.ingest import IngestJob, ingest
from riskloop.simulation.accuracy import pairwise_accuracy, read_truth_records
from riskloop.simulation.export import export_extracts
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world
from tests.ingest_extracts import EXAMPLE, KEY

pytestmark = pytest.mark.slow
#: the exporter's source names -> the worked example mapping's (the feeds about people)
SOURCES = {"police": "police_nominals", "council": "council_asb", "provider": "provider_cases"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest_world")
    write_world(
        simulate(WorldConfig(people=3000, seed=5, start=date(2021, 1, 1), end=date(2023, 12, 31))), root / "world"
    )
    export_extracts(root / "world", root / "extracts", seed=5)
    shutil.copy(EXAMPLE, root / "extracts" / "mapping.yaml")
    return root


def test_the_worked_example_ingests_the_exported_extracts(exported, monkeypatch):
    monkeypatch.setenv("RISKLOOP_PSEUDONYM_KEY", KEY)
    done = ingest(IngestJob(exported / "extracts" / "mapping.yaml", exported / "out"))
    assert all(f.reconciles for f in done.summary.feeds)
    data = read_dataset(exported / "out")
    assert data.report.quarantined == 0
    truth = {
        n: pd.read_parquet(exported / "extracts" / "_truth" / "contract" / f"{n}.parquet")
        for n in ("incidents", "interventions")
    }
    assert len(data.incidents) >= 0.9 * len(truth["incidents"])
    assert len(data.interventions) >= 0.85 * len(truth["interventions"])
    # an incident ingested says what the world's says (its id is the keyed hash of the agency's reference)
    ours = data.incidents.drop_duplicates("incident_id").set_index("incident_id")
    world = truth["incidents"].drop_duplicates("incident_id")
    for source in ("police_nominals", "council_asb"):
        world = world.assign(**{source: record_ids(source + ":" + world["incident_id"], KEY.encode(), "i")})
    world["ours"] = world["police_nominals"].where(world["police_nominals"].isin(ours.index), world["council_asb"])
    found = world[world["ours"].isin(ours.index)]
    assert len(found) >= 0.9 * len(world)
    mine = ours.loc[found["ours"]].reset_index(drop=True)
    found = found.reset_index(drop=True).assign(date=lambda f: pd.to_datetime(f["date"]))
    for column in ("date", "type", "harm"):
        assert (mine[column] == found[column].astype(mine[column].dtype)).mean() >= 0.99, column
    assert set(data.interventions["programme"]) == set(truth["interventions"]["programme"])
    # the codes the exporter leaves unmapped are listed, with their counts, for the mapping to be completed
    assert "999/99" in set(done.summary.unmapped["value"])
    # linkage on what was ingested, against who each record really is
    link = pd.read_parquet(exported / "out" / "_private" / "link_table.parquet")
    records = read_truth_records(exported / "extracts").assign(source=lambda f: f["source"].map(SOURCES))
    records = records.merge(link[["source", "source_id"]], on=["source", "source_id"])
    accuracy = pairwise_accuracy(link[["source", "source_id", "cluster_key"]], records)
    assert accuracy.precision >= 0.9 and accuracy.recall >= 0.9, accuracy
    # the same extracts and key give the same pseudonyms (a person keeps theirs month to month)
    again = ingest(IngestJob(exported / "extracts" / "mapping.yaml", exported / "again"))
    assert again.counts == done.counts
    pd.testing.assert_frame_equal(read_dataset(exported / "again").people, data.people)
