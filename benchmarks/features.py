"""Time one as-of snapshot on a full-Wales world (3.1 M people) against a hand-written DuckDB query.

Goal (issue 3): <= 60 s and <= 6 GB peak for the whole feature build, and riskloop's build at most
1.5x one DuckDB query (365-day counts by type x role for the cohort) per feature column family.
Usage: python benchmarks/features.py WORLD_DIR [AS_OF]   (make WORLD_DIR with `riskloop generate --people 3100000`)
"""

from __future__ import annotations

import sys
from datetime import date

import duckdb
from _measure import now, peak_rss_gib

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot

world = sys.argv[1]
as_of = date.fromisoformat(sys.argv[2]) if len(sys.argv) > 2 else date(2024, 1, 1)

# The bare baseline: one hand-written DuckDB query over the same Parquet files.
QUERY = f"""
PIVOT (
    SELECT person_id, type || '_' || role AS cell, count(*) AS n
    FROM read_parquet('{world}/incidents.parquet')
    WHERE date < DATE '{as_of}' AND date >= DATE '{as_of}' - INTERVAL 365 DAY
      AND person_id IN (SELECT DISTINCT person_id FROM read_parquet('{world}/incidents.parquet')
                        WHERE date < DATE '{as_of}' AND date >= DATE '{as_of}' - INTERVAL 1095 DAY)
    GROUP BY ALL
) ON cell USING sum(n)
"""
con = duckdb.connect()
con.execute("SET threads TO 2")
t0 = now()
query_rows = len(con.execute(QUERY).df())
query_s = now() - t0

t0 = now()
dataset = read_dataset(world)
load_s = now() - t0
t0 = now()
prepared = PreparedData.from_dataset(dataset)
prepare_s = now() - t0
t0 = now()
config = SnapshotConfig()
snapshot = build_snapshot(prepared, as_of, config)
snapshot_s = now() - t0
build_s = prepare_s + snapshot_s
families = len({s.family for s in prepared.catalogue(config)})
features = len(prepared.catalogue(config))

print(f"world: {len(dataset.people):,} people, {len(dataset.incidents):,} incident rows; as-of {as_of}")
print(f"read + validate      {load_s:7.1f} s")
print(f"prepare arrays       {prepare_s:7.1f} s")
print(
    f"snapshot             {snapshot_s:7.1f} s  ({len(snapshot):,} cohort rows x {features} features, "
    f"{len(snapshot) / snapshot_s:,.0f} rows/s)"
)
print(f"whole feature build  {load_s + build_s:7.1f} s  (goal <= 60 s)")
print(f"peak RSS             {peak_rss_gib():7.2f} GiB (goal <= 6)")
print(f"DuckDB 365d type x role query {query_s:.2f} s ({query_rows:,} rows)")
print(
    f"per family ({families} families): riskloop build {build_s / families:.2f} s = "
    f"{build_s / families / query_s:.2f}x the query (goal <= 1.5); with read+validate "
    f"{(load_s + build_s) / families / query_s:.2f}x"
)
