"""The local engine per group: people grouped by local authority, each group's rows as `PreparedData`.

Two inputs cross groups and are computed once by Spark: the rows of other people in each group's incidents
(co-involvement) and the population's incident counts by small area and type (area and local-authority
rates), summed from each batch by `features.snapshot.count_by_area`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from riskloop.features.catalogue import FeatureSpec, build_catalogue
from riskloop.features.snapshot import ID_COLUMNS, PreparedData, SnapshotConfig, count_by_area, snapshot_protected
from riskloop.features.validate import Dataset, ValidationReport
from riskloop.features.vocabulary import INCIDENT_TYPES
from riskloop.spark.contract import SparkData
from riskloop.spark.groups import CARRIED_NAMES, KEY, PERSON_AREA

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_KIND = "_kind"  # which table a row of a group comes from


@dataclass(frozen=True)
class PartitionContext:
    """What every group needs besides its own rows: broadcast once."""

    areas: pd.DataFrame
    programmes: tuple[str, ...]
    area_counts: dict[int, np.ndarray]
    end: date
    fingerprint: str
    people_columns: tuple[str, ...]
    incident_columns: tuple[str, ...]
    intervention_columns: tuple[str, ...]


def day_number(t: date) -> int:
    return int(np.datetime64(t, "D").astype(np.int64))


def other_groups_rows(incidents: DataFrame) -> DataFrame:
    """For each group, the rows of other groups' people in its incidents (co-involvement), from incidents
    keyed by their person's group: one window over incidents."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    groups = F.collect_set(KEY).over(Window.partitionBy("incident_id"))
    return (
        incidents.select("incident_id", "person_id", "date", KEY, groups.alias("_groups"))
        .where(F.size("_groups") > 1)
        .select(
            F.explode("_groups").alias("_with"),
            KEY,
            "incident_id",
            F.col("person_id").alias("_other_person"),
            F.col("date").alias("_other_date"),
        )
        .where(F.col("_with") != F.col(KEY))
        .drop(KEY)
        .withColumnRenamed("_with", KEY)
    )


def grouped(data: SparkData) -> DataFrame:
    """One frame of every group's rows (`_kind`: people, incidents, others, interventions), keyed by `KEY`: the
    valid rows carry their person's group from validation (`groups.CARRIED`)."""
    from pyspark.sql import functions as F

    people, incidents, interventions = (data.valid[t] for t in ("people", "incidents", "interventions"))
    parts = [
        people.withColumn(_KIND, F.lit("people")),
        incidents.drop(PERSON_AREA).withColumn(_KIND, F.lit("incidents")),
        other_groups_rows(incidents).withColumn(_KIND, F.lit("others")),
        interventions.drop(PERSON_AREA).withColumn(_KIND, F.lit("interventions")),
    ]
    frame = parts[0]
    for part in parts[1:]:
        frame = frame.unionByName(part, allowMissingColumns=True)
    return frame


def _area_counts(data: SparkData, days: list[int]) -> dict[int, np.ndarray]:
    """The population's incident counts by small area and type (`features.snapshot.area_counts`) for each
    as-of day: summed from each batch's counts by the same function, collected as (2, areas, types)."""
    from pyspark.sql import functions as F

    n_areas, n_types = len(data.areas), len(INCIDENT_TYPES)
    area_codes = pd.Index(data.areas["area_id"])
    rows = data.valid["incidents"].select("date", "type", F.col(PERSON_AREA).alias("area_id"))

    def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            day = batch["date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
            area = area_codes.get_indexer(batch["area_id"])
            kind = pd.Index(INCIDENT_TYPES).get_indexer(batch["type"]).astype(np.int64)
            for t in days:
                counts = count_by_area(area, day, kind, n_areas, t).ravel()
                cell = np.flatnonzero(counts)
                yield pd.DataFrame({"t": t, "cell": cell, "n": counts[cell]})

    summed: pd.DataFrame = (
        rows.mapInPandas(count, "t long, cell long, n long").groupBy("t", "cell").agg(F.sum("n").alias("n")).toPandas()
    )
    out = {}
    for t in days:
        flat = np.zeros(2 * n_areas * n_types, dtype=np.int64)
        mine = summed[summed["t"] == t]
        flat[mine["cell"].to_numpy()] = mine["n"].to_numpy()
        out[t] = flat.reshape(2, n_areas, n_types)
    return out


def partition_context(data: SparkData, as_of_dates: list[date]) -> PartitionContext:
    columns = {
        t: tuple(c for c in data.valid[t].columns if c not in CARRIED_NAMES)
        for t in ("people", "incidents", "interventions")
    }
    return PartitionContext(
        data.areas,
        data.programmes,
        _area_counts(data, [day_number(t) for t in as_of_dates]),
        data.end,
        data.fingerprint,
        columns["people"],
        columns["incidents"],
        columns["interventions"],
    )


def prepared_partition(rows: pd.DataFrame, ctx: PartitionContext) -> PreparedData:
    """A group's rows as the local engine's `PreparedData` (plus what crosses groups)."""
    kind = rows[_KIND]

    def table(name: str, columns: tuple[str, ...]) -> pd.DataFrame:
        """The group's rows of a table in file order, as the local engine holds them (sums add up alike)."""
        return rows.loc[kind == name, list(columns)].sort_values("_row").reset_index(drop=True)

    others = rows.loc[kind == "others", ["incident_id", "_other_person", "_other_date"]]
    others = others.set_axis(["incident_id", "person_id", "date"], axis=1).reset_index(drop=True)
    dataset = Dataset(
        ctx.areas,
        table("people", ctx.people_columns),
        table("incidents", ctx.incident_columns),
        table("interventions", ctx.intervention_columns),
        ctx.fingerprint,
        ctx.end,
        ValidationReport({}),
    )
    return PreparedData.from_dataset(dataset, ctx.programmes, others, ctx.area_counts)


def spark_catalogue(data: SparkData, config: SnapshotConfig) -> list[FeatureSpec]:
    """`PreparedData.catalogue` of the whole data set."""
    return build_catalogue(data.programmes, config.windows, households="household_id" in data.valid["people"].columns)


def snapshot_columns(data: SparkData, config: SnapshotConfig, catalogue: list[FeatureSpec]) -> list[tuple[str, str]]:
    """(name, Spark type) of `build_snapshot`'s columns: ids, features, label, protected columns."""
    protected = snapshot_protected(config, disability="disability" in data.valid["people"].columns)
    return (
        [(name, "timestamp_ntz" if name == "as_of" else "string") for name in ID_COLUMNS]
        + [(spec.name, "double") for spec in catalogue]
        + [("label", "double")]
        + [(name, "string") for name in protected]
    )


def spark_schema(columns: list[tuple[str, str]]) -> str:
    return ", ".join(f"`{name}` {kind}" for name, kind in columns)


def as_output(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> pd.DataFrame:
    """The frame's columns in the declared order and types (text as plain objects: one Arrow chunk)."""
    return pd.DataFrame(
        {
            name: frame[name].to_numpy(dtype=float)
            if kind == "double"
            else frame[name].to_numpy(dtype=object)
            if kind == "string"
            else frame[name].to_numpy()
            for name, kind in columns
        }
    )
