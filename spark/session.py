"""The SparkSession the engine runs on."""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from riskloop import CAPPED_BY_THREADS
from riskloop.features.io import DataError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL_HINT = 'the Spark engine needs pyspark: pip install "riskloop[spark]"'


class SparkJobError(RuntimeError):
    """A Spark job failed: its root cause in one line (the input, e.g. a corrupt file, or the machine's memory),
    and what to do where it is memory."""


@contextmanager
def explained_failures() -> Iterator[None]:
    """Raise a failed Spark job's root cause as SparkJobError: the JVM's chain of causes, or an error Spark
    captured from the JVM or a Python worker (Spark has logged its trace). Anything else, riskloop's own errors
    included, passes unchanged."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors.exceptions.captured import CapturedException

    try:
        yield
    except Py4JJavaError as failed:
        cause = failed.java_exception
        for _ in range(50):  # a chain of causes is short; a cycle must not hang the error
            if (deeper := cause.getCause()) is None:
                break
            cause = deeper
        raise SparkJobError(_explained(cause.getClass().getName(), str(cause.getMessage() or ""))) from failed
    except CapturedException as failed:
        raise SparkJobError(_explained(type(failed).__name__, str(failed))) from failed


def _explained(kind: str, message: str) -> str:
    """One line: the error's kind and first line (a Python worker's: its traceback's last); the memory hint."""
    kind = kind.rsplit(".", 1)[-1]
    lines = [line.strip() for line in message.splitlines() if line.strip()] or ["(no message)"]
    said = f"Spark failed: {kind}: {lines[-1] if kind == 'PythonException' else lines[0]}"
    if "OutOfMemory" not in kind and "not enough memory" not in message.lower():
        return said
    had = os.environ.get("SPARK_DRIVER_MEMORY")
    more = f"more than SPARK_DRIVER_MEMORY={had}" if had else "SPARK_DRIVER_MEMORY=8g"
    return (
        f"{said}; give Spark more memory (on one machine {more}, or spark-submit --driver-memory; on a cluster "
        "--executor-memory) or more shuffle partitions (--conf spark.sql.shuffle.partitions=...)"
    )


def local_driver_memory() -> str | None:
    """Half of the memory this process may use (the machine's, or its cgroup's limit, v1 or v2), at least Spark's
    1 GiB; None where the machine's memory cannot be read."""
    try:
        usable = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): Spark's own default
        return None
    return f"{max(1024, min(usable, *_cgroup_limits()) // 2**21)}m"


def _cgroup_limits() -> list[int]:
    """The memory limits of this process's cgroups (none where there is no limit or none can be read)."""
    limits: list[int] = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return limits
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            limit = Path(f"/sys/fs/cgroup{path}") / "memory.max"
        elif "memory" in controllers.split(","):
            limit = Path(f"/sys/fs/cgroup/memory{path}") / "memory.limit_in_bytes"
        else:
            continue
        try:
            limits.append(int(limit.read_text().strip()))
        except (OSError, ValueError):  # absent, or "max"
            pass
    return limits


def spark_session(master: str | None = None, app: str = "riskloop") -> SparkSession:
    """A SparkSession (the active one, or a new one on `master`); UTC, Arrow batches of 100k rows. A new local
    session's JVM gets half of this machine's memory (`local_driver_memory`) unless the user set its size.

    Unless `spark.sql.shuffle.partitions` was set (spark-submit's `--conf`, spark-defaults, or on the active
    session: any value but Spark's default 200), shuffles use two partitions per core the session has: each
    shuffle task costs a fixed few milliseconds and a Python worker round trip, which on a small cluster outweighs
    the work (measured on a 20k-people world on `local[2]`: `riskloop score --engine spark` 140 s with 200
    partitions, 63 s with 4)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(INSTALL_HINT) from None
    if master is None or master.startswith("local"):  # workers on this machine run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # a JVM started here holds the executors: Spark's default 1 GiB ran out on full Wales (a setting of
        # the user's, spark.driver.memory anywhere or this variable, comes first; a running JVM ignores it)
        if (memory := local_driver_memory()) is not None:
            os.environ.setdefault("SPARK_DRIVER_MEMORY", memory)
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


def workers_on_task_cpus(spark: SparkSession) -> None:
    """Each task's Python worker on the CPUs Spark gave the task (`spark.task.cpus`, 1 unless set; a fraction
    rounded up), capped by a RISKLOOP_THREADS of this process, not on every CPU of its machine beside the
    machine's other tasks. Spark hands every Python function it is given the context's environment, and this
    puts RISKLOOP_THREADS there, with what riskloop derives from it (riskloop/__init__): LOKY_MAX_CPU_COUNT, by
    which LightGBM and DuckDB count CPUs, and OMP_NUM_THREADS, which OpenMP and BLAS read when they load (in a
    worker, before riskloop is imported; Spark sets it so too, SPARK-42613). A user's
    `spark.executorEnv.RISKLOOP_THREADS` (or of the others) is in that environment already and comes first. As
    `spark_session`'s settings, this stays with the session."""
    context = spark.sparkContext
    threads = context.environment.get("RISKLOOP_THREADS")
    if threads is None:
        cpus = max(1, math.ceil(float(context.getConf().get("spark.task.cpus", "1"))))
        cap = os.environ.get("RISKLOOP_THREADS", "").strip()  # whole and positive: riskloop/__init__ checked it
        threads = str(min(cpus, int(cap)) if cap else cpus)
    for name in ("RISKLOOP_THREADS", *CAPPED_BY_THREADS):
        context.environment.setdefault(name, threads)
