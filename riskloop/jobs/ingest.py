"""Ingest jobs: a partnership's extracts into a contract data set (`ingest`), and a list back to the agencies'
own identifiers (`reidentify`, local only, with the key and the ingest's private link table).

`OUT/` gets the contract tables (pseudonymised: no name, birth day, address or agency id), `dataset.json`
and `ingest_report.html`; `OUT/_private/` (0700, files 0600) the personal data: the link table, the key's
check value, the quarantined source rows with their reasons and the pairs near the linkage threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa

from riskloop.artifacts.dataset import COVERAGE_FILE, QUARANTINE_DIR, Coverage, write_dataset
from riskloop.features.io import DataError, atomic_folder, check_replaceable, write_text_atomic
from riskloop.features.schema import TABLE_NAMES
from riskloop.ingest import private
from riskloop.ingest.linkage import Linkage, link_people
from riskloop.ingest.mapping import Mapping, load_mapping
from riskloop.ingest.pseudonym import load_key
from riskloop.ingest.sources import read_sources
from riskloop.ingest.summary import FeedCounts, IngestSummary, LinkageSummary
from riskloop.ingest.transform import (
    Contract,
    FeedResult,
    build_contract,
    check_columns,
    harm_lookup,
    join_counts,
    person_records,
    reason_counts,
    transform_feed,
)
from riskloop.jobs.common import Progress, counted, no_progress

REPORT_FILE = "ingest_report.html"
#: what an ingest's output folder holds (and `riskloop validate` adds): a rerun replaces only such a folder
#: What `riskloop ingest` writes in its folder, path by path (`check_replaceable` refuses anything else in it)
_OUTPUTS = (
    *(f"{t}.parquet" for t in TABLE_NAMES),
    COVERAGE_FILE,
    REPORT_FILE,
    *(f"{private.PRIVATE_DIR}/{name}" for name in (private.LINK_TABLE, private.KEY_CHECK, private.NEAR_THRESHOLD)),
    f"{private.PRIVATE_DIR}/{private.QUARANTINE_DIR}/*.csv",
    f"{QUARANTINE_DIR}/*.csv",
    f"{QUARANTINE_DIR}/*/*",
)


@dataclass(frozen=True)
class IngestJob:
    mapping: Path
    out: Path
    today: date | None = None  # "in the future" is after this day (default: today)


@dataclass(frozen=True)
class Ingested:
    out: Path
    counts: dict[str, int]  # contract table -> rows written
    summary: IngestSummary
    report: Path


def _feed_counts(result: FeedResult) -> FeedCounts:
    return FeedCounts(
        feed=result.feed,
        source=result.source,
        read=result.read,
        ingested=len(result.rows) + result.merged,
        excluded=result.excluded,
        quarantined_rows=len(result.quarantine),
        quarantined=reason_counts(result.quarantine["reason"]) if len(result.quarantine) else {},
        merged=result.merged,
    )


def _none_ingested(results: list[FeedResult]) -> str:
    """Why no row was ingested, in a few words (nothing is written, so the quarantine cannot be looked at)."""
    about = [r for r in results if r.table != "areas"]
    quarantined = pd.concat([r.quarantine["reason"] for r in about], ignore_index=True)
    excluded = sum(sum(r.excluded.values()) for r in about)
    text = f"{sum(r.read for r in about):,} read, {excluded:,} excluded, {len(quarantined):,} quarantined"
    if len(quarantined):
        reason, rows = max(reason_counts(quarantined).items(), key=lambda kv: kv[1])
        text += f"; most often: {reason} ({rows:,} rows)"
    return text


def _summary(
    mapping: Mapping,
    name: str,
    frames: dict[str, pd.DataFrame],
    results: list[FeedResult],
    contract: Contract,
    linkage: Linkage,
) -> IngestSummary:
    clusters = linkage.clusters
    sources_per_cluster = clusters.groupby("cluster_key")["source"].nunique()
    return IngestSummary(
        mapping=name,
        feeds=tuple(_feed_counts(f) for f in contract.feeds),
        unmapped=pd.concat([r.unmapped for r in results], ignore_index=True),
        dates=pd.concat([r.dates for r in results if len(r.dates)], ignore_index=True),
        duplicates=pd.DataFrame(
            [{"source": s, "rows": len(f), "repeated rows": int(f.duplicated().sum())} for s, f in frames.items()]
        ),
        joins=join_counts(mapping, frames),
        people_quarantined=contract.people_quarantine["reason"].value_counts().sort_index().to_dict(),
        linkage=LinkageSummary(
            records=len(clusters),
            people=int(clusters["cluster_key"].nunique()),
            clusters_across_sources=int((sources_per_cluster > 1).sum()),
            match_weights=linkage.match_weights,
            cluster_sizes=linkage.cluster_sizes,
            pairs_scored=linkage.pairs_scored,
            near_threshold=len(linkage.near_threshold),
            threshold=linkage.threshold,
        ),
        contract=contract.report,
    )


def _write_private(out: Path, contract: Contract, linkage: Linkage, key: bytes) -> None:
    rows = {f"{r.feed.replace('[', '_').rstrip(']')}_{r.source}": r.quarantine for r in contract.feeds}
    private.write_private(
        out, contract.link_table, linkage.near_threshold, {**rows, "people": contract.people_quarantine}, key
    )


def ingest(job: IngestJob, progress: Progress = no_progress) -> Ingested:
    """Read the declared sources, map, link, pseudonymise, validate and write the contract data set: the
    whole output folder at once (killed at any moment, the previous output or none, never part of one)."""
    from riskloop.reports.ingest_report import render_ingest_report

    step = counted(progress)
    check_replaceable(Path(job.out), _OUTPUTS, "riskloop ingest")  # before the work, not only at the write
    mapping = load_mapping(job.mapping)
    key = load_key(mapping.key.env, mapping.key.file)
    step("reading the sources")
    frames = read_sources(mapping.sources)
    check_columns(mapping, frames)
    harm = harm_lookup(mapping, frames)
    step("mapping the rows")
    results = [
        transform_feed(table, i, feed, frames, mapping.date_formats, harm, key) for table, i, feed in mapping.feeds()
    ]
    records = person_records(results)
    if records.empty:
        raise DataError(f"{job.mapping.name}: no row about a person could be ingested ({_none_ingested(results)})")
    step(f"linking {len(records):,} person records")
    linkage = link_people(records, mapping.linkage)
    step("building the contract tables")
    contract = build_contract(results, frames, records, linkage, key, mapping.people, job.today or date.today())
    summary = _summary(mapping, job.mapping.name, frames, results, contract, linkage)
    step("writing")
    incidents = contract.tables["incidents"]
    end = incidents["date"].max().date() if len(incidents) else (job.today or date.today())
    start = incidents["date"].min().date() if len(incidents) else None
    tables = {name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in contract.tables.items()}
    with atomic_folder(job.out, _OUTPUTS, "riskloop ingest", private=(private.PRIVATE_DIR,)) as folder:
        _write_private(folder, contract, linkage, key)
        counts = write_dataset(folder, tables, Coverage(end, start, kind="ingested partnership extracts"))
        write_text_atomic(render_ingest_report(summary), folder / REPORT_FILE)
    return Ingested(job.out, counts, summary, job.out / REPORT_FILE)


@dataclass(frozen=True)
class ReidentifyJob:
    lists: Path  # a folder of lists (CSV with a person_id column, in subfolders too): `riskloop score`'s lists/
    ingest: Path  # the ingest's output folder (its `_private/` link table)
    out: Path
    key_env: str = "RISKLOOP_PSEUDONYM_KEY"
    key_file: Path | None = None


def _check_reidentify_out(job: ReidentifyJob) -> None:
    """One line if `--out` is a file, or inside the lists (they would be overwritten, and read again next time)
    or the ingest's folder (personal data beside the pseudonymised tables, replaced by the next ingest)."""
    out = Path(job.out).resolve()
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {job.out} is a file: give a folder")
    for option, folder in (("--lists", job.lists), ("--ingest", job.ingest)):
        inside = Path(folder).resolve()
        if out == inside or inside in out.parents:
            raise DataError(f"--out {job.out} is inside {option} {folder}: give a folder outside it")


def reidentify(job: ReidentifyJob) -> list[Path]:
    """Each list (same name, same subfolder, under `job.out`: folders 0700, files 0600) with the source and
    source id of every record of each person listed."""
    _check_reidentify_out(job)
    key = load_key(job.key_env, job.key_file)
    link = private.read_link_table(job.ingest, key)
    lists = {p: pd.read_csv(p, dtype={"person_id": str}) for p in sorted(Path(job.lists).rglob("*.csv"))}
    lists = {p: frame for p, frame in lists.items() if "person_id" in frame.columns}
    if not lists:
        raise DataError(f"{job.lists}: no list (a CSV with a person_id column)")
    written = []
    for path, frame in lists.items():
        target = Path(job.out) / path.relative_to(job.lists)
        private.private_tree(Path(job.out), target.parent)
        private.write_private_csv(private.reidentified(frame, link), target)
        written.append(target)
    return written
