"""The whole history (every record before the as-of date, not only the lookback) and its time-decayed
sums: a record d days old weighs 0.5^(d / half-life)."""

from __future__ import annotations

import numpy as np

from riskloop.features.catalogue import (
    FIRST_INCIDENT,
    HALF_LIFE_DAYS,
    FeatureSpec,
    decayed_feature,
    history_count_feature,
    history_harm_feature,
)
from riskloop.features.families.base import OFFENDING, VICTIM, Cohort, FeatureFamily, Layout

_WHO_WORDS = (("offending", "as perpetrator or suspect"), ("victim", "as victim"))


class History(FeatureFamily):
    def __init__(self, half_life: int = HALF_LIFE_DAYS):
        self.half_life = half_life

    def specs(self, layout: Layout) -> list[FeatureSpec]:
        specs = []
        for who, words in _WHO_WORDS:
            specs.append(
                FeatureSpec(
                    history_count_feature(who),
                    "history",
                    f"number of incidents {words} on record before the as-of date",
                    None,
                    "incidents",
                    "{value:g} incidents " + words + " on record",
                )
            )
            specs.append(
                FeatureSpec(
                    history_harm_feature(who),
                    "history",
                    f"total harm of incidents {words} on record before the as-of date",
                    None,
                    "incidents",
                    "harm index {value:.1f} from all recorded incidents " + words,
                )
            )
        specs.append(
            FeatureSpec(
                FIRST_INCIDENT,
                "history",
                "days since the first recorded incident in any role",
                None,
                "incidents",
                "first recorded incident {value:.0f} days ago",
            )
        )
        half_life = self.half_life
        weighting = f"weighted by 0.5^(days old / {half_life})"
        for who, words in _WHO_WORDS:
            specs.append(
                FeatureSpec(
                    decayed_feature(f"{who}_count", half_life),
                    "decayed",
                    f"incidents {words} before the as-of date, each {weighting}",
                    None,
                    "incidents",
                    "recent-weighted count {value:.1f} of incidents " + words + f" (half-life {half_life} days)",
                )
            )
            specs.append(
                FeatureSpec(
                    decayed_feature(f"{who}_harm", half_life),
                    "decayed",
                    f"harm of incidents {words} before the as-of date, each {weighting}",
                    None,
                    "incidents",
                    "recent-weighted harm index {value:.1f} from incidents " + words + f" (half-life {half_life} days)",
                )
            )
        return specs

    def compute(self, c: Cohort) -> dict[str, np.ndarray]:
        d, n = c.d, c.n
        rows, pos = _history_rows(c)
        age_days = c.t - d.inc_day[rows]
        roles, harm = d.inc_role[rows], d.inc_harm[rows]
        weight = np.exp2(-age_days / self.half_life)
        whole: dict[str, np.ndarray] = {}
        decayed: dict[str, np.ndarray] = {}
        for who, mask in (("offending", OFFENDING[roles]), ("victim", roles == VICTIM)):
            whole[history_count_feature(who)] = np.bincount(pos[mask], minlength=n)
            whole[history_harm_feature(who)] = np.bincount(pos[mask], harm[mask], minlength=n)
            decayed[decayed_feature(f"{who}_count", self.half_life)] = np.bincount(pos[mask], weight[mask], minlength=n)
            decayed[decayed_feature(f"{who}_harm", self.half_life)] = np.bincount(
                pos[mask], (weight * harm)[mask], minlength=n
            )
        first = np.zeros(n, dtype=np.int64)
        np.maximum.at(first, pos, age_days)
        return {**whole, FIRST_INCIDENT: first, **decayed}


def _history_rows(c: Cohort) -> tuple[np.ndarray, np.ndarray]:
    """(incident rows of cohort members dated before T, at any age; each row's position in the cohort)."""
    d = c.d
    slot = np.full(len(d.birth_day), -1, dtype=np.int64)
    slot[c.people] = np.arange(c.n)
    past = np.flatnonzero(d.inc_day < c.t)
    pos = slot[d.inc_person[past]]
    mine = pos >= 0
    return past[mine], pos[mine]
