"""Snapshots on Spark (`riskloop features --engine spark`): `features.snapshot.build_snapshots` per group,
written as one snapshot file. Imports nothing from serving."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from riskloop.artifacts.snapshots import snapshot_metadata
from riskloop.features.catalogue import FeatureSpec
from riskloop.features.io import atomic_path
from riskloop.features.snapshot import ID_COLUMNS, SnapshotConfig, SnapshotMeta, build_snapshot
from riskloop.spark.contract import validate_on_spark
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
from riskloop.spark.storage import assemble, staged

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_snapshots(
    spark: SparkSession,
    data_uri: str,
    as_of_dates: list[date],
    config: SnapshotConfig,
    out_file: Path,
    staging: str | None = None,
) -> tuple[SnapshotMeta, list[FeatureSpec], pd.DataFrame]:
    """`build_snapshots` on Spark, written as one snapshot file; returns (meta, catalogue, rows per as-of)."""
    from pyspark.sql import functions as F

    data = validate_on_spark(spark, data_uri)
    data.report.require_rows(data_uri, "areas", "people")
    dates = sorted(set(as_of_dates))
    data.check_coverage(dates)
    ctx = partition_context(data, dates)
    catalogue = spark_catalogue(data, config)
    columns = snapshot_columns(data, config, catalogue)
    shared = spark.sparkContext.broadcast(ctx)

    def build_group(rows: pd.DataFrame) -> pd.DataFrame:
        prepared = prepared_partition(rows, shared.value)
        frames = [build_snapshot(prepared, t, config) for t in dates]
        return as_output(pd.concat(frames, ignore_index=True), columns)

    snapshots = (
        grouped(data).groupBy(KEY).applyInPandas(build_group, spark_schema(columns)).orderBy("as_of", "person_id")
    )
    with staged("snapshot", out_file, staging) as parts:
        snapshots.write.mode("overwrite").parquet(parts)
        written = spark.read.parquet(parts)
        per_date: pd.DataFrame = (
            written.groupBy("as_of")
            .agg(
                F.count(F.lit(1)).alias("cohort"),
                F.count("label").alias("labelled"),
                F.mean("label").alias("positive_rate"),
            )
            .orderBy("as_of")
            .toPandas()
        )
        meta = SnapshotMeta(
            features=tuple(s.name for s in catalogue),
            protected=tuple(name for name, _ in columns if name in config.protected),
            ids=ID_COLUMNS,
            label=config.label,
            horizon_days=config.horizon_days,
            harm_threshold=config.harm_threshold,
            as_of=tuple(t.isoformat() for t in dates),
            data_fingerprint=data.fingerprint,
            unlabelled_rows=int((per_date["cohort"] - per_date["labelled"]).sum()),
        )
        with atomic_path(out_file) as tmp:
            assemble(parts, tmp, snapshot_metadata(meta))
    return meta, catalogue, per_date
