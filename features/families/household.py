"""Other members of the person's household (people sharing `household_id`): their involvements in each
window, adults and children, and how many are known to partner agencies. Only for data that links people
to households. Membership has no dates: it is read as the data holds it, counting members born before T."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from riskloop.features.catalogue import (
    HOUSEHOLD_ADULTS,
    HOUSEHOLD_CHILDREN,
    FeatureSpec,
    household_count_feature,
    household_known_feature,
    window_words,
)
from riskloop.features.families.base import DOMESTIC_ABUSE, OFFENDING, VICTIM, Cohort, FeatureFamily, Layout

_INVOLVEMENTS = (
    ("offending", "offences as perpetrator or suspect", None),
    ("victim", "incidents as victim", None),
    ("domestic_abuse", "domestic abuse incidents in any role", "domestic_abuse"),
)


class Household(FeatureFamily):
    def applies(self, layout: Layout) -> bool:
        return layout.households

    def specs(self, layout: Layout) -> list[FeatureSpec]:
        specs = []
        for who, words, incident_type in _INVOLVEMENTS:
            for w in layout.windows:
                specs.append(
                    FeatureSpec(
                        household_count_feature(who, w),
                        "household",
                        f"involvements of other household members in {words} in the {window_words(w)}",
                        w,
                        "incidents+people",
                        "other people in the household were involved in {value:g} "
                        + f"{words} in the {window_words(w)}",
                        incident_type,
                    )
                )
        specs.append(
            FeatureSpec(
                HOUSEHOLD_ADULTS,
                "household",
                "other household members aged 18 or over on the as-of date",
                None,
                "people",
                "lives with {value:g} other adults",
            )
        )
        specs.append(
            FeatureSpec(
                HOUSEHOLD_CHILDREN,
                "household",
                "other household members born before the as-of date and under 18 on it",
                None,
                "people",
                "lives with {value:g} children",
            )
        )
        window = max(layout.windows)
        specs.append(
            FeatureSpec(
                household_known_feature(window),
                "household",
                f"other household members with any incident in the {window_words(window)}",
                window,
                "incidents+people",
                "{value:g} other people in the household are known to partner "
                + f"agencies (an incident in the {window_words(window)})",
            )
        )
        return specs

    def compute(self, c: Cohort) -> Iterator[tuple[str, np.ndarray]]:
        """Windows fit in the lookback, so a member with any record in a window is in the cohort: sums over
        the cohort's households suffice for the involvements."""
        d, n, rows, pos = c.d, c.n, c.rows, c.pos
        code = d.household  # household code per person
        if code is None:
            raise ValueError("household features need people.household_id")
        _, household = np.unique(code[c.people], return_inverse=True)

        def others(values: np.ndarray) -> np.ndarray:
            values = values.astype(float)
            return np.bincount(household, values)[household] - values

        age_days = c.t - d.inc_day[rows]
        roles = d.inc_role[rows]
        involvements = (
            ("offending", OFFENDING[roles]),
            ("victim", roles == VICTIM),
            ("domestic_abuse", d.inc_type[rows] == DOMESTIC_ABUSE),
        )
        for who, mask in involvements:
            for w in c.config.windows:
                yield household_count_feature(who, w), others(np.bincount(pos[mask & (age_days <= w)], minlength=n))
        age = (c.t - d.birth_day) / 365.25
        members = code[c.people]
        for name, living in ((HOUSEHOLD_ADULTS, age >= 18), (HOUSEHOLD_CHILDREN, (age > 0) & (age < 18))):
            yield name, np.bincount(code[living], minlength=len(code))[members] - living[c.people]
        window = max(c.config.windows)
        yield household_known_feature(window), others(np.bincount(pos[age_days <= window], minlength=n) > 0)
