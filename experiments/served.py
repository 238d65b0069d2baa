"""The pyfunc behind the scoring API's POST /invocations, loaded once, with its registry version, run metrics
and input columns (their names and types, in riskloop's own terms: serving never sees MLflow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from riskloop.models.group_calibration import GroupValueError

REASONS = {"reasons": 3}


class ModelError(ValueError):
    """A model the server cannot serve, or rows it could not score, in one line."""


@dataclass(frozen=True)
class InputColumn:
    name: str
    kind: str  # double, float, long, integer, boolean, string (or another type MLflow names)
    required: bool


def _registry_version(uri: str) -> tuple[str | None, str | None]:
    """(name, version) for models:/NAME/VERSION and models:/NAME@ALIAS URIs, else (None, None)."""
    if not uri.startswith("models:/"):
        return None, None
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        try:
            return name, str(MlflowClient().get_model_version_by_alias(name, alias).version)  # MLflow gives an int
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
    columns: tuple[InputColumn, ...]
    name: str | None
    version: str | None
    run_id: str | None
    metrics: dict[str, float] | None

    @classmethod
    def load(cls, uri: str) -> LoadedModel:
        try:
            pyfunc = mlflow.pyfunc.load_model(uri)
        except MlflowException as exc:
            raise ModelError(f"'{uri}': {exc.message.splitlines()[0]}") from None
        schema = pyfunc.metadata.get_input_schema()
        if schema is None or not schema.has_input_names():
            raise ModelError(f"{uri} has no column-based input signature: /invocations could not check requests")
        required = set(schema.required_input_names())
        columns = tuple(
            InputColumn(name, kind.name, name in required)
            for name, kind in zip(schema.input_names(), schema.input_types())
        )
        run_id = pyfunc.metadata.run_id
        name, version = _registry_version(uri)
        return cls(uri, pyfunc, columns, name, version, run_id, _run_metrics(run_id))

    @property
    def label(self) -> str:
        """What the audit log records: the registry version, else the URI."""
        return self.version or self.uri

    def predict(self, frame: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        """Scores with three reasons each (or as `params` says); ModelError for rows MLflow's schema refuses and
        for rows without a valid value of a column the model is calibrated within."""
        try:
            return self.pyfunc.predict(frame, params={**REASONS, **params})
        except MlflowException as exc:
            raise ModelError(exc.message) from exc
        except GroupValueError as exc:
            raise ModelError(str(exc)) from exc
