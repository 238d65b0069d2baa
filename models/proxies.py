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
from scipy.stats import rankdata


def proxy_strength(
    features: pd.DataFrame, protected: pd.DataFrame, min_group_size: int = 50, sample: int = 50_000, seed: int = 0
) -> pd.DataFrame:
    """One row per feature x protected column: the group the feature separates best, its AUC and strength.

    Groups smaller than `min_group_size` (in the sample) are skipped: their AUC is noise.
    """
    if len(features) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(features), size=sample, replace=False))
        features, protected = features.iloc[rows], protected.iloc[rows]
    values = {c: pd.to_numeric(features[c], errors="coerce").fillna(-np.inf).to_numpy() for c in features}
    ranks = {c: rankdata(v) for c, v in values.items()}
    out = []
    for column in protected:
        groups = protected[column].astype("string").fillna("missing").to_numpy()
        exact = {feature: determines(v, groups, min_group_size) for feature, v in values.items()}
        for group in pd.unique(groups):
            member = groups == group
            n1, n0 = int(member.sum()), int((~member).sum())
            if n1 < min_group_size or n0 < min_group_size:
                continue
            for feature, rank in ranks.items():
                auc = (rank[member].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
                out.append(
                    {
                        "feature": feature,
                        "characteristic": column,
                        "group": group,
                        "auc": auc,
                        "strength": abs(auc - 0.5) * 2,
                        "determines": exact[feature],
                    }
                )
    table = pd.DataFrame(out, columns=["feature", "characteristic", "group", "auc", "strength", "determines"])
    best = table.sort_values("strength", ascending=False, kind="stable").drop_duplicates(["feature", "characteristic"])
    return best.sort_values(["strength", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)


def determines(feature: np.ndarray, groups: np.ndarray, min_group_size: int = 50) -> bool:
    """Whether the groups are a function of the feature: each value belongs to one group only, and not by the
    accident of unique values: either the values are shared (on average by at least `min_group_size` people)
    or, in the feature's order, each group is one run of values (a band cut from it)."""
    by_value = pd.DataFrame({"value": feature, "group": groups}).groupby("value", sort=True)["group"]
    if (by_value.nunique() > 1).any():
        return False
    order = by_value.first().to_numpy()
    runs = 1 + int((order[1:] != order[:-1]).sum())
    return bool(len(order) * min_group_size <= len(feature) or runs <= len(pd.unique(groups)))
