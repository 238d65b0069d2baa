"""Feature families, each one unit that declares its columns and computes them (see `base.FeatureFamily`).
`FAMILIES` is in snapshot column order: the catalogue is their specs, a snapshot their values."""

from riskloop.features.families.area import Area
from riskloop.features.families.base import Cohort, FeatureFamily, Layout
from riskloop.features.families.history import History
from riskloop.features.families.household import Household
from riskloop.features.families.incidents import Incidents
from riskloop.features.families.interventions import Interventions
from riskloop.features.families.person import Age

FAMILIES: tuple[FeatureFamily, ...] = (Incidents(), Interventions(), History(), Household(), Age(), Area())


def families_of(layout: Layout) -> list[FeatureFamily]:
    """The families a data set of this layout has, in column order."""
    return [f for f in FAMILIES if f.applies(layout)]


__all__ = ["FAMILIES", "Cohort", "FeatureFamily", "Layout", "families_of"]
