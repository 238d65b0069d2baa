"""The data contract on Spark: the declared rules of `features.rules`, rows quarantined as the local engine does.

Row-local rules run on pandas batches (`mapInPandas`) through the local engine's own `rule_failures`; keys
are a Spark window and references (and the rules that read a referenced row) Spark joins against the
parent table's valid rows. Every rule becomes one column of reasons; a row's reasons are those columns in
the declaration's order, and the report counts them by rule as `features.validate` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from riskloop.artifacts.dataset import QUARANTINE_DIR
from riskloop.features.rules import QUOTED, Rule, table_rules
from riskloop.features.schema import CONTRACT, Reference, TableSchema
from riskloop.features.snapshot import check_as_of_dates
from riskloop.features.validate import TableReport, ValidationReport, parse_table, require_columns, rule_failures
from riskloop.spark.groups import CARRIED, CARRIED_NAMES, keyed
from riskloop.spark.session import workers_on_task_cpus
from riskloop.spark.storage import coverage_end, fingerprint, join, read_table, remove

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Row, SparkSession


@dataclass
class SparkData:
    """A data set validated by Spark: valid typed tables (cached; people keyed by group, the rows that refer to a
    person carrying `groups.CARRIED`), report, coverage end, fingerprint, the first valid incident's date."""

    valid: dict[str, DataFrame]
    report: ValidationReport
    end: date
    fingerprint: str
    areas: pd.DataFrame  # small: every valid area, in file order (collected once)
    programmes: tuple[str, ...]
    first_incident: date | None

    def check_coverage(self, as_of_dates: list[date]) -> None:
        """`features.snapshot.check_coverage` of the valid incidents: raise ValueError for a date outside them."""
        check_as_of_dates(self.first_incident, self.end, as_of_dates)


#: How a reference is joined to its parent's valid rows: the small areas sent to every task. People are joined as
#: Spark plans it (a sort-merge join, which spills): a shuffled hash join, 2 s faster on full Wales, holds a shuffle
#: partition of people in memory and failed there with Spark's default 1 GiB (docs/spark.md, "Memory").
JOIN_HINTS = {"areas": "broadcast"}


def _typed_fields(schema: TableSchema, columns: list[str]):
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, TimestampNTZType

    kinds = {
        "string": StringType(),
        "date": TimestampNTZType(),
        "int": DoubleType(),
        "float": DoubleType(),
        "bool": BooleanType(),
    }
    return [StructField(c.name, kinds[c.kind]) for c in schema.columns if c.name in columns]


def _row_checks(schema: TableSchema, columns: list[str], rules: dict[int, Rule], today: date):
    """mapInPandas body: each batch's typed columns and, for each row-local rule i, its reasons in `_r<i>`."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            table = parse_table(schema, batch[columns].reset_index(drop=True))
            out = {
                "_row": batch["_row"].to_numpy(),
                **{k: v.to_numpy() if v.dtype.kind == "M" else v for k, v in table.typed.items()},
            }
            for i, rule in rules.items():
                failure = rule_failures(rule, table, {}, today)
                out[f"_r{i}"] = (
                    np.full(len(batch), None, dtype=object)
                    if failure is None
                    else failure.reasons.where(failure.rows).to_numpy(dtype=object, na_value=None)
                )
            yield pd.DataFrame(out)

    return run


def _lookups(rules: list[Rule]) -> dict[Reference, tuple[str, ...]]:
    """Each reference the rules follow, with the parent columns they read (one join per reference)."""
    found: dict[Reference, list[str]] = {}
    for rule in rules:
        if rule.reference is not None:
            read = found.setdefault(rule.reference, [])
            if rule.kind == "before":
                read.append(rule.columns[1])
    return {ref: tuple(dict.fromkeys(read)) for ref, read in found.items()}


def _table_check(rule: Rule, parent: str, today: date) -> Column:
    """A rule across rows as a Spark column of reasons (null where the row passes); `parent` prefixes the
    columns its reference's join brought."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    before, after = rule.reason_parts(today)
    if rule.kind == "duplicate":
        present = F.lit(True)
        for column in rule.columns:
            present = present & F.col(column).isNotNull()
        return F.when(present & (F.count(F.lit(1)).over(Window.partitionBy(*rule.columns)) > 1), F.lit(before))
    if rule.kind == "reference":
        value = F.col(rule.target.column)
        cut_before, cut_after = rule.cut_parts(today)
        shown = F.when(
            F.length(value) > QUOTED,
            F.concat(
                F.substring(value, 1, QUOTED), F.lit(cut_before), F.format_number(F.length(value), 0), F.lit(cut_after)
            ),
        ).otherwise(F.concat(value, F.lit(after)))
        return F.when(value.isNotNull() & F.col(parent).isNull(), F.concat(F.lit(before), shown))
    if rule.kind == "before":
        return F.when(F.col(rule.columns[0]) < F.col(f"{parent}_{rule.columns[1]}"), F.lit(before))
    raise ValueError(f"a '{rule.kind}' rule cannot be checked across rows")


def _checked(
    raw: DataFrame, schema: TableSchema, columns: list[str], rules: list[Rule], valid: dict[str, DataFrame], today: date
) -> DataFrame:
    """The table's typed columns, `_row`, and a column of reasons `_r<i>` for each of `rules`."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    local = {i: rule for i, rule in enumerate(rules) if rule.row_local}
    out_schema = StructType(
        [
            StructField("_row", LongType()),
            *_typed_fields(schema, columns),
            *[StructField(f"_r{i}", StringType()) for i in local],
        ]
    )
    checked = raw.mapInPandas(_row_checks(schema, columns, local, today), out_schema)
    lookups = _lookups(rules)
    parents = {ref: f"_p{j}" for j, ref in enumerate(lookups)}
    for ref, read in lookups.items():
        p = parents[ref]
        table = valid[ref.table]
        carried = [F.col(column).alias(name) for column, name in CARRIED.get(ref.table, ())]
        parent = table.select(F.col(ref.table_column).alias(p), *[F.col(c).alias(f"{p}_{c}") for c in read], *carried)
        hint = JOIN_HINTS.get(ref.table)
        checked = checked.join(parent.hint(hint) if hint else parent, F.col(ref.column) == F.col(p), "left")
    if schema.name == "people":  # before the duplicate check's window, which leaves them partitioned by person
        checked = keyed(checked)
    for i, rule in enumerate(rules):
        if i not in local:
            prefix = parents[rule.reference] if rule.reference is not None else ""
            checked = checked.withColumn(f"_r{i}", _table_check(rule, prefix, today))
    return checked


def _summary(rules: list[Rule], passes: Column, facts: list[Column]) -> list[Column]:
    """One aggregate over a checked table: rows read, rows quarantined, failures per rule, then `facts`."""
    from pyspark.sql import functions as F

    return [F.count(F.lit(1)), F.count_if(~passes), *[F.count(f"_r{i}") for i in range(len(rules))], *facts]


def _facts(table: str, passes: Column) -> list[Column]:
    """What the engine needs to know of a table's valid rows, aggregated in its validation pass: the first and
    last incident dates; the programmes, sorted."""
    from pyspark.sql import functions as F

    if table == "incidents":
        return [F.min(F.when(passes, F.col("date"))), F.max(F.when(passes, F.col("date")))]
    if table == "interventions":
        return [F.array_sort(F.collect_set(F.when(passes, F.col("programme"))))]
    return []


def _table_report(table: str, rules: list[Rule], summary: Row) -> TableReport:
    """`summary` (of `_summary`) as the report of the table: failures counted by rule label."""
    read, quarantined = summary[0], summary[1]
    counts: dict[str, int] = {}
    for rule, failed in zip(rules, summary[2 : 2 + len(rules)], strict=True):
        if failed:
            counts[rule.label] = counts.get(rule.label, 0) + int(failed)
    return TableReport(table, read, read - quarantined, quarantined, counts)


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def validate_on_spark(
    spark: SparkSession, data_uri: str, today: date | None = None, quarantine: bool = True
) -> SparkData:
    """Validate the four tables as `riskloop.artifacts.dataset.read_dataset` does (the same declared rules);
    quarantine to `_quarantine/<table>/` on the data set's URI. Each table is checked in one cached pass and
    summarised by one aggregate; its valid rows are read from that cache. People are keyed by group in their
    pass (`groups.keyed`), for the tables that refer to them to carry."""
    from pyspark.sql import functions as F

    workers_on_task_cpus(spark)  # every path of the engine starts here, before it hands Spark any Python function
    today = today or date.today()
    valid: dict[str, DataFrame] = {}
    reports: dict[str, TableReport] = {}
    facts: dict[str, list] = {}
    for schema in CONTRACT:
        raw = read_table(spark, data_uri, schema.name)
        columns = [c for c in raw.columns if c != "_row"]
        require_columns(schema, columns, join(data_uri, schema.name))
        rules = [rule for rule in table_rules(schema.name) if rule.applies(columns)]
        checked = _checked(raw, schema, columns, rules, valid, today)
        checked = checked.withColumn("_reasons", F.array_compact(F.array(*[f"_r{i}" for i in range(len(rules))])))
        checked = checked.persist()
        passes = F.size("_reasons") == 0
        summary = checked.agg(*_summary(rules, passes, _facts(schema.name, passes))).collect()[0]
        reports[schema.name] = _table_report(schema.name, rules, summary)
        facts[schema.name] = list(summary[2 + len(rules) :])
        if quarantine:
            bad = checked.where(~passes).select("_row", "_reasons")
            _write_quarantine(spark, data_uri, schema.name, raw, bad, columns, reports[schema.name].quarantined)
        named = [c.name for c in schema.columns if c.name in columns]
        carried = [name for name in CARRIED_NAMES if name in checked.columns]
        valid[schema.name] = checked.where(passes).select("_row", *named, *sorted(carried))  # _row: file order
    first, last = (_day(moment) for moment in facts["incidents"])
    end = coverage_end(spark, data_uri) or last or today
    areas: pd.DataFrame = valid["areas"].toPandas()
    areas = areas.sort_values("_row").drop(columns="_row").reset_index(drop=True)
    programmes = tuple(facts["interventions"][0])
    return SparkData(valid, ValidationReport(reports), end, fingerprint(spark, data_uri), areas, programmes, first)


def _write_quarantine(
    spark: SparkSession, data_uri: str, name: str, raw: DataFrame, bad: DataFrame, columns: list[str], rows: int
) -> None:
    """`_quarantine/<table>/` (CSV parts with a header: row, the raw columns, reason); removed when none fails."""
    from pyspark.sql import functions as F

    target = join(data_uri, f"{QUARANTINE_DIR}/{name}")
    if not rows:
        remove(spark, target)
        return
    quarantined = (
        raw.join(bad, "_row")
        .orderBy("_row")
        .select(
            F.col("_row").alias("row"),
            *[F.col(c).cast("string") for c in columns],
            F.array_join("_reasons", "; ").alias("reason"),
        )
    )
    quarantined.coalesce(1).write.mode("overwrite").csv(target, header=True, quoteAll=True)
