"""The synthetic world's truth, handed to the jobs that can check against it (the audit's measurement-bias
check, the learning loop's effect estimates) when a data set is a generated world (it has `truth/`).
The only job module that imports the world; nothing below the jobs sees the truth."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from riskloop.models.contract import ModelContract
from riskloop.simulation.truth import escalation_probability_from, expected_programme_effects, world_at


def is_synthetic(data: Path) -> bool:
    return (Path(data) / "truth").is_dir()


def synthetic_truth(data: Path, as_of: date, contract: ModelContract) -> Callable[[pd.Series, bool], np.ndarray] | None:
    """For a synthetic world, each person's true probability of the label at `as_of`; else None."""
    if not is_synthetic(data) or contract.snapshot is None:
        return None
    snapshot = contract.snapshot

    @functools.cache
    def truths() -> dict[bool, pd.DataFrame]:
        """Both recordings' truths (the audit asks for both), from one re-run of the world, side by side."""
        world = world_at(Path(data), as_of)
        with ThreadPoolExecutor(2) as pool:
            tables = pool.map(
                lambda equal: escalation_probability_from(
                    world, snapshot.horizon_days, snapshot.harm_threshold, equal_recording=equal
                ),
                (False, True),
            )
            return dict(zip((False, True), tables))

    def true_probability(person_id: pd.Series, equal_recording: bool) -> np.ndarray:
        truth = truths()[equal_recording]
        return person_id.to_frame().merge(truth, on="person_id", how="left")["probability"].to_numpy()

    return true_probability


def synthetic_effects(data: Path) -> Callable[[pd.Series, str], np.ndarray] | None:
    """For a synthetic world, each person's true effect of starting a programme (expected over completion);
    else None."""
    if not is_synthetic(data):
        return None
    table = expected_programme_effects(Path(data))

    def true_effect(person_id: pd.Series, programme: str) -> np.ndarray:
        return table.loc[programme].reindex(person_id.astype(str)).to_numpy()

    return true_effect
