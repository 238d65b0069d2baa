"""`riskloop ingest | reidentify`: a partnership's extracts into the data contract, and a list back to them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from riskloop.cli._console import EXPECTED, fatal, out, progress, warn
from riskloop.jobs import ingest as jobs


def ingest(
    mapping: Annotated[Path, typer.Option("--mapping", help="the mapping file (YAML): sources and how they map")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the contract data set to")],
) -> None:
    """Read a partnership's extracts, link people across agencies, pseudonymise, write the data contract."""
    try:
        with progress("ingesting") as report:
            done = jobs.ingest(jobs.IngestJob(mapping, out_dir), report)
    except EXPECTED as exc:
        fatal(str(exc))
    table = Table(title="ingest: rows read = ingested + excluded + quarantined")
    for col in ("feed", "source", "read", "ingested", "excluded", "quarantined"):
        table.add_column(col, justify="left" if col in ("feed", "source") else "right")
    for f in done.summary.feeds:
        table.add_row(f.feed, f.source, *(f"{n:,}" for n in (f.read, f.ingested, f.excluded_rows, f.quarantined_rows)))
    out.print(table)
    out.print(
        f"wrote {out_dir}: " + ", ".join(f"{k} {v:,}" for k, v in done.counts.items()) + f"; report {done.report}"
    )
    if not done.summary.unmapped.empty:
        warn(f"{len(done.summary.unmapped):,} values have no mapping: see the report's 'Values with no mapping'")
    out.print(f"personal data (link table, quarantined rows): {out_dir / '_private'} (keep it within the team)")


def reidentify(
    lists: Annotated[
        Path, typer.Option("--lists", help="folder of lists (CSVs with a person_id column; `riskloop score`'s lists/)")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the lists with source ids to")],
    ingest_dir: Annotated[Path, typer.Option("--ingest", help="the ingest's output folder (its _private/)")],
    key_file: Annotated[Path | None, typer.Option(help="the partnership key file (default: the variable)")] = None,
    key_env: Annotated[str, typer.Option(help="the variable holding the key")] = jobs.ReidentifyJob.key_env,
) -> None:
    """Give a team its list with the agencies' own identifiers (local only; personal data, files 0600)."""
    try:
        written = jobs.reidentify(jobs.ReidentifyJob(lists, ingest_dir, out_dir, key_env, key_file))
    except EXPECTED as exc:
        fatal(str(exc))
    for path in written:
        out.print(f"wrote {path} (personal data)")
