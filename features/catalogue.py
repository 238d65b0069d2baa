"""The feature catalogue, generated from code: every feature's name, family, description, window,
source table and the plain-language template its reason codes use. The feature families
(`riskloop.features.families`) declare the specs; this module spells the names they share.

Names are systematic: `<role>_<type>_count_<window>d`, `area_<type>_rate_365d`, ...; a template
is per family, never per feature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from riskloop.features.vocabulary import INCIDENT_TYPES

CONCERN_TYPES: tuple[str, ...] = ("child_concern", "missing_person", "mental_health_concern")
CRIME_TYPES: tuple[str, ...] = tuple(t for t in INCIDENT_TYPES if t not in CONCERN_TYPES)
#: Role prefixes of count features and the (role, types) pairs that make sense.
ROLE_PREFIX = {"victim": "vict", "perpetrator": "perp", "suspect": "susp", "subject": "subj"}
ROLE_WORDS = {"vict": "as victim", "perp": "as perpetrator", "susp": "as suspect", "subj": "as subject of concern"}
ROLE_TYPES = {"victim": CRIME_TYPES, "perpetrator": CRIME_TYPES, "suspect": CRIME_TYPES, "subject": CONCERN_TYPES}
DEFAULT_WINDOWS: tuple[int, ...] = (90, 365, 1095)


# Feature names, spelt once: the catalogue and the snapshot builder both call these.
def count_feature(role: str, incident_type: str, window: int) -> str:
    return f"{ROLE_PREFIX[role]}_{incident_type}_count_{window}d"


def harm_feature(who: str, window: int) -> str:
    return f"{who}_harm_{window}d"


def any_count_feature(window: int) -> str:
    return f"any_count_{window}d"


def days_since_feature(who: str) -> str:
    return f"days_since_{who}"


def trend_feature(who: str) -> str:
    return f"{who}_trend_90d"


def co_involved_feature(window: int) -> str:
    return f"co_involved_people_{window}d"


def prior_count_feature(programme: str) -> str:
    return f"prior_{programme}_count"


def prior_completed_feature(programme: str) -> str:
    return f"prior_{programme}_completed"


def active_feature(programme: str) -> str:
    return f"active_{programme}"


def decayed_feature(measure: str, half_life: int) -> str:
    return f"{measure}_decayed_{half_life}d"


def household_count_feature(who: str, window: int) -> str:
    return f"household_{who}_count_{window}d"


def household_known_feature(window: int) -> str:
    return f"household_known_members_{window}d"


def area_rate_feature(incident_type: str) -> str:
    return f"area_{incident_type}_rate_365d"


def area_trend_feature(incident_type: str) -> str:
    return f"area_{incident_type}_trend_365d"


def la_rate_feature(incident_type: str) -> str:
    return f"la_{incident_type}_rate_365d"


REPEAT_VICTIM = "victim_repeat_365d"
HIGH_HARM_VICTIMISATIONS = "victim_high_harm_count_365d"
FIRST_INCIDENT = "days_since_first_incident"
HOUSEHOLD_ADULTS = "household_adults"
HOUSEHOLD_CHILDREN = "household_children"
#: Half-life of the time-decayed sums: a record this many days old weighs one half.
HALF_LIFE_DAYS = 180
AGE = "age"
DEPRIVATION = "area_deprivation_decile"


def type_words(incident_type: str) -> str:
    return {"asb": "anti-social behaviour"}.get(incident_type, incident_type.replace("_", " "))


def window_words(days: int) -> str:
    return {90: "last 90 days", 365: "last 12 months", 1095: "last 3 years"}.get(days, f"last {days} days")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    family: str
    description: str
    window_days: int | None
    source: str
    # The reason-code sentence (riskloop.models.explain fills it): {value}; {direction} (rising, falling
    # or steady, by the value's sign); {level} ("a high", "a typical" or "a low" against the training
    # population's quartiles). A template without {value} claims a presence: said only of a non-zero value.
    template: str
    incident_type: str | None = None
    role: str | None = None
    template_none: str | None = None  # recency: the sentence for "none in the lookback" ({lookback}: its words)
    template_capped: str | None = None  # a value capped at the lookback: the sentence for it ({lookback}: its days)


def build_catalogue(
    programmes: tuple[str, ...], windows: tuple[int, ...] = DEFAULT_WINDOWS, *, households: bool = False
) -> list[FeatureSpec]:
    """All features, in the column order of a snapshot: each feature family's specs
    (`riskloop.features.families`); the household family only for data that links people to households
    (`people.household_id`)."""
    from riskloop.features.families import Layout, families_of  # the families spell their names here

    layout = Layout(tuple(programmes), tuple(windows), households)
    return [spec for family in families_of(layout) for spec in family.specs(layout)]


def catalogue_frame(specs: list[FeatureSpec]) -> pd.DataFrame:
    return pd.DataFrame([asdict(s) for s in specs])
