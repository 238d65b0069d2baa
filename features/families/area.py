"""Where the person lives: the small area's and the local authority's incident rates per 1,000 residents
by type in the last 12 months, the small area's change on the year before, and its deprivation decile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from riskloop.features.catalogue import (
    DEPRIVATION,
    FeatureSpec,
    area_rate_feature,
    area_trend_feature,
    la_rate_feature,
    type_words,
)
from riskloop.features.families.base import Cohort, FeatureFamily, Layout
from riskloop.features.vocabulary import INCIDENT_TYPES

if TYPE_CHECKING:
    from riskloop.features.snapshot import PreparedData


class Area(FeatureFamily):
    def specs(self, layout: Layout) -> list[FeatureSpec]:
        specs = []
        for t in INCIDENT_TYPES:
            words = type_words(t)
            specs.append(
                FeatureSpec(
                    area_rate_feature(t),
                    "area_rate",
                    f"{words} involvements per 1,000 residents of the person's small area, last 12 months",
                    365,
                    "incidents+areas",
                    "lives in an area with {level} rate of " + words + " ({value:.1f} per 1,000)",
                )
            )
            specs.append(
                FeatureSpec(
                    area_trend_feature(t),
                    "area_trend",
                    f"change in the area's {words} rate per 1,000 on the 12 months before",
                    365,
                    "incidents+areas",
                    "lives in an area with a {direction} rate of "
                    + words
                    + " ({value:+.1f} per 1,000 on the year before)",
                )
            )
            specs.append(
                FeatureSpec(
                    la_rate_feature(t),
                    "local_authority_rate",
                    f"{words} involvements per 1,000 residents of the local authority, last 12 months",
                    365,
                    "incidents+areas",
                    "lives in a local authority with {level} rate of " + words + " ({value:.1f} per 1,000)",
                )
            )
        specs.append(
            FeatureSpec(
                DEPRIVATION,
                "deprivation",
                "deprivation decile of the small area (1 = most deprived)",
                None,
                "areas",
                "lives in a deprivation-decile {value:.0f} area (1 = most deprived)",
            )
        )
        return specs

    def compute(self, c: Cohort) -> Iterator[tuple[str, np.ndarray]]:
        d, cohort_area = c.d, c.area
        counts = d.area_counts[c.t] if c.t in d.area_counts else area_counts(d, c.t)

        def rates(window_counts: np.ndarray, population: np.ndarray) -> np.ndarray:
            return 1000 * window_counts / np.maximum(population, 1)[:, None]

        area_rate = rates(counts[0], d.area_population)
        area_trend = area_rate - rates(counts[1], d.area_population)
        n_la = len(d.la_names)
        la_population = np.bincount(d.area_la, d.area_population, minlength=n_la)
        la_counts = np.zeros((n_la, counts.shape[2]), dtype=np.int64)
        np.add.at(la_counts, d.area_la, counts[0])
        la_rate = rates(la_counts, la_population)
        for k, incident_type in enumerate(INCIDENT_TYPES):
            yield area_rate_feature(incident_type), area_rate[cohort_area, k]
            yield area_trend_feature(incident_type), area_trend[cohort_area, k]
            yield la_rate_feature(incident_type), la_rate[d.area_la[cohort_area], k]
        yield DEPRIVATION, d.area_decile[cohort_area]


def area_counts(d: PreparedData, t: int) -> np.ndarray:
    """Incidents by small area and type in the year before T and in the year before that: (2, areas, types).
    The only population-wide input of a snapshot; a partition's counts add up to the population's."""
    return count_by_area(d.person_area[d.inc_person], d.inc_day, d.inc_type, len(d.area_id), t)


def count_by_area(inc_area: np.ndarray, inc_day: np.ndarray, inc_type: np.ndarray, n_areas: int, t: int) -> np.ndarray:
    """`area_counts` of incident rows given as (area code, day, type code) arrays."""
    n_types = len(INCIDENT_TYPES)
    age_days = t - inc_day
    past = inc_day < t
    windows = (past & (age_days <= 365), past & (age_days > 365) & (age_days <= 730))
    return np.stack(
        [
            np.bincount(inc_area[w] * n_types + inc_type[w], minlength=n_areas * n_types).reshape(n_areas, n_types)
            for w in windows
        ]
    )
