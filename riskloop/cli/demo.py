"""`riskloop demo`: the whole chain on the embedded default (`riskloop.jobs.demo`), step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from riskloop.cli._console import console, out, progress
from riskloop.cli.data import print_validation
from riskloop.jobs.demo import DemoJob, DemoStep
from riskloop.jobs.demo import demo as run_demo


def _step(step: DemoStep) -> None:
    out.print(f"[bold]{step.number}. {step.title}[/] {step.detail}", highlight=False)
    if step.validation is not None:
        print_validation(step.validation)


def demo(
    work_dir: Annotated[Path, typer.Option("--dir", help="working folder for the demo")] = DemoJob.dir,
    people: Annotated[int, typer.Option(help="size of the synthetic world")] = DemoJob.people,
    seed: Annotated[int, typer.Option()] = DemoJob.seed,
) -> None:
    """Run the whole job on the embedded default: world, validation, snapshots, training, promotion,
    explanations, the fairness audit, prioritisation lists, one learning cycle and the dashboard."""
    with progress("demo") as report:
        result = run_demo(DemoJob(work_dir, people, seed), _step, report)
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
