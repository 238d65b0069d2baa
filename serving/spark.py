"""The Spark engine: `riskloop score|features --engine spark` for populations beyond one machine.

Spark reads the contract tables (a folder or any URI it reads), validates them with the rules of
`features.validate` (row-local rules on pandas batches, keys and references by joins), and groups
people by local authority (a household stays whole: it goes with its first member's authority). Each
group is one pandas/numpy call of the local engine's own `PreparedData` + `score_cohort` (or
`build_snapshot`), given the two inputs that cross groups, computed once by Spark: other people's
rows in the group's incidents (co-involvement) and the population's incident counts by small area
(area and local-authority rates). Ranking runs per unit on (unit, id, risk, score) only; reasons are
computed for the listed only. The driver collects per-unit counts, the listed rows and the area
counts, never the population. pyspark is imported lazily: core riskloop works without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskloop.experiments.registry import LoadedModel
from riskloop.features.io import DataError, atomic_folder, data_fingerprint
from riskloop.features.schema import CONTRACT, TABLE_NAMES, TableSchema
from riskloop.features.snapshot import (
    ID_COLUMNS, PreparedData, SnapshotConfig, SnapshotMeta, build_snapshot, count_by_area,
)
from riskloop.features.validate import (
    BEFORE_BIRTH, QUARANTINE_DIR, Dataset, TableReport, ValidationReport, duplicate_reason, failure_collector,
    late_failures, parse_table, reference_reason_parts, require_columns, row_failures,
)
from riskloop.features.vocabulary import INCIDENT_TYPES
from riskloop.models.contract import ContractError
from riskloop.pipelines.score import ScoredCohort, cohort_snapshot, score_frame
from riskloop.serving.batch import (
    REASONS, ScoreOutcome, ScoringError, Unit, list_rows, reconciled_counts, unit_column, write_lists, write_manifest,
)
from riskloop.serving.capacity import Capacity, rank_within

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = 'the Spark engine needs pyspark: pip install "riskloop[spark]"'
_SEP = "\x1f"   # joins a row's reasons inside one Arrow cell (no reason text holds it)
_KIND = "_kind"
_KEY = "_key"


def spark_session(master: str | None = None, app: str = "riskloop") -> "SparkSession":
    """A SparkSession (the active one, or a new one on `master`); UTC, Arrow batches of 100k rows."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(INSTALL_HINT) from None
    if master is None or master.startswith("local"):   # workers on this machine run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    for key, value in (("spark.sql.session.timeZone", "UTC"), ("spark.sql.execution.arrow.maxRecordsPerBatch", "100000"),
                       ("spark.sql.execution.arrow.pyspark.enabled", "true")):
        spark.conf.set(key, value)
    return spark


# ---------------------------------------------------------------- reading and validation

def _hadoop_path(spark: "SparkSession", uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _exists(spark: "SparkSession", uri: str) -> bool:
    path, fs = _hadoop_path(spark, uri)
    return bool(fs.exists(path))


def _join(uri: str, name: str) -> str:
    return uri.rstrip("/") + "/" + name


def read_table(spark: "SparkSession", data_uri: str, name: str) -> "DataFrame":
    """NAME.parquet or NAME.csv (all cells as text) under `data_uri`, with each row's 1-based number in `_row`."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType

    found = [f"{name}.{ext}" for ext in ("parquet", "csv") if _exists(spark, _join(data_uri, f"{name}.{ext}"))]
    if len(found) > 1:
        raise DataError(f"{data_uri}: both {found[0]} and {found[1]} are present; keep one")
    if not found:
        raise DataError(f"{data_uri}: missing table '{name}' (expected {name}.parquet or {name}.csv)")
    uri = _join(data_uri, found[0])
    if found[0].endswith(".csv"):
        raw = spark.read.csv(uri, header=True, inferSchema=False, multiLine=True, escape='"')
    else:
        raw = spark.read.parquet(uri)
    # dates arrive as naive timestamps, as pandas reads them (no per-cell date objects)
    raw = raw.select(*[F.col(f.name).cast(TimestampNTZType()) if isinstance(f.dataType, DateType) else F.col(f.name)
                       for f in raw.schema.fields])
    return _with_row_numbers(raw)


def _with_row_numbers(raw: "DataFrame") -> "DataFrame":
    """Number rows 1.. in file order without a pass through Python: per-partition offsets from one count."""
    from pyspark.sql import functions as F

    tagged = raw.withColumn("_pid", F.spark_partition_id()).withColumn("_mid", F.monotonically_increasing_id())
    sizes = sorted(tagged.groupBy("_pid").count().collect())
    offsets, total = {}, 0
    for row in sizes:
        offsets[row["_pid"]] = total
        total += row["count"]
    start = F.create_map(*[x for pid, off in offsets.items() for x in (F.lit(pid), F.lit(off))]) if offsets else None
    within = F.col("_mid") - F.shiftleft(F.col("_pid").cast("long"), 33)
    row = (start[F.col("_pid")] + within + 1) if start is not None else F.lit(1)
    return tagged.withColumn("_row", row.cast("long")).drop("_pid", "_mid")


def _typed_fields(schema: TableSchema, columns: list[str]):
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, TimestampNTZType

    kinds = {"string": StringType(), "date": TimestampNTZType(), "int": DoubleType(), "float": DoubleType(),
             "bool": BooleanType()}
    return [StructField(c.name, kinds[c.kind]) for c in schema.columns if c.name in columns]


def _row_rules(schema: TableSchema, columns: list[str], today: date):
    """mapInPandas body: each batch's typed columns and its row-local reasons (early and late in the order)."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for raw in batches:
            rows = raw["_row"].to_numpy()
            raw = raw[columns].reset_index(drop=True)
            parsed = parse_table(schema, raw)
            early: list = []
            late: list = []
            row_failures(schema, raw, parsed, today, failure_collector(early, raw.index))
            typed = {name: column.values for name, column in parsed.items()}
            late_failures(schema, typed, failure_collector(late, raw.index))
            yield pd.DataFrame({"_row": rows, **{k: v.to_numpy() if v.dtype.kind == "M" else v for k, v in typed.items()},
                                "_early": _joined(early, len(raw)), "_late": _joined(late, len(raw))})
    return run


def _joined(failures: list, n: int) -> np.ndarray:
    """Each row's reasons joined by _SEP (None where none failed)."""
    text = np.full(n, None, dtype=object)
    for mask, reason in failures:
        for i, why in zip(np.flatnonzero(mask.to_numpy()), reason[mask].astype(str)):
            text[i] = why if text[i] is None else text[i] + _SEP + why
    return text


@dataclass
class SparkData:
    """A data set validated by Spark: valid typed tables (cached), report, coverage end, fingerprint."""

    valid: dict[str, "DataFrame"]
    report: ValidationReport
    end: date
    fingerprint: str
    areas: pd.DataFrame          # small: every valid area, in file order (collected once)
    programmes: tuple[str, ...]


def validate_on_spark(spark: "SparkSession", data_uri: str, today: date | None = None,
                      quarantine: bool = True) -> SparkData:
    """Validate the four tables as `features.validate.load_dataset` does; quarantine to `_quarantine/<table>/`."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    today = today or date.today()
    valid: dict[str, DataFrame] = {}
    reports: dict[str, TableReport] = {}
    for schema in CONTRACT:
        raw = read_table(spark, data_uri, schema.name).persist()
        columns = [c for c in raw.columns if c != "_row"]
        require_columns(schema, columns, _join(data_uri, schema.name))
        out_schema = StructType([StructField("_row", LongType()), *_typed_fields(schema, columns),
                                 StructField("_early", StringType()), StructField("_late", StringType())])
        checked = raw.mapInPandas(_row_rules(schema, columns, today), out_schema)
        named = [c.name for c in schema.columns if c.name in columns]
        checks = []
        if all(k in named for k in schema.key):
            together = Window.partitionBy(*schema.key)
            checked = checked.withColumn("_n", F.count(F.lit(1)).over(together))
            not_null = F.lit(True)
            for k in schema.key:
                not_null = not_null & F.col(k).isNotNull()
            checks.append(F.when(not_null & (F.col("_n") > 1), F.lit(duplicate_reason(schema))))
        for i, ref in enumerate(schema.references):
            parent = valid[ref.table].select(F.col(ref.table_column).alias(f"_ref{i}"),
                                             *([F.col("birth_date").alias("_birth")]
                                               if schema.name == "incidents" and ref.table == "people" else []))
            checked = checked.join(parent, F.col(ref.column) == F.col(f"_ref{i}"), "left")
            before, after = reference_reason_parts(ref.column, ref.table)
            checks.append(F.when(F.col(ref.column).isNotNull() & F.col(f"_ref{i}").isNull(),
                                 F.concat(F.lit(before), F.col(ref.column), F.lit(after))))
        if schema.name == "incidents":
            checks.append(F.when(F.col("date") < F.col("_birth"), F.lit(BEFORE_BIRTH)))
        empty = F.array().cast("array<string>")
        reasons = F.concat(F.coalesce(F.split("_early", _SEP), empty), F.array_compact(F.array(*checks, F.lit(None).cast("string"))),
                           F.coalesce(F.split("_late", _SEP), empty))
        checked = checked.withColumn("_reasons", reasons).persist()
        good = checked.where(F.size("_reasons") == 0).select("_row", *named).persist()   # _row: file order
        bad = checked.where(F.size("_reasons") > 0).select("_row", "_reasons")
        rules = {r["rule"]: int(r["count"]) for r in bad.select(F.explode("_reasons").alias("r"))
                 .groupBy(F.substring_index("r", ":", 1).alias("rule")).count().collect()}
        read, quarantined = raw.count(), bad.count()
        counted = good.count()
        reports[schema.name] = TableReport(schema.name, read, counted, quarantined, rules)
        if quarantine:
            _write_quarantine(spark, data_uri, schema.name, raw, bad, columns, quarantined)
        checked.unpersist()
        valid[schema.name] = good
    end = _coverage_end(spark, data_uri) or _last_incident(valid["incidents"]) or today
    areas = valid["areas"].toPandas().sort_values("_row").drop(columns="_row").reset_index(drop=True)
    programmes = tuple(sorted(r["programme"] for r in valid["interventions"].select("programme").distinct().collect()))
    return SparkData(valid, ValidationReport(reports), end, _fingerprint(spark, data_uri), areas, programmes)


def _write_quarantine(spark: "SparkSession", data_uri: str, name: str, raw: "DataFrame", bad: "DataFrame",
                      columns: list[str], rows: int) -> None:
    """`_quarantine/<table>/` (CSV parts with a header: row, the raw columns, reason); removed when none fails."""
    from pyspark.sql import functions as F

    target = _join(data_uri, f"{QUARANTINE_DIR}/{name}")
    if not rows:
        path, fs = _hadoop_path(spark, target)
        if fs.exists(path):
            fs.delete(path, True)
        return
    quarantined = (raw.join(bad, "_row").orderBy("_row")
                   .select(F.col("_row").alias("row"), *[F.col(c).cast("string") for c in columns],
                           F.array_join("_reasons", "; ").alias("reason")))
    quarantined.coalesce(1).write.mode("overwrite").csv(target, header=True, quoteAll=True)


def _coverage_end(spark: "SparkSession", data_uri: str) -> date | None:
    uri = _join(data_uri, "dataset.json")
    if not _exists(spark, uri):
        return None
    end = json.loads("\n".join(r["value"] for r in spark.read.text(uri).collect())).get("end")
    return date.fromisoformat(end) if end else None


def _last_incident(incidents: "DataFrame") -> date | None:
    from pyspark.sql import functions as F

    last = incidents.agg(F.max("date")).first()[0]
    return last.date() if last is not None else None


def _fingerprint(spark: "SparkSession", data_uri: str) -> str:
    """The local engine's fingerprint for a local folder; elsewhere SHA-256 of each table file's name, size
    and modification time (reading every byte of a cluster's tables to the driver would defeat the engine)."""
    local = Path(data_uri[len("file:"):] if data_uri.startswith("file:") else data_uri)
    if "://" not in data_uri and local.is_dir():
        return data_fingerprint(local, TABLE_NAMES)
    digest = hashlib.sha256()
    for name in TABLE_NAMES:
        for ext in ("parquet", "csv"):
            uri = _join(data_uri, f"{name}.{ext}")
            if _exists(spark, uri):
                path, fs = _hadoop_path(spark, uri)
                for status in fs.listStatus(path):
                    digest.update(f"{status.getPath().getName()}:{status.getLen()}:{status.getModificationTime()}".encode())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- partitions: the local engine per group

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


def _grouped(data: SparkData) -> "DataFrame":
    """One frame of every group's rows (`_kind`: people, incidents, others, interventions), keyed by `_key`:
    the person's local authority, or for a household the first (sorted) authority of its members."""
    from pyspark.sql import functions as F

    people, incidents, interventions = (data.valid[t] for t in ("people", "incidents", "interventions"))
    la = data.valid["areas"].select("area_id", "local_authority")
    keyed = people.join(F.broadcast(la), "area_id", "left")
    key = F.col("local_authority")
    if "household_id" in people.columns:
        households = (keyed.where(F.col("household_id").isNotNull()).groupBy("household_id")
                      .agg(F.min("local_authority").alias("_household_key")))
        keyed = keyed.join(households, "household_id", "left")
        key = F.coalesce(F.col("_household_key"), key)
    keyed = keyed.withColumn(_KEY, key).drop("local_authority", "_household_key")
    keys = keyed.select("person_id", _KEY)
    inc = incidents.join(keys, "person_id")
    shared = inc.select("incident_id", F.col(_KEY).alias("_with")).distinct()
    others = (inc.join(shared, "incident_id").where(F.col(_KEY) != F.col("_with"))
              .select(F.col("_with").alias(_KEY), "incident_id", F.col("person_id").alias("_other_person"),
                      F.col("date").alias("_other_date")))
    parts = [keyed.withColumn(_KIND, F.lit("people")), inc.withColumn(_KIND, F.lit("incidents")),
             others.withColumn(_KIND, F.lit("others")),
             interventions.join(keys, "person_id").withColumn(_KIND, F.lit("interventions"))]
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
    rows = (data.valid["incidents"].select("person_id", "date", "type")
            .join(data.valid["people"].select("person_id", "area_id"), "person_id").drop("person_id"))

    def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            day = batch["date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
            area = area_codes.get_indexer(batch["area_id"])
            kind = pd.Index(INCIDENT_TYPES).get_indexer(batch["type"]).astype(np.int64)
            for t in days:
                counts = count_by_area(area, day, kind, n_areas, t).ravel()
                cell = np.flatnonzero(counts)
                yield pd.DataFrame({"t": t, "cell": cell, "n": counts[cell]})

    summed = (rows.mapInPandas(count, "t long, cell long, n long").groupBy("t", "cell").agg(F.sum("n").alias("n"))
              .toPandas())
    out = {}
    for t in days:
        flat = np.zeros(2 * n_areas * n_types, dtype=np.int64)
        mine = summed[summed["t"] == t]
        flat[mine["cell"].to_numpy()] = mine["n"].to_numpy()
        out[t] = flat.reshape(2, n_areas, n_types)
    return out


def _context(data: SparkData, days: list[int]) -> PartitionContext:
    columns = {t: tuple(data.valid[t].columns) for t in ("people", "incidents", "interventions")}
    return PartitionContext(data.areas, data.programmes, _area_counts(data, days), data.end, data.fingerprint,
                            columns["people"], columns["incidents"], columns["interventions"])


def prepared_partition(rows: pd.DataFrame, ctx: PartitionContext) -> PreparedData:
    """A group's rows as the local engine's `PreparedData` (plus what crosses groups)."""
    kind = rows[_KIND]

    def table(name: str, columns: tuple[str, ...]) -> pd.DataFrame:
        """The group's rows of a table in file order, as the local engine holds them (sums add up alike)."""
        return rows.loc[kind == name, list(columns)].sort_values("_row").reset_index(drop=True)

    others = rows.loc[kind == "others", ["incident_id", "_other_person", "_other_date"]]
    others = others.set_axis(["incident_id", "person_id", "date"], axis=1).reset_index(drop=True)
    dataset = Dataset(ctx.areas, table("people", ctx.people_columns), table("incidents", ctx.incident_columns),
                      table("interventions", ctx.intervention_columns), ctx.fingerprint, ctx.end,
                      ValidationReport({}))
    return PreparedData.from_dataset(dataset, ctx.programmes, others, ctx.area_counts)


def _spark_schema(frame_columns: list[tuple[str, str]]):
    return ", ".join(f"`{name}` {kind}" for name, kind in frame_columns)


def _snapshot_columns(ctx: PartitionContext, config: SnapshotConfig, catalogue_names: list[str]) -> list[tuple[str, str]]:
    protected = {"sex", "ethnicity", "age_band", "deprivation_quintile"} | (
        {"disability"} if "disability" in ctx.people_columns else set())
    return ([("person_id", "string"), ("as_of", "timestamp_ntz"), ("area_id", "string"), ("local_authority", "string")]
            + [(name, "double") for name in catalogue_names] + [("label", "double")]
            + [(name, "string") for name in config.protected if name in protected])


def _as_output(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> pd.DataFrame:
    """The frame's columns in the declared order and types (text as plain objects: one Arrow chunk)."""
    return pd.DataFrame({name: frame[name].to_numpy(dtype=float) if kind == "double"
                         else frame[name].to_numpy(dtype=object) if kind == "string" else frame[name].to_numpy()
                         for name, kind in columns})


# ---------------------------------------------------------------- scoring into lists

def _scored(spark: "SparkSession", data: SparkData, loaded: LoadedModel, as_of: date, unit: str):
    """Every cohort member's features and scores (a Spark frame, grouped by local authority), and its columns."""
    t = int(np.datetime64(as_of, "D").astype(np.int64))
    ctx = _context(data, [t])
    config = loaded.contract.snapshot
    names = [s.name for s in build_catalogue_of(ctx, config)]
    columns = _snapshot_columns(ctx, config, names) + [("score", "double"), ("risk", "double"), ("band", "long"),
                                                        ("band_label", "string")]
    shared = spark.sparkContext.broadcast((ctx, loaded.scorer))

    def score_group(rows: pd.DataFrame) -> pd.DataFrame:
        ctx_, scorer = shared.value   # deserialised once per Python worker
        snapshot = cohort_snapshot(scorer.contract, prepared_partition(rows, ctx_), as_of)
        if snapshot.empty:
            return pd.DataFrame({name: pd.Series(dtype=object) for name, _ in columns})
        scores = score_frame(scorer, snapshot)
        for column in scores.columns:
            snapshot[column] = scores[column].to_numpy()
        return _as_output(snapshot, columns)

    scored = _grouped(data).groupBy(_KEY).applyInPandas(score_group, _spark_schema(columns))
    from pyspark.sql import functions as F

    return scored.withColumn("unit", F.col(unit).cast("string")), names


def build_catalogue_of(ctx: PartitionContext, config: SnapshotConfig):
    from riskloop.features.catalogue import build_catalogue

    return build_catalogue(ctx.programmes, config.windows, households="household_id" in ctx.people_columns)


def spark_score_to_lists(spark: "SparkSession", loaded: LoadedModel, data_uri: str, as_of: date, out_dir: Path,
                         capacity: Capacity, per: Unit = "local_authority", seed: int = 0,
                         staging: str | None = None) -> ScoreOutcome:
    """`serving.batch.score_to_lists` on Spark: the same output folder (prioritisation.parquet, lists, manifest)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.perf_counter()
    if loaded.contract.snapshot is None:
        raise ScoringError(f"model '{loaded.contract.registered_model}' was trained on a person-level table: it "
                           "scores rows of that table, not a riskloop data set")
    data = validate_on_spark(spark, data_uri)
    for name in ("areas", "people", "incidents"):
        counts = data.report.tables[name]
        if not counts.valid:
            raise DataError(f"{data_uri}: no valid rows in {name} ({counts.read:,} read, {counts.quarantined:,} quarantined)")
    _check_coverage(data, as_of)
    scored, names = _scored(spark, data, loaded, as_of, unit_column(per))
    missing = [f for f in loaded.contract.features if f not in names]
    if missing:
        raise ContractError(f"the data set cannot give {len(missing)} of the model's features "
                            f"({', '.join(missing[:3])}): household features need people.household_id")
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    sizes = scored.groupBy("unit").count().toPandas().set_index("unit")["count"].sort_index()
    if sizes.empty:
        raise ScoringError(f"no one is in the cohort at {as_of}: no valid incident in the "
                           f"{loaded.contract.snapshot.lookback_days} days before it")
    places = capacity.for_units(sizes.rename_axis(None))
    scored_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    catalogue = build_catalogue_of(_context_light(data), loaded.contract.snapshot)
    cohort = ScoredCohort(pd.DataFrame(), as_of, loaded.contract, data.fingerprint)
    shared = spark.sparkContext.broadcast((loaded, catalogue, cohort, places.to_dict()))

    def list_unit(rows: pd.DataFrame) -> pd.DataFrame:
        """One unit's people ranked, its places filled, its prioritisation rows (reasons for the listed only)."""
        loaded_, catalogue_, cohort_, places_ = shared.value
        rows = rows.reset_index(drop=True)
        rank = rank_within(rows["unit"], rows["risk"].to_numpy(), rows["score"].to_numpy(), rows["person_id"], seed)
        listed = rank <= places_[rows["unit"].iloc[0]]
        out = list_rows(rows, rows["unit"], rank, listed, loaded_, catalogue_, cohort_, scored_at)
        return pd.DataFrame({c: out[c].to_numpy(dtype=object) if out[c].dtype.kind in "OTU" or
                             pd.api.types.is_string_dtype(out[c]) else out[c].to_numpy() for c in out.columns}
                            ).assign(as_of=pd.Timestamp(as_of))

    out_schema = ("person_id string, area_id string, local_authority string, unit string, rank long, listed boolean, "
                  "risk double, band long, band_label string, prevention_tier string, "
                  + ", ".join(f"{r} string" for r in REASONS)
                  + ", model_name string, model_version string, run_id string, data_fingerprint string, "
                    "as_of timestamp_ntz, scored_at string")
    rows = (scored.groupBy("unit").applyInPandas(list_unit, out_schema).withColumn("as_of", F.to_date("as_of"))
            .orderBy("unit", "rank"))
    with tempfile.TemporaryDirectory(prefix=".riskloop-spark-", dir=staging or Path(out_dir).absolute().parent) as tmp:
        parts = f"file://{tmp}/prioritisation" if staging is None else _join(staging, f"prioritisation-{time.time_ns()}")
        rows.write.mode("overwrite").parquet(parts)
        written = spark.read.parquet(parts)
        units = written.groupBy("unit").agg(F.count(F.lit(1)).alias("cohort"),
                                            F.sum(F.col("listed").cast("long")).alias("listed")).toPandas()
        listed_rows = written.where("listed").toPandas()
        with atomic_folder(out_dir) as folder:
            total = _assemble(parts, folder / "prioritisation.parquet")
            files = [(folder / "prioritisation.parquet", total), *write_lists(listed_rows, folder, per)]
            units = units.set_index("unit").sort_index().rename_axis(None)
            counts = pd.DataFrame({"cohort": units["cohort"], "places": places, "listed": units["listed"]})
            manifest = write_manifest(
                folder, files, loaded, as_of, scored_at, source=Path(data_uri.rstrip("/")).name,
                fingerprint=data.fingerprint, coverage_end=data.end,
                counts=reconciled_counts(data.report, int(sizes.sum()), total, int(counts["listed"].sum()), counts),
                capacity=capacity, per=per, seed=seed, started=started, engine="spark")
    scored.unpersist()
    return ScoreOutcome(Path(out_dir), manifest)


def _context_light(data: SparkData) -> PartitionContext:
    return PartitionContext(data.areas, data.programmes, {}, data.end, data.fingerprint,
                            tuple(data.valid["people"].columns), (), ())


def _check_coverage(data: SparkData, as_of_dates) -> None:
    from pyspark.sql import functions as F

    first = data.valid["incidents"].agg(F.min("date")).first()[0]
    if first is None:
        raise ValueError("no valid incidents: nothing to build features from")
    for t in sorted(as_of_dates if isinstance(as_of_dates, list) else [as_of_dates]):
        if t <= first.date():
            raise ValueError(f"as-of {t} is not after the data's first incident ({first.date()}): no records before it")
        if t > data.end:
            raise ValueError(f"as-of {t} is after the data's end ({data.end})")


def _assemble(parts: str, target: Path, metadata: dict[bytes, bytes] | None = None) -> int:
    """Spark's sorted Parquet parts streamed into one file, part by part (the driver holds one part at a time)."""
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(parts.replace("s3a://", "s3://"))
    files = sorted(f.path for f in fs.get_file_info(pafs.FileSelector(root)) if f.path.endswith(".parquet"))
    rows = 0
    writer = None
    for path in files:
        with fs.open_input_file(path) as handle:
            table = pq.read_table(handle)
        table = table.cast(_local_types(table.schema)).replace_schema_metadata(metadata)
        if writer is None:
            writer = pq.ParquetWriter(target, table.schema, compression="zstd")
        writer.write_table(table)
        rows += table.num_rows
    if writer is not None:
        writer.close()
    return rows


def _local_types(schema: pa.Schema) -> pa.Schema:
    """The local engine's types: dates as date32, naive timestamps in seconds; no Spark metadata."""
    def local(field: pa.Field) -> pa.Field:
        if pa.types.is_date(field.type):
            return field.with_type(pa.date32())
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            return field.with_type(pa.timestamp("s"))
        return field
    return pa.schema([local(f) for f in schema])


# ---------------------------------------------------------------- snapshots (riskloop features --engine spark)

def spark_snapshots(spark: "SparkSession", data_uri: str, as_of_dates: list[date], config: SnapshotConfig,
                    out_file: Path, staging: str | None = None) -> tuple[SnapshotMeta, list, pd.DataFrame]:
    """`build_snapshots` on Spark, written as one snapshot file; returns (meta, catalogue, rows per as-of)."""
    from pyspark.sql import functions as F

    data = validate_on_spark(spark, data_uri)
    for name in ("areas", "people"):
        if not data.report.tables[name].valid:
            counts = data.report.tables[name]
            raise DataError(f"{data_uri}: no valid rows in {name} ({counts.read:,} read, {counts.quarantined:,} quarantined)")
    dates = sorted(set(as_of_dates))
    _check_coverage(data, dates)
    days = [int(np.datetime64(t, "D").astype(np.int64)) for t in dates]
    ctx = _context(data, days)
    catalogue = build_catalogue_of(ctx, config)
    columns = _snapshot_columns(ctx, config, [s.name for s in catalogue])
    shared = spark.sparkContext.broadcast(ctx)

    def build_group(rows: pd.DataFrame) -> pd.DataFrame:
        prepared = prepared_partition(rows, shared.value)
        frames = [build_snapshot(prepared, t, config) for t in dates]
        return _as_output(pd.concat(frames, ignore_index=True), columns)

    snapshots = (_grouped(data).groupBy(_KEY).applyInPandas(build_group, _spark_schema(columns))
                 .orderBy("as_of", "person_id"))
    with tempfile.TemporaryDirectory(prefix=".riskloop-spark-", dir=staging or Path(out_file).absolute().parent) as tmp:
        parts = f"file://{tmp}/snapshot" if staging is None else _join(staging, f"snapshot-{time.time_ns()}")
        snapshots.write.mode("overwrite").parquet(parts)
        written = spark.read.parquet(parts)
        per_date = written.groupBy("as_of").agg(F.count(F.lit(1)).alias("cohort"), F.count("label").alias("labelled"),
                                               F.mean("label").alias("positive_rate")).orderBy("as_of").toPandas()
        meta = SnapshotMeta(features=tuple(s.name for s in catalogue),
                            protected=tuple(name for name, _ in columns if name in config.protected), ids=ID_COLUMNS,
                            label=config.label, horizon_days=config.horizon_days, harm_threshold=config.harm_threshold,
                            as_of=tuple(t.isoformat() for t in dates), data_fingerprint=data.fingerprint,
                            unlabelled_rows=int((per_date["cohort"] - per_date["labelled"]).sum()))
        _assemble_snapshot(parts, out_file, meta)
    return meta, catalogue, per_date


def _assemble_snapshot(parts: str, out_file: Path, meta: SnapshotMeta) -> None:
    from riskloop.features.io import atomic_path

    with atomic_path(out_file) as tmp:
        _assemble(parts, tmp, {b"riskloop": meta.to_json().encode()})
