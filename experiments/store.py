"""Where MLflow keeps things: a SQLite store `sqlite:///mlflow.db` in the working directory by default
(artifacts in `./mlruns`); `MLFLOW_TRACKING_URI` overrides it (e.g. an `mlflow server` over HTTP)."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def configure_tracking() -> str:
    # MLflow's tqdm bar ("Downloading artifacts") would break riskloop's one-line-per-step output
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    """The MLflow experiment called `name`, created (artifacts under ./mlruns for SQLite) if new."""
    uri = configure_tracking()
    existing = mlflow.get_experiment_by_name(name)
    if existing:
        return existing.experiment_id
    location = Path("mlruns").resolve().as_uri() if uri.startswith("sqlite:") else None
    return mlflow.create_experiment(name, artifact_location=location)
