"""Prevention tier of each scored person, from their recorded history before the as-of date.

The public health approach's three tiers, as the partnership defines them:

- **primary**: the issue has not yet emerged: no recorded offending involvement (as perpetrator or
  suspect) in the lookback window; the person is known as a victim or a subject of concern only.
- **tertiary**: the issue is established, or established and getting worse: at least
  `ESTABLISHED_INVOLVEMENTS` offending involvements in the lookback window, or at least two that are
  getting worse (more offending harm in the last 12 months than the lookback's yearly average, or a
  rising 90-day trend).
- **secondary**: the issue is emerging: any other recorded offending involvement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskloop.features.catalogue import FeatureSpec, harm_feature, trend_feature
from riskloop.features.snapshot import SnapshotConfig
from riskloop.features.vocabulary import OFFENDING_ROLES

TIERS = ("primary", "secondary", "tertiary")
ESTABLISHED_INVOLVEMENTS = 3


def prevention_tier(snapshot: pd.DataFrame, catalogue: list[FeatureSpec], config: SnapshotConfig) -> np.ndarray:
    """'primary', 'secondary' or 'tertiary' per row of a snapshot built with `config`."""
    lookback = max(config.windows)
    if 365 not in config.windows:
        raise ValueError("prevention tiers need the 365-day window among the snapshot's windows")
    counts = [
        s.name
        for s in catalogue
        if s.family == "incident_count" and s.role in OFFENDING_ROLES and s.window_days == lookback
    ]
    involvements = snapshot[counts].sum(axis=1).to_numpy()
    years = lookback / 365
    recent_harm = snapshot[harm_feature("offending", 365)].to_numpy()
    yearly_harm = snapshot[harm_feature("offending", lookback)].to_numpy() / years
    worsening = (recent_harm > yearly_harm) | (snapshot[trend_feature("offending")].to_numpy() > 0)
    established = (involvements >= ESTABLISHED_INVOLVEMENTS) | ((involvements >= 2) & worsening)
    return np.where(involvements == 0, "primary", np.where(established, "tertiary", "secondary"))
