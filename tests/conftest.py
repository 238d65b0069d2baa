"""Shared fixtures: small generated worlds (built once per session, per worker) and a hand-written data set; how
the modules share the CPUs under pytest-xdist (the README's test command runs a worker per usable CPU, at most
`MAX_WORKERS`)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest

from riskloop.artifacts.scores import Counts, DataRef, Manifest, ModelRef, UnitCounts
from riskloop.experiments.store import configure_tracking
from riskloop.features.snapshot import SnapshotConfig
from riskloop.models.contract import Bands, ModelContract
from riskloop.models.fairness import AuditConfig
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world

MAX_WORKERS = 4  # each worker builds the session's worlds and stores again


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per CPU this process may use (the affinity mask and a cgroup quota, as riskloop
    counts them), at most `MAX_WORKERS`."""
    return min(MAX_WORKERS, joblib.cpu_count())


def pytest_configure(config: pytest.Config) -> None:
    """With pytest-xdist's workers, each gets its share of the CPUs' threads (`RISKLOOP_THREADS`, where a test
    sets no thread count of its own), so that two workers' LightGBM and OpenMP threads do not both spread over
    every CPU. Set here, in the process that starts the workers, so that they inherit it before they import
    riskloop; a value the user set stays."""
    workers = getattr(config.option, "numprocesses", None)
    if workers:
        os.environ.setdefault("RISKLOOP_THREADS", str(max(1, joblib.cpu_count() // workers)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In xdist's workers: the modules with slow tests first, each module's tests kept together and in order.
    `--dist loadfile --no-loadscope-reorder` hands the modules to the workers in about this order (two to each
    at the start), so the long ones start early and none is left running alone at the end."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
        items.sort(key=lambda item: item.path not in slow_modules)


def make_world(path: Path, people: int, seed: int) -> Path:
    write_world(simulate(WorldConfig(people=people, seed=seed)), path)
    return path


@pytest.fixture(scope="session")
def world_20k(tmp_path_factory) -> Path:
    """A 20,000-person world, 2019-2025: calibration and feature tests."""
    return make_world(tmp_path_factory.mktemp("world20k"), 20_000, seed=11)


@pytest.fixture(scope="session")
def crossing_world(world_20k, tmp_path_factory) -> Path:
    """The 20k world with 3% of people moved to an area of another local authority, so that incidents and
    households cross the Spark engine's partitions (co-involvement and household features must still come out
    exact)."""
    folder = tmp_path_factory.mktemp("crossing-world") / "data"
    shutil.copytree(world_20k, folder, ignore=shutil.ignore_patterns("truth", "_quarantine"))
    areas, people = pd.read_parquet(folder / "areas.parquet"), pd.read_parquet(folder / "people.parquet")
    moved = np.random.default_rng(5).random(len(people)) < 0.03
    la_of = areas.set_index("area_id")["local_authority"]
    other = [areas.loc[areas["local_authority"] != la_of[a], "area_id"].iloc[0] for a in people.loc[moved, "area_id"]]
    people.loc[moved, "area_id"] = other
    people.to_parquet(folder / "people.parquet", index=False)
    return folder


def hand_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid data set, as a partner would send it (all cells as text)."""
    areas = pd.DataFrame(
        {
            "area_id": ["A1", "A2"],
            "local_authority": ["Cardiff", "Swansea"],
            "population": ["1500", "1700"],
            "deprivation_rank": ["1", "2"],
        }
    )
    people = pd.DataFrame(
        {
            "person_id": ["p1", "p2", "p3"],
            "area_id": ["A1", "A1", "A2"],
            "birth_date": ["1990-05-01", "1985-01-20", "2008-03-03"],
            "sex": ["M", "F", "M"],
            "ethnicity": ["White", "Black", "Asian"],
        }
    )
    incidents = pd.DataFrame(
        {
            "incident_id": ["i1", "i1", "i2", "i3"],
            "person_id": ["p1", "p2", "p1", "p3"],
            "date": ["2023-02-01", "2023-02-01", "2023-06-10", "2023-07-01"],
            "type": ["domestic_abuse", "domestic_abuse", "violence_with_injury", "asb"],
            "role": ["perpetrator", "victim", "suspect", "perpetrator"],
            "harm": ["4.5", "4.5", "9", "0.5"],
        }
    )
    interventions = pd.DataFrame(
        {
            "intervention_id": ["v1"],
            "person_id": ["p1"],
            "programme": ["drive"],
            "start_date": ["2023-03-01"],
            "tier": ["tertiary"],
            "end_date": ["2023-12-01"],
            "completed": ["true"],
        }
    )
    return {"areas": areas, "people": people, "incidents": incidents, "interventions": interventions}


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


TODAY = date(2026, 1, 1)


@pytest.fixture(scope="session")
def tracking_dir(tmp_path_factory) -> Path:
    """One SQLite MLflow store for the session (creating one costs seconds of migrations), created from inside
    its folder: its Default experiment keeps its artifacts there (`./mlruns` as the store's creator sees it),
    whichever test uses the store first."""
    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").get_experiment("0")
    return folder


def _use_store(patch: pytest.MonkeyPatch, folder: Path) -> None:
    """Point MLflow (this process and its children) at `folder`'s SQLite store; `patch` undoes the environment."""
    patch.chdir(folder)
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        patch.setenv(variable, f"sqlite:///{folder / 'mlflow.db'}")
    configure_tracking()


@contextmanager
def own_store(folder: Path):
    """Run inside `folder` with an MLflow SQLite store of its own (for module-scoped fixtures); MLflow's
    URIs are put back afterwards, so no later client finds this store."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as patch:
        _use_store(patch, folder)
        yield folder
        mlflow.set_tracking_uri(previous[0])  # inside the patch: leaving it then restores the environment these write
        mlflow.set_registry_uri(previous[1])


@pytest.fixture
def mlflow_store(tracking_dir, monkeypatch) -> Path:
    """Run the test inside the session's MLflow folder with its SQLite store."""
    _use_store(monkeypatch, tracking_dir)
    return tracking_dir


@pytest.fixture(scope="session")
def escalation_run(world_20k):
    """One small escalation experiment on the 20k world (logistic, LightGBM, prior harm; 3 splits)."""
    import dataclasses

    from riskloop.experiments.config import load_config, with_data
    from riskloop.jobs.model import model_data
    from riskloop.pipelines.train import train

    config = with_data(load_config(Path(__file__).parent.parent / "experiments" / "escalation.yaml"), world_20k)
    config = dataclasses.replace(
        config,
        name="esc-session",
        threads=2,
        models=dataclasses.replace(
            config.models,
            lightgbm={"num_leaves": [15], "n_estimators": [300], "learning_rate": [0.05], "min_child_samples": [50]},
        ),
    )
    data = model_data(config)
    return config, data, train(data, config)


def hand_contract() -> ModelContract:
    """A complete model contract for a model on two features (`age`, `priors`)."""
    return ModelContract(
        name="escalation",
        registered_model="riskloop-escalation",
        model_group="toy",
        snapshot=SnapshotConfig(),
        features=("age", "priors"),
        categorical=(),
        protected=("sex",),
        protected_as_features=(),
        audit=AuditConfig(),
        capacity=0.05,
        band_cuts=tuple(i / 20 for i in range(1, 20)),
        bands=Bands(),
        training_window=(date(2022, 1, 1), date(2023, 1, 1)),
        calibration_window=(date(2023, 7, 1), date(2023, 7, 1)),
        test_window=(date(2024, 7, 1), date(2024, 7, 1)),
        data_fingerprint="fp-123",
        config_hash="cfg",
        riskloop_version="0.1.0",
    )


def hand_manifest(as_of: date, units: dict[str, UnitCounts]) -> Manifest:
    """The manifest of a scores folder made by hand (the model `riskloop-escalation` v3)."""
    cohort, listed = sum(u.cohort for u in units.values()), sum(u.listed for u in units.values())
    return Manifest(
        riskloop_version="0.1.0",
        scored_at="2025-07-02T03:00:00+00:00",
        as_of=as_of,
        model=ModelRef("riskloop-escalation", "3", "run-abc", "models:/riskloop-escalation@champion"),
        contract=hand_contract(),
        data=DataRef("world", "fp-123", date(2025, 12, 31), "_quarantine/ in the data set folder"),
        counts=Counts({}, cohort, cohort, listed, units, True),
        capacity={"kind": "places per unit", "places": 10},
        engine="local",
        runtime_seconds=0.1,
    )
