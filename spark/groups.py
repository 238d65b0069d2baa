"""The groups the engine works in: people keyed by local authority, a household whole.

Validation keys the people in their own pass: the join that checks a person's small area brings its local
authority (`CARRIED`), and `keyed` turns it into the person's group, before the duplicate check's window, so
that the cached people are partitioned by person and the joins that check a reference to them shuffle only the
rows that refer. Those rows take the person's group and small area from that join (`CARRIED`): the grouping and
the area counts need no join of their own. So validation depends on this module, not on the partitions'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

KEY = "_key"  # a group: a local authority
PERSON_AREA = "_person_area"  # a row's person's small area, carried from the reference join
AUTHORITY = "_authority"  # a person's area's local authority, carried from the areas join until `keyed`
#: Per referenced table, (its column, the column's name on the rows that refer to it): the areas' authority, for
#: people's key; the people's key and area, for the rows that refer to a person.
CARRIED: dict[str, tuple[tuple[str, str], ...]] = {
    "areas": (("local_authority", AUTHORITY),),
    "people": ((KEY, KEY), ("area_id", PERSON_AREA)),
}
CARRIED_NAMES = frozenset(name for pairs in CARRIED.values() for _, name in pairs)


def keyed(people: DataFrame) -> DataFrame:
    """People rows that carry their `AUTHORITY`, with their group in `KEY` instead: their local authority, or for
    a household the first (sorted) authority of its rows, a quarantined row's included (one window over
    households; a person without one is a window of their own). Groups only share out the work: any grouping
    that keeps a household's valid members together gives the same features and lists."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if "household_id" in people.columns:
        own = F.when(F.col("household_id").isNull(), F.col("person_id"))
        key = F.min(AUTHORITY).over(Window.partitionBy("household_id", own))
    else:
        key = F.col(AUTHORITY)
    return people.withColumn(KEY, key).drop(AUTHORITY)
