"""The SparkSession the engine runs on."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from riskloop.features.io import DataError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL_HINT = 'the Spark engine needs pyspark: pip install "riskloop[spark]"'


def spark_session(master: str | None = None, app: str = "riskloop") -> SparkSession:
    """A SparkSession (the active one, or a new one on `master`); UTC, Arrow batches of 100k rows."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(INSTALL_HINT) from None
    if master is None or master.startswith("local"):  # workers on this machine run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    for key, value in (
        ("spark.sql.session.timeZone", "UTC"),
        ("spark.sql.execution.arrow.maxRecordsPerBatch", "100000"),
        ("spark.sql.execution.arrow.pyspark.enabled", "true"),
    ):
        spark.conf.set(key, value)
    return spark
