"""Typed configuration and the fixed parameters of the synthetic world's dynamics.

Every number that shapes the world lives here, so the generator and the truth share one source.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from typing import Literal

from riskloop.features.vocabulary import INCIDENT_TYPES

WALES_PEOPLE = 3_100_000
WALES_LOCAL_AUTHORITIES = 22
LOCAL_AUTHORITY_NAMES: tuple[str, ...] = (
    "Cardiff",
    "Swansea",
    "Rhondda Cynon Taf",
    "Carmarthenshire",
    "Caerphilly",
    "Flintshire",
    "Newport",
    "Neath Port Talbot",
    "Bridgend",
    "Wrexham",
    "Powys",
    "Vale of Glamorgan",
    "Pembrokeshire",
    "Gwynedd",
    "Conwy",
    "Denbighshire",
    "Monmouthshire",
    "Torfaen",
    "Ceredigion",
    "Blaenau Gwent",
    "Isle of Anglesey",
    "Merthyr Tydfil",
)
ETHNICITY_BASE = {"White": 0.938, "Asian": 0.029, "Black": 0.009, "Mixed": 0.016, "Other": 0.008}

# ACE count distribution calibrated to the Welsh ACE study: P(>=1) = 0.47, P(>=4) = 0.14.
ACE_PROBABILITIES = (0.53, 0.19, 0.09, 0.05, 0.05, 0.04, 0.03, 0.02)
# Mean and SD of the ACE count capped at 6 under ACE_PROBABILITIES (Dynamics.effect_modifier).
ACE_MEAN, ACE_SD = 1.22, 1.76

PROGRAMMES: tuple[str, ...] = ("iris", "drive", "youth_early_action", "diversion")
PROGRAMME_TIER = {"iris": "secondary", "drive": "tertiary", "youth_early_action": "primary", "diversion": "secondary"}
PROGRAMME_DAYS = {"iris": 120, "drive": 300, "youth_early_action": 180, "diversion": 90}
PROGRAMME_COMPLETION = {"iris": 0.7, "drive": 0.55, "youth_early_action": 0.65, "diversion": 0.8}
EFFECT_MONTHS = 24  # how long a programme's effect on propensity lasts after it starts
PARTIAL_EFFECT = 0.3  # share of the individual effect a non-completer still gets
MAX_EFFECT = 0.95  # the largest proportional reduction of a hazard a programme can make

# Harm-index base weight per incident type; each incident's harm = base x lognormal(0, HARM_SIGMA).
HARM_BASE = {
    "domestic_abuse": 4.0,
    "violence_with_injury": 8.0,
    "violence_without_injury": 2.0,
    "sexual_offence": 12.0,
    "stalking_harassment": 3.0,
    "asb": 0.5,
    "criminal_damage": 1.0,
    "theft": 1.5,
    "public_order": 1.0,
    "drugs": 1.0,
    "child_concern": 0.5,
    "missing_person": 1.0,
    "mental_health_concern": 0.5,
}
HARM_SIGMA = 0.5

# Offending channel: a severe share (violence with injury, sexual offence) that grows with recent
# harm (escalation of severity), the rest split over the other offence types.
SEVERE_TYPES = ("violence_with_injury", "sexual_offence")
#: The share of a person's severe offences that are sexual offences, by sex: women are about 2% of those
#: arrested for sexual offences, so a woman's severe offence is nearly always violence with injury.
SEXUAL_SHARE_OF_SEVERE = {"male": 0.45, "female": 0.02}
OTHER_OFFENCE_TYPES = {
    "violence_without_injury": 0.126,
    "stalking_harassment": 0.196,
    "asb": 0.211,
    "criminal_damage": 0.109,
    "theft": 0.164,
    "public_order": 0.18,
    "drugs": 0.065,
}
VICTIM_ONLY_TYPES = {
    "theft": 0.42,
    "asb": 0.252,
    "criminal_damage": 0.147,
    "violence_without_injury": 0.084,
    "stalking_harassment": 0.132,
}
# Offence types that have a victim drawn from the perpetrator's small area.
TYPES_WITH_VICTIM = ("violence_with_injury", "violence_without_injury", "sexual_offence", "stalking_harassment")

#: Share of concerns about a person that are a missing-person report: of 12-17-year-olds, of adults.
MISSING_SHARE = {"child": 0.55, "adult": 0.085}

# Probability that a true incident is recorded, before area and group policing intensity.
RECORDING_BASE = {
    "domestic_abuse": 0.17,
    "violence_with_injury": 0.55,
    "violence_without_injury": 0.35,
    "sexual_offence": 0.30,
    "stalking_harassment": 0.30,
    "asb": 0.35,
    "criminal_damage": 0.30,
    "theft": 0.35,
    "public_order": 0.50,
    "drugs": 0.40,
    "child_concern": 0.60,
    "missing_person": 0.80,
    "mental_health_concern": 0.60,
}
#: Offences the police find proactively (stop and search, patrol, warrants) rather than having them reported:
#: possession of drugs and public order. Every other incident comes to attention by a report. Attention (being
#: listed: `simulation.world.Surveillance`) raises the recording of these only, with headroom: each is found with
#: probability 1 - (1 - p)^factor, p its recording probability unwatched, so it grows with the factor and never
#: reaches 1 (from 0.40 and 0.50, a factor of 3 gives 0.78 and 0.88).
PROACTIVE_TYPES = ("drugs", "public_order")
#: The planted recording bias: these areas and groups have their offending recorded more often.
OVER_POLICED_AREA_SHARE = 0.25  # the most deprived quarter of small areas ...
OVER_POLICED_AREA_FACTOR = 1.35  # ... record offending 1.35x as often
GROUP_RECORDING_FACTOR = {"White": 1.0, "Asian": 1.1, "Black": 1.5, "Mixed": 1.3, "Other": 1.0}
SUSPECT_SHARE = 0.35  # recorded offending involvements logged as 'suspect'

# Demography (monthly steps): Gompertz-Makeham mortality, fertility of women 16-45 peaking at 30,
# couples forming among single adults, households moving within Wales or leaving it; newcomers
# arrive to keep the population at its configured size (net migration balances the rest).
MORTALITY_MAKEHAM = 0.0002  # annual age-independent death hazard
MORTALITY_GOMPERTZ = (-10.0, 0.088)  # annual hazard exp(a + b * age)
FERTILITY_PEAK = 0.125  # annual births per woman at age 30 ...
FERTILITY_AGE = (30.0, 6.0)  # ... falling as a normal curve (mean, sd) over ages 16-45
FERTILITY_PARTNERED = 1.5  # relative fertility of women in a couple (single: 2 - this)
COUPLE_FORMATION = 0.006  # monthly chance that a single adult of 18-55 seeks a partner
MOVE_HOUSEHOLD = 0.004  # monthly share of households that change small area ...
MOVE_WITHIN_AUTHORITY = 0.6  # ... within their local authority this often
LEAVE_HOUSEHOLD = 0.0008  # monthly share of households that leave Wales
ARRIVAL_UNITS = (0.5, 0.3, 0.2)  # newcomers: single adults, couples, couples with 1-3 children


@dataclass(frozen=True)
class Dynamics:
    """Coefficients of the latent, time-varying propensities (log monthly hazards)."""

    offending_intercept: float = -5.81
    offending_ace: float = 0.30
    offending_male: float = 1.5
    offending_deprivation: float = 0.30
    offending_sd: float = 1.0
    offending_age_peak: float = 20.0
    domestic_intercept: float = -6.03
    domestic_ace: float = 0.25
    domestic_male: float = 1.3
    domestic_deprivation: float = 0.20
    domestic_sd: float = 1.2
    domestic_offending_link: float = 0.35  # shared component with general offending
    victim_intercept: float = -4.9
    victim_ace: float = 0.20
    victim_deprivation: float = 0.30
    victim_sd: float = 1.2
    subject_intercept: float = -6.72
    subject_child_factor: float = 3.1  # concerns about a child are this much more frequent than about an adult
    subject_ace: float = 0.30
    subject_sd: float = 0.8
    drift_autocorrelation: float = 0.92  # monthly AR(1) latent drift shared by the offending channels
    drift_sd: float = 0.20
    excitation_decay: float = 0.85  # monthly decay of recent harm
    excitation_effect: float = 0.45  # log-hazard per log1p(recent harm): escalation is real ...
    excitation_saturation: float = 30.0  # ... up to this much recent harm, no further (escalation saturates)
    severe_intercept: float = -2.3  # logit of the severe share of offending
    severe_excitation: float = 0.45
    victim_excitation_decay: float = 0.8
    victim_excitation_effect: float = 1.0  # repeat victimisation ...
    victim_excitation_saturation: float = 6.0  # ... up to this many recent victimisations
    # Soft ceilings on the monthly hazards (rate -> ceiling x (1 - exp(-rate / ceiling))): nobody offends,
    # abuses or is victimised without limit, so recorded histories keep a plausible tail (simulation.calibration).
    offending_ceiling: float = 2.5
    domestic_ceiling: float = 1.0
    victim_ceiling: float = 1.0
    programme_effect_scale: float = 1.0  # multiplies every true programme effect (at most MAX_EFFECT)
    #: What the programmes' effects (and completion) vary with. "aces" (the default world): each person's
    #: adverse childhood experiences, which no record holds, so no model of the records can see who benefits.
    #: "deprivation" (a variant world for checking targeting, issue 34): the same formulas with the ACE count
    #: replaced by the count the person's area deprivation stands for, clip(ACE_MEAN + ACE_SD x deprivation,
    #: 0, 6) (deprivation standardised over areas; recorded as the area's deprivation decile), so the
    #: heterogeneity runs through a recorded feature with about the same spread. Risks are unchanged.
    effect_modifier: Literal["aces", "deprivation"] = "aces"

    def __post_init__(self) -> None:
        if self.effect_modifier not in ("aces", "deprivation"):
            raise ValueError(f"effect_modifier must be 'aces' or 'deprivation', got {self.effect_modifier!r}")
        if not 0 <= self.programme_effect_scale < float("inf"):
            raise ValueError(f"programme_effect_scale must be finite and >= 0, got {self.programme_effect_scale}")


@dataclass(frozen=True)
class WorldConfig:
    """What to generate: size, seed and the calendar window."""

    people: int = 100_000
    seed: int = 42
    start: date = date(2017, 1, 1)
    end: date = date(2025, 12, 31)
    people_per_area: int = 1_600
    dynamics: Dynamics = Dynamics()

    def __post_init__(self) -> None:
        if self.people < 100:
            raise ValueError(f"people must be at least 100, got {self.people}")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")

    @property
    def local_authorities(self) -> int:
        """22 at full Wales scale, proportionally fewer (at least 2) for smaller worlds."""
        scaled = round(WALES_LOCAL_AUTHORITIES * self.people / WALES_PEOPLE)
        return int(min(WALES_LOCAL_AUTHORITIES, max(2, scaled)))

    @property
    def areas(self) -> int:
        return max(self.local_authorities, round(self.people / self.people_per_area))

    def to_json(self) -> str:
        payload = asdict(self)
        payload["start"], payload["end"] = self.start.isoformat(), self.end.isoformat()
        return json.dumps(payload, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorldConfig:
        payload = json.loads(text)
        return cls(
            people=payload["people"],
            seed=payload["seed"],
            start=date.fromisoformat(payload["start"]),
            end=date.fromisoformat(payload["end"]),
            people_per_area=payload["people_per_area"],
            dynamics=Dynamics(**payload["dynamics"]),
        )


TYPE_CODE = {name: code for code, name in enumerate(INCIDENT_TYPES)}
