"""`riskloop score`: everyone in the cohort at T scored into prioritisation lists."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from riskloop.cli._console import DATE, EXPECTED, FAILED, fatal, out, progress, warn
from riskloop.jobs.common import Engine

if TYPE_CHECKING:
    from riskloop.serving.batch import ScoreOutcome


class Per(str, Enum):
    local_authority = "local_authority"
    area = "area"


def print_lists(outcome: ScoreOutcome) -> None:
    manifest, counts = outcome.manifest, outcome.manifest.counts
    model = manifest.model
    table = Table(title=f"prioritisation lists at {manifest.as_of}: {model.name or model.uri} v{model.version or '-'}")
    for col in ("unit", "cohort", "places", "listed"):
        table.add_column(col, justify="left" if col == "unit" else "right", no_wrap=col == "unit")
    for unit, row in counts.units.items():
        table.add_row(unit, f"{row.cohort:,}", f"{row.places:,}", f"{row.listed:,}")
    out.print(table)
    out.print(
        f"scored {counts.scored:,} people, listed {counts.listed:,}; {counts.quarantined:,} input rows "
        f"quarantined; counts reconcile: {'yes' if counts.reconciles else 'NO'}; wrote {outcome.out_dir}/ "
        "(prioritisation.parquet, lists/, manifest.json). Scores are advisory: a practitioner decides."
    )
    if manifest.shadow is not None:
        shadow = manifest.shadow
        out.print(
            f"shadow: {shadow.name or shadow.uri} v{shadow.version or '-'} scored the same cohort into shadow.parquet "
            "(not listed, not served)"
        )


def score(
    model: Annotated[str, typer.Option(help="model URI")] = "models:/riskloop-escalation@champion",
    data: Annotated[
        str, typer.Option(help="riskloop data set folder (with --engine spark, any URI Spark reads)")
    ] = "riskloop-demo/data",
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=DATE, help="as-of date T: features use records before T")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder (replaced as a whole)")] = Path(
        "riskloop-scores"
    ),
    capacity: Annotated[
        str | None,
        typer.Option(
            help="places: a CSV (unit,places), a number per unit, or a share "
            "of each unit's cohort (default: the model's capacity)"
        ),
    ] = None,
    per: Annotated[Per, typer.Option(help="rank within each local authority or area")] = Per.local_authority,
    seed: Annotated[int, typer.Option(help="seed of the tie-break hash (equal risks)")] = 0,
    engine: Annotated[Engine, typer.Option(help="one machine, or Spark")] = Engine.local,
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (default: spark-submit's or local[*])")
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option(
            help="a challenger's model URI scored beside the model into shadow.parquet, never listed or served, "
            "so the next learning cycle can judge it on outcomes neither model saw"
        ),
    ] = None,
) -> None:
    """Score everyone in the cohort at T into prioritisation lists (advisory), atomically."""
    if as_of is None:
        fatal("--as-of is required (YYYY-MM-DD)")
    from riskloop.jobs import score as jobs

    job = jobs.ScoreJob(model, data, as_of.date(), out_dir, capacity, per.value, seed, engine, spark_master, shadow)
    try:
        with progress(f"scoring the cohort at {job.as_of}") as report:
            outcome = jobs.score(job, report)
    except EXPECTED as exc:
        fatal(str(exc))
    except FAILED as exc:
        fatal(str(exc), code=1)
    for warning in outcome.warnings:
        warn(warning)
    print_lists(outcome)
