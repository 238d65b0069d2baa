"""Data jobs: generate a synthetic world, validate a data set, build point-in-time snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from riskloop.artifacts.snapshots import write_snapshots
from riskloop.features.catalogue import catalogue_frame
from riskloop.features.io import check_file_target, write_csv_atomic
from riskloop.features.snapshot import LabelName, PreparedData, SnapshotConfig, build_snapshots, check_coverage
from riskloop.features.validate import Dataset
from riskloop.jobs.common import Engine, Progress, no_progress, open_dataset


@dataclass(frozen=True)
class GenerateJob:
    out: Path
    people: int = 100_000
    seed: int = 42
    start: date = date(2017, 1, 1)
    end: date = date(2025, 12, 31)


def generate(job: GenerateJob, progress: Progress = no_progress) -> dict[str, int]:
    """Generate the synthetic Wales-like world into `job.out` (the contract tables, and `truth/` apart);
    return each table's row count."""
    from riskloop.simulation.parameters import WorldConfig
    from riskloop.simulation.world import simulate, write_world

    config = WorldConfig(people=job.people, seed=job.seed, start=job.start, end=job.end)
    sim = simulate(config, progress=lambda done, total: progress("months", done, total))
    return write_world(sim, job.out)


def validate(data: Path, today: date | None = None) -> Dataset:
    """Validate a data set folder against the contract; its rejected rows go to `_quarantine/` beside it."""
    return open_dataset(data, today)


@dataclass(frozen=True)
class SnapshotJob:
    data: str  # a data set folder (with Spark, any URI Spark reads)
    as_of: tuple[date, ...]
    out: Path  # the snapshot Parquet file
    horizon_days: int = SnapshotConfig.horizon_days
    label: LabelName = SnapshotConfig.label
    harm_threshold: float = SnapshotConfig.harm_threshold
    catalogue: Path | None = None  # also write the feature catalogue (CSV) here
    engine: Engine = Engine.local
    spark_master: str | None = None


@dataclass(frozen=True)
class Snapshots:
    out: Path
    per_date: pd.DataFrame  # as_of, cohort, labelled, positive_rate: a row for every date asked for
    features: tuple[str, ...]
    protected: tuple[str, ...]

    @property
    def empty_dates(self) -> list[date]:
        """The dates whose cohort is no one (no valid incident in the lookback before them)."""
        return [t.date() for t in self.per_date.loc[self.per_date["cohort"] == 0, "as_of"]]


def every_date(per_date: pd.DataFrame, dates: list[date]) -> pd.DataFrame:
    """The per-date counts with a row for each date asked for: a date nobody is in has cohort 0, not no row."""
    wanted = pd.DataFrame({"as_of": pd.to_datetime(sorted(dates)).astype(per_date["as_of"].dtype)})
    return (
        wanted.merge(per_date, on="as_of", how="left")
        .fillna({"cohort": 0, "labelled": 0})
        .astype({"cohort": int, "labelled": int})
    )


def snapshots(job: SnapshotJob) -> Snapshots:
    """Point-in-time snapshots (cohort, features, label, protected columns) at each as-of date, in one file.
    An `out` (or `catalogue`) that cannot be a file is refused in one line before any work."""
    check_file_target(job.out, "--out", "snapshot Parquet file", "snapshots.parquet")
    if job.catalogue:
        check_file_target(job.catalogue, "--catalogue", "feature catalogue (CSV)", "catalogue.csv")
    config = SnapshotConfig(label=job.label, horizon_days=job.horizon_days, harm_threshold=job.harm_threshold)
    dates = list(job.as_of)
    if job.engine is Engine.spark:
        from riskloop.spark import spark_session, spark_snapshots
        from riskloop.spark.session import explained_failures

        spark = spark_session(job.spark_master)
        with explained_failures():
            meta, specs, per_date = spark_snapshots(spark, job.data, dates, config, job.out)
    else:
        dataset = open_dataset(Path(job.data))
        dataset.require_rows("areas", "people")
        check_coverage(dataset, dates)
        prepared = PreparedData.from_dataset(dataset)
        frame, meta = build_snapshots(prepared, dates, config)
        write_snapshots(frame, meta, job.out)
        specs = prepared.catalogue(config)
        per_date = (
            frame.groupby("as_of")
            .agg(cohort=("label", "size"), labelled=("label", "count"), positive_rate=("label", "mean"))
            .reset_index()
        )
    if job.catalogue:
        write_csv_atomic(catalogue_frame(specs), job.catalogue)
    return Snapshots(job.out, every_date(per_date, dates), tuple(meta.features), tuple(meta.protected))


# --- agency extracts from a generated world (#35, part B) ---


@dataclass(frozen=True)
class ExportJob:
    data: Path  # a world written by `generate`
    out: Path
    seed: int = 42
    clean: bool = False  # no faults (else the exporter's default fault rates)


def export_extracts(job: ExportJob) -> dict[str, int]:
    """Write the world as messy agency extracts (police, council, providers) with `_truth/` apart; return each
    file's row count."""
    from riskloop.simulation.export import CLEAN, Faults, export_extracts

    return export_extracts(job.data, job.out, job.seed, CLEAN if job.clean else Faults()).counts
