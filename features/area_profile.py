"""Area profiles at T: the community safety audit view behind the area dashboard.

Per small area or local authority: managed cohort size, demographics, incident mix, harm and its
trend, repeat-victim share and intervention coverage. Built from a snapshot (the cohort at T), so
it never looks past T.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from riskloop.features.vocabulary import INCIDENT_TYPES


def area_profile(snapshot: pd.DataFrame, areas: pd.DataFrame,
                 level: Literal["area_id", "local_authority"] = "area_id") -> pd.DataFrame:
    """One row per area (or local authority) of the snapshot's single as-of date."""
    if snapshot["as_of"].nunique() != 1:
        raise ValueError("an area profile is for one as-of date; filter the snapshot first")
    key = snapshot[level]
    programmes = [c for c in snapshot.columns if c.startswith("prior_") and c.endswith("_count")]
    indicators = pd.DataFrame({
        "cohort": 1,
        "share_female": snapshot["sex"].eq("F") if "sex" in snapshot else pd.NA,
        "share_under_25": snapshot["age"] < 25,
        "share_minority_ethnic": ~snapshot["ethnicity"].isin(["White", "Unknown"]) if "ethnicity" in snapshot else pd.NA,
        "repeat_victim_share": snapshot["victim_repeat_365d"],
        "intervention_coverage": snapshot[programmes].sum(axis=1) > 0 if programmes else False,
        "harm_trend_90d": snapshot["offending_trend_90d"],
    }, index=snapshot.index).astype(float)
    profile = indicators.groupby(key).mean()
    profile["cohort"] = key.value_counts()
    profile["offending_harm_365d"] = snapshot.groupby(key)["offending_harm_365d"].sum()
    for t in INCIDENT_TYPES:
        cols = [c for c in snapshot.columns if c.endswith(f"_{t}_count_365d") and c[:5] in ("perp_", "susp_", "vict_", "subj_")]
        profile[f"{t}_involvements_365d"] = snapshot[cols].sum(axis=1).groupby(key).sum()
    if level == "area_id":
        rates = [f"area_{t}_rate_365d" for t in INCIDENT_TYPES] + [f"area_{t}_trend_365d" for t in INCIDENT_TYPES]
        profile = profile.join(snapshot.groupby("area_id")[rates].first())
        profile = profile.join(areas.set_index("area_id")[["local_authority", "population", "deprivation_rank"]])
    else:
        profile = profile.join(areas.groupby("local_authority")["population"].sum())
    profile.insert(0, "as_of", snapshot["as_of"].iloc[0])
    return profile.rename_axis(level).reset_index()
