"""`riskloop dashboard`: the area profile dashboard, a static site under disclosure control."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from riskloop.cli._console import DATE, EXPECTED, day, fatal, out, warn
from riskloop.models.audit_config import AuditConfig


def dashboard(
    data: Annotated[Path, typer.Option(help="riskloop data set folder")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the static site (replaced as a whole)")],
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=DATE, help="as-of date T (default: the date of --scores)")
    ] = None,
    scores: Annotated[Path | None, typer.Option(help="a `riskloop score` output folder: the current lists")] = None,
    learning: Annotated[Path | None, typer.Option(help="a `riskloop learn` output folder: programme outcomes")] = None,
    report: Annotated[
        list[Path] | None, typer.Option(help="a report to link from reports.html (repeatable; copied into the site)")
    ] = None,
    disclosure_threshold: Annotated[
        int, typer.Option(help="counts of 1 to this are shown as '*'")
    ] = AuditConfig.disclosure_threshold,
) -> None:
    """The area profile dashboard: a static site (opens from a file, works offline) with an index of local
    authorities, a page per local authority, data quality and a report index, under disclosure control."""
    from riskloop.jobs import dashboard as jobs

    job = jobs.DashboardJob(data, out_dir, day(as_of), scores, learning, tuple(report or ()), disclosure_threshold)
    try:
        site = jobs.dashboard(job)
    except EXPECTED as exc:
        fatal(str(exc))
    for warning in site.warnings:
        warn(warning)
    out.print(
        f"wrote {out_dir}/: {site.pages} pages ({site.local_authorities} local authorities), "
        f"{site.reports} reports linked; open {out_dir / 'index.html'}"
    )
