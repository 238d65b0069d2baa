"""One month of the world: latent hazards, true incidents, recording, referrals and their effects.

People are independent draws from Poisson hazards that depend on their traits, age, a shared
latent drift, recent harm (escalation is real) and the programmes they are in. Vectorised over
people; the only loop is over months, in `simulation.world`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, ndtr

from riskloop.simulation.parameters import (
    EFFECT_MONTHS, HARM_BASE, HARM_SIGMA, OTHER_OFFENCE_TYPES, PARTIAL_EFFECT, PROGRAMME_DAYS,
    PROGRAMMES, RECORDING_BASE, SEVERE_TYPES, SUSPECT_SHARE, TYPE_CODE, TYPES_WITH_VICTIM,
    VICTIM_ONLY_TYPES, Dynamics,
)
from riskloop.simulation.population import Areas, Population

ROLE_CODE = {"victim": 0, "perpetrator": 1, "suspect": 2, "subject": 3}
OFFENDING_PROGRAMMES = ("drive", "youth_early_action", "diversion")


@dataclass
class State:
    """The dynamic part of the world at the start of a month."""

    drift: np.ndarray
    excitation: np.ndarray
    victim_excitation: np.ndarray
    effect_from: dict[str, np.ndarray]
    effect_until: dict[str, np.ndarray]
    effect_size: dict[str, np.ndarray]

    @classmethod
    def initial(cls, n: int, dynamics: Dynamics, rng: np.random.Generator) -> "State":
        stationary_sd = dynamics.drift_sd / np.sqrt(1 - dynamics.drift_autocorrelation**2)
        never = {p: np.full(n, -1, dtype=np.int32) for p in PROGRAMMES}
        return cls(
            drift=rng.normal(0, stationary_sd, n), excitation=np.zeros(n),
            victim_excitation=np.zeros(n), effect_from={p: v.copy() for p, v in never.items()},
            effect_until={p: v.copy() for p, v in never.items()},
            effect_size={p: np.zeros(n) for p in PROGRAMMES},
        )

    def copy(self) -> "State":
        return State(self.drift.copy(), self.excitation.copy(), self.victim_excitation.copy(),
                     {p: v.copy() for p, v in self.effect_from.items()},
                     {p: v.copy() for p, v in self.effect_until.items()},
                     {p: v.copy() for p, v in self.effect_size.items()})


@dataclass
class Events:
    """Involvements of one month (several rows share an incident number)."""

    incident: list[np.ndarray] = field(default_factory=list)
    person: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    type: list[np.ndarray] = field(default_factory=list)
    role: list[np.ndarray] = field(default_factory=list)
    harm: list[np.ndarray] = field(default_factory=list)
    recorded: list[np.ndarray] = field(default_factory=list)

    def add(self, incident, person, day, type_, role, harm, recorded) -> None:
        for name, values in zip(("incident", "person", "day", "type", "role", "harm", "recorded"),
                                (incident, person, day, type_, role, harm, recorded)):
            getattr(self, name).append(np.asarray(values))

    def concatenated(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(getattr(self, name)) for name in
                ("incident", "person", "day", "type", "role", "harm", "recorded")}


@dataclass
class Interventions:
    person: list[np.ndarray] = field(default_factory=list)
    programme: list[np.ndarray] = field(default_factory=list)
    start_day: list[np.ndarray] = field(default_factory=list)
    completed: list[np.ndarray] = field(default_factory=list)


def _age_years(pop: Population, day: np.datetime64) -> np.ndarray:
    return (day - pop.birth_day).astype(np.float64) / 365.25


def _age_curve(age: np.ndarray, peak: float, rise: float, fall: float, minimum: float) -> np.ndarray:
    width = np.where(age < peak, rise, fall)
    curve = -0.5 * ((age - peak) / width) ** 2
    return np.where(age < minimum, -np.inf, curve)


def offending_multiplier(state: State, month: int) -> np.ndarray:
    """Reduction of offending hazards by the programmes active this month."""
    multiplier = np.ones_like(state.drift)
    for p in OFFENDING_PROGRAMMES:
        active = (state.effect_from[p] <= month) & (month < state.effect_until[p])
        multiplier *= 1 - state.effect_size[p] * active
    return multiplier


def domestic_multiplier(pop: Population, state: State, month: int) -> np.ndarray:
    """DRIVE reduces the perpetrator's domestic abuse; IRIS support of the partner reduces it too."""
    drive_active = (state.effect_from["drive"] <= month) & (month < state.effect_until["drive"])
    iris_active = (state.effect_from["iris"] <= month) & (month < state.effect_until["iris"])
    partner_iris = np.where(pop.partner >= 0, (state.effect_size["iris"] * iris_active)[pop.partner], 0.0)
    return (1 - state.effect_size["drive"] * drive_active) * (1 - partner_iris)


@dataclass
class OffendingHazards:
    offending: np.ndarray  # monthly expected true offences (non-domestic)
    domestic: np.ndarray   # monthly expected true domestic abuse perpetrations
    severe_share: np.ndarray


def offending_hazards(pop: Population, state: State, month: int, day: np.datetime64,
                      d: Dynamics) -> OffendingHazards:
    age = _age_years(pop, day)
    escalation = d.excitation_effect * np.log1p(state.excitation)
    offending = np.exp(pop.offending_trait + _age_curve(age, d.offending_age_peak, 4.0, 9.0, 10.0)
                       + state.drift + escalation) * offending_multiplier(state, month)
    domestic = np.exp(pop.domestic_trait + _age_curve(age, 30.0, 8.0, 14.0, 16.0) + state.drift
                      + escalation) * domestic_multiplier(pop, state, month)
    severe = expit(d.severe_intercept + d.severe_excitation * np.log1p(state.excitation))
    return OffendingHazards(offending, domestic, severe)


def _choose(names_weights: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    names = list(names_weights)
    p = np.array([names_weights[k] for k in names])
    codes = np.array([TYPE_CODE[k] for k in names], dtype=np.int8)
    return codes[rng.choice(len(names), size=n, p=p / p.sum())]


_HARM_BASE = np.array([HARM_BASE[t] for t in TYPE_CODE])
_RECORDING_BASE = np.array([RECORDING_BASE[t] for t in TYPE_CODE])


def _harm(types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _HARM_BASE[types] * rng.lognormal(0.0, HARM_SIGMA, len(types))


@dataclass
class OffendingDraw:
    person: np.ndarray
    type: np.ndarray
    harm: np.ndarray
    recorded: np.ndarray


def draw_offending(pop: Population, hz: OffendingHazards, rng: np.random.Generator) -> OffendingDraw:
    """True offences this month (general and domestic), with type, harm and recording."""
    n_off = rng.poisson(hz.offending)
    n_da = rng.poisson(hz.domestic)
    off_person = np.repeat(np.arange(len(n_off)), n_off)
    da_person = np.repeat(np.arange(len(n_da)), n_da)
    severe = rng.random(len(off_person)) < hz.severe_share[off_person]
    off_type = np.where(severe, _choose(SEVERE_TYPES, len(off_person), rng),
                        _choose(OTHER_OFFENCE_TYPES, len(off_person), rng))
    person = np.concatenate([off_person, da_person])
    types = np.concatenate([off_type, np.full(len(da_person), TYPE_CODE["domestic_abuse"], np.int8)])
    harm = _harm(types, rng)
    recorded = rng.random(len(person)) < np.minimum(1.0, _RECORDING_BASE[types] * pop.recording_factor[person])
    return OffendingDraw(person, types, harm, recorded)


def high_harm(types: np.ndarray, harm: np.ndarray, threshold: float) -> np.ndarray:
    """docs/architecture.md, "The as-of rule": harm above the threshold, or violence with injury, or sexual offence."""
    return (harm > threshold) | (types == TYPE_CODE["violence_with_injury"]) | (types == TYPE_CODE["sexual_offence"])


def label_event_rate(pop: Population, hz: OffendingHazards, threshold: float) -> np.ndarray:
    """Expected recorded high-harm offending involvements this month (the escalation hazard)."""

    def recorded_high_harm(types: dict[str, float], always_high: bool) -> np.ndarray:
        total = sum(types.values())
        rate = np.zeros(len(pop))
        for name, weight in types.items():
            p_high = 1.0 if always_high else ndtr(-np.log(threshold / HARM_BASE[name]) / HARM_SIGMA)
            rate += weight / total * p_high * np.minimum(1.0, RECORDING_BASE[name] * pop.recording_factor)
        return rate

    q_offending = (hz.severe_share * recorded_high_harm(SEVERE_TYPES, True)
                   + (1 - hz.severe_share) * recorded_high_harm(OTHER_OFFENCE_TYPES, False))
    q_domestic = recorded_high_harm({"domestic_abuse": 1.0}, False)
    return hz.offending * q_offending + hz.domestic * q_domestic


def advance(pop: Population, state: State, d: Dynamics, rng: np.random.Generator,
            offence_harm_by_person: np.ndarray, victimisations_by_person: np.ndarray) -> None:
    """Move the latent state one month on: drift, and decay plus new harm for the excitations."""
    state.drift = d.drift_autocorrelation * state.drift + d.drift_sd * rng.standard_normal(len(pop))
    state.excitation = d.excitation_decay * state.excitation + offence_harm_by_person
    state.victim_excitation = d.victim_excitation_decay * state.victim_excitation + victimisations_by_person


def _days_in_month(month_start: np.datetime64, last_day: np.datetime64) -> int:
    next_start = (month_start.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return int((min(next_start - np.timedelta64(1, "D"), last_day) - month_start).astype(int)) + 1


def simulate_month(pop: Population, areas: Areas, state: State, month: int, month_start: np.datetime64,
                   last_day: np.datetime64, d: Dynamics, rng: np.random.Generator, next_incident: int,
                   events: Events, interventions: Interventions) -> int:
    """Draw every true incident of the month, record some, refer people, advance the state.

    Returns the next free incident number.
    """
    n = len(pop)
    span = _days_in_month(month_start, last_day)
    age = _age_years(pop, month_start)
    hz = offending_hazards(pop, state, month, month_start, d)
    off = draw_offending(pop, hz, rng)
    k = len(off.person)
    incident = next_incident + np.arange(k)
    day = month_start + rng.integers(0, span, k).astype("timedelta64[D]")
    role = np.where(rng.random(k) < SUSPECT_SHARE, ROLE_CODE["suspect"], ROLE_CODE["perpetrator"])
    events.add(incident, off.person, day, off.type, role, off.harm, off.recorded)

    # Victims: the partner for domestic abuse, a resident of the same small area for violence.
    is_da = off.type == TYPE_CODE["domestic_abuse"]
    has_area_victim = np.isin(off.type, [TYPE_CODE[t] for t in TYPES_WITH_VICTIM])
    area = pop.area[off.person]
    area_victim = areas.first_person[area] + np.floor(rng.random(k) * areas.population[area]).astype(np.int64)
    victim = np.where(is_da, pop.partner[off.person], np.where(has_area_victim, area_victim, -1))
    with_victim = (victim >= 0) & (victim != off.person)
    events.add(incident[with_victim], victim[with_victim], day[with_victim], off.type[with_victim],
               np.full(with_victim.sum(), ROLE_CODE["victim"]), off.harm[with_victim], off.recorded[with_victim])
    next_incident += k

    # Victim-only incidents (offender unknown) and subject incidents (concerns about a person).
    victim_rate = np.exp(pop.victim_trait + _age_curve(age, 20.0, 8.0, 15.0, 0.0)
                         + d.victim_excitation_effect * np.log1p(state.victim_excitation))
    victim_only, next_incident = _single_person_incidents(
        victim_rate, "victim", lambda person: _choose(VICTIM_ONLY_TYPES, len(person), rng),
        month_start, span, rng, next_incident, events)
    _, next_incident = _single_person_incidents(
        np.exp(pop.subject_trait), "subject", lambda person: _concern_types(age[person], rng),
        month_start, span, rng, next_incident, events)

    harm_by_person = np.bincount(off.person, weights=off.harm, minlength=n)
    victimised = np.bincount(np.concatenate([victim[with_victim], victim_only]), minlength=n)
    advance(pop, state, d, rng, harm_by_person, victimised)
    _refer(pop, state, month, month_start, span, age, off, victim, with_victim, rng, interventions)
    return next_incident


def _concern_types(age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Child concern for children, missing person for the young, mental health concern for adults."""
    u = rng.random(len(age))
    return np.select(
        [age < 12, age < 18, age < 26],
        [TYPE_CODE["child_concern"],
         np.where(u < 0.5, TYPE_CODE["child_concern"], TYPE_CODE["missing_person"]),
         np.where(u < 0.3, TYPE_CODE["missing_person"], TYPE_CODE["mental_health_concern"])],
        TYPE_CODE["mental_health_concern"]).astype(np.int8)


def _single_person_incidents(rate: np.ndarray, role: str, types_of, month_start: np.datetime64, span: int,
                             rng: np.random.Generator, next_incident: int, events: Events) -> tuple[np.ndarray, int]:
    """Incidents that involve one person only; returns (the people involved, the next incident number)."""
    person = np.repeat(np.arange(len(rate)), rng.poisson(rate))
    m = len(person)
    types = types_of(person)
    harm = _harm(types, rng)
    recorded = rng.random(m) < _RECORDING_BASE[types]
    events.add(next_incident + np.arange(m), person, month_start + rng.integers(0, span, m).astype("timedelta64[D]"),
               types, np.full(m, ROLE_CODE[role]), harm, recorded)
    return person, next_incident + m


def _refer(pop: Population, state: State, month: int, month_start: np.datetime64, span: int,
           age: np.ndarray, off: OffendingDraw, victim: np.ndarray, with_victim: np.ndarray,
           rng: np.random.Generator, out: Interventions) -> None:
    """The non-random referral policy: recorded recent harm drives who gets which programme."""
    rec = off.recorded
    is_da = off.type == TYPE_CODE["domestic_abuse"]
    candidates = {
        "iris": victim[rec & is_da & with_victim],
        "drive": off.person[rec & is_da & (state.excitation[off.person] >= 4.0)],
        "youth_early_action": np.concatenate([
            off.person[rec & (age[off.person] >= 10) & (age[off.person] < 18)],
            np.flatnonzero((pop.ace >= 4) & (age >= 10) & (age < 18) & (rng.random(len(pop)) < 0.0015)),
        ]),
        "diversion": off.person[rec & (off.harm < 3.0) & (age[off.person] >= 12)
                                & (off.type != TYPE_CODE["domestic_abuse"])],
    }
    referral_probability = {"iris": 0.3, "drive": 0.35, "youth_early_action": 0.2, "diversion": 0.15}
    for programme, people in candidates.items():
        people = np.unique(people)
        free = state.effect_until[programme][people] <= month  # not referred in the last 24 months
        people = people[free & (rng.random(len(people)) < referral_probability[programme])]
        completed = rng.random(len(people)) < pop.completion[programme][people]
        start = (month_start + np.timedelta64(span, "D")
                 + rng.integers(0, 28, len(people)).astype("timedelta64[D]"))
        state.effect_from[programme][people] = month + 1
        state.effect_until[programme][people] = month + 1 + EFFECT_MONTHS
        state.effect_size[programme][people] = pop.effect[programme][people] * np.where(completed, 1.0, PARTIAL_EFFECT)
        out.person.append(people)
        out.programme.append(np.full(len(people), programme, dtype=object))
        out.start_day.append(start)
        out.completed.append(completed)


PROGRAMME_DURATION = {p: np.timedelta64(days, "D") for p, days in PROGRAMME_DAYS.items()}
