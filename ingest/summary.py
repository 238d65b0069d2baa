"""What an ingest did, as typed values: the seam between the ingest and its HTML report.

Nothing here is personal data: counts, offence and category codes that had no mapping, date ranges and
the linkage's aggregate diagnostics. The pairs near the threshold (record ids) stay in the private folder.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from riskloop.features.validate import ValidationReport


@dataclass(frozen=True)
class FeedCounts:
    """One feed's rows: read = ingested + excluded + quarantined. `merged` ingested rows repeated another
    (the same involvement under two identifiers of one person) and were kept once."""

    feed: str  # e.g. "incidents[0]"
    source: str
    read: int
    ingested: int
    excluded: dict[str, int]  # "<column> '<value>'" -> rows
    quarantined_rows: int
    quarantined: dict[str, int]  # reason (without the value) -> rows (a row may have several reasons)
    merged: int = 0

    @property
    def excluded_rows(self) -> int:
        return sum(self.excluded.values())

    @property
    def reconciles(self) -> bool:
        return self.read == self.ingested + self.excluded_rows + self.quarantined_rows


@dataclass(frozen=True)
class LinkageSummary:
    records: int
    people: int
    clusters_across_sources: int  # people found in more than one source
    match_weights: pd.DataFrame  # weight, pairs
    cluster_sizes: pd.DataFrame  # size, clusters
    pairs_scored: int
    near_threshold: int  # pairs listed for review in the private folder
    threshold: float


@dataclass(frozen=True)
class IngestSummary:
    mapping: str  # the mapping file's name
    feeds: tuple[FeedCounts, ...]
    unmapped: pd.DataFrame  # feed, column, value, rows
    dates: pd.DataFrame  # feed, column, first, last, missing, unparseable
    duplicates: pd.DataFrame  # source, rows, repeated rows (identical rows within the source)
    joins: pd.DataFrame  # source, joined to, rows, not joined, repeated keys
    people_quarantined: dict[str, int]  # reason -> people (clusters) not written
    linkage: LinkageSummary
    contract: ValidationReport  # the written tables' validation against the contract
