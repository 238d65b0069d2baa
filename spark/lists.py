"""Scoring to prioritisation lists on Spark (`riskloop score --engine spark`): the local engine's output folder.

Each group scores its cohort with the local engine's `cohort_snapshot` + `score_frame`; ranking runs per unit
on (unit, person, risk, score) with `serving.capacity.rank_within`, and the prioritisation rows come from
`serving.batch.list_rows` (reasons for the listed only). Each unit's rows are written by rank in one part (no
sort across parts); the driver streams them unit by unit into one `prioritisation.parquet`, and collects the
listed rows and per-unit counts.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from riskloop.artifacts.scores import REASONS, Counts, Unit, write_scores
from riskloop.experiments.registry import LoadedModel
from riskloop.features.catalogue import FeatureSpec
from riskloop.pipelines.score import (
    ScoredCohort,
    cohort_snapshot,
    missing_features_error,
    score_frame,
    scoring_programmes,
)
from riskloop.serving.batch import (
    ScoreOutcome,
    ScoringError,
    list_rows,
    manifest,
    short_history_warning,
    uncalibrated_groups_warning,
    unit_column,
)
from riskloop.serving.capacity import Capacity, rank_within
from riskloop.spark.contract import SparkData, validate_on_spark
from riskloop.spark.groups import KEY
from riskloop.spark.partitions import (
    as_output,
    grouped,
    partition_context,
    prepared_partition,
    snapshot_columns,
    spark_catalogue,
    spark_schema,
)
from riskloop.spark.storage import assemble_groups, staged

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_LIST_SCHEMA = (
    "person_id string, area_id string, local_authority string, unit string, rank long, listed boolean, "
    "risk double, band long, band_label string, prevention_tier string, "
    + ", ".join(f"{r} string" for r in REASONS)
    + ", model_name string, model_version string, run_id string, data_fingerprint string, "
    "as_of timestamp_ntz, scored_at string"
)


def _scored(
    spark: SparkSession, data: SparkData, loaded: LoadedModel, catalogue: list[FeatureSpec], as_of: date, unit: str
) -> DataFrame:
    """Every cohort member's features and scores (grouped by local authority), with its `unit`."""
    from pyspark.sql import functions as F

    missing = [f for f in loaded.contract.features if f not in {s.name for s in catalogue}]
    if missing:
        raise missing_features_error(missing)
    columns = snapshot_columns(data, loaded.contract.data_set_snapshot, catalogue) + [
        ("score", "double"),
        ("risk", "double"),
        ("band", "long"),
        ("band_label", "string"),
    ]
    shared = spark.sparkContext.broadcast((partition_context(data, [as_of]), loaded.scorer))

    def score_group(rows: pd.DataFrame) -> pd.DataFrame:
        ctx, scorer = shared.value  # deserialised once per Python worker
        snapshot = cohort_snapshot(scorer.contract, prepared_partition(rows, ctx), as_of)
        if snapshot.empty:
            return pd.DataFrame({name: pd.Series(dtype=object) for name, _ in columns})
        scores = score_frame(scorer, snapshot)
        for column in scores.columns:
            snapshot[column] = scores[column].to_numpy()
        return as_output(snapshot, columns)

    scored = grouped(data).groupBy(KEY).applyInPandas(score_group, spark_schema(columns))
    return scored.withColumn("unit", F.col(unit).cast("string"))


def spark_score_to_lists(
    spark: SparkSession,
    loaded: LoadedModel,
    data_uri: str,
    as_of: date,
    out_dir: Path,
    capacity: Capacity,
    per: Unit = "local_authority",
    seed: int = 0,
    staging: str | None = None,
) -> ScoreOutcome:
    """`serving.batch.score_to_lists` on Spark: the same output folder (prioritisation.parquet, lists, manifest)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.perf_counter()
    if loaded.contract.snapshot is None:
        raise ScoringError(
            f"model '{loaded.contract.registered_model}' was trained on a person-level table: it "
            "scores rows of that table, not a riskloop data set"
        )
    if loaded.contract.snapshot.incidents != "all":
        raise ScoringError(
            f"model '{loaded.contract.registered_model}' was trained on reported incidents only: "
            "score it with the local engine (the Spark engine builds features from every incident)"
        )
    data = validate_on_spark(spark, data_uri)
    data.report.require_rows(data_uri, "areas", "people", "incidents")
    data.check_coverage([as_of])
    data = dataclasses.replace(data, programmes=scoring_programmes(loaded.contract, data.programmes))
    catalogue = spark_catalogue(data, loaded.contract.snapshot)
    scored = _scored(spark, data, loaded, catalogue, as_of, unit_column(per)).persist(StorageLevel.MEMORY_AND_DISK)
    within = loaded.scorer.within.columns if loaded.scorer.within is not None else ()
    counted: pd.DataFrame = scored.groupBy("unit", *within).count().toPandas()  # with the groups it is calibrated in
    sizes = counted.groupby("unit")["count"].sum().sort_index()
    if sizes.empty:
        raise ScoringError(
            f"no one is in the cohort at {as_of}: no valid incident in the "
            f"{loaded.contract.snapshot.lookback_days} days before it"
        )
    places = capacity.for_units(sizes.rename_axis(None))
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    cohort = ScoredCohort(pd.DataFrame(), as_of, loaded.contract, data.fingerprint)
    shared = spark.sparkContext.broadcast((loaded, catalogue, cohort, places.to_dict()))

    def list_unit(rows: pd.DataFrame) -> pd.DataFrame:
        """One unit's people ranked, its places filled, its prioritisation rows (reasons for the listed only)."""
        loaded_, catalogue_, cohort_, places_ = shared.value
        rows = rows.reset_index(drop=True)
        rank = rank_within(rows["unit"], rows["risk"].to_numpy(), rows["score"].to_numpy(), rows["person_id"], seed)
        listed = rank <= places_[rows["unit"].iloc[0]]
        out = list_rows(rows, rows["unit"], rank, listed, loaded_, catalogue_, cohort_, scored_at)
        out = out.sort_values("rank", ignore_index=True)
        return pd.DataFrame(
            {
                c: out[c].to_numpy(dtype=object)
                if out[c].dtype.kind in "OTU" or pd.api.types.is_string_dtype(out[c])
                else out[c].to_numpy()
                for c in out.columns
            }
        ).assign(as_of=pd.Timestamp(as_of))

    rows = (
        scored.groupBy("unit")
        .applyInPandas(list_unit, _LIST_SCHEMA)
        .withColumn("as_of", F.to_date("as_of"))
        .persist(StorageLevel.MEMORY_AND_DISK)  # listed once: the write and the counts both read it
    )
    with staged("prioritisation", out_dir, staging) as parts:
        rows.write.mode("overwrite").parquet(parts)  # each unit in one part, by rank: assemble_groups orders units
        units: pd.DataFrame = (
            rows.groupBy("unit")
            .agg(F.count(F.lit(1)).alias("cohort"), F.sum(F.col("listed").cast("long")).alias("listed"))
            .toPandas()
        )
        listed: pd.DataFrame = rows.where("listed").toPandas()
        listed_rows = listed.sort_values(["unit", "rank"], ignore_index=True)
        units = units.set_index("unit").sort_index().rename_axis(None)
        counts = pd.DataFrame({"cohort": units["cohort"], "places": places, "listed": units["listed"]})
        draft = manifest(
            loaded,
            as_of,
            scored_at,
            Path(data_uri.rstrip("/")).name,
            data.fingerprint,
            data.end,
            Counts.of(data.report, int(sizes.sum()), int(units["cohort"].sum()), counts),
            capacity,
            per,
            seed,
            started,
            engine="spark",
        )
        written_manifest = write_scores(
            out_dir, draft, per, lambda path: assemble_groups(parts, path, "unit"), listed_rows
        )
    rows.unpersist()
    scored.unpersist()
    warnings = short_history_warning(
        data.first_incident, as_of, loaded.contract.snapshot.lookback_days
    ) + uncalibrated_groups_warning(loaded.scorer, counted, counted["count"].to_numpy())
    return ScoreOutcome(Path(out_dir), written_manifest, warnings)
