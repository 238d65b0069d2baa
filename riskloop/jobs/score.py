"""The scoring job: a registered model scores everyone in the cohort at T into prioritisation lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from riskloop.artifacts.scores import SCORES_WRITES, Unit
from riskloop.experiments.registry import load_model
from riskloop.features.io import check_replaceable
from riskloop.jobs.common import Engine, Progress, no_progress, open_dataset
from riskloop.pipelines.score import cohort_snapshot, prepare_for_scoring, require_data_set_model
from riskloop.serving.batch import ScoreOutcome, score_to_lists
from riskloop.serving.capacity import Capacity


@dataclass(frozen=True)
class ScoreJob:
    model: str  # model URI, e.g. models:/riskloop-escalation@champion
    data: str  # a data set folder (with Spark, any URI Spark reads)
    as_of: date
    out: Path  # the scores folder (replaced as a whole)
    capacity: str | None = None  # a CSV (unit,places), places per unit, or a share; default the model's
    per: Unit = "local_authority"
    seed: int = 0  # the tie-break hash's seed (equal risks)
    engine: Engine = Engine.local
    spark_master: str | None = None
    shadow: str | None = None  # a model URI scored beside `model` into shadow.parquet (never listed)


def score(job: ScoreJob, progress: Progress = no_progress) -> ScoreOutcome:
    """Score, rank within each unit, fill its places and write the scores folder atomically (advisory lists
    with reasons, the manifest with the model version, data fingerprint and counts that reconcile)."""
    check_replaceable(job.out, SCORES_WRITES, "riskloop score")  # before the work, not only at the write
    loaded = load_model(job.model)
    places = Capacity.parse(job.capacity, loaded.contract.capacity)
    if job.engine is Engine.spark:
        from riskloop.spark import spark_score_to_lists, spark_session
        from riskloop.spark.session import explained_failures

        if job.shadow is not None:
            raise ValueError(
                "--shadow scores with the local engine only; score the shadow model without --engine spark"
            )
        progress(f"scoring the cohort at {job.as_of} on Spark", None, None)
        spark = spark_session(job.spark_master)
        with explained_failures():
            return spark_score_to_lists(spark, loaded, job.data, job.as_of, job.out, places, job.per, job.seed)
    require_data_set_model(loaded.contract)
    return score_to_lists(
        loaded,
        open_dataset(Path(job.data)),  # handed over: its tables are let go once prepared
        job.as_of,
        job.out,
        places,
        job.per,
        job.seed,
        progress=lambda done, total: progress("rows", done, total),
        shadow=None if job.shadow is None else load_model(job.shadow),
    )


def invocation_example(model: str, data: Path, as_of: date, rows: int) -> dict:
    """A POST /invocations body (`dataframe_split`) of the first `rows` people in the cohort at `as_of`: the
    model's input columns only (no pseudonym), numbers as numbers (missing as null), categories as text."""
    loaded = load_model(model)
    contract = loaded.contract
    prepared = prepare_for_scoring(contract, open_dataset(data), as_of)
    columns = loaded.scorer.input_columns
    frame = cohort_snapshot(contract, prepared, as_of).head(rows)[columns]
    text = {c for c in columns if c in contract.categorical or c not in contract.features}
    cells = [[None if pd.isna(v) else str(v) if c in text else float(v) for v in frame[c]] for c in columns]
    return {"dataframe_split": {"columns": columns, "data": [list(row) for row in zip(*cells)]}}
