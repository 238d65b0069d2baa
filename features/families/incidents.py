"""Incidents in the lookback: counts by role, type and window, harm sums, recency, trends, repeat
victimisation and the people co-involved. All aggregation is `bincount` over cohort positions (the rows of
each type and role found once, by one sort of their codes)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from riskloop.features.catalogue import (
    HIGH_HARM_VICTIMISATIONS,
    REPEAT_VICTIM,
    ROLE_PREFIX,
    ROLE_TYPES,
    ROLE_WORDS,
    FeatureSpec,
    any_count_feature,
    co_involved_feature,
    count_feature,
    days_since_feature,
    harm_feature,
    trend_feature,
    type_words,
    window_words,
)
from riskloop.features.families.base import OFFENDING, VICTIM, Cohort, FeatureFamily, Layout, high_harm
from riskloop.features.vocabulary import INCIDENT_TYPES, ROLES

_HARM_WHO = (("offending", "as perpetrator or suspect"), ("victim", "as victim"))
_RECENCY_WHO = (*_HARM_WHO, ("any", "in any role"))
_TREND_WHO = (_HARM_WHO[0], ("any", "in any role"))


class Incidents(FeatureFamily):
    def specs(self, layout: Layout) -> list[FeatureSpec]:
        windows = layout.windows
        specs: list[FeatureSpec] = []
        for role, types in ROLE_TYPES.items():
            prefix = ROLE_PREFIX[role]
            for incident_type in types:
                for w in windows:
                    words = f"{type_words(incident_type)} incidents {ROLE_WORDS[prefix]} in the {window_words(w)}"
                    specs.append(
                        FeatureSpec(
                            count_feature(role, incident_type, w),
                            "incident_count",
                            f"number of {words}",
                            w,
                            "incidents",
                            "{value:g} " + words,
                            incident_type,
                            role,
                        )
                    )
        for who, words in _HARM_WHO:
            for w in windows:
                specs.append(
                    FeatureSpec(
                        harm_feature(who, w),
                        "harm_sum",
                        f"total harm of incidents {words} in the {window_words(w)}",
                        w,
                        "incidents",
                        "harm index {value:.1f} from incidents " + f"{words} in the {window_words(w)}",
                    )
                )
        for w in windows:
            specs.append(
                FeatureSpec(
                    any_count_feature(w),
                    "incident_count_all",
                    f"number of incidents in any role in the {window_words(w)}",
                    w,
                    "incidents",
                    "{value:g} incidents in any role in the " + window_words(w),
                )
            )
        for who, words in _RECENCY_WHO:
            specs.append(
                FeatureSpec(
                    days_since_feature(who),
                    "recency",
                    f"days since the last incident {words} (lookback + 1 if none)",
                    None,
                    "incidents",
                    "{value:.0f} days since the last incident " + words,
                    template_none=f"no incident {words} in the " + "{lookback}",
                )
            )
        for who, words in _TREND_WHO:
            specs.append(
                FeatureSpec(
                    trend_feature(who),
                    "trend",
                    f"incidents {words} in the last 90 days minus the monthly-equivalent of the 270 days before",
                    90,
                    "incidents",
                    "{direction} involvement " + words + " ({value:+.1f} on the earlier rate)",
                )
            )
        specs.append(
            FeatureSpec(
                REPEAT_VICTIM,
                "repeat_victimisation",
                "1 if victimised at least twice in the last 12 months",
                365,
                "incidents",
                "repeat victimisation in the last 12 months",
            )
        )
        specs.append(
            FeatureSpec(
                HIGH_HARM_VICTIMISATIONS,
                "repeat_victimisation",
                "number of high-harm victimisations in the last 12 months",
                365,
                "incidents",
                "{value:g} high-harm victimisations in the last 12 months",
            )
        )
        w = max(windows)
        specs.append(
            FeatureSpec(
                co_involved_feature(w),
                "network",
                f"distinct other people involved in the same incidents in the {window_words(w)}",
                w,
                "incidents",
                "involved in incidents with {value:g} other people in the " + window_words(w),
            )
        )
        return specs

    def compute(self, c: Cohort) -> Iterator[tuple[str, np.ndarray]]:
        d, rows, pos, n, config = c.d, c.rows, c.pos, c.n, c.config
        age_days = c.t - d.inc_day[rows]
        types, roles, harm = d.inc_type[rows], d.inc_role[rows], d.inc_harm[rows]
        offending, victim = OFFENDING[roles], roles == VICTIM
        n_roles = len(ROLES)
        cell = types * n_roles + roles
        by_cell = np.argsort(cell, kind="stable")  # each (type, role)'s rows, one run after another
        bounds = np.searchsorted(cell[by_cell], np.arange(len(INCIDENT_TYPES) * n_roles + 1))
        for r, role in enumerate(ROLES):
            for incident_type in ROLE_TYPES[role]:
                k = INCIDENT_TYPES.index(incident_type) * n_roles + r
                mine = by_cell[bounds[k] : bounds[k + 1]]
                for w in config.windows:
                    yield (
                        count_feature(role, incident_type, w),
                        np.bincount(pos[mine][age_days[mine] <= w], minlength=n),
                    )
        for who, mask in (("offending", offending), ("victim", victim)):
            for w in config.windows:
                inside = mask & (age_days <= w)
                yield harm_feature(who, w), np.bincount(pos[inside], harm[inside], minlength=n)
        for w in config.windows:
            yield any_count_feature(w), np.bincount(pos[age_days <= w], minlength=n)
        never = config.lookback_days + 1
        for who, mask in (("offending", offending), ("victim", victim), ("any", np.ones_like(offending))):
            last = np.full(n, never, dtype=np.int64)
            np.minimum.at(last, pos[mask], age_days[mask])
            yield days_since_feature(who), last
        recent, earlier = age_days <= 90, (age_days > 90) & (age_days <= 360)
        for who, mask in (("offending", offending), ("any", np.ones_like(offending))):
            yield (
                trend_feature(who),
                (np.bincount(pos[mask & recent], minlength=n) - np.bincount(pos[mask & earlier], minlength=n) / 3.0),
            )
        year = age_days <= 365
        yield REPEAT_VICTIM, (np.bincount(pos[victim & year], minlength=n) >= 2).astype(np.int64)
        yield (
            HIGH_HARM_VICTIMISATIONS,
            np.bincount(pos[victim & year & high_harm(d, rows, config.harm_threshold)], minlength=n),
        )
        yield co_involved_feature(max(config.windows)), _co_involved(c)


def _co_involved(c: Cohort) -> np.ndarray:
    """Distinct other people sharing an incident in the lookback with each cohort member (people outside
    a partition count through its `other_*` rows, which hold no cohort position: -1)."""
    d = c.d
    others = (d.other_day < c.t) & (d.other_day >= c.t - c.config.lookback_days)
    pairs = pd.DataFrame(
        {
            "incident": np.r_[d.inc_incident[c.rows], d.other_incident[others]],
            "pos": np.r_[c.pos, np.full(int(others.sum()), -1)],
            "person": np.r_[d.inc_person[c.rows], d.other_person[others]],
        }
    )
    shared = pairs[pairs.duplicated("incident", keep=False)]
    links = shared.merge(shared, on="incident", suffixes=("", "_other"))
    links = links.loc[(links["person"] != links["person_other"]) & (links["pos"] >= 0), ["pos", "person_other"]]
    return np.bincount(links.drop_duplicates()["pos"].to_numpy(), minlength=c.n)
