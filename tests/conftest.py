"""Shared fixtures: small generated worlds (built once per session) and a hand-written data set."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from riskloop.experiments.store import configure_tracking
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world


def make_world(path: Path, people: int, seed: int) -> Path:
    write_world(simulate(WorldConfig(people=people, seed=seed)), path)
    return path


@pytest.fixture(scope="session")
def world_20k(tmp_path_factory) -> Path:
    """A 20,000-person world, 2019-2025: calibration and feature tests."""
    return make_world(tmp_path_factory.mktemp("world20k"), 20_000, seed=11)


def hand_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid data set, as a partner would send it (all cells as text)."""
    areas = pd.DataFrame({"area_id": ["A1", "A2"], "local_authority": ["Cardiff", "Swansea"],
                          "population": ["1500", "1700"], "deprivation_rank": ["1", "2"]})
    people = pd.DataFrame({"person_id": ["p1", "p2", "p3"], "area_id": ["A1", "A1", "A2"],
                           "birth_date": ["1990-05-01", "1985-01-20", "2008-03-03"],
                           "sex": ["M", "F", "M"], "ethnicity": ["White", "Black", "Asian"]})
    incidents = pd.DataFrame({"incident_id": ["i1", "i1", "i2", "i3"], "person_id": ["p1", "p2", "p1", "p3"],
                              "date": ["2023-02-01", "2023-02-01", "2023-06-10", "2023-07-01"],
                              "type": ["domestic_abuse", "domestic_abuse", "violence_with_injury", "asb"],
                              "role": ["perpetrator", "victim", "suspect", "perpetrator"],
                              "harm": ["4.5", "4.5", "9", "0.5"]})
    interventions = pd.DataFrame({"intervention_id": ["v1"], "person_id": ["p1"], "programme": ["drive"],
                                  "start_date": ["2023-03-01"], "tier": ["tertiary"],
                                  "end_date": ["2023-12-01"], "completed": ["true"]})
    return {"areas": areas, "people": people, "incidents": incidents, "interventions": interventions}


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


TODAY = date(2026, 1, 1)


@pytest.fixture(scope="session")
def tracking_dir(tmp_path_factory) -> Path:
    """One SQLite MLflow store for the session (creating one costs seconds of migrations)."""
    return tmp_path_factory.mktemp("mlflow")


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
    from riskloop.jobs.model import model_data as load_model_data
    from riskloop.pipelines.train import train

    config = with_data(load_config(Path(__file__).parent.parent / "experiments" / "escalation.yaml"), world_20k)
    config = dataclasses.replace(config, name="esc-session", threads=2, models=dataclasses.replace(
        config.models, lightgbm={"num_leaves": [15], "n_estimators": [300], "learning_rate": [0.05],
                                 "min_child_samples": [50]}))
    data = load_model_data(config)
    return config, data, train(data, config)
