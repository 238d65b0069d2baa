"""Files on any URI Spark reads: the contract's tables in, Parquet parts staged and assembled into one file."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from riskloop.artifacts.dataset import COVERAGE_FILE, parse_coverage
from riskloop.features.io import DataError, data_fingerprint
from riskloop.features.schema import TABLE_NAMES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def join(uri: str, name: str) -> str:
    return uri.rstrip("/") + "/" + name


def hadoop_path(spark: SparkSession, uri: str):
    """(Hadoop Path, its FileSystem) of a URI."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the Spark session has no JVM gateway (it is stopped)")
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def exists(spark: SparkSession, uri: str) -> bool:
    path, fs = hadoop_path(spark, uri)
    return bool(fs.exists(path))


def remove(spark: SparkSession, uri: str) -> None:
    """Delete a file or folder (recursively) if it is there."""
    path, fs = hadoop_path(spark, uri)
    if fs.exists(path):
        fs.delete(path, True)


def read_table(spark: SparkSession, data_uri: str, name: str) -> DataFrame:
    """NAME.parquet or NAME.csv (all cells as text) under `data_uri`, with each row's 1-based number in `_row`."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType

    found = [f"{name}.{ext}" for ext in ("parquet", "csv") if exists(spark, join(data_uri, f"{name}.{ext}"))]
    if len(found) > 1:
        raise DataError(f"{data_uri}: both {found[0]} and {found[1]} are present; keep one")
    if not found:
        raise DataError(f"{data_uri}: missing table '{name}' (expected {name}.parquet or {name}.csv)")
    uri = join(data_uri, found[0])
    if found[0].endswith(".csv"):
        raw = spark.read.csv(uri, header=True, inferSchema=False, multiLine=True, escape='"')
    else:
        raw = spark.read.parquet(uri)
    # dates arrive as naive timestamps, as pandas reads them (no per-cell date objects)
    raw = raw.select(
        *[
            F.col(f.name).cast(TimestampNTZType()) if isinstance(f.dataType, DateType) else F.col(f.name)
            for f in raw.schema.fields
        ]
    )
    return _with_row_numbers(raw)


def _with_row_numbers(raw: DataFrame) -> DataFrame:
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
    number = (start[F.col("_pid")] + within + 1) if start is not None else F.lit(1)
    return tagged.withColumn("_row", number.cast("long")).drop("_pid", "_mid")


def coverage_end(spark: SparkSession, data_uri: str) -> date | None:
    """The `end` of the data set's `dataset.json`, if it has one (`artifacts.dataset.read_coverage` on a URI)."""
    uri = join(data_uri, COVERAGE_FILE)
    if not exists(spark, uri):
        return None
    coverage = parse_coverage("\n".join(r["value"] for r in spark.read.text(uri).collect()), uri)
    return coverage.end if coverage else None


def fingerprint(spark: SparkSession, data_uri: str) -> str:
    """The local engine's fingerprint for a local folder; elsewhere SHA-256 of each table file's name, size
    and modification time (reading every byte of a cluster's tables to the driver would defeat the engine)."""
    local = Path(data_uri[len("file:") :] if data_uri.startswith("file:") else data_uri)
    if "://" not in data_uri and local.is_dir():
        return data_fingerprint(local, TABLE_NAMES)
    digest = hashlib.sha256()
    for name in TABLE_NAMES:
        for ext in ("parquet", "csv"):
            uri = join(data_uri, f"{name}.{ext}")
            if exists(spark, uri):
                path, fs = hadoop_path(spark, uri)
                for status in fs.listStatus(path):
                    digest.update(
                        f"{status.getPath().getName()}:{status.getLen()}:{status.getModificationTime()}".encode()
                    )
    return digest.hexdigest()[:16]


@contextmanager
def staged(name: str, beside: Path, staging: str | None) -> Iterator[str]:
    """A URI for Parquet parts named `name`: in a temporary folder beside `beside` (removed afterwards), or
    under `staging`, a folder the executors and the driver both see."""
    with tempfile.TemporaryDirectory(prefix=".riskloop-spark-", dir=staging or Path(beside).absolute().parent) as tmp:
        yield f"file://{tmp}/{name}" if staging is None else join(staging, f"{name}-{time.time_ns()}")


def _part_files(parts: str) -> tuple[pafs.FileSystem, list[str]]:
    """The Parquet part files of a Spark write, in name order, and their file system."""
    fs, root = pafs.FileSystem.from_uri(parts.replace("s3a://", "s3://"))
    return fs, sorted(f.path for f in fs.get_file_info(pafs.FileSelector(root)) if f.path.endswith(".parquet"))


def _read_part(fs: pafs.FileSystem, path: str, columns: list[str] | None = None) -> pa.Table:
    with fs.open_input_file(path) as handle:
        return pq.read_table(handle, columns=columns)


def _write_tables(tables: Iterator[pa.Table], target: Path, metadata: dict[bytes, bytes] | None) -> int:
    """`tables` written one after another into one Parquet file of the local engine's types; its rows."""
    rows = 0
    writer = None
    for table in tables:
        table = table.cast(_local_types(table.schema)).replace_schema_metadata(metadata)
        if writer is None:
            writer = pq.ParquetWriter(target, table.schema, compression="zstd")
        writer.write_table(table)
        rows += table.num_rows
    if writer is not None:
        writer.close()
    return rows


def assemble(parts: str, target: Path, metadata: dict[bytes, bytes] | None = None) -> int:
    """Spark's sorted Parquet parts streamed into one file, part by part (the driver holds one part at a time)."""
    fs, files = _part_files(parts)
    return _write_tables((_read_part(fs, path) for path in files), target, metadata)


def assemble_groups(parts: str, target: Path, key: str) -> int:
    """Parquet parts in which each value of `key` was written by one task, its rows together, streamed into one
    file ordered by `key` (the rows of one value in the order written). Spark need not sort across parts: the
    driver reads each part's `key` column, then each value's rows from its part (one part held at a time)."""
    fs, files = _part_files(parts)
    homes: dict[str, list[str]] = {}
    for path in files:
        for value in pc.unique(_read_part(fs, path, [key])[key]).to_pylist():
            homes.setdefault(value, []).append(path)  # more than one file where Spark split a part

    def in_order() -> Iterator[pa.Table]:
        held: tuple[str, pa.Table] | None = None
        for value in sorted(homes):
            for path in homes[value]:
                if held is None or held[0] != path:
                    held = (path, _read_part(fs, path))
                yield held[1].filter(pc.equal(held[1][key], value))

    return _write_tables(in_order(), target, None)


def _local_types(schema: pa.Schema) -> pa.Schema:
    """The local engine's types: dates as date32, naive timestamps in seconds; no Spark metadata."""

    def local(field: pa.Field) -> pa.Field:
        if pa.types.is_date(field.type):
            return field.with_type(pa.date32())
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            return field.with_type(pa.timestamp("s"))
        return field

    return pa.schema([local(f) for f in schema])
