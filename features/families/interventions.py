"""Programmes started, completed and active before the as-of date, per programme of the data set."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from riskloop.features.catalogue import FeatureSpec, active_feature, prior_completed_feature, prior_count_feature
from riskloop.features.families.base import Cohort, FeatureFamily, Layout


class Interventions(FeatureFamily):
    def specs(self, layout: Layout) -> list[FeatureSpec]:
        specs = []
        for p in layout.programmes:
            name = p.replace("_", " ")
            specs += [
                FeatureSpec(
                    prior_count_feature(p),
                    "intervention",
                    f"number of {name} interventions started before the as-of date",
                    None,
                    "interventions",
                    "{value:g} earlier " + name + " interventions",
                ),
                FeatureSpec(
                    prior_completed_feature(p),
                    "intervention_completed",
                    f"number of {name} interventions completed before the as-of date",
                    None,
                    "interventions",
                    "{value:g} completed " + name + " interventions",
                ),
                FeatureSpec(
                    active_feature(p),
                    "intervention_active",
                    f"1 if in a {name} intervention on the as-of date",
                    None,
                    "interventions",
                    "currently in a " + name + " intervention",
                ),
            ]
        return specs

    def compute(self, c: Cohort) -> Iterator[tuple[str, np.ndarray]]:
        d, t, n = c.d, c.t, c.n
        started = (d.iv_start < t) & np.isin(d.iv_person, c.people)
        pos = np.searchsorted(c.people, d.iv_person[started])
        prog, end, completed = d.iv_programme[started], d.iv_end[started], d.iv_completed[started]
        for k, p in enumerate(d.programmes):
            mine = prog == k
            yield prior_count_feature(p), np.bincount(pos[mine], minlength=n)
            # completion is only known once the programme ended before T
            yield prior_completed_feature(p), np.bincount(pos[mine & (end < t) & completed], minlength=n)
            yield active_feature(p), (np.bincount(pos[mine & (end >= t)], minlength=n) > 0).astype(np.int64)
