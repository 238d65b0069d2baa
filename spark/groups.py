"""The groups the engine works in: people keyed by local authority, a household whole.

Validation keys the valid people once (`keyed_people`) and the rows that refer to a person take the person's
group and small area from the join that checks the reference (`CARRIED`): the grouping and the area counts
need no join of their own. So validation depends on this module, not on the partitions'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

KEY = "_key"  # a group: a local authority
PERSON_AREA = "_person_area"  # a row's person's small area, carried from the reference join
#: Per referenced table, (its column, the column's name on the rows that refer to it): only people's.
CARRIED: dict[str, tuple[tuple[str, str], ...]] = {"people": ((KEY, KEY), ("area_id", PERSON_AREA))}
CARRIED_NAMES = frozenset(name for pairs in CARRIED.values() for _, name in pairs)


def keyed_people(people: DataFrame, areas: DataFrame) -> DataFrame:
    """People with their group in `KEY`: their local authority, or for a household the first (sorted) authority
    of its members (one window over households; a person without one is a window of their own)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keyed = people.join(F.broadcast(areas.select("area_id", "local_authority")), "area_id", "left")
    if "household_id" in people.columns:
        own = F.when(F.col("household_id").isNull(), F.col("person_id"))
        key = F.min("local_authority").over(Window.partitionBy("household_id", own))
    else:
        key = F.col("local_authority")
    return keyed.withColumn(KEY, key).drop("local_authority").select(*people.columns, KEY)
