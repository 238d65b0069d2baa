"""`riskloop demo`: the whole chain on the embedded default (`riskloop.jobs.demo`), step by step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from riskloop.cli._console import console, out, progress
from riskloop.cli.data import print_validation

if TYPE_CHECKING:
    from riskloop.jobs.demo import DemoStep


def _step(step: DemoStep) -> None:
    out.print(f"[bold]{step.number}. {step.title}[/] {step.detail}", highlight=False)
    if step.validation is not None:
        print_validation(step.validation)


def demo(
    work_dir: Annotated[
        Path | None, typer.Option("--dir", help="working folder for the demo (default: riskloop-demo)")
    ] = None,
    people: Annotated[int | None, typer.Option(help="size of the synthetic world (default: 60,000)")] = None,
    seed: Annotated[int | None, typer.Option(help="the world's seed (default: 42)")] = None,
) -> None:
    """Run the whole job on the embedded default: world, validation, snapshots, training, promotion,
    explanations, the fairness audit, prioritisation lists, one learning cycle and the dashboard."""
    from riskloop.jobs.demo import DemoJob
    from riskloop.jobs.demo import demo as run_demo

    default = DemoJob()
    job = DemoJob(
        work_dir or default.dir, default.people if people is None else people, default.seed if seed is None else seed
    )
    with progress("demo") as report:
        result = run_demo(job, _step, report)
    if result.learning_failed:
        console.print(f"[bold red]learning cycle failed:[/] {result.learning_failed}", highlight=False)
    out.print(f"demo finished in {result.seconds:.0f} s. Where everything is:")
    where = Table(show_header=False, box=None)
    for what, path in result.where.items():
        where.add_row(what, str(path))
    out.print(where)
    site = result.where["dashboard (open in a browser)"]
    out.print(f"open {site}    (or xdg-open / start on Linux / Windows)")
    out.print("browse the runs and the registered model: mlflow ui --backend-store-uri sqlite:///mlflow.db")
