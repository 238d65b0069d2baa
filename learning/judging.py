"""A retrained challenger judged against the champion on outcomes neither learned from.

The challenger of a learning cycle is fitted on every label closed by the data's end, so no window is left
that it has not seen. It is judged in one of two ways (Hastie et al.'s "assess the procedure, not the fit"):
by a **backtest**, the same retraining run on the data as it stood one cycle earlier and compared with the
champion on the latest cohort whose outcomes closed after that; or **in shadow**, the challenger of an
earlier cycle scored beside the champion at T (`riskloop score --shadow`), compared on T's outcomes, which
neither model had when it scored. Both judge the retraining procedure; the shadow does it prospectively.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from riskloop.models.metrics import evaluate

COMPARED = ("roc_auc", "average_precision", "precision_at_k", "brier")
#: How far below the champion a challenger may fall on a ranking metric before it is called worse.
TOLERANCE = 0.005
Judge = Literal["backtest", "shadow"]


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger on the outcomes of one cohort."""

    judge: Judge
    as_of: date  # the cohort whose outcomes judged them
    challenger: str  # what stood for the challenger, in words
    people: int  # scored by both, with a known outcome
    metrics: pd.DataFrame  # rows champion, challenger; columns COMPARED
    reasons: list[str]  # why the challenger did worse (empty: it did not)
    caveat: str = ""  # in words, when the cohort is not out of time for the champion


@dataclass(frozen=True)
class ShadowScores:
    """An earlier challenger's scores of T beside the champion's (`person_id`, `risk`, `shadow_risk`)."""

    model: str  # e.g. "riskloop-escalation v4"
    scores: pd.DataFrame


def compared(
    judge: Judge,
    as_of: date,
    challenger: str,
    label: np.ndarray,
    champion_risk: np.ndarray,
    challenger_risk: np.ndarray,
    capacity: float,
) -> Comparison:
    """Both models' risks of the same people against their outcomes (`label`), at the same capacity."""
    rows = {}
    for name, risk in (("champion", champion_risk), ("challenger", challenger_risk)):
        found = evaluate(label, risk, capacity)
        rows[name] = {m: found[m] for m in COMPARED}
    metrics = pd.DataFrame(rows).T[list(COMPARED)]
    reasons = [
        f"{m} on the outcomes of {as_of} ({judge}): {challenger} {metrics.loc['challenger', m]:.4f} < "
        f"champion {metrics.loc['champion', m]:.4f}"
        for m in ("roc_auc", "precision_at_k")
        if metrics.loc["challenger", m] < metrics.loc["champion", m] - TOLERANCE
    ]
    return Comparison(judge, as_of, challenger, len(label), metrics, reasons)


def compared_on_outcomes(
    judge: Judge, as_of: date, challenger: str, scored: pd.DataFrame, column: str, capacity: float
) -> Comparison:
    """`compared` on the rows of `scored` (`label`, the champion's `risk`, the challenger's `column`) whose
    outcome is known."""
    known = scored[scored["label"].notna()]
    return compared(
        judge,
        as_of,
        challenger,
        known["label"].to_numpy(),
        known["risk"].to_numpy(),
        known[column].to_numpy(),
        capacity,
    )


def shadow_comparison(
    outcomes: pd.DataFrame, shadow: pd.DataFrame, model: str, capacity: float, as_of: date
) -> Comparison:
    """The champion's risk at `as_of` as listed and the shadow model's (`shadow`: `person_id`, `risk`,
    `shadow_risk`) on the people both scored whose outcome is known (`outcomes`: `person_id`, `label`)."""
    known = outcomes[["person_id", "label"]].astype({"person_id": str})
    both = shadow.astype({"person_id": str}).merge(known, on="person_id", how="inner")
    return compared_on_outcomes("shadow", as_of, f"{model} (scored in shadow)", both, "shadow_risk", capacity)
