"""`riskloop generate | validate | features | splits`: the data set and its snapshots."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from riskloop.cli._console import DATE, EXPECTED, FAILED, console, day, fatal, out, progress, warn
from riskloop.features.validate import ValidationReport
from riskloop.jobs import data as jobs
from riskloop.jobs.common import Engine


class Label(str, Enum):
    escalation = "escalation"
    repeat_victimisation = "repeat_victimisation"


def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the data set to")],
    people: Annotated[int, typer.Option(help="number of people (3,100,000 is full Wales)")] = 100_000,
    seed: Annotated[int, typer.Option(help="random seed: same seed, byte-identical tables")] = 42,
    start: Annotated[datetime, typer.Option(formats=DATE, help="first day of the world")] = datetime(2017, 1, 1),
    end: Annotated[datetime, typer.Option(formats=DATE, help="last day of the world")] = datetime(2025, 12, 31),
) -> None:
    """Generate the synthetic Wales-like world (contract tables + truth/ apart)."""
    try:
        with progress(f"generating {people:,} people") as report:
            counts = jobs.generate(jobs.GenerateJob(out_dir, people, seed, start.date(), end.date()), report)
    except ValueError as exc:
        fatal(str(exc))
    out.print(
        f"wrote {out_dir}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + f"; truth in {out_dir / 'truth'}"
    )


def print_validation(report: ValidationReport) -> None:
    table = Table(title="validation: rows read = valid + quarantined")
    for col in ("table", "read", "valid", "quarantined", "rules broken"):
        table.add_column(col, justify="right" if col in ("read", "valid", "quarantined") else "left")
    for t in report.tables.values():
        rules = ", ".join(f"{k} ({v})" for k, v in sorted(t.reasons.items()))
        table.add_row(t.table, f"{t.read:,}", f"{t.valid:,}", f"{t.quarantined:,}", rules or "-")
    out.print(table)


def validate(
    data_dir: Annotated[Path, typer.Argument(help="data set folder (Parquet or CSV tables)")],
    strict: Annotated[bool, typer.Option(help="exit 1 if any row is quarantined")] = False,
    today: Annotated[
        datetime | None, typer.Option(formats=DATE, help="reference date for 'in the future' (default: today)")
    ] = None,
) -> None:
    """Check a data set against the contract; quarantine bad rows with their reason."""
    from riskloop.artifacts.dataset import QUARANTINE_DIR

    try:
        dataset = jobs.validate(data_dir, day(today))
    except EXPECTED as exc:
        fatal(str(exc))
    print_validation(dataset.report)
    unreconciled = [t.table for t in dataset.report.tables.values() if not t.reconciles]
    if unreconciled:
        fatal(f"rows read != valid + quarantined in {', '.join(unreconciled)}: please report this as a bug")
    if dataset.report.quarantined:
        console.print(
            f"[yellow]warning:[/] {dataset.report.quarantined:,} rows quarantined; "
            f"reasons in {data_dir / QUARANTINE_DIR}/",
            highlight=False,
        )
        if strict:
            raise typer.Exit(1)


def features(
    data: Annotated[str, typer.Option("--data", help="data set folder (with --engine spark, any URI Spark reads)")],
    as_of: Annotated[list[datetime], typer.Option("--as-of", formats=DATE, help="as-of date T (repeatable)")],
    out_file: Annotated[Path, typer.Option("--out", help="snapshot Parquet file to write")],
    horizon_days: Annotated[
        int, typer.Option(help="label horizon H: the label looks at (T, T+H]")
    ] = jobs.SnapshotJob.horizon_days,
    label: Annotated[Label, typer.Option(help="what the label is")] = Label.escalation,
    harm_threshold: Annotated[
        float, typer.Option(help="harm above this makes an incident high-harm")
    ] = jobs.SnapshotJob.harm_threshold,
    catalogue: Annotated[Path | None, typer.Option(help="also write the feature catalogue (CSV)")] = None,
    engine: Annotated[Engine, typer.Option(help="one machine, or Spark")] = Engine.local,
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (default: spark-submit's or local[*])")
    ] = None,
) -> None:
    """Build point-in-time snapshots (cohort, features, label, protected columns) for as-of dates."""
    job = jobs.SnapshotJob(
        data,
        tuple(t.date() for t in as_of),
        out_file,
        horizon_days,
        label.value,
        harm_threshold,
        catalogue,
        engine,
        spark_master,
    )
    try:
        made = jobs.snapshots(job)
    except EXPECTED as exc:
        fatal(str(exc))
    except FAILED as exc:
        fatal(str(exc), code=1)
    table = Table(title=f"snapshots -> {out_file}")
    for col in ("as-of", "cohort", "labelled", "positive rate", "unlabelled (horizon past data end)"):
        table.add_column(col, justify="right")
    for r in made.per_date.itertuples():
        rate = f"{r.positive_rate:.3f}" if r.labelled else "-"
        table.add_row(str(r.as_of.date()), f"{r.cohort:,}", f"{r.labelled:,}", rate, f"{r.cohort - r.labelled:,}")
    out.print(table)
    out.print(f"{len(made.features)} features, protected (audit only): {', '.join(made.protected)}")
    for empty in made.empty_dates:
        warn(f"no one is in the cohort at {empty}: no valid incident in the lookback before it (no rows for it)")


def splits(
    config: Annotated[Path | None, typer.Option(help="experiment config (YAML); its schedule wins")] = None,
    start: Annotated[datetime, typer.Option(formats=DATE, help="first as-of date")] = datetime(2020, 1, 1),
    end: Annotated[datetime, typer.Option(formats=DATE, help="last as-of date")] = datetime(2024, 12, 31),
    every_months: Annotated[int, typer.Option(help="update frequency")] = 6,
    horizon_days: Annotated[int, typer.Option(help="label horizon")] = jobs.SnapshotJob.horizon_days,
) -> None:
    """Print the temporal train/validation/test splits of an as-of schedule."""
    from riskloop.experiments.config import ConfigError, load_config
    from riskloop.features.splits import as_of_schedule, splits_frame, temporal_splits

    n_test = None
    if config is not None:
        try:
            cfg = load_config(config)
            schedule = cfg.data_schedule
        except ConfigError as exc:
            fatal(str(exc))
        dates, horizon_days, n_test = schedule.dates(), cfg.horizon_days, schedule.n_test
    else:
        dates = as_of_schedule(start.date(), end.date(), every_months)
    frame = splits_frame(temporal_splits(dates, horizon_days, n_test))
    if frame.empty:
        fatal("no feasible split: the schedule is too short for the horizon")
    table = Table(title=f"temporal splits (label closed before the next date, horizon {horizon_days} days)")
    for col in frame.columns:
        table.add_column(col)
    for row in frame.itertuples(index=False):
        table.add_row(*map(str, row))
    out.print(table)


# --- agency extracts from a generated world (#35, part B) ---


def export_extracts(
    data: Annotated[Path, typer.Option("--data", help="a world written by `riskloop generate`")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the extracts to")],
    seed: Annotated[int, typer.Option(help="random seed: names, identifiers and faults")] = 42,
    clean: Annotated[bool, typer.Option(help="no faults (typos, missing dates of birth, ...)")] = False,
) -> None:
    """Write a generated world as messy agency extracts (police, council ASB log, providers), truth in _truth/."""
    try:
        counts = jobs.export_extracts(jobs.ExportJob(data, out_dir, seed, clean))
    except (ValueError, OSError) as exc:
        fatal(str(exc))
    out.print(
        f"wrote {out_dir}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + f"; truth in {out_dir / '_truth'}"
    )
