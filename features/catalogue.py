"""The feature catalogue, generated from code: every feature's name, family, description, window,
source table and the plain-language template its reason codes use.

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


def history_count_feature(who: str) -> str:
    return f"{who}_count_history"


def history_harm_feature(who: str) -> str:
    return f"{who}_harm_history"


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


def build_catalogue(programmes: tuple[str, ...], windows: tuple[int, ...] = DEFAULT_WINDOWS, *,
                    households: bool = False) -> list[FeatureSpec]:
    """All features, in the column order of a snapshot; the household family only for data that
    links people to households (`people.household_id`)."""
    specs: list[FeatureSpec] = []
    for role, types in ROLE_TYPES.items():
        prefix = ROLE_PREFIX[role]
        for incident_type in types:
            for w in windows:
                words = f"{type_words(incident_type)} incidents {ROLE_WORDS[prefix]} in the {window_words(w)}"
                specs.append(FeatureSpec(count_feature(role, incident_type, w), "incident_count",
                                         f"number of {words}", w, "incidents", "{value:g} " + words, incident_type, role))
    for who, words in (("offending", "as perpetrator or suspect"), ("victim", "as victim")):
        for w in windows:
            specs.append(FeatureSpec(harm_feature(who, w), "harm_sum",
                                     f"total harm of incidents {words} in the {window_words(w)}", w, "incidents",
                                     "harm index {value:.1f} from incidents " + f"{words} in the {window_words(w)}"))
    for w in windows:
        specs.append(FeatureSpec(any_count_feature(w), "incident_count_all",
                                 f"number of incidents in any role in the {window_words(w)}", w, "incidents",
                                 "{value:g} incidents in any role in the " + window_words(w)))
    for who, words in (("offending", "as perpetrator or suspect"), ("victim", "as victim"), ("any", "in any role")):
        specs.append(FeatureSpec(days_since_feature(who), "recency",
                                 f"days since the last incident {words} (lookback + 1 if none)", None, "incidents",
                                 "{value:.0f} days since the last incident " + words,
                                 template_none=f"no incident {words} in the " + "{lookback}"))
    for who, words in (("offending", "as perpetrator or suspect"), ("any", "in any role")):
        specs.append(FeatureSpec(trend_feature(who), "trend",
                                 f"incidents {words} in the last 90 days minus the monthly-equivalent of the 270 days before",
                                 90, "incidents",
                                 "{direction} involvement " + words + " ({value:+.1f} on the earlier rate)"))
    specs.append(FeatureSpec(REPEAT_VICTIM, "repeat_victimisation",
                             "1 if victimised at least twice in the last 12 months", 365, "incidents",
                             "repeat victimisation in the last 12 months"))
    specs.append(FeatureSpec(HIGH_HARM_VICTIMISATIONS, "repeat_victimisation",
                             "number of high-harm victimisations in the last 12 months", 365, "incidents",
                             "{value:g} high-harm victimisations in the last 12 months"))
    specs.append(FeatureSpec(co_involved_feature(max(windows)), "network",
                             f"distinct other people involved in the same incidents in the {window_words(max(windows))}",
                             max(windows), "incidents",
                             "involved in incidents with {value:g} other people in the " + window_words(max(windows))))
    for p in programmes:
        name = p.replace("_", " ")
        specs += [
            FeatureSpec(prior_count_feature(p), "intervention", f"number of {name} interventions started before the as-of date",
                        None, "interventions", "{value:g} earlier " + name + " interventions"),
            FeatureSpec(prior_completed_feature(p), "intervention_completed",
                        f"number of {name} interventions completed before the as-of date", None, "interventions",
                        "{value:g} completed " + name + " interventions"),
            FeatureSpec(active_feature(p), "intervention_active", f"1 if in a {name} intervention on the as-of date",
                        None, "interventions", "currently in a " + name + " intervention"),
        ]
    specs += history_specs() + decayed_specs() + (household_specs(windows) if households else [])
    specs.append(FeatureSpec(AGE, "age", "age in years on the as-of date", None, "people",
                             "aged {value:.0f}"))
    for t in INCIDENT_TYPES:
        words = type_words(t)
        specs.append(FeatureSpec(area_rate_feature(t), "area_rate",
                                 f"{words} involvements per 1,000 residents of the person's small area, last 12 months",
                                 365, "incidents+areas",
                                 "lives in an area with {level} rate of " + words + " ({value:.1f} per 1,000)"))
        specs.append(FeatureSpec(area_trend_feature(t), "area_trend",
                                 f"change in the area's {words} rate per 1,000 on the 12 months before", 365,
                                 "incidents+areas", "lives in an area with a {direction} rate of " + words
                                 + " ({value:+.1f} per 1,000 on the year before)"))
        specs.append(FeatureSpec(la_rate_feature(t), "local_authority_rate",
                                 f"{words} involvements per 1,000 residents of the local authority, last 12 months",
                                 365, "incidents+areas",
                                 "lives in a local authority with {level} rate of " + words
                                 + " ({value:.1f} per 1,000)"))
    specs.append(FeatureSpec(DEPRIVATION, "deprivation", "deprivation decile of the small area (1 = most deprived)",
                             None, "areas", "lives in a deprivation-decile {value:.0f} area (1 = most deprived)"))
    return specs


_WHO_WORDS = (("offending", "as perpetrator or suspect"), ("victim", "as victim"))


def history_specs() -> list[FeatureSpec]:
    """Whole history: every record before the as-of date, not only the lookback window."""
    specs = []
    for who, words in _WHO_WORDS:
        specs.append(FeatureSpec(history_count_feature(who), "history",
                                 f"number of incidents {words} on record before the as-of date", None, "incidents",
                                 "{value:g} incidents " + words + " on record"))
        specs.append(FeatureSpec(history_harm_feature(who), "history",
                                 f"total harm of incidents {words} on record before the as-of date", None, "incidents",
                                 "harm index {value:.1f} from all recorded incidents " + words))
    specs.append(FeatureSpec(FIRST_INCIDENT, "history", "days since the first recorded incident in any role", None,
                             "incidents", "first recorded incident {value:.0f} days ago"))
    return specs


def decayed_specs(half_life: int = HALF_LIFE_DAYS) -> list[FeatureSpec]:
    """Time-decayed sums over every record before the as-of date: a record d days old weighs 0.5^(d / half-life)."""
    specs = []
    for who, words in _WHO_WORDS:
        weighting = f"weighted by 0.5^(days old / {half_life})"
        specs.append(FeatureSpec(decayed_feature(f"{who}_count", half_life), "decayed",
                                 f"incidents {words} before the as-of date, each {weighting}", None, "incidents",
                                 "recent-weighted count {value:.1f} of incidents " + words
                                 + f" (half-life {half_life} days)"))
        specs.append(FeatureSpec(decayed_feature(f"{who}_harm", half_life), "decayed",
                                 f"harm of incidents {words} before the as-of date, each {weighting}", None, "incidents",
                                 "recent-weighted harm index {value:.1f} from incidents " + words
                                 + f" (half-life {half_life} days)"))
    return specs


def household_specs(windows: tuple[int, ...] = DEFAULT_WINDOWS) -> list[FeatureSpec]:
    """Other members of the person's household (people sharing `household_id`): adults and children, their
    involvements in each window, and how many are known to partner agencies."""
    specs = []
    involvements = (("offending", "offences as perpetrator or suspect", None),
                    ("victim", "incidents as victim", None),
                    ("domestic_abuse", "domestic abuse incidents in any role", "domestic_abuse"))
    for who, words, incident_type in involvements:
        for w in windows:
            specs.append(FeatureSpec(household_count_feature(who, w), "household",
                                     f"involvements of other household members in {words} in the {window_words(w)}",
                                     w, "incidents+people",
                                     "other people in the household were involved in {value:g} "
                                     + f"{words} in the {window_words(w)}", incident_type))
    specs.append(FeatureSpec(HOUSEHOLD_ADULTS, "household", "other household members aged 18 or over on the as-of date",
                             None, "people", "lives with {value:g} other adults"))
    specs.append(FeatureSpec(HOUSEHOLD_CHILDREN, "household",
                             "other household members born before the as-of date and under 18 on it", None, "people",
                             "lives with {value:g} children"))
    window = max(windows)
    specs.append(FeatureSpec(household_known_feature(window), "household",
                             f"other household members with any incident in the {window_words(window)}", window,
                             "incidents+people", "{value:g} other people in the household are known to partner "
                             + f"agencies (an incident in the {window_words(window)})"))
    return specs


def catalogue_frame(specs: list[FeatureSpec]) -> pd.DataFrame:
    return pd.DataFrame([asdict(s) for s in specs])
