"""`riskloop score --engine spark` on full Wales, local[2], against the local engine in the same run (issue 13).

Goals: Spark within 2x of the local engine's wall time on one machine; the driver never holds the
population (peak <= 1 GB). Beside them, where the time goes: the engine's validation alone, and four bare
plans in the same session settings that read the three tables and key each incident and intervention by its
person's authority (a join), then: count the rows per authority in Spark; gather every row of an authority and
hand the groups to a Python worker that does nothing; run the local engine's validation, features and scores per
group and rank each authority's narrow rows; or that in two passes over the cached groups (the first validating
and summing incident counts by area). What crosses authorities (co-involvement, households kept whole, duplicate
and reference checks across groups) is left out and nothing is written: plans, not engines. Then one
partition's time and memory at three sizes (small, middle and large local authorities), which the scaling
prediction in docs/spark.md extrapolates from.
Each measurement runs in a fresh process so that its peak memory is its own. The model is fitted as
in benchmarks/score.py (set-up, not timed).
Usage: python benchmarks/spark.py WORLD_DIR [AS_OF]   (make WORLD_DIR with `riskloop generate --people 3100000`)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from _measure import bench_model, run_isolated

world = Path(sys.argv[1])
as_of = sys.argv[2] if len(sys.argv) > 2 else "2025-01-01"
HERE = str(Path(__file__).parent)

with tempfile.TemporaryDirectory() as tmp:
    model = bench_model(world, Path(tmp, "model.pkl"))

    setup = (
        f"import pickle, sys; from datetime import date; from pathlib import Path; sys.path.insert(0, {HERE!r})\n"
        f"loaded = pickle.loads(Path({tmp!r}, 'model.pkl').read_bytes())\n"
        f"as_of = date.fromisoformat({as_of!r}); world = Path({str(world)!r})\n"
        "from riskloop.serving.capacity import Capacity\n"
    )
    # every Spark measurement's session
    session = """
from pyspark.sql import SparkSession, functions as F
import os
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "6g")
         .config("spark.sql.shuffle.partitions", "22").getOrCreate())
"""
    local_wall, local_rss, out = run_isolated(
        setup
        + f"""
from riskloop.artifacts.dataset import read_dataset
from riskloop.serving.batch import score_to_lists
outcome = score_to_lists(loaded, read_dataset(world), as_of, Path({tmp!r}) / "local", Capacity(share=0.05))
print("scored", outcome.manifest.counts.scored)
"""
    )
    scored = int(out.split()[1])
    spark_wall, spark_rss, out = run_isolated(
        setup
        + session
        + f"""
from riskloop.spark import spark_score_to_lists
outcome = spark_score_to_lists(spark, loaded, str(world), as_of, Path({tmp!r}) / "spark", Capacity(share=0.05))
jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
with open(f"/proc/{{jvm_pid}}/status") as status:
    jvm = int(next(l for l in status if l.startswith("VmHWM")).split()[1]) / 2**20
jobs = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
print("scored", outcome.manifest.counts.scored, "jvm", jvm, "jobs", jobs)
"""
    )
    lists = sorted(Path(tmp, "local", "lists").rglob("*.csv"))
    differ = [
        p.name for p in lists if Path(tmp, "spark", p.relative_to(Path(tmp, "local"))).read_bytes() != p.read_bytes()
    ]
    same = f"{len(lists) - len(differ)} of {len(lists)} lists byte-identical" + (
        f" (differ: {', '.join(differ)})" if differ else ""
    )
    jvm_rss, spark_jobs = float(out.split()[3]), int(out.split()[5])

    # the engine's validation alone (as the score command runs it first): the rest of its wall is features,
    # scores, listing and writing
    validation_wall, _, _ = run_isolated(
        setup
        + session
        + """
from riskloop.spark.contract import validate_on_spark
validate_on_spark(spark, str(world))
"""
    )
    # Bare plans on the same session: read, give each incident and intervention its person's authority (a join).
    # Each plan's tail (below) says what it does with the rows of an authority.
    keyed_rows = """
read = {t: spark.read.parquet(str(world / f"{t}.parquet")) for t in ("areas", "people", "incidents", "interventions")}
authority = F.broadcast(read["areas"].select("area_id", F.col("local_authority").alias("_key")))
people = read["people"].join(authority, "area_id")
keys = people.select(F.col("person_id").alias("_person"), "_key")
rows = people.withColumn("_kind", F.lit("people"))
for table in ("incidents", "interventions"):
    keyed = read[table].join(keys, F.col("person_id") == F.col("_person")).drop("_person")
    rows = rows.unionByName(keyed.withColumn("_kind", F.lit(table)), allowMissingColumns=True)
import pandas as pd
"""
    # the local engine's validation, features and scores per group (what crosses groups ignored: no co-involvement,
    # no duplicate or reference check across groups), then a rank per local authority on narrow rows: no reasons,
    # nothing written. `scored(area_counts)`: with the population's incident counts by area, or each group's own
    score_groups = """
import numpy as np
from riskloop.features.validate import Dataset, validate_tables
from riskloop.features.snapshot import PreparedData
from riskloop.pipelines.score import cohort_snapshot, score_frame
areas, columns = read["areas"].toPandas(), {t: read[t].columns for t in ("people", "incidents", "interventions")}
def valid_tables(g):
    raw = {"areas": areas, **{t: g.loc[g["_kind"] == t, c].reset_index(drop=True) for t, c in columns.items()}}
    return validate_tables(raw, date.today())
def scored(area_counts):
    def score_group(key, g):
        valid, _, report = valid_tables(g)
        data = Dataset(**valid, fingerprint="", end=as_of, report=report)
        snapshot = cohort_snapshot(loaded.contract, PreparedData.from_dataset(data, None, None, area_counts), as_of)
        scores = score_frame(loaded.scorer, snapshot)
        return pd.DataFrame({"person_id": snapshot["person_id"].to_numpy(object), "unit": key[0],
                             "risk": scores["risk"].to_numpy(), "score": scores["score"].to_numpy()})
    def rank(g):
        return g.sort_values(["risk", "score"], ascending=False).assign(rank=range(1, len(g) + 1))
    out = rows.groupBy("_key").applyInPandas(score_group, "person_id string, unit string, risk double, score double")
    return out.groupBy("unit").applyInPandas(rank, "person_id string, unit string, risk double, score double, rank long")
"""
    tails = {
        "counted in Spark": 'print(rows.groupBy("_key").count().count())',
        "handed to Python": """
empty = rows.groupBy("_key").applyInPandas(lambda key, g: pd.DataFrame({"n": [len(g)]}), "n long")
print(empty.count())
""",
        "local engine per group": score_groups + "print(scored(None).count())",
        # what the population's valid rows give every group (here its incident counts by area; co-involvement
        # would add a window) needs a first pass of validation per group before the features
        "per group, two passes": score_groups
        + """
from riskloop.features.families.area import count_by_area
from riskloop.features.vocabulary import INCIDENT_TYPES
from riskloop.spark.partitions import day_number
rows = rows.repartition("_key").persist()  # both passes group the shuffled rows: no second shuffle
codes, types, t = pd.Index(areas["area_id"]), pd.Index(INCIDENT_TYPES), day_number(as_of)
def count_group(key, g):
    valid, _, _ = valid_tables(g)
    incidents = valid["incidents"].merge(valid["people"][["person_id", "area_id"]], on="person_id")
    counts = count_by_area(codes.get_indexer(incidents["area_id"]), incidents["date"].to_numpy(dtype="datetime64[D]").astype(np.int64),
                           types.get_indexer(incidents["type"]), len(codes), t).ravel()
    return pd.DataFrame({"cell": np.flatnonzero(counts), "n": counts[counts > 0]})
summed = rows.groupBy("_key").applyInPandas(count_group, "cell long, n long").groupBy("cell").sum("n").toPandas()
flat = np.zeros(2 * len(codes) * len(types), dtype=np.int64)
flat[summed["cell"].to_numpy()] = summed["sum(n)"].to_numpy()
print(scored({t: flat.reshape(2, len(codes), len(types))}).count())
""",
    }
    plans = {name: run_isolated(setup + session + keyed_rows + tail)[0] for name, tail in tails.items()}

    # one partition at three sizes: the local authorities with the fewest, middle and most people
    people = pq.read_table(world / "people.parquet", columns=["area_id"]).to_pandas()
    areas = pq.read_table(world / "areas.parquet").to_pandas().set_index("area_id")
    sizes = people["area_id"].map(areas["local_authority"]).value_counts().sort_values()
    partitions = []
    for la in (sizes.index[0], sizes.index[len(sizes) // 2], sizes.index[-1]):
        wall, rss, out = run_isolated(
            setup
            + f"""
import numpy as np, pandas as pd, time
from riskloop.artifacts.dataset import read_dataset
from riskloop.pipelines.score import cohort_snapshot, score_frame
from riskloop.features.snapshot import PreparedData
from _measure import peak_rss_gib
data = read_dataset(world)
mine = data.areas.loc[data.areas["local_authority"] == {la!r}, "area_id"]
data.people = data.people[data.people["area_id"].isin(mine)].reset_index(drop=True)
ids = data.people["person_id"]
data.incidents = data.incidents[data.incidents["person_id"].isin(ids)].reset_index(drop=True)
data.interventions = data.interventions[data.interventions["person_id"].isin(ids)].reset_index(drop=True)
import gc; gc.collect()
with open("/proc/self/status") as f: base = int(next(l for l in f if l.startswith("VmRSS")).split()[1]) / 2**20
with open("/proc/self/clear_refs", "w") as f: f.write("5")   # reset VmHWM: the partition's own peak from here
t = time.perf_counter()
prepared = PreparedData.from_dataset(data)
snapshot = cohort_snapshot(loaded.contract, prepared, as_of)
score_frame(loaded.scorer, snapshot)
print("partition", len(data.people), len(data.incidents), len(snapshot), time.perf_counter() - t, peak_rss_gib() - base)
"""
        )
        _, n_people, n_incidents, cohort, seconds, peak = out.split()
        partitions.append((la, int(n_people), int(n_incidents), int(cohort), float(seconds), float(peak)))

print(f"world {world} at {as_of}: {scored:,} people scored; {same}")
print(f"local engine     {local_wall:6.1f} s  ({scored / local_wall:,.0f} rows/s); peak RSS {local_rss:.2f} GiB")
print(
    f"spark local[2]   {spark_wall:6.1f} s  ({scored / spark_wall:,.0f} rows/s); ratio {spark_wall / local_wall:.2f}x "
    f"(goal <= 2x); {spark_jobs} Spark jobs"
)
print(
    f"  of which validation {validation_wall:6.1f} s (the same session set-up, measured alone); "
    f"features, scores, listing and writing the rest"
)
for name, wall in plans.items():
    print(f"  bare plan, {name:<22} {wall:6.1f} s: {wall / local_wall:.2f}x the local engine")
print(f"  driver peak: Python {spark_rss:.2f} GiB (goal <= 1 GB); JVM (driver + local executors) {jvm_rss:.2f} GiB")
print(
    "one partition (read excluded): local authority, people, incidents, cohort, seconds, "
    "peak RSS above what was held before it (GiB)"
)
for la, n_people, n_incidents, cohort, seconds, peak in partitions:
    print(f"  {la:<24} {n_people:>9,} {n_incidents:>9,} {cohort:>8,} {seconds:7.2f} s {peak:6.2f}")
