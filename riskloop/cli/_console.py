"""How the commands talk: results on stdout, errors and progress on stderr; one line per error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from riskloop.features.io import DataError
from riskloop.jobs.common import Progress as JobProgress
from riskloop.spark.session import SparkJobError

console = Console(stderr=True)
out = Console()
if not out.is_terminal:  # Rich assumes 80 columns off a terminal and truncates; logs and pipes get whole lines
    out = Console(width=200)

#: What a job raises when its input is wrong: one line, exit code 2.
EXPECTED = (DataError, ValueError)
#: What a job raises when its engine failed (the cause may be the input, e.g. a corrupt file, or the machine's
#: memory): one line, exit code 1.
FAILED = (SparkJobError,)
#: The date options' format.
DATE = ["%Y-%m-%d"]


def day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def fatal(message: str, code: int = 2) -> NoReturn:
    """The error in one line (a library's message may hold line breaks, e.g. a CSV parser's), exit `code`."""
    console.print(f"[bold red]error:[/] {' '.join(str(message).split())}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str, loud: bool = False) -> None:
    console.print(
        f"[bold {'red' if loud else 'yellow'}]{'WARNING' if loud else 'warning'}:[/] {message}",
        highlight=False,
        soft_wrap=True,
    )


@contextmanager
def progress(description: str) -> Iterator[JobProgress]:
    """A job's progress: a bar in a terminal; outside one, a line each time the step changes, with the time
    since the job started (a log shows where the time went)."""
    if not console.is_terminal:
        last, started = [""], time.monotonic()

        def line(step: str, done: int | None = None, total: int | None = None) -> None:
            if step != last[0]:
                elapsed = int(time.monotonic() - started)
                clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
                console.print(f"[{clock}] {description}: {step}", highlight=False, soft_wrap=True)
                last[0] = step

        yield line
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(step: str, done: int | None = None, total: int | None = None) -> None:
            bar.update(task, description=f"{description}: {step}", completed=done or 0, total=total)

        yield update
