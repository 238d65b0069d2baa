"""The API's response bodies (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict


class Health(BaseModel):
    status: str
    model_loaded: bool
    scores_as_of: date | None


class Person(BaseModel):
    """One person's row of the batch output; `reasons` are the non-empty reason_1..reason_3."""

    person_id: str
    area_id: str
    local_authority: str
    unit: str
    rank: int
    listed: bool
    risk: float
    band: int
    band_label: str
    prevention_tier: str
    reasons: list[str]
    model_name: str
    model_version: str
    run_id: str
    data_fingerprint: str
    as_of: date
    scored_at: str


class ListPage(BaseModel):
    """A page of a local authority's listed people in rank order."""

    local_authority: str
    total: int
    page: int
    page_size: int
    pages: int
    people: list[Person]


class Prediction(BaseModel):
    """One scored feature row: the pyfunc's output columns."""

    model_config = ConfigDict(extra="allow")
    risk: float
    band: int
    band_label: str


class Predictions(BaseModel):
    predictions: list[Prediction]


class ScoresModel(BaseModel):
    """The model behind the batch scores, from the score folder's manifest.json."""

    name: str
    version: str
    run_id: str
    uri: str
    as_of: date
    data_fingerprint: str | None = None
    riskloop_version: str | None = None
    contract: Any = None
    counts: dict[str, Any] | None = None


class LiveModel(BaseModel):
    """The model behind POST /invocations; metrics are absent when its MLflow run cannot be read."""

    uri: str
    name: str | None
    version: str | None
    run_id: str | None
    metrics: dict[str, float] | None


class ModelInfo(BaseModel):
    scores: ScoresModel | None
    live: LiveModel | None
