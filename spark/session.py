"""The SparkSession the engine runs on."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from riskloop.features.io import DataError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL_HINT = 'the Spark engine needs pyspark: pip install "riskloop[spark]"'
MEMORY_HINT = (
    "give Spark more memory: on one machine SPARK_DRIVER_MEMORY=8g (or spark-submit --driver-memory 8g), on a "
    "cluster --executor-memory, or more shuffle partitions (--conf spark.sql.shuffle.partitions=...)"
)


class SparkJobError(RuntimeError):
    """A Spark job failed (not the data): its root cause in one line, and what to do where it is memory."""


@contextmanager
def explained_failures() -> Iterator[None]:
    """Raise a failed Spark job's root cause as SparkJobError (the JVM's chain of causes, or a Python worker's
    error, is pages long; Spark has logged it in full)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        yield
    except Py4JJavaError as failed:
        cause = failed.java_exception
        while cause.getCause() is not None:
            cause = cause.getCause()
        raise SparkJobError(_explained(cause.getClass().getName(), str(cause.getMessage()))) from failed
    except PySparkException as failed:
        raise SparkJobError(_explained(type(failed).__name__, str(failed))) from failed


def _explained(kind: str, message: str) -> str:
    """One line: the error's kind and first line (a Python worker's: its traceback's last); the memory hint."""
    kind = kind.rsplit(".", 1)[-1]
    lines = [line.strip() for line in message.splitlines() if line.strip()] or [""]
    said = f"Spark failed: {kind}: {lines[-1] if kind == 'PythonException' else lines[0]}"
    return f"{said}; {MEMORY_HINT}" if "OutOfMemory" in kind or "not enough memory" in message.lower() else said


def local_driver_memory() -> str:
    """Half of the memory this process may use (the machine's, or its cgroup's limit), at least Spark's 1 GiB."""
    usable = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        usable = min(usable, int(limit))
    except (OSError, ValueError):  # no cgroup v2 limit ("max") or none readable
        pass
    return f"{max(1024, usable // 2**21)}m"


def spark_session(master: str | None = None, app: str = "riskloop") -> SparkSession:
    """A SparkSession (the active one, or a new one on `master`); UTC, Arrow batches of 100k rows. A new local
    session's JVM gets half of this machine's memory (`local_driver_memory`) unless the user set its size.

    Unless `spark.sql.shuffle.partitions` was set (spark-submit's `--conf`, spark-defaults, or on the active
    session: any value but Spark's default 200), shuffles use two partitions per core the session has: each
    shuffle task costs a fixed few milliseconds and a Python worker round trip, which on a small cluster outweighs the work (measured on a 20k-people
    world on `local[2]`: `riskloop score --engine spark` 140 s with 200 partitions, 63 s with 4)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(INSTALL_HINT) from None
    if master is None or master.startswith("local"):  # workers on this machine run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # a JVM started here holds the executors: Spark's default 1 GiB ran out on full Wales (a setting of
        # the user's, spark.driver.memory anywhere or this variable, comes first; a running JVM ignores it)
        os.environ.setdefault("SPARK_DRIVER_MEMORY", local_driver_memory())
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    # pyspark 4.2 warns at every pandas conversion that it does not yet fully support pandas 3: the conversions
    # riskloop makes are checked against the local engine (tests/test_spark.py), so a user is not told twelve times
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    spark = builder.getOrCreate()
    partitions = "spark.sql.shuffle.partitions"
    if spark.conf.get(partitions) == "200" and not spark.sparkContext.getConf().contains(partitions):
        spark.conf.set(partitions, str(2 * spark.sparkContext.defaultParallelism))
    for key, value in (
        ("spark.sql.session.timeZone", "UTC"),
        ("spark.sql.execution.arrow.maxRecordsPerBatch", "100000"),
        ("spark.sql.execution.arrow.pyspark.enabled", "true"),
    ):
        spark.conf.set(key, value)
    return spark
