"""Calibration within declared protected groups: the model's calibrated risk mapped to a probability
separately for each group, at scoring only.

A model that may not see sex (a sex-blind model) is calibrated on everyone at once; where a group's
outcomes differ at the same features, its risks are off for that group (on the synthetic world the
model over-predicts women about twofold). An experiment that declares `calibrate_within: [sex]` fits
one of two maps on the calibration window (the rows that already calibrated the model) from the
pooled calibrated risk and the group's values:

- `GroupwiseMap`: a Platt map (a logistic regression on the risk's log-odds) per cell of the declared
  columns (per sex; per sex x ethnicity if both are declared); a cell with too few events or
  non-events to fit, or whose pooled risk is not demonstrably off there, keeps the pooled risk.
- `Multicalibration`: the iterative patching of Hebert-Johnson, Kim, Reingold and Rothblum (2018),
  "Multicalibration: calibration for the (computationally-identifiable) masses" (ICML), over every
  declared group and every intersection of them, written here in numpy (Meta's `mcgrad` is the
  maintained implementation; its dependencies are too heavy for riskloop).

Both correct a cell only where the calibration window shows the pooled risk off beyond chance (its expected
events outside the exact Poisson interval of its observed events, the gate's own test): on a window of a
few dozen events a map fitted regardless chases noise and can leave a group worse off out of time.

The group's value is never a model feature: the model scores without it, and the map only moves the
probability. Bands are cut on the model's raw score, so they do not move either. The columns are then
required at scoring: a row without them is refused. A value the calibration window never held (say sex 'U'
where the window held F and M) is no cell of the map: its rows keep the pooled risk (multicalibration: only
the patches of the groups they belong to, everyone's included), and batch scoring says how many
(`unknown_values`), rather than refusing everyone's list for one person.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from riskloop.models.gate import poisson_interval

EPSILON = 1e-6  # probabilities are kept within [EPSILON, 1 - EPSILON] so that log-odds stay finite

Method = Literal["groupwise", "multicalibration"]


class GroupValueError(ValueError):
    """Rows the map cannot give a probability: without a declared column, or with a missing or unknown value."""


Cell = tuple[str, ...]  # one value per declared column, in the declared order


def group_values(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The declared columns of a frame as text, after refusing in one line a missing column or a missing
    value (a `GroupValueError` naming the column). A value the map was not fitted for is kept: no cell of
    the map holds it."""
    values = {}
    for column in columns:
        if column not in frame.columns:
            raise GroupValueError(
                f"the frame lacks protected column '{column}': the model is calibrated within {column}, "
                "so it is required at scoring (it is never a model feature)"
            )
        cells = frame[column]
        if cells.isna().any():
            raise GroupValueError(
                f"column '{column}' is missing in {int(cells.isna().sum())} row(s): the model is calibrated within "
                f"{column} and cannot score a row without it"
            )
        values[column] = cells.astype(str).to_numpy()
    return pd.DataFrame(values, index=frame.index)


def unknown_values(
    frame: pd.DataFrame, columns: tuple[str, ...], levels: tuple[tuple[str, ...], ...], rows: np.ndarray | None = None
) -> list[tuple[str, str, int]]:
    """(column, value, rows) of each value of a declared column that the calibration window never held: those
    rows keep the pooled risk in that column's groups. `rows`: how many rows each row of `frame` stands for
    (default one)."""
    groups = group_values(frame, columns)
    weight = pd.Series(np.ones(len(groups), np.int64) if rows is None else np.asarray(rows), index=groups.index)
    found = []
    for column, known in zip(columns, levels):
        counts = weight.groupby(groups[column]).sum()
        found += [(column, str(v), int(n)) for v, n in counts.items() if v not in known]
    return sorted(found)


def _levels(groups: pd.DataFrame, columns: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(sorted(groups[c].astype(str).unique())) for c in columns)


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, EPSILON, 1 - EPSILON)


def off_beyond_chance(observed: float, expected: float) -> bool:
    """Whether `expected` events lie outside the exact 95% Poisson interval of `observed` events."""
    low, high = poisson_interval(observed)
    return not float(low) <= expected <= float(high)


class WithinGroupMap(Protocol):
    """What the scorer keeps: the declared columns, the values seen, and the map itself."""

    @property
    def method(self) -> Method: ...
    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def levels(self) -> tuple[tuple[str, ...], ...]: ...

    def apply(self, risk: np.ndarray, frame: pd.DataFrame) -> np.ndarray: ...

    def corrects(self) -> str: ...


@dataclass(frozen=True)
class GroupwiseMap:
    """Per cell of the declared columns, Platt's map on the pooled risk's log-odds: (intercept, slope).
    A cell not in `maps` (too few events or non-events on the calibration window) keeps the pooled risk."""

    columns: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    maps: dict[Cell, tuple[float, float]]
    method: Method = "groupwise"

    def corrects(self) -> str:
        """Which groups the map moves, in words."""
        if not self.maps:
            return "no group (the pooled risk was within chance for every group on the calibration window)"
        named = [" | ".join(cell) for cell in sorted(self.maps)]
        return f"{' x '.join(self.columns)} = {', '.join(named)}"

    def apply(self, risk: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        groups = group_values(frame, self.columns)
        out = np.asarray(risk, float).copy()
        odds = logit(_clip(out))
        keys = list(zip(*(groups[c].to_numpy() for c in self.columns)))
        for cell, (intercept, slope) in self.maps.items():
            member = np.fromiter((key == cell for key in keys), bool, len(keys))
            out[member] = expit(intercept + slope * odds[member])
        return out


def fit_groupwise(
    risk: np.ndarray, y: np.ndarray, frame: pd.DataFrame, columns: tuple[str, ...], min_events: int
) -> GroupwiseMap:
    """Fit a Platt map per cell with at least `min_events` events and as many non-events, where the pooled
    risk is off beyond chance."""
    levels = _levels(frame, columns)
    groups = group_values(frame, columns)
    odds = logit(_clip(np.asarray(risk, float))).reshape(-1, 1)
    maps = {}
    for cell, rows in groups.groupby(list(columns), sort=True).indices.items():
        key = cell if isinstance(cell, tuple) else (cell,)
        events = int(y[rows].sum())
        if events < min_events or len(rows) - events < min_events or not off_beyond_chance(events, risk[rows].sum()):
            continue
        platt = LogisticRegression(C=1e6).fit(odds[rows], y[rows])
        maps[tuple(map(str, key))] = (float(platt.intercept_[0]), float(platt.coef_[0, 0]))
    return GroupwiseMap(columns, levels, maps)


@dataclass(frozen=True)
class Patch:
    """One step of multicalibration: add `shift` to the risk of the members of `group` (column -> value;
    empty: everyone) whose current risk lies in [low, high)."""

    group: tuple[tuple[str, str], ...]
    low: float
    high: float
    shift: float


@dataclass(frozen=True)
class Multicalibration:
    """The patches, replayed in order at scoring (each reads the risk as the patches before it left it)."""

    columns: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    patches: tuple[Patch, ...]
    method: Method = "multicalibration"

    def corrects(self) -> str:
        """How many (group x risk bin) cells the patches move, and in which groups, in words."""
        if not self.patches:
            return "no cell (the pooled risk was within chance in every judged cell on the calibration window)"
        groups = sorted({", ".join(f"{c}={v}" for c, v in p.group) or "everyone" for p in self.patches})
        return f"{len(self.patches)} patch{'es' if len(self.patches) > 1 else ''} in {'; '.join(groups)}"

    def apply(self, risk: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        groups = group_values(frame, self.columns)
        p = np.asarray(risk, float).copy()
        members: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        for patch in self.patches:
            if patch.group not in members:
                members[patch.group] = _member(groups, patch.group)
            cell = members[patch.group] & (p >= patch.low) & (p < patch.high)
            p[cell] = _clip(p[cell] + patch.shift)
        return p


def _member(groups: pd.DataFrame, group: tuple[tuple[str, str], ...]) -> np.ndarray:
    member = np.ones(len(groups), bool)
    for column, value in group:
        member &= groups[column].to_numpy() == value
    return member


def _collection(groups: pd.DataFrame, columns: tuple[str, ...]) -> list[tuple[tuple[str, str], ...]]:
    """Everyone, every declared group and every intersection of declared groups that has members."""
    collection: list[tuple[tuple[str, str], ...]] = [()]
    for size in range(1, len(columns) + 1):
        for chosen in itertools.combinations(columns, size):
            for values in groups.groupby(list(chosen), sort=True).indices:
                values = values if isinstance(values, tuple) else (values,)
                collection.append(tuple(zip(chosen, map(str, values))))
    return collection


def fit_multicalibration(
    risk: np.ndarray,
    y: np.ndarray,
    frame: pd.DataFrame,
    columns: tuple[str, ...],
    min_events: int,
    alpha: float,
    bins: int = 10,
    max_patches: int = 500,
) -> Multicalibration:
    """Hebert-Johnson et al. (2018), Algorithm 1, with two adaptations for rare outcomes: the risk bins are
    the deciles of the pooled risk on the calibration window (equal-width bins would put nearly everyone
    in the first), and a (group x bin) cell is judged only when it expects at least `min_events` events
    (the paper's minimum mass). While some judged cell's mean residual E[y - p] exceeds `alpha` in size and
    its events are off beyond chance, the one with the largest total residual is patched by its mean residual."""
    levels = _levels(frame, columns)
    groups = group_values(frame, columns)
    y = np.asarray(y, float)
    p = _clip(np.asarray(risk, float).copy())
    inner = np.unique(np.quantile(p, np.arange(1, bins) / bins))
    edges = np.concatenate([[0.0], inner, [np.inf]])
    collection = [(group, _member(groups, group)) for group in _collection(groups, columns)]
    patches = []
    for _ in range(max_patches):
        bin_of = np.searchsorted(inner, p, side="right")
        worst: tuple[float, Patch, np.ndarray] | None = None
        for group, member in collection:
            for b in range(len(edges) - 1):
                cell = member & (bin_of == b)
                expected = p[cell].sum()
                if expected < min_events:
                    continue
                observed = y[cell].sum()
                residual = (observed - expected) / cell.sum()
                total = abs(residual) * cell.sum()
                off = abs(residual) > alpha and off_beyond_chance(observed, expected)
                if off and (worst is None or total > worst[0]):
                    worst = (total, Patch(group, float(edges[b]), float(edges[b + 1]), float(residual)), cell)
        if worst is None:
            break
        _, patch, cell = worst
        p[cell] = _clip(p[cell] + patch.shift)
        patches.append(patch)
    return Multicalibration(columns, levels, tuple(patches))


def fit_maps(
    risk: np.ndarray, y: np.ndarray, frame: pd.DataFrame, columns: tuple[str, ...], min_events: int
) -> tuple[GroupwiseMap, Multicalibration]:
    """Both maps fitted on the calibration window's pooled risk and outcomes. Multicalibration's `alpha` is
    a tenth of the window's base rate, so that it asks the same of a rare outcome as of a common one."""
    alpha = 0.1 * float(np.mean(y))
    return (
        fit_groupwise(risk, y, frame, columns, min_events),
        fit_multicalibration(risk, y, frame, columns, min_events, alpha),
    )


@dataclass(frozen=True)
class Verdict:
    """How a map did on out-of-time rows: the gate's calibration failures over every protected group and
    intersection, then Brier score, expected calibration error and ROC AUC; `corrects` says what it moves."""

    method: Method
    corrects: str
    calibration_failures: int
    brier: float
    ece: float
    roc_auc: float

    def rank(self) -> tuple[int, float, float, float]:
        """Fewer calibration failures first, then the lower Brier score, the lower ECE, the higher AUC."""
        return (self.calibration_failures, self.brier, self.ece, -self.roc_auc)


CHOICE_RULE = (
    "fewest calibration failures of the gate over every protected group and intersection on the test window, "
    "then the lower Brier score, then the lower ECE, then the higher ROC AUC"
)


def choose(verdicts: list[Verdict]) -> Verdict:
    """The better map by `CHOICE_RULE` (on a full tie, the first: the simpler group-wise map)."""
    return min(verdicts, key=Verdict.rank)


def notice(columns: tuple[str, ...]) -> str:
    """What every run and the model card say, in words, about a model calibrated within `columns`."""
    named = " x ".join(columns)
    required = " and ".join(columns)
    return (
        f"CALIBRATED WITHIN {named.upper()}: the score is mapped to a probability separately for each {named} "
        f"(calibrate_within); {required} {'is' if len(columns) == 1 else 'are'} required at scoring and "
        f"{'is' if len(columns) == 1 else 'are'} never a model feature."
    )
