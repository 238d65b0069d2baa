"""Path-dependent TreeSHAP of a LightGBM model, vectorised over rows: the values LightGBM's
`predict(pred_contrib=True)` gives, several times faster on the few cores this runs on.

The algorithm is Fast TreeSHAP v2 (Yang 2021, "Fast TreeSHAP: Accelerating SHAP value computation for
trees"). A leaf adds to the SHAP value of each feature on its path a term that depends on the row only
through which of the path's splits the row follows: with the path's distinct features j = 1..m, the share of
the training rows that follow the path at j's splits z_j (LightGBM's counts) and o_j = 1 where the row
follows the path at all of j's splits, feature i gets

    leaf value x (o_i - z_i) x sum_s w(s, m) [y^s] prod_{j != i} (z_j + o_j y),   w(s, m) = s! (m-1-s)! / m!

(Lundberg et al. 2020's TreeSHAP, written per leaf). There are 2^m patterns of o, so each leaf's terms are
computed once per model for every pattern, and a row's SHAP values are table look-ups: per leaf, the row's
pattern from the tree's split decisions, then one gathered term per path feature. Splits decide as LightGBM
decides (missing values by the split's missing type and default direction, categorical splits by their
category set), and the base value is each tree's expected leaf value under the training counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial, prod

import numpy as np
import pandas as pd

_ZERO = 1e-35  # LightGBM's kZeroThreshold: |x| at most this is zero for a split whose missing type is Zero


@dataclass(frozen=True)
class _Split:
    feature: int
    threshold: float  # numerical split: left when x <= threshold
    categories: frozenset[int] | None  # categorical split: left when int(x) is one of these
    missing: str  # LightGBM's missing type: "None", "Zero" or "NaN"
    default_left: bool


@dataclass(frozen=True)
class _Leaf:
    features: tuple[int, ...]  # the path's distinct features, in the order the table's patterns count them
    follows: tuple[tuple[tuple[int, bool], ...], ...]  # per feature: its splits on the path (split, goes left)
    table: np.ndarray  # (m, 2^m): feature k's term for every pattern of o


@dataclass(frozen=True)
class _Tree:
    splits: tuple[_Split, ...]
    leaves: tuple[_Leaf, ...]
    expected: float


def _weights(m: int) -> np.ndarray:
    return np.array([factorial(s) * factorial(m - 1 - s) / factorial(m) for s in range(m)])


def _leaf_tables(zeros: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(leaves, m, 2^m) terms of leaves with m distinct path features each: `zeros` (leaves, m) the z_j,
    `values` (leaves,) the leaf values."""
    leaves, m = zeros.shape
    patterns = (np.arange(2**m)[:, None] >> np.arange(m)) & 1  # (2^m, m): o_j of each pattern
    o = patterns[None, :, :].astype(float)
    z = zeros[:, None, :]
    poly = np.zeros((leaves, 2**m, m + 1))  # prod_j (z_j + o_j y), by power of y
    poly[..., 0] = 1.0
    for j in range(m):
        shifted = np.zeros_like(poly)
        shifted[..., 1:] = poly[..., :-1]
        poly = poly * z[..., j, None] + shifted * o[..., j, None]
    weights = _weights(m)
    tables = np.empty((leaves, m, 2**m))
    for k in range(m):
        # divide factor k out: by (z_k + y) where o_k = 1 (synthetic division from the top), by z_k where 0
        quotient = np.empty((leaves, 2**m, m))
        quotient[..., m - 1] = poly[..., m]
        for s in range(m - 1, 0, -1):
            quotient[..., s - 1] = poly[..., s] - z[..., k] * quotient[..., s]
        without = np.where(o[..., k, None] == 1, quotient, poly[..., :m] / z[..., k, None])
        tables[:, k, :] = values[:, None] * (o[..., k] - z[..., k]) * (without @ weights)
    return tables


@dataclass(frozen=True)
class _Path:
    """The path to a leaf: its value, its distinct features, their splits on it and their z."""

    value: float
    features: tuple[int, ...]
    follows: tuple[tuple[tuple[int, bool], ...], ...]
    zeros: np.ndarray


def _walk(tree: dict) -> tuple[tuple[_Split, ...], list[_Path], float]:
    """A tree's splits, the paths to its leaves and its expected value (the leaf values under the training
    counts; a tree without splits has its one value and no path)."""
    structure = tree["tree_structure"]
    if "leaf_value" in structure:
        return (), [], float(structure["leaf_value"])
    splits: list[_Split] = []
    paths: list[tuple[float, float, list[tuple[int, bool, float]]]] = []  # value, count, (split, left, z)
    total = float(structure["internal_count"])

    def walk(node: dict, path: list[tuple[int, bool, float]]) -> None:
        if "leaf_value" in node:
            paths.append((float(node["leaf_value"]), float(node["leaf_count"]), path))
            return
        index = len(splits)
        categorical = node["decision_type"] == "=="
        splits.append(
            _Split(
                int(node["split_feature"]),
                np.nan if categorical else float(node["threshold"]),
                frozenset(int(c) for c in str(node["threshold"]).split("||")) if categorical else None,
                str(node["missing_type"]),
                bool(node["default_left"]),
            )
        )
        count = float(node["internal_count"])
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            share = float(child["leaf_count"] if "leaf_value" in child else child["internal_count"]) / count
            walk(child, [*path, (index, left, share)])

    walk(structure, [])
    expected = sum(value * count / total for value, count, _ in paths)
    leaves = []
    for value, _, path in paths:
        by_feature: dict[int, tuple[list[tuple[int, bool]], list[float]]] = {}  # in order of first use
        for s, left, z in path:
            follows, zs = by_feature.setdefault(splits[s].feature, ([], []))
            follows.append((s, left))
            zs.append(z)
        leaves.append(
            _Path(
                value,
                tuple(by_feature),
                tuple(tuple(follows) for follows, _ in by_feature.values()),
                np.array([prod(zs) for _, zs in by_feature.values()]),
            )
        )
    return tuple(splits), leaves, expected


def _tabled(trees: list[tuple[tuple[_Split, ...], list[_Path], float]]) -> tuple[_Tree, ...]:
    """The trees with each leaf's table: the leaves of every tree with as many path features are computed
    together, `TABLE_BATCH` terms at a time (one call per tree and size was most of a model's build time)."""
    by_size: dict[int, list[tuple[int, int]]] = {}  # m -> (tree, leaf) of its leaves
    for t, (_, paths, _) in enumerate(trees):
        for i, path in enumerate(paths):
            by_size.setdefault(len(path.features), []).append((t, i))
    tables: dict[tuple[int, int], np.ndarray] = {}
    for m, leaves in by_size.items():
        step = max(1, TABLE_BATCH // ((m + 1) << m))
        for start in range(0, len(leaves), step):
            batch = leaves[start : start + step]
            paths = [trees[t][1][i] for t, i in batch]
            computed = _leaf_tables(np.array([p.zeros for p in paths]), np.array([p.value for p in paths]))
            tables.update(zip(batch, computed))
    return tuple(
        _Tree(splits, tuple(_Leaf(p.features, p.follows, tables[t, i]) for i, p in enumerate(paths)), expected)
        for t, (splits, paths, expected) in enumerate(trees)
    )


def _goes_left(split: _Split, x: np.ndarray) -> np.ndarray:
    """LightGBM's decision at `split` for the column `x`."""
    if split.categories is not None:
        whole = np.where(np.isnan(x) | (x < 0), -1, x).astype(np.int64)
        return np.isin(whole, list(split.categories))
    nan = np.isnan(x)
    if split.missing == "NaN":
        return np.where(nan, split.default_left, x <= split.threshold)
    value = np.where(nan, 0.0, x)
    if split.missing == "Zero":
        return np.where(np.abs(value) <= _ZERO, split.default_left, value <= split.threshold)
    return value <= split.threshold


#: the most distinct features on the path to a tabled leaf (m 2^m terms each: 22,528 at 11)
MAX_PATH = 11
#: the most polynomial terms (leaves x 2^m patterns x m + 1 powers) computed at once while the tables are built (8 MB)
TABLE_BATCH = 2**20
#: the most pattern terms a model's tables may hold (64 MB; the Wales benchmark's model, 199 trees of 15 leaves, 9 MB)
MAX_TERMS = 2**23


def _runs(iterations: list[int]) -> tuple[tuple[int, int], ...]:
    """(first, count) of each run of consecutive iterations."""
    runs: list[list[int]] = []
    for i in iterations:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, 1])
    return tuple((first, count) for first, count in runs)


class PathTreeShap:
    """The path-dependent TreeSHAP values of a fitted `lightgbm.Booster` (up to its best iteration, as its
    `predict` uses) for a frame of its features; built once per model (`for_booster`), called for any rows.

    A tree is tabled when no path has more than `MAX_PATH` distinct features and the model's tables stay
    within `MAX_TERMS`; LightGBM's `pred_contrib` explains the other trees (a run of them per call), and the
    two add up (SHAP values are sums over trees). Trees of 15 leaves are nearly always tabled; of 31 leaves,
    those with the deepest paths are not."""

    def __init__(self, dump: dict) -> None:
        self.features = int(dump["max_feature_idx"]) + 1
        tabled, untabled, budget = [], [], MAX_TERMS
        for iteration, tree in enumerate(dump["tree_info"]):
            splits, paths, expected = _walk(tree)
            sizes = [len(path.features) for path in paths]
            terms = sum(m * 2**m for m in sizes)
            if max(sizes, default=0) <= MAX_PATH and terms <= budget:
                tabled.append((splits, paths, expected))
                budget -= terms
            else:
                untabled.append(iteration)
        self.trees = _tabled(tabled)
        self.untabled = _runs(untabled)  # (first iteration, count) that LightGBM explains
        self.base = float(sum(tree.expected for tree in self.trees))

    @classmethod
    def for_booster(cls, booster) -> PathTreeShap:
        return cls(booster.dump_model())

    def __call__(self, X: pd.DataFrame, booster, chunk_rows: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
        """(SHAP values, rows x features; base value per row) of `X` by `booster` (the one this was built
        for), each row's values plus its base adding up to the booster's raw score. A categorical column is read
        as its category codes (missing: NaN), as LightGBM reads a pandas categorical."""
        columns = np.empty((len(X.columns), len(X)))
        for i, column in enumerate(X.columns):
            values = X[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                codes = values.cat.codes.to_numpy()
                columns[i] = np.where(codes < 0, np.nan, codes)
            else:
                columns[i] = values.to_numpy(float)
        contrib = np.empty((len(X), self.features))
        for start in range(0, len(X), chunk_rows):
            contrib[start : start + chunk_rows] = self._explain(columns[:, start : start + chunk_rows]).T
        base = np.full(len(X), self.base)
        for first, count in self.untabled:  # rows x features, column-major: LightGBM reads it where it lies
            part = booster.predict(columns.T, pred_contrib=True, start_iteration=first, num_iteration=count)
            contrib += part[:, :-1]
            base += part[:, -1]
        return contrib, base

    def _explain(self, columns: np.ndarray) -> np.ndarray:
        rows = columns.shape[1]
        phi = np.zeros((self.features, rows))
        for tree in self.trees:
            left = [_goes_left(split, columns[split.feature]) for split in tree.splits]
            for leaf in tree.leaves:
                pattern = np.zeros(rows, dtype=np.intp)
                for k, follows in enumerate(leaf.follows):
                    on_path = np.ones(rows, dtype=bool)
                    for split, goes_left in follows:
                        on_path &= left[split] if goes_left else ~left[split]
                    pattern |= on_path.astype(np.intp) << k
                for k, feature in enumerate(leaf.features):
                    phi[feature] += leaf.table[k][pattern]
        return phi
