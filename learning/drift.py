"""What changed in the data: population stability index (PSI) per feature and for the score.

Bins are the reference's deciles (ties merged, so a mostly-zero count feature gets fewer bins, and a
missing value has its own bin). PSI = sum (current share - reference share) x ln(current / reference).
The usual rules of thumb (0.1 = some shift, 0.25 = a major one) ignore sample size: a small area
shows PSI above 0.1 from noise alone. So each PSI is also set against a bootstrap null, the PSI of
samples of the current size drawn from the reference itself, and is flagged only when it exceeds both
0.1 and the null's 99th percentile.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

RULE_OF_THUMB = (0.1, 0.25)
EPS = 1e-4


def _bin_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    finite = reference[np.isfinite(reference)]
    if len(finite) == 0:
        return np.array([])
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin (the last bin holds missing values)."""
    finite = np.isfinite(values)
    codes = np.where(finite, np.searchsorted(edges, values, side="right"), len(edges) + 1)
    return np.bincount(codes, minlength=len(edges) + 2) / max(len(values), 1)


def psi_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    r, c = np.maximum(reference, EPS), np.maximum(current, EPS)
    return float(((c - r) * np.log(c / r)).sum())


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = _bin_edges(reference, bins)
    return psi_from_shares(_shares(reference, edges), _shares(current, edges))


def null_quantile(
    reference: np.ndarray, n_current: int, bins: int = 10, draws: int = 100, q: float = 0.99, seed: int = 0
) -> float:
    """The `q` quantile of PSI between the reference and samples of `n_current` drawn from it."""
    reference = np.asarray(reference, float)
    edges = _bin_edges(reference, bins)
    base = _shares(reference, edges)
    rng = np.random.default_rng(seed)
    draws_ = rng.multinomial(n_current, base, size=draws) / max(n_current, 1)
    return float(np.quantile([psi_from_shares(base, d) for d in draws_], q))


def drift_table(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], bins: int = 10, draws: int = 100, seed: int = 0
) -> pd.DataFrame:
    """PSI per column with its bootstrap null and a verdict, largest first."""
    rows = []
    for column in columns:
        ref = pd.to_numeric(reference[column], errors="coerce").to_numpy(float)
        cur = pd.to_numeric(current[column], errors="coerce").to_numpy(float)
        value = psi(ref, cur, bins)
        noise = null_quantile(ref, len(cur), bins, draws, seed=seed)
        shifted = value > max(RULE_OF_THUMB[0], noise)
        verdict = (
            "major shift"
            if shifted and value > RULE_OF_THUMB[1]
            else "shift"
            if shifted
            else "within noise"
            if value > RULE_OF_THUMB[0]
            else "stable"
        )
        rows.append(
            {
                "column": column,
                "psi": value,
                "null_p99": noise,
                "reference_mean": np.nanmean(ref) if len(ref) else np.nan,
                "current_mean": np.nanmean(cur) if len(cur) else np.nan,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows).sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def drift_by_unit(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    column: str,
    unit: str,
    bins: int = 10,
    draws: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """PSI of one column (the score) within each unit (local authority) against the whole reference."""
    ref = pd.to_numeric(reference[column], errors="coerce").to_numpy(float)
    rows = []
    for name, rows_ in current.groupby(unit, sort=True, observed=True):
        cur = pd.to_numeric(rows_[column], errors="coerce").to_numpy(float)
        value, noise = psi(ref, cur, bins), null_quantile(ref, len(cur), bins, draws, seed=seed)
        rows.append(
            {
                unit: name,
                "n": len(cur),
                "psi": value,
                "null_p99": noise,
                "flagged": bool(value > max(RULE_OF_THUMB[0], noise)),
            }
        )
    return pd.DataFrame(rows)


def coverage_note(short: list[date], data_start: date | None, lookback_days: int) -> str:
    """In words, why a drift comparison whose cohorts at `short` see less than the lookback before them (the
    data begin at `data_start`) shows shifts that are the data's coverage, not a change in people; '' if none."""
    if not short or data_start is None:
        return ""
    cohorts = " and ".join(str(d) for d in short)
    return (
        f"The data begin {data_start}, so the cohort at {cohorts} has less than the {lookback_days:,} days of records "
        "before it that the features look back over. Its counts, harm and time-since features see a shorter past than "
        "the other cohort's, so part of any shift between them is the data's coverage, not a change in the people: "
        "read those rows of the table as an artefact of the extract, and compare cohorts that both have a full lookback."
    )
