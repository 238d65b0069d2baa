"""The person's own age on the as-of date."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from riskloop.features.catalogue import AGE, FeatureSpec
from riskloop.features.families.base import Cohort, FeatureFamily, Layout


class Age(FeatureFamily):
    def specs(self, layout: Layout) -> list[FeatureSpec]:
        return [FeatureSpec(AGE, "age", "age in years on the as-of date", None, "people", "aged {value:.0f}")]

    def compute(self, c: Cohort) -> Iterator[tuple[str, np.ndarray]]:
        yield AGE, c.age
