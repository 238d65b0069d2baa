"""The pyfunc behind POST /invocations, loaded once, with its registry version and run metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.types import Schema

REASONS = {"reasons": 3}


class ModelError(ValueError):
    """A model the server cannot serve, in one line."""


def _registry_version(uri: str) -> tuple[str | None, str | None]:
    """(name, version) for models:/NAME/VERSION and models:/NAME@ALIAS URIs, else (None, None)."""
    if not uri.startswith("models:/"):
        return None, None
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        try:
            return name, MlflowClient().get_model_version_by_alias(name, alias).version
        except MlflowException:
            return name, None
    name, _, version = rest.partition("/")
    return (name, version) if version else (None, None)


def _run_metrics(run_id: str | None) -> dict[str, float] | None:
    if run_id is None:
        return None
    try:
        return dict(MlflowClient().get_run(run_id).data.metrics)
    except (MlflowException, OSError):
        return None


@dataclass(frozen=True)
class LoadedModel:
    uri: str
    pyfunc: Any  # mlflow.pyfunc.PyFuncModel
    schema: Schema
    name: str | None
    version: str | None
    run_id: str | None
    metrics: dict[str, float] | None

    @classmethod
    def load(cls, uri: str) -> "LoadedModel":
        pyfunc = mlflow.pyfunc.load_model(uri)
        schema = pyfunc.metadata.get_input_schema()
        if schema is None or not schema.has_input_names():
            raise ModelError(f"{uri} has no column-based input signature: /invocations could not check requests")
        run_id = pyfunc.metadata.run_id
        name, version = _registry_version(uri)
        return cls(uri, pyfunc, schema, name, version, run_id, _run_metrics(run_id))

    @property
    def label(self) -> str:
        """What the audit log records: the registry version, else the URI."""
        return self.version or self.uri

    def predict(self, frame: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        return self.pyfunc.predict(frame, params={**REASONS, **params})
