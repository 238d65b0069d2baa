"""What every job shares: how it reports progress, how it opens a data set folder, how it names a model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from riskloop.artifacts.dataset import read_dataset, write_quarantine
from riskloop.features.validate import Dataset

if TYPE_CHECKING:
    from riskloop.experiments.registry import LoadedModel

#: A job's progress: (what it is doing, how far, out of how many; None where it cannot say).
Progress = Callable[[str, int | None, int | None], None]


def no_progress(step: str, done: int | None = None, total: int | None = None) -> None:
    """The progress of a job nobody watches."""


def counted(progress: Progress) -> Callable[[str], None]:
    """A step-by-step callback (what is being done) that reports to `progress` with the steps counted; steps may
    come from several threads (fits side by side), one at a time."""
    steps = 0
    lock = threading.Lock()

    def step(what: str) -> None:
        nonlocal steps
        with lock:
            steps += 1
            progress(what, steps, None)

    return step


class Engine(str, Enum):
    """Where the data is featured and scored: one machine, or a Spark cluster."""

    local = "local"
    spark = "spark"


def open_dataset(folder: Path, today: date | None = None) -> Dataset:
    """Read and validate a data set folder, and write its quarantine (`_quarantine/`) beside it."""
    dataset = read_dataset(Path(folder), today)
    write_quarantine(Path(folder), dataset.quarantine)
    return dataset


def model_label(loaded: LoadedModel) -> str:
    """How reports name a registered model: its name and version (an alias moves on; the version stays)."""
    return f"{loaded.name} v{loaded.version}" if loaded.name and loaded.version else loaded.uri


def default_config() -> Path:
    """The embedded default experiment config (escalation risk on the demo's world)."""
    return Path(str(resources.files("riskloop.experiments") / "escalation.yaml"))
