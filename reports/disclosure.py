"""Statistical disclosure control for counts of people shown outside the team (reports, MLflow,
CSV artifacts, a dashboard): the NHS rule.

A count of 1 to `threshold` people (the fairness config's `disclosure_threshold`: 7 unless a
partnership sets another, 10 say) is shown as "*"; larger counts are rounded to the nearest 5; 0
stays 0. Rates and ratios computed from a suppressed count are suppressed too: on a table row whose
count is suppressed, every number is "*". Where a table shows a total, one suppressed cell in a row or
column takes the next smallest with it (secondary suppression: `protect_counts`), so the total cannot
reveal it. A rate, change or share shown beside counts is computed from the counts as published
(`from_published`), so it reveals nothing they do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

SUPPRESSED = "*"


def suppressed(count: float, threshold: int) -> bool:
    return 1 <= count <= threshold


def disclose(count: float, threshold: int) -> int | str:
    """A count as it may be shown: "*" for 1..threshold, else rounded to the nearest 5."""
    if suppressed(count, threshold):
        return SUPPRESSED
    return int(5 * math.floor(count / 5 + 0.5))


def disclose_text(count: float, threshold: int) -> str:
    """`disclose` as text: "*" or "1,235"."""
    shown = disclose(count, threshold)
    return shown if shown == SUPPRESSED else f"{shown:,}"


def share(part: float, whole: float) -> float:
    """`part` as a percentage of `whole` (NaN when `whole` is 0)."""
    return 100 * part / whole if whole else float("nan")


def from_published(f: Callable[..., float], *counts: int | float | str) -> float | str:
    """`f` (a rate, change or share) of counts as published: "*" when any of them is. From the exact
    counts it would give them away (a count shown as 15, at 69.7 per 100,000 of 24,382 residents, is 17)."""
    if any(c == SUPPRESSED for c in counts):
        return SUPPRESSED
    return f(*(float(c) for c in counts))


def protect(frame: pd.DataFrame, threshold: int, count: str = "n", others: tuple[str, ...] = ()) -> pd.DataFrame:
    """A copy of a per-group table safe to show: `count` and the `others` (counts of events or errors
    within the group) disclosed, and on rows where any of them is suppressed every other number (rates,
    ratios, intervals) replaced by "*"."""
    out = frame.copy()
    counts = [count, *others]
    hidden = frame[counts].map(lambda n: suppressed(n, threshold)).any(axis=1).to_numpy(bool)
    numbers = [
        c
        for c in frame.columns
        if c not in counts and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    for column in numbers:
        out[column] = out[column].astype(object)
        out.loc[hidden, column] = SUPPRESSED
    for column in counts:
        out[column] = frame[column].map(lambda n: disclose(n, threshold)).astype(object)
    return out


def suppression_mask(counts: pd.DataFrame, threshold: int, rows: bool = True, columns: bool = True) -> pd.DataFrame:
    """Which cells of a table of counts to hide: the small ones (primary suppression), and, wherever a row
    (`rows`) or column (`columns`) has a total shown, the next smallest non-zero cell of any line with
    exactly one hidden cell (secondary suppression), until no total can reveal a hidden cell."""
    values = counts.astype(float).to_numpy()
    hidden = (values >= 1) & (values <= threshold)
    lines = ([("row", i) for i in range(values.shape[0])] if rows else []) + (
        [("column", j) for j in range(values.shape[1])] if columns else []
    )
    changed = True
    while changed:
        changed = False
        for kind, i in lines:
            line_hidden = hidden[i] if kind == "row" else hidden[:, i]
            line_values = values[i] if kind == "row" else values[:, i]
            if line_hidden.sum() != 1:
                continue
            candidates = np.flatnonzero(~line_hidden & (line_values > 0))
            if not len(candidates):
                continue
            pick = candidates[np.argmin(line_values[candidates])]
            if kind == "row":
                hidden[i, pick] = True
            else:
                hidden[pick, i] = True
            changed = True
    return pd.DataFrame(hidden, index=counts.index, columns=counts.columns)


def protect_counts(
    counts: pd.DataFrame, threshold: int, rows: bool = True, columns: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table as shown: "*" or rounded counts, the hidden mask) with primary and secondary suppression
    along the lines that carry a total."""
    hidden = suppression_mask(counts, threshold, rows, columns)
    shown = counts.map(lambda n: disclose(n, threshold)).astype(object)
    return shown.mask(hidden, SUPPRESSED), hidden


def protect_series(counts: pd.Series, threshold: int, total: bool = True) -> tuple[pd.Series, pd.Series]:
    """`protect_counts` for one column of counts (with a total shown when `total`)."""
    shown, hidden = protect_counts(counts.to_frame("n"), threshold, rows=False, columns=total)
    return shown["n"], hidden["n"]
