"""Statistical disclosure control for counts of people shown outside the team (reports, MLflow,
CSV artifacts, a dashboard): the NHS rule.

A count of 1 to `threshold` people (the fairness config's `disclosure_threshold`: 7 unless a
partnership sets another, 10 say) is shown as "*"; larger counts are rounded to the nearest 5; 0
stays 0. Rates and ratios computed from a suppressed count are suppressed too: on a table row whose
count is suppressed, every number is "*".
"""

from __future__ import annotations

import math

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


def protect(frame: pd.DataFrame, threshold: int, count: str = "n") -> pd.DataFrame:
    """A copy of a per-group table safe to show: `count` disclosed, and on rows whose count is
    suppressed every other number (rates, ratios, intervals) replaced by "*"."""
    out = frame.copy()
    hidden = frame[count].map(lambda n: suppressed(n, threshold)).to_numpy(bool)
    numbers = [c for c in frame.columns if c != count and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    for column in numbers:
        out[column] = out[column].astype(object)
        out.loc[hidden, column] = SUPPRESSED
    out[count] = frame[count].map(lambda n: disclose(n, threshold)).astype(object)
    return out
