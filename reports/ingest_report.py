"""The ingest report: the data quality of a partnership's extracts and how well its people were linked.

Per feed, rows read = ingested + excluded + quarantined (by reason); the values with no mapping and their
counts (to complete the mapping); date coverage; repeated rows within each source; the linkage's match
weights, cluster sizes and the number of pairs near the threshold (the pairs themselves stay in the ingest's
private folder). Nothing in it is personal data.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from riskloop.ingest.summary import IngestSummary
from riskloop.reports.figures import PALETTE, png
from riskloop.reports.render import render, table


def match_weight_plot(weights: pd.DataFrame, threshold: float) -> bytes:
    """Scored pairs per match weight (log scale: most pairs are clear non-matches), the threshold marked."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(weights["weight"] + 0.5, weights["pairs"], width=0.95, color=PALETTE[0])
    ax.set_yscale("log")
    cut = math.log2(threshold / (1 - threshold))
    ax.axvline(cut, color=PALETTE[5], ls="--", label=f"threshold (match probability {threshold:g})")
    ax.set(xlabel="match weight (log2 of the Bayes factor with the prior)", ylabel="pairs (log scale)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, fontsize=8)
    return png(fig)


def _feeds(summary: IngestSummary) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "feed": f.feed,
                "source": f.source,
                "read": f.read,
                "ingested": f.ingested,
                "excluded": f.excluded_rows,
                "quarantined": f.quarantined_rows,
                "merged duplicates": f.merged,
                "reconciles": f.reconciles,
            }
            for f in summary.feeds
        ]
    )


def _detail(summary: IngestSummary, what: str) -> pd.DataFrame:
    rows = [
        {"feed": f.feed, "source": f.source, what: k, "rows": v}
        for f in summary.feeds
        for k, v in getattr(f, "quarantined" if what == "reason" else "excluded").items()
    ]
    return pd.DataFrame(rows, columns=["feed", "source", what, "rows"])


def _dates(summary: IngestSummary) -> pd.DataFrame:
    frame = summary.dates.copy()
    for column in ("first", "last"):
        frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d").fillna("-")
    return frame


def render_ingest_report(summary: IngestSummary) -> str:
    link = summary.linkage
    contract = pd.DataFrame(
        [
            {"table": t.table, "read": t.read, "valid": t.valid, "quarantined": t.quarantined}
            for t in summary.contract.tables.values()
        ]
    )
    people = pd.DataFrame(
        [{"reason": k, "people": v} for k, v in summary.people_quarantined.items()], columns=["reason", "people"]
    )
    return render(
        "ingest_report.html",
        title=f"Ingest report: {summary.mapping}",
        summary=summary,
        feeds=table(_feeds(summary)),
        reconciles=all(f.reconciles for f in summary.feeds),
        reasons=table(_detail(summary, "reason")),
        excluded=table(_detail(summary, "value")),
        unmapped=table(summary.unmapped),
        dates=table(_dates(summary)),
        duplicates=table(summary.duplicates),
        joins=table(summary.joins),
        people=table(people),
        contract=table(contract),
        sizes=table(link.cluster_sizes),
        weights_png=match_weight_plot(link.match_weights, link.threshold) if len(link.match_weights) else None,
    )
