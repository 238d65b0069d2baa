"""Area profiles at T: the community safety audit view behind the area dashboard.

Per small area or local authority: managed cohort size, demographics, incident mix, harm and its
trend, repeat-victim share and intervention coverage. Built from a snapshot (the cohort at T), so
it never looks past T.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from riskloop.features.catalogue import (
    AGE, REPEAT_VICTIM, FeatureSpec, area_rate_feature, area_trend_feature, harm_feature, trend_feature,
)
from riskloop.features.vocabulary import INCIDENT_TYPES


def area_profile(snapshot: pd.DataFrame, areas: pd.DataFrame, catalogue: list[FeatureSpec],
                 level: Literal["area_id", "local_authority"] = "area_id") -> pd.DataFrame:
    """One row per area (or local authority) of the snapshot's single as-of date; `catalogue` names
    the snapshot's features and their families."""
    if snapshot["as_of"].nunique() != 1:
        raise ValueError("an area profile is for one as-of date; filter the snapshot first")
    key = snapshot[level]
    programmes = [s.name for s in catalogue if s.family == "intervention"]
    indicators = pd.DataFrame({
        "cohort": 1,
        "share_female": snapshot["sex"].eq("F") if "sex" in snapshot else pd.NA,
        "share_under_25": snapshot[AGE] < 25,
        "share_minority_ethnic": ~snapshot["ethnicity"].isin(["White", "Unknown"]) if "ethnicity" in snapshot else pd.NA,
        "repeat_victim_share": snapshot[REPEAT_VICTIM],
        "intervention_coverage": snapshot[programmes].sum(axis=1) > 0 if programmes else False,
        "harm_trend_90d": snapshot[trend_feature("offending")],
    }, index=snapshot.index).astype(float)
    profile = indicators.groupby(key).mean()
    profile["cohort"] = key.value_counts()
    profile["offending_harm_365d"] = snapshot.groupby(key)[harm_feature("offending", 365)].sum()
    for t in INCIDENT_TYPES:
        cols = [s.name for s in catalogue if s.family == "incident_count" and s.incident_type == t and s.window_days == 365]
        profile[f"{t}_involvements_365d"] = snapshot[cols].sum(axis=1).groupby(key).sum()
    if level == "area_id":
        rates = [area_rate_feature(t) for t in INCIDENT_TYPES] + [area_trend_feature(t) for t in INCIDENT_TYPES]
        profile = profile.join(snapshot.groupby("area_id")[rates].first())
        profile = profile.join(areas.set_index("area_id")[["local_authority", "population", "deprivation_rank"]])
    else:
        profile = profile.join(areas.groupby("local_authority")["population"].sum())
    profile.insert(0, "as_of", snapshot["as_of"].iloc[0])
    return profile.rename_axis(level).reset_index()
