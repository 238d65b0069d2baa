"""How long a person has been known and their time-decayed sums, over the lookback only.

No feature looks back past the lookback (docs/architecture.md, "Data contract", the data-start rule): a
whole-history count would grow with the extract's age, so two cohorts a year apart would differ by when
the data begins, not by their people. The days since the first recorded incident are capped at the
lookback and read "at least" there; a record d days old weighs 0.5^(d / half-life) in the decayed sums."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from riskloop.features.catalogue import FIRST_INCIDENT, HALF_LIFE_DAYS, FeatureSpec, decayed_feature
from riskloop.features.families.base import OFFENDING, VICTIM, Cohort, FeatureFamily, Layout

_WHO_WORDS = (("offending", "as perpetrator or suspect"), ("victim", "as victim"))


class History(FeatureFamily):
    def __init__(self, half_life: int = HALF_LIFE_DAYS):
        self.half_life = half_life

    def specs(self, layout: Layout) -> list[FeatureSpec]:
        specs = [
            FeatureSpec(
                FIRST_INCIDENT,
                "history",
                "days since the first recorded incident in any role, capped at the lookback (the cap reads 'at least')",
                None,
                "incidents",
                "first recorded incident {value:.0f} days ago",
                template_capped="first recorded incident at least {lookback} ago",
            )
        ]
        half_life = self.half_life
        weighting = f"weighted by 0.5^(days old / {half_life})"
        for who, words in _WHO_WORDS:
            specs.append(
                FeatureSpec(
                    decayed_feature(f"{who}_count", half_life),
                    "decayed",
                    f"incidents {words} in the lookback, each {weighting}",
                    None,
                    "incidents",
                    "recent-weighted count {value:.1f} of incidents " + words + f" (half-life {half_life} days)",
                )
            )
            specs.append(
                FeatureSpec(
                    decayed_feature(f"{who}_harm", half_life),
                    "decayed",
                    f"harm of incidents {words} in the lookback, each {weighting}",
                    None,
                    "incidents",
                    "recent-weighted harm index {value:.1f} from incidents " + words + f" (half-life {half_life} days)",
                )
            )
        return specs

    def compute(self, c: Cohort) -> Iterator[tuple[str, np.ndarray]]:
        d, n = c.d, c.n
        age_days = c.t - d.inc_day[c.rows]
        roles, harm = d.inc_role[c.rows], d.inc_harm[c.rows]
        weight = np.exp2(-age_days / self.half_life)
        yield FIRST_INCIDENT, first_incident_days(c)
        for who, mask in (("offending", OFFENDING[roles]), ("victim", roles == VICTIM)):
            yield decayed_feature(f"{who}_count", self.half_life), np.bincount(c.pos[mask], weight[mask], minlength=n)
            yield (
                decayed_feature(f"{who}_harm", self.half_life),
                np.bincount(c.pos[mask], (weight * harm)[mask], minlength=n),
            )


def first_incident_days(c: Cohort) -> np.ndarray:
    """Days since each member's first recorded incident before T, capped at the lookback."""
    d = c.d
    slot = np.full(len(d.birth_day), -1, dtype=np.int64)
    slot[c.people] = np.arange(c.n)
    past = np.flatnonzero(d.inc_day < c.t)
    pos = slot[d.inc_person[past]]
    mine = pos >= 0
    first = np.zeros(c.n, dtype=np.int64)
    np.maximum.at(first, pos[mine], c.t - d.inc_day[past[mine]])
    return np.minimum(first, c.config.lookback_days)
