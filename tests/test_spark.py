"""The Spark engine gives what the local engine gives: cohort, features (1e-9), risks, ranks, lists, quarantine
(from the one declaration of the contract's rules)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from conftest import TODAY, hand_tables, write_tables  # noqa: E402

from riskloop.artifacts.dataset import read_dataset  # noqa: E402
from riskloop.experiments.registry import LoadedModel  # noqa: E402
from riskloop.features import rules  # noqa: E402
from riskloop.features.rules import RULES, Rule  # noqa: E402
from riskloop.features.schema import CONTRACT, Reference  # noqa: E402
from riskloop.features.validate import validate_tables  # noqa: E402
from riskloop.serving.batch import score_to_lists  # noqa: E402
from riskloop.serving.capacity import Capacity  # noqa: E402

pytestmark = pytest.mark.slow
AS_OF = date(2025, 7, 1)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("riskloop-test")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def loaded(escalation_run) -> LoadedModel:
    return LoadedModel(
        "models:/riskloop-esc-session@champion", "riskloop-esc-session", "3", "run123", escalation_run[2].scorer
    )


@pytest.fixture(scope="module")
def remedied(escalation_run) -> LoadedModel:
    """The session's model with a group-wise map within sex that halves women's odds (made by hand: on this
    small world the pooled risk is within chance for both sexes, so a fitted map would move nobody)."""
    import dataclasses

    from riskloop.models.group_calibration import GroupwiseMap

    _, data, result = escalation_run
    scorer = result.scorer
    sexes = tuple(sorted(data.frame["sex"].astype(str).unique()))
    within = GroupwiseMap(("sex",), (sexes,), {("F",): (-np.log(2), 1.0)})
    contract = dataclasses.replace(scorer.contract, calibrated_within=("sex",))
    remedied = dataclasses.replace(scorer, contract=contract, within=within)
    return LoadedModel("models:/riskloop-esc-session@champion", "riskloop-esc-session", "4", "run124", remedied)


@pytest.fixture(scope="module")
def pooled(escalation_run) -> LoadedModel:
    """The session's model calibrated on everyone at once (sex-blind throughout)."""
    import dataclasses

    scorer = escalation_run[2].scorer
    contract = dataclasses.replace(scorer.contract, calibrated_within=())
    sex_blind = dataclasses.replace(scorer, contract=contract, within=None)
    return LoadedModel("models:/riskloop-esc-session@champion", "riskloop-esc-session", "5", "run125", sex_blind)


def test_a_session_gets_two_shuffle_partitions_per_core_unless_the_user_set_them():
    """In a process of its own (a fresh SparkContext, as `riskloop score --engine spark` or a notebook has)."""
    code = (
        "from pyspark.sql import SparkSession\n"
        "from riskloop.spark import spark_session\n"
        "key = 'spark.sql.shuffle.partitions'\n"
        "mine = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false').getOrCreate()\n"
        "fresh = spark_session().conf.get(key)\n"
        "mine.conf.set(key, '7')\n"
        "print(fresh, spark_session().conf.get(key))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["2", "7"]  # local[1]: two per core; then the notebook's own setting stays


def test_a_local_session_gets_half_the_memory_unless_the_user_sized_it():
    """In processes of their own: the JVM's heap is sized when it starts."""
    from riskloop.spark.session import local_driver_memory

    code = (
        "from riskloop.spark import spark_session\n"
        "print(spark_session('local[1]').sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**20)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPARK_DRIVER_MEMORY"}
    heaps = {}
    for chosen in (None, "1500m"):
        run = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            env=env if chosen is None else {**env, "SPARK_DRIVER_MEMORY": chosen},
        )
        assert run.returncode == 0, run.stderr[-3000:]
        heaps[chosen] = float(run.stdout.split()[-1])
    assert heaps[None] == pytest.approx(int(local_driver_memory().removesuffix("m")), rel=0.1)
    assert heaps["1500m"] == pytest.approx(1500, rel=0.1)


def test_a_tasks_python_worker_uses_the_cpus_of_its_task_unless_the_user_said_otherwise(spark, monkeypatch):
    """On `local[2]` two tasks run at once, each given one CPU: the environment their workers start with gives
    LightGBM, OpenMP and DuckDB one thread each, not both of the machine's CPUs each. A user's
    `spark.executorEnv.RISKLOOP_THREADS` (which Spark puts in the same environment) comes first, and it is what
    the workers see."""
    from joblib import cpu_count

    from riskloop.spark.session import workers_on_task_cpus

    def threads(batches):
        from joblib import effective_n_jobs

        for _ in batches:
            yield pd.DataFrame({"riskloop": [os.environ.get("RISKLOOP_THREADS")], "joblib": [effective_n_jobs(-1)]})

    environment = spark.sparkContext.environment
    names = ("RISKLOOP_THREADS", "LOKY_MAX_CPU_COUNT", "OMP_NUM_THREADS")  # spelled out: what the workers read
    before = {name: environment.pop(name) for name in names if name in environment}
    try:
        workers_on_task_cpus(spark)
        assert {name: environment[name] for name in names} == dict.fromkeys(names, "1")
        for name in names:
            environment.pop(name)
        environment["RISKLOOP_THREADS"] = "2"
        workers_on_task_cpus(spark)
        rows = spark.range(4).repartition(2).mapInPandas(threads, "riskloop string, joblib long").collect()
        monkeypatch.delenv("LOKY_MAX_CPU_COUNT", raising=False)  # this process's own cap (RISKLOOP_THREADS)
        assert {(row.riskloop, row.joblib) for row in rows} == {("2", min(2, cpu_count()))}
    finally:
        for name in names:
            environment.pop(name, None)
        environment.update(before)


def test_the_world_crosses_partitions(crossing_world):
    """Guard: the engines are compared (here and in test_spark_cluster.py) where people share incidents and
    households across authorities."""
    data = read_dataset(crossing_world)
    la = data.people.merge(data.areas, on="area_id").set_index("person_id")["local_authority"]
    incidents = data.incidents.assign(la=data.incidents["person_id"].map(la))
    assert (incidents.groupby("incident_id")["la"].nunique() > 1).sum() > 20
    households = data.people.assign(la=data.people["person_id"].map(la)).dropna(subset=["household_id"])
    assert (households.groupby("household_id")["la"].nunique() > 1).sum() > 20


def test_a_model_calibrated_within_sex_scores_alike_on_both_engines(spark, crossing_world, pooled, remedied, tmp_path):
    """The snapshot carries sex to the scorer on Spark too: the same risks as the local engine, not the pooled ones;
    people whose sex the calibration never saw ('U') keep the pooled risk, and both engines say so alike."""
    import shutil

    from riskloop.spark import spark_score_to_lists

    data = tmp_path / "data"
    shutil.copytree(crossing_world, data)
    people = pd.read_parquet(data / "people.parquet")
    people.loc[people.index[:3], "sex"] = "U"  # those of them in the cohort are named in both warnings
    people.to_parquet(data / "people.parquet")
    local = score_to_lists(remedied, read_dataset(data), AS_OF, tmp_path / "local", Capacity(share=0.05))
    on_spark = spark_score_to_lists(spark, remedied, str(data), AS_OF, tmp_path / "spark", Capacity(share=0.05))
    score_to_lists(pooled, read_dataset(data), AS_OF, tmp_path / "pooled", Capacity(share=0.05))
    assert on_spark.warnings == local.warnings and any("sex 'U' (" in w for w in local.warnings), local.warnings
    want = pd.read_parquet(tmp_path / "local" / "prioritisation.parquet").set_index("person_id")
    got = pd.read_parquet(tmp_path / "spark" / "prioritisation.parquet").set_index("person_id")
    pooled = pd.read_parquet(tmp_path / "pooled" / "prioritisation.parquet").set_index("person_id")
    assert local.manifest.contract.calibrated_within == ("sex",) and len(got) == len(want) > 1000
    np.testing.assert_allclose(got["risk"].to_numpy(), want.loc[got.index, "risk"].to_numpy(), rtol=0, atol=1e-12)
    assert not np.allclose(want["risk"].to_numpy(), pooled.loc[want.index, "risk"].to_numpy())


def test_bad_rows_are_quarantined_as_the_local_engine_does(spark, tmp_path):
    tables = hand_tables()
    tables["people"] = pd.concat(
        [
            tables["people"],
            pd.DataFrame(
                {
                    "person_id": ["p1", "p9", " p8", "p7"],
                    "area_id": ["A1", "A9", "A2", "A1"],
                    "birth_date": ["1990-01-01", "1980-01-01", "not a date", "2030-01-01"],
                    "sex": ["M", "X", "F", "F"],
                    "ethnicity": ["White", "White", "Asian", "Black"],
                }
            ),
        ],
        ignore_index=True,
    )
    tables["incidents"] = pd.concat(
        [
            tables["incidents"],
            pd.DataFrame(
                {
                    "incident_id": ["i9", "i9", "i8", "i7"],
                    "person_id": ["p9", "p3", "p3", "p2"],
                    "date": ["2023-01-01", "2001-01-01", "2023-01-01", "2023-03-01"],
                    "type": ["asb", "asb", "nonsense", "asb"],
                    "role": ["victim", "victim", "victim", "victim"],
                    "harm": ["1", "inf", "-2", "1"],
                }
            ),
        ],
        ignore_index=True,
    )
    tables["interventions"] = pd.concat(
        [
            tables["interventions"],
            pd.DataFrame(
                {
                    "intervention_id": ["v2"],
                    "person_id": ["p2"],
                    "programme": ["drive"],
                    "start_date": ["2023-03-01"],
                    "tier": ["tertiary"],
                    "end_date": ["2023-01-01"],
                    "completed": ["maybe"],
                }
            ),
        ],
        ignore_index=True,
    )
    quarantined_alike(spark, tables, tmp_path / "bad")


def test_both_engines_quote_at_most_100_characters_of_a_huge_value(spark, tmp_path):
    tables = hand_tables()
    tables["people"].loc[0, "sex"] = "s" * 2**20
    tables["incidents"].loc[3, "person_id"] = "g" * 2**20
    quarantined = quarantined_alike(spark, tables, tmp_path / "huge")
    assert quarantined["incidents"].set_index("row").loc[4, "reason"] == (
        f"person_id: '{'g' * 100}…' (1,048,576 characters) not found in valid people"
    )


def quarantined_alike(spark, tables: dict[str, pd.DataFrame], folder: Path) -> dict[str, pd.DataFrame]:
    """Assert that both engines give the same report and quarantine (rows and reasons) of `tables`, written
    to `folder`; return the local engine's quarantine."""
    from riskloop.spark import validate_on_spark

    write_tables(folder, tables)
    _, quarantined, report = validate_tables({k: v.astype(str).where(v.notna()) for k, v in tables.items()}, TODAY)
    got = validate_on_spark(spark, str(folder), TODAY)
    for name, want in report.tables.items():
        have = got.report.tables[name]
        assert (have.read, have.valid, have.quarantined, have.reasons) == (
            want.read,
            want.valid,
            want.quarantined,
            want.reasons,
        ), name
        if want.quarantined:
            written = pd.concat(pd.read_csv(p, dtype=str) for p in (folder / "_quarantine" / name).glob("*.csv"))
            assert written["row"].astype(int).tolist() == quarantined[name]["row"].tolist()
            assert written["reason"].tolist() == quarantined[name]["reason"].tolist(), name
    return quarantined


BREAK = {
    "missing": "",
    "type": "zz",
    "finite": "inf",
    "allowed": "nonsense",
    "not_future": "2030-01-01",
    "earliest": "1899-12-31",
    "max_age": "1901-01-01",
    "reference": "ghost",
    "before": "1901-01-02",
}


def broken_row(rule: Rule, base: pd.Series) -> pd.Series:
    """A valid row of `rule`'s table (a fresh key) that fails `rule`: its first column set to a breaking cell."""
    row = base.copy()
    row[rule.columns[0]] = str(rule.limit - 1) if rule.kind == "minimum" else BREAK[rule.kind]
    return row


def test_both_engines_quarantine_one_broken_row_per_declared_rule_alike(spark, tmp_path):
    """One broken row per rule of the declaration (two for a key): each is quarantined with its rule's reason,
    and the Spark engine's quarantine is the local engine's, row for row."""
    tables = hand_tables()
    tables["people"]["disability"] = "N"  # an optional column: its rules apply where it is present
    tables["incidents"]["attention"] = "reported"
    rows: dict[Rule, tuple[str, list[int]]] = {}
    for k, rule in enumerate(RULES):
        frame = tables[rule.table]
        base = frame.iloc[0].copy()
        base[next(s for s in CONTRACT if s.name == rule.table).key[0]] = f"x{k}"
        added = [base, base] if rule.kind == "duplicate" else [broken_row(rule, base)]
        tables[rule.table] = pd.concat([frame, pd.DataFrame(added)], ignore_index=True)
        rows[rule] = (rule.table, [len(frame) + 1 + i for i in range(len(added))])
    quarantined = quarantined_alike(spark, tables, tmp_path / "broken")
    for rule, (table, numbers) in rows.items():
        reasons = quarantined[table].set_index("row")["reason"]
        before, after = rule.reason_parts(TODAY)
        for number in numbers:
            assert number in reasons.index and before in reasons[number] and after in reasons[number], rule


def test_a_rule_planted_in_the_declaration_is_enforced_by_both_engines(spark, tmp_path, monkeypatch):
    """Both engines read the one declaration: a row-local rule and a rule across tables, planted in
    `features.rules.RULES`, quarantine the same rows with the planted reasons."""
    planted = (
        Rule("incidents", "minimum", ("harm",), "harm: {value} is below the planted 1", limit=1.0),
        Rule(
            "interventions",
            "before",
            ("start_date", "birth_date"),
            "start_date: before the person's birth",
            reference=Reference("person_id", "people", "person_id"),
        ),
    )
    monkeypatch.setattr(rules, "RULES", rules.RULES + planted)
    tables = hand_tables()
    tables["interventions"] = pd.concat(
        [
            tables["interventions"],
            pd.DataFrame(
                {
                    "intervention_id": ["v2"],
                    "person_id": ["p3"],
                    "programme": ["drive"],
                    "start_date": ["2005-01-01"],
                    "tier": ["tertiary"],
                    "end_date": [""],
                    "completed": [""],
                }
            ),
        ],
        ignore_index=True,
    )
    quarantined = quarantined_alike(spark, tables, tmp_path / "planted")
    assert quarantined["incidents"]["reason"].tolist() == ["harm: 0.5 is below the planted 1"]
    assert quarantined["interventions"]["reason"].tolist() == ["start_date: before the person's birth"]


def test_validation_summarises_only_the_valid_rows_as_the_local_engine_does(spark, tmp_path):
    """The first incident, the coverage end and the programmes come from the one validation pass, and from
    valid rows only: an incident with a bad harm outside the valid dates, an intervention of a programme of
    its own that ends before it starts."""
    from riskloop.spark import validate_on_spark

    tables = hand_tables()
    extra_incidents = pd.DataFrame(
        {
            "incident_id": ["i8", "i9"],
            "person_id": ["p1", "p2"],
            "date": ["2020-01-01", "2025-01-01"],
            "type": ["asb", "asb"],
            "role": ["victim", "victim"],
            "harm": ["-1", "-1"],
        }
    )
    tables["incidents"] = pd.concat([tables["incidents"], extra_incidents], ignore_index=True)
    tables["interventions"] = pd.concat(
        [tables["interventions"], tables["interventions"].assign(intervention_id="v2", programme="zz_bad")],
        ignore_index=True,
    )
    tables["interventions"].loc[1, "end_date"] = "2023-01-01"
    local = read_dataset(write_tables(tmp_path / "data", tables), today=TODAY)
    got = validate_on_spark(spark, str(tmp_path / "data"), TODAY)
    assert got.first_incident == local.incidents["date"].min().date() == date(2023, 2, 1)
    assert got.end == local.end == date(2023, 7, 1)
    assert got.programmes == tuple(sorted(local.interventions["programme"].unique())) == ("drive",)
    assert got.report.tables["interventions"].quarantined == 1


def test_a_table_whose_rows_all_fail_or_that_has_none_is_summarised_as_the_local_engine_does(spark, tmp_path):
    """A table's one aggregate over its cached pass, where nothing is left to aggregate: every intervention
    quarantined gives no programmes, and a table of no rows reports none read."""
    from riskloop.spark import validate_on_spark

    tables = hand_tables()
    tables["interventions"] = tables["interventions"].assign(person_id="nobody")
    local = read_dataset(write_tables(tmp_path / "bad", tables), today=TODAY)
    got = validate_on_spark(spark, str(tmp_path / "bad"), TODAY)
    assert got.programmes == () and local.interventions.empty
    assert got.report.tables["interventions"] == local.report.tables["interventions"]
    assert got.report.tables["interventions"].quarantined == len(tables["interventions"])

    tables["interventions"] = tables["interventions"].iloc[:0]
    local = read_dataset(write_tables(tmp_path / "none", tables), today=TODAY)
    got = validate_on_spark(spark, str(tmp_path / "none"), TODAY)
    assert got.programmes == ()
    assert got.report.tables == local.report.tables
    assert got.report.tables["interventions"].read == 0


def test_rows_that_refer_to_a_person_carry_the_persons_group_and_area_from_validation(spark, tmp_path):
    """The grouping and the area counts join nothing: people are keyed in their own pass, and the incidents and
    interventions take the key and the person's area from their reference's join; people carry only their key.
    A household's key is the first authority of its rows, a quarantined row's included (it only shares out work)."""
    from riskloop.spark import validate_on_spark
    from riskloop.spark.groups import CARRIED_NAMES, KEY, PERSON_AREA

    tables = hand_tables()
    tables["areas"].loc[2] = ["A0", "Bridgend", "900", "3"]
    tables["people"] = tables["people"].assign(household_id=["h1", "h2", "h1"])  # p3 of Swansea lives with p1
    tables["people"].loc[3] = ["p9", "A0", "not a date", "F", "White", "h1"]  # quarantined, in Bridgend, of h1
    got = validate_on_spark(spark, str(write_tables(tmp_path / "data", tables)), TODAY)
    assert got.report.tables["people"].quarantined == 1
    people = {r["person_id"]: r[KEY] for r in got.valid["people"].collect()}
    assert people == {"p1": "Bridgend", "p2": "Cardiff", "p3": "Bridgend"}
    assert CARRIED_NAMES & set(got.valid["people"].columns) == {KEY}
    incidents = sorted((r["person_id"], r[KEY], r[PERSON_AREA]) for r in got.valid["incidents"].collect())
    assert incidents == [
        ("p1", "Bridgend", "A1"),
        ("p1", "Bridgend", "A1"),
        ("p2", "Cardiff", "A1"),
        ("p3", "Bridgend", "A2"),
    ]
    assert [(r["person_id"], r[KEY]) for r in got.valid["interventions"].collect()] == [("p1", "Bridgend")]
    assert not CARRIED_NAMES & set(got.valid["areas"].columns)


def test_a_household_goes_whole_with_the_first_authority_of_its_members(spark):
    from riskloop.spark.groups import AUTHORITY, KEY, keyed

    people = spark.createDataFrame(
        [("p1", "Cardiff", "h1"), ("p2", "Swansea", "h1"), ("p3", "Cardiff", None), ("p4", "Swansea", None)]
        + [("p5", "Newport", "h2"), ("p6", None, "h2")],
        f"person_id string, {AUTHORITY} string, household_id string",
    )
    got = keyed(people)
    assert AUTHORITY not in got.columns
    keys = {r["person_id"]: r[KEY] for r in got.collect()}
    assert keys == {
        "p1": "Cardiff",
        "p2": "Cardiff",
        "p3": "Cardiff",
        "p4": "Swansea",
        "p5": "Newport",
        "p6": "Newport",
    }
    assert {r["person_id"]: r[KEY] for r in keyed(people.drop("household_id")).collect()}["p2"] == "Swansea"


def test_each_group_gets_the_other_groups_rows_of_its_incidents(spark):
    from pyspark.sql import functions as F

    from riskloop.spark.groups import KEY
    from riskloop.spark.partitions import other_groups_rows

    incidents = spark.createDataFrame(
        [("i1", "p1", "G1"), ("i1", "p2", "G2"), ("i1", "p3", "G2"), ("i2", "p4", "G1"), ("i2", "p5", "G1")],
        f"incident_id string, person_id string, {KEY} string",
    ).withColumn("date", F.to_timestamp(F.lit("2023-01-01")))
    got = sorted((r[KEY], r["incident_id"], r["_other_person"]) for r in other_groups_rows(incidents).collect())
    assert got == [("G1", "i1", "p2"), ("G1", "i1", "p3"), ("G2", "i1", "p1")]


def test_parts_are_assembled_unit_by_unit_in_the_order_each_unit_was_written(tmp_path):
    """Spark writes each unit's rows (by rank) in one task without sorting across parts: the assembled file
    holds the units in order, each unit's rows as written, also where a task's rows were split over two files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from riskloop.spark.storage import assemble_groups

    parts = tmp_path / "parts"
    parts.mkdir()
    written = {
        "part-00000-c000": {"unit": ["Swansea", "Swansea", "Bridgend"], "rank": [1, 2, 1]},
        "part-00001-c000": {"unit": ["Cardiff", "Newport", "Newport"], "rank": [1, 1, 2]},
        "part-00001-c001": {"unit": ["Newport", "Wrexham"], "rank": [3, 1]},
    }
    for name, columns in written.items():
        pq.write_table(pa.table(columns), parts / f"{name}.snappy.parquet")
    rows = assemble_groups(f"file://{parts}", tmp_path / "all.parquet", "unit")
    got = pq.read_table(tmp_path / "all.parquet").to_pydict()
    assert rows == 8
    assert list(zip(got["unit"], got["rank"], strict=True)) == [
        ("Bridgend", 1),
        ("Cardiff", 1),
        ("Newport", 1),
        ("Newport", 2),
        ("Newport", 3),
        ("Swansea", 1),
        ("Swansea", 2),
        ("Wrexham", 1),
    ]


def test_a_failed_spark_job_is_one_line_naming_its_root_cause(spark):
    from riskloop.spark.session import SparkJobError, explained_failures

    def broken(batches):
        for batch in batches:
            raise ValueError("a broken partition")
            yield batch

    with pytest.raises(SparkJobError, match=r"^Spark failed: PythonException: ValueError: a broken partition$"):
        with explained_failures():
            spark.range(3).mapInPandas(broken, "id long").collect()
    with pytest.raises(SparkJobError, match=r'^Spark failed: NumberFormatException: For input string: "x"$'):
        with explained_failures():
            spark.sparkContext._jvm.java.lang.Integer.parseInt("x")  # a JVM error that nothing on the way rewords
    with pytest.raises(ValueError, match="^riskloop's own$"):  # not Spark's: passes unchanged, with its traceback
        with explained_failures():
            raise ValueError("riskloop's own")


def test_the_cli_says_in_one_line_why_spark_could_not_read_a_table(spark, tmp_path):
    from typer.testing import CliRunner

    from riskloop.cli import app

    folder = write_tables(tmp_path / "data", hand_tables())
    (folder / "incidents.csv").unlink()
    (folder / "incidents.parquet").write_bytes(b"not a parquet file, though named one")
    args = ["features", "--engine", "spark", "--data", str(folder), "--as-of", "2023-05-01", "--out"]
    result = CliRunner().invoke(app, [*args, str(tmp_path / "snapshots.parquet")])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: Spark failed: ") and "incidents.parquet" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "snapshots.parquet").exists()


def test_a_spark_job_out_of_memory_says_how_to_give_it_more(monkeypatch):
    from riskloop.spark.session import _explained

    def said() -> str:  # what scoring full Wales on Spark's default 1 GiB said with a shuffled hash join
        return _explained(
            "org.apache.spark.memory.SparkOutOfMemoryError", "There is not enough memory to build hash map."
        )

    monkeypatch.delenv("SPARK_DRIVER_MEMORY", raising=False)
    assert said().startswith("Spark failed: SparkOutOfMemoryError: There is not enough memory to build hash map.; ")
    assert "SPARK_DRIVER_MEMORY=8g" in said() and "--executor-memory" in said()
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "12075m")  # riskloop's default here: never advise less
    assert "more than SPARK_DRIVER_MEMORY=12075m" in said() and "=8g" not in said()
    assert _explained("java.lang.NullPointerException", "") == "Spark failed: NullPointerException: (no message)"
