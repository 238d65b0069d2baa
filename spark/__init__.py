"""The Spark engine: `riskloop score|features --engine spark` for populations beyond one machine.

Spark reads the contract tables (a folder or any URI it reads), validates them with the declared rules of
`features.rules` (row-local rules on pandas batches, keys and references by Spark windows and joins), and
groups people by local authority (a household stays whole: it goes with its first member's authority).
Each group is one pandas/numpy call of the local engine's own `PreparedData` + `score_cohort` (or
`build_snapshot`), given the two inputs that cross groups, computed once by Spark: other people's rows in
the group's incidents (co-involvement) and the population's incident counts by small area (area and
local-authority rates). Ranking runs per unit on (unit, id, risk, score) only; reasons are computed for
the listed only. The driver collects per-unit counts, the listed rows and the area counts, never the
population. pyspark is imported lazily: core riskloop works without it.

- `session`: the SparkSession; `storage`: reading tables and writing parts on any URI Spark reads;
- `contract`: validation and quarantine (`validate_on_spark`); `groups`: people keyed by group, the key carried
  by the rows that refer to them; `partitions`: the local engine per group;
- `features`: snapshots (`spark_snapshots`, nothing from serving); `lists`: scoring to lists
  (`spark_score_to_lists`).

Each export is imported on first use, so that the snapshot path never imports serving.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riskloop.spark.contract import validate_on_spark
    from riskloop.spark.features import spark_snapshots
    from riskloop.spark.lists import spark_score_to_lists
    from riskloop.spark.session import spark_session

_HOMES = {
    "spark_session": "session",
    "validate_on_spark": "contract",
    "spark_snapshots": "features",
    "spark_score_to_lists": "lists",
}
__all__ = ["spark_score_to_lists", "spark_session", "spark_snapshots", "validate_on_spark"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'riskloop.spark' has no attribute '{name}'")
    return getattr(import_module(f"riskloop.spark.{_HOMES[name]}"), name)
