"""The closed-loop simulation job (`riskloop.studies.closed_loop`), its files written and logged."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from riskloop.experiments.config import load_config
from riskloop.experiments.tracking import log_simulation
from riskloop.jobs.common import Progress, counted, default_config, no_progress
from riskloop.studies.closed_loop import METRICS_BY_CYCLE, LoopSettings, run_loop, write_loop


@dataclass(frozen=True)
class Simulated:
    cycles: pd.DataFrame  # one row per cycle: truth beside every estimate
    files: list[Path]  # cycles.csv, simulate.json, simulate.png


def simulate(settings: LoopSettings, out: Path, progress: Progress = no_progress) -> Simulated:
    """Score, fill places by a policy, let the world run a year, learn, retrain: `settings.cycles` times."""
    Path(out).mkdir(parents=True, exist_ok=True)
    cycles = run_loop(settings, load_config(default_config()), Path(out), progress=counted(progress))
    files = write_loop(cycles, settings, Path(out))
    log_simulation({k: str(v) for k, v in dataclasses.asdict(settings).items()}, cycles, METRICS_BY_CYCLE, files)
    return Simulated(cycles, files)
