"""Proxies of protected characteristics: how well each feature alone tells a protected group apart.

For every feature and every group of every protected column, the one-versus-rest ROC AUC of the
feature's value (from ranks, so one sort per feature serves every group). Strength is
`|AUC - 0.5| * 2`: 0 when the feature says nothing about membership, 1 when it separates the group
perfectly. A feature can be a legitimate predictor and a proxy at once (age is both the strongest
known predictor of offending and the protected age band); the point is to say so out loud.

A feature that *determines* the group (every value of it belongs to one group only, values shared by
many people or each group one run of values) is flagged `determines`: the protected column is derived from it (age and the age band, the
deprivation decile and its quintile) or it is constant within units that the group is made of (an area
rate when the group is an area characteristic and there are few areas). Its AUC is 0 or 1 by
construction, so it says what the feature is, not how strong a proxy it happens to be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def proxy_strength(
    features: pd.DataFrame, protected: pd.DataFrame, min_group_size: int = 50, sample: int = 50_000, seed: int = 0
) -> pd.DataFrame:
    """One row per feature x protected column: the group the feature separates best, its AUC and strength.

    Groups smaller than `min_group_size` (in the sample) are skipped: their AUC is noise.
    """
    if len(features) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(features), size=sample, replace=False))
        features, protected = features.iloc[rows], protected.iloc[rows]
    names = list(features.columns)
    sorted_values = [_SortedValues(_as_numbers(features[c])) for c in names]
    out = []
    for column in protected:
        groups = protected[column].astype("string").fillna("missing").to_numpy()
        codes, kinds = pd.factorize(groups)
        exact = [by.determines(codes, len(kinds), min_group_size) for by in sorted_values]
        n1 = np.bincount(codes, minlength=len(kinds))
        rank_sums = np.zeros((len(kinds), len(names)))  # per group and feature, its members' ranks summed
        for f, by in enumerate(sorted_values):  # exact: sums of half-integers far below 2^53
            rank_sums[:, f] = np.bincount(codes, by.ranks, len(kinds))
        for g, group in enumerate(kinds):
            n0 = len(codes) - int(n1[g])
            if n1[g] < min_group_size or n0 < min_group_size:
                continue
            aucs = (rank_sums[g] - n1[g] * (n1[g] + 1) / 2) / (n1[g] * n0)
            out += [
                {
                    "feature": feature,
                    "characteristic": column,
                    "group": group,
                    "auc": auc,
                    "strength": abs(auc - 0.5) * 2,
                    "determines": exact[f],
                }
                for f, (feature, auc) in enumerate(zip(names, aucs))
            ]
    table = pd.DataFrame(out, columns=["feature", "characteristic", "group", "auc", "strength", "determines"])
    best = table.sort_values("strength", ascending=False, kind="stable").drop_duplicates(["feature", "characteristic"])
    return best.sort_values(["strength", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _as_numbers(feature: pd.Series) -> np.ndarray:
    """A feature's values as floats, a missing or non-numeric value as -inf (below every value), whatever its
    dtype (a nullable or Arrow integer holds no -inf)."""
    numbers = pd.to_numeric(feature, errors="coerce").to_numpy(dtype=float, na_value=np.nan)  # maybe a view
    return np.where(np.isnan(numbers), -np.inf, numbers)


class _SortedValues:
    """A feature's values sorted once: their ranks (tied values sharing their average rank, from 1), and whether
    the feature determines a protected column, asked of every one."""

    def __init__(self, feature: np.ndarray) -> None:
        self.order = np.argsort(feature, kind="stable")
        ordered = feature[self.order]
        self.first = np.ones(len(ordered), dtype=bool)  # the first row of each distinct value
        self.first[1:] = ordered[1:] != ordered[:-1]
        starts = np.flatnonzero(self.first)
        ends = np.append(starts[1:], len(ordered))
        self.ranks = np.empty(len(ordered))
        self.ranks[self.order] = np.repeat((starts + ends + 1) / 2, ends - starts)

    def determines(self, codes: np.ndarray, kinds: int, min_group_size: int) -> bool:
        """Whether the groups `codes` (0..kinds - 1, one per row) are a function of the feature: each value belongs
        to one group only, and not by the accident of unique values: either the values are shared (on average by
        at least `min_group_size` people) or, in the feature's order, each group is one run of values (a band cut
        from it)."""
        ordered = codes[self.order]
        if np.any((ordered[1:] != ordered[:-1]) & ~self.first[1:]):  # a value shared by two groups
            return False
        by_value = ordered[self.first]
        runs = 1 + int(np.count_nonzero(by_value[1:] != by_value[:-1]))
        return bool(len(by_value) * min_group_size <= len(codes) or runs <= kinds)
