"""One month of the world: latent hazards, true incidents, recording, referrals and their effects.

People are independent draws from Poisson hazards that depend on their traits, age, a shared
latent drift, recent harm (escalation is real) and the programmes they are in; only people present
(alive, in Wales) have incidents. Vectorised over people; the only loop is over months, in
`simulation.world`. Every draw comes from `Streams` (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy.special import expit, ndtr

from riskloop.simulation.parameters import (
    EFFECT_MONTHS,
    HARM_BASE,
    HARM_SIGMA,
    MISSING_SHARE,
    OTHER_OFFENCE_TYPES,
    PARTIAL_EFFECT,
    PROACTIVE_TYPES,
    PROGRAMME_DAYS,
    PROGRAMMES,
    RECORDING_BASE,
    SEVERE_TYPES,
    SEXUAL_SHARE_OF_SEVERE,
    SUSPECT_SHARE,
    TYPE_CODE,
    TYPES_WITH_VICTIM,
    VICTIM_ONLY_TYPES,
    Dynamics,
)
from riskloop.simulation.population import Areas, Population, append_arrays
from riskloop.simulation.streams import Streams, poisson, within_index

ROLE_CODE = {"victim": 0, "perpetrator": 1, "suspect": 2, "subject": 3}
OFFENDING_ROLES = (ROLE_CODE["perpetrator"], ROLE_CODE["suspect"])
OFFENDING_PROGRAMMES = ("drive", "youth_early_action", "diversion")


@dataclass
class State:
    """The dynamic part of the world at the start of a month (one entry per person ever present)."""

    drift: np.ndarray
    excitation: np.ndarray
    victim_excitation: np.ndarray
    effect_from: dict[str, np.ndarray]
    effect_until: dict[str, np.ndarray]
    effect_size: dict[str, np.ndarray]
    surveillance_factor: np.ndarray  # attention on the person's proactively found offending while watched ...
    surveillance_until: np.ndarray  # ... before this month

    @classmethod
    def initial(cls, n: int, dynamics: Dynamics, rng: np.random.Generator) -> State:
        stationary_sd = dynamics.drift_sd / np.sqrt(1 - dynamics.drift_autocorrelation**2)
        never = np.full(n, -1, dtype=np.int32)
        return cls(
            drift=rng.normal(0, stationary_sd, n),
            excitation=np.zeros(n),
            victim_excitation=np.zeros(n),
            effect_from={p: never.copy() for p in PROGRAMMES},
            effect_until={p: never.copy() for p in PROGRAMMES},
            effect_size={p: np.zeros(n) for p in PROGRAMMES},
            surveillance_factor=np.ones(n),
            surveillance_until=never.copy(),
        )

    def append(self, other: State) -> None:
        """Add the state of newly present people at the end."""
        append_arrays(self, other)

    def copy(self) -> State:
        copies: dict[str, Any] = {
            f.name: ({k: v.copy() for k, v in value.items()} if isinstance(value, dict) else value.copy())
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }
        return State(**copies)

    def in_effect(self, programme: str, month: int) -> np.ndarray:
        """Per person: is `programme`'s effect on them running in `month`?"""
        return (self.effect_from[programme] <= month) & (month < self.effect_until[programme])

    def can_start(self, programme: str, month: int) -> np.ndarray:
        """Per person: may they start `programme` in `month` (no effect window of it still open)?"""
        return self.effect_until[programme] <= month

    def attention(self, month: int) -> np.ndarray:
        """Per-person attention on proactively found offending this month: the surveillance factor while
        watched, else 1 (`recording_probability`)."""
        return np.where(month < self.surveillance_until, self.surveillance_factor, 1.0)


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
        for name, values in zip(
            ("incident", "person", "day", "type", "role", "harm", "recorded"),
            (incident, person, day, type_, role, harm, recorded),
        ):
            getattr(self, name).append(np.asarray(values))

    def concatenated(self) -> dict[str, np.ndarray]:
        return {
            name: np.concatenate(getattr(self, name))
            for name in ("incident", "person", "day", "type", "role", "harm", "recorded")
        }


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
        multiplier *= 1 - state.effect_size[p] * state.in_effect(p, month)
    return multiplier


def domestic_multiplier(pop: Population, state: State, month: int) -> np.ndarray:
    """DRIVE reduces the perpetrator's domestic abuse; IRIS support of the partner reduces it too."""
    iris = state.effect_size["iris"] * state.in_effect("iris", month)
    partner_iris = np.where(pop.partner >= 0, iris[pop.partner], 0.0)
    return (1 - state.effect_size["drive"] * state.in_effect("drive", month)) * (1 - partner_iris)


@dataclass
class OffendingHazards:
    offending: np.ndarray  # monthly expected true offences (non-domestic)
    domestic: np.ndarray  # monthly expected true domestic abuse perpetrations
    severe_share: np.ndarray
    sexual_share: np.ndarray  # of the severe offences, the share that are sexual offences


def saturate(rate: np.ndarray, ceiling: float) -> np.ndarray:
    """A monthly hazard with a soft ceiling: about `rate` when small, never above `ceiling`."""
    return -ceiling * np.expm1(-rate / ceiling)


def offending_hazards(pop: Population, state: State, month: int, day: np.datetime64, d: Dynamics) -> OffendingHazards:
    age = _age_years(pop, day)
    recent_harm = np.log1p(np.minimum(state.excitation, d.excitation_saturation))
    escalation = d.excitation_effect * recent_harm
    offending = saturate(
        np.exp(pop.offending_trait + _age_curve(age, d.offending_age_peak, 4.0, 9.0, 10.0) + state.drift + escalation),
        d.offending_ceiling,
    )
    domestic = saturate(
        np.exp(pop.domestic_trait + _age_curve(age, 30.0, 8.0, 14.0, 16.0) + state.drift + escalation),
        d.domestic_ceiling,
    )
    offending = offending * offending_multiplier(state, month) * pop.present
    domestic = domestic * domestic_multiplier(pop, state, month) * (pop.present & (pop.partner >= 0))
    severe = expit(d.severe_intercept + d.severe_excitation * recent_harm)
    sexual = np.where(pop.male, SEXUAL_SHARE_OF_SEVERE["male"], SEXUAL_SHARE_OF_SEVERE["female"])
    return OffendingHazards(offending, domestic, severe, sexual)


def _choose(names_weights: dict[str, float], u: np.ndarray) -> np.ndarray:
    """Incident type codes by inversion of the uniforms `u` over the weighted names."""
    names = list(names_weights)
    p = np.array([names_weights[k] for k in names])
    codes = np.array([TYPE_CODE[k] for k in names], dtype=np.int8)
    return codes[np.searchsorted(np.cumsum(p / p.sum())[:-1], u)]


_HARM_BASE = np.array([HARM_BASE[t] for t in TYPE_CODE])
_RECORDING_BASE = np.array([RECORDING_BASE[t] for t in TYPE_CODE])
#: Per type code: is it found proactively (`PROACTIVE_TYPES`)?
PROACTIVE = np.array([t in PROACTIVE_TYPES for t in TYPE_CODE])


def recording_probability(types: np.ndarray, recording: np.ndarray, attention: np.ndarray) -> np.ndarray:
    """The probability that an offence of each type is recorded: its base times the planted bias `recording`
    (capped at 1); a proactively found type's p then becomes 1 - (1 - p)^`attention` (attention finds it more
    often, never surely). Reported types do not depend on attention."""
    return _recorded(_RECORDING_BASE[types], PROACTIVE[types], recording, attention)


def _recorded(base, proactive, recording: np.ndarray, attention: np.ndarray) -> np.ndarray:
    """`recording_probability` from the types' bases and proactive flags (arrays, or one type's scalars)."""
    probability = np.minimum(1.0, base * recording)
    if not np.any(proactive):
        return probability
    return np.where(proactive & (attention != 1), 1 - (1 - probability) ** attention, probability)


def _harm(types: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Harm index from standard normal draws `z`: the type's base times a lognormal factor."""
    return _HARM_BASE[types] * np.exp(HARM_SIGMA * z)


#: Domestic-abuse offences are keyed (person, DOMESTIC_KEY + k) so they never share a key with offences.
DOMESTIC_KEY = 1 << 20


@dataclass
class OffendingDraw:
    person: np.ndarray
    key: np.ndarray  # the event's number within the person's month (common random numbers)
    type: np.ndarray
    harm: np.ndarray
    recorded: np.ndarray


def draw_offending(
    hz: OffendingHazards, recording: np.ndarray, attention: np.ndarray, streams: Streams
) -> OffendingDraw:
    """True offences this month (general and domestic), with type, harm and recording.

    Per person, `recording` (the planted bias) and `attention` (surveillance) set the recording
    probability of their offences (`recording_probability`); the true offences do not depend on them.
    """
    n = len(hz.offending)
    n_off = poisson(hz.offending, streams.generator("offending").random(n))
    n_da = poisson(hz.domestic, streams.generator("domestic").random(n))
    off_person = np.repeat(np.arange(n), n_off)
    da_person = np.repeat(np.arange(n), n_da)
    off_key = within_index(off_person)
    severe = streams.uniform("off_severe", off_person, off_key) < hz.severe_share[off_person]
    type_u = streams.uniform("off_type", off_person, off_key)
    violent, sexual = (TYPE_CODE[t] for t in SEVERE_TYPES)
    severe_type = np.where(type_u < hz.sexual_share[off_person], sexual, violent).astype(np.int8)
    off_type = np.where(severe, severe_type, _choose(OTHER_OFFENCE_TYPES, type_u))
    person = np.concatenate([off_person, da_person])
    key = np.concatenate([off_key, DOMESTIC_KEY + within_index(da_person)])
    types = np.concatenate([off_type, np.full(len(da_person), TYPE_CODE["domestic_abuse"], np.int8)])
    harm = _harm(types, streams.normal("off_harm", person, key))
    probability = recording_probability(types, recording[person], attention[person])
    recorded = streams.uniform("off_recorded", person, key) < probability
    return OffendingDraw(person, key, types, harm, recorded)


def high_harm(types: np.ndarray, harm: np.ndarray, threshold: float) -> np.ndarray:
    """docs/architecture.md, "The as-of rule": harm above the threshold, or violence with injury, or sexual offence."""
    return (harm > threshold) | (types == TYPE_CODE["violence_with_injury"]) | (types == TYPE_CODE["sexual_offence"])


def label_event_rate(
    hz: OffendingHazards, recording: np.ndarray, attention: np.ndarray, threshold: float
) -> np.ndarray:
    """Expected recorded high-harm offending involvements this month (the escalation hazard)."""

    def recorded_high_harm(types: dict[str, float], always_high: bool) -> np.ndarray:
        total = sum(types.values())
        rate = np.zeros(len(recording))
        for name, weight in types.items():
            p_high = 1.0 if always_high else ndtr(-np.log(threshold / HARM_BASE[name]) / HARM_SIGMA)
            recorded = _recorded(RECORDING_BASE[name], name in PROACTIVE_TYPES, recording, attention)
            rate += weight / total * p_high * recorded
        return rate

    violent, sexual = SEVERE_TYPES
    q_severe = hz.sexual_share * recorded_high_harm({sexual: 1.0}, True) + (1 - hz.sexual_share) * recorded_high_harm(
        {violent: 1.0}, True
    )
    q_offending = hz.severe_share * q_severe + (1 - hz.severe_share) * recorded_high_harm(OTHER_OFFENCE_TYPES, False)
    q_domestic = recorded_high_harm({"domestic_abuse": 1.0}, False)
    return hz.offending * q_offending + hz.domestic * q_domestic


def advance(
    state: State,
    d: Dynamics,
    streams: Streams,
    offence_harm_by_person: np.ndarray,
    victimisations_by_person: np.ndarray,
) -> None:
    """Move the latent state one month on: drift, and decay plus new harm for the excitations."""
    noise = streams.generator("drift").standard_normal(len(state.drift))
    state.drift = d.drift_autocorrelation * state.drift + d.drift_sd * noise
    state.excitation = d.excitation_decay * state.excitation + offence_harm_by_person
    state.victim_excitation = d.victim_excitation_decay * state.victim_excitation + victimisations_by_person


def days_in_month(month_start: np.datetime64, last_day: np.datetime64) -> int:
    next_start = (month_start.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return int((min(next_start - np.timedelta64(1, "D"), last_day) - month_start).astype(int)) + 1


def living_residents(pop: Population, n_areas: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(people present sorted by area, each area's first position, each area's count)."""
    here = np.flatnonzero(pop.present)
    by_area = here[np.argsort(pop.area[here].astype(np.int16 if n_areas < 2**15 else np.int32), kind="stable")]
    count = np.bincount(pop.area[here], minlength=n_areas)
    return by_area, np.r_[0, np.cumsum(count)[:-1]], count


def simulate_month(
    pop: Population,
    areas: Areas,
    state: State,
    month: int,
    month_start: np.datetime64,
    last_day: np.datetime64,
    d: Dynamics,
    streams: Streams,
    next_incident: int,
    events: Events,
    interventions: Interventions,
) -> int:
    """Draw every true incident of the month, record some, refer people, advance the state.

    Returns the next free incident number.
    """
    n = len(pop)
    span = days_in_month(month_start, last_day)
    age = _age_years(pop, month_start)
    hz = offending_hazards(pop, state, month, month_start, d)
    off = draw_offending(hz, pop.recording_factor, state.attention(month), streams)
    k = len(off.person)
    incident = next_incident + np.arange(k)
    day = month_start + _day_offsets(streams.uniform("off_day", off.person, off.key), span)
    suspect = streams.uniform("off_role", off.person, off.key) < SUSPECT_SHARE
    role = np.where(suspect, ROLE_CODE["suspect"], ROLE_CODE["perpetrator"])
    events.add(incident, off.person, day, off.type, role, off.harm, off.recorded)

    # Victims: the partner for domestic abuse, a living resident of the same small area for violence.
    is_da = off.type == TYPE_CODE["domestic_abuse"]
    has_area_victim = np.isin(off.type, [TYPE_CODE[t] for t in TYPES_WITH_VICTIM])
    residents, first, count = living_residents(pop, len(areas))
    area = pop.area[off.person]
    pick = np.floor(streams.uniform("off_victim", off.person, off.key) * count[area]).astype(np.int64)
    area_victim = residents[np.minimum(first[area] + pick, len(residents) - 1)]
    victim = np.where(is_da, pop.partner[off.person], np.where(has_area_victim, area_victim, -1))
    with_victim = (victim >= 0) & (victim != off.person)
    events.add(
        incident[with_victim],
        victim[with_victim],
        day[with_victim],
        off.type[with_victim],
        np.full(with_victim.sum(), ROLE_CODE["victim"]),
        off.harm[with_victim],
        off.recorded[with_victim],
    )
    next_incident += k

    # Victim-only incidents (offender unknown) and subject incidents (concerns about a person).
    victim_only, next_incident = _single_person_incidents(
        victim_only_rate(pop, state, age, d),
        "victim_only",
        "victim",
        lambda person, u: _choose(VICTIM_ONLY_TYPES, u),
        month_start,
        span,
        streams,
        next_incident,
        events,
    )
    _, next_incident = _single_person_incidents(
        np.exp(pop.subject_trait) * np.where(age < 18, d.subject_child_factor, 1.0) * pop.present,
        "subject",
        "subject",
        lambda person, u: _concern_types(age[person], u),
        month_start,
        span,
        streams,
        next_incident,
        events,
    )

    harm_by_person = np.bincount(off.person, weights=off.harm, minlength=n)
    victimised = np.bincount(np.concatenate([victim[with_victim], victim_only]), minlength=n)
    advance(state, d, streams, harm_by_person, victimised)
    _refer(pop, state, month, month_start, span, age, off, victim, with_victim, streams, interventions)
    return next_incident


def victim_only_rate(pop: Population, state: State, age: np.ndarray, d: Dynamics) -> np.ndarray:
    """Monthly hazard of victimisation by an unknown offender: traits, age and recent victimisations."""
    repeat = d.victim_excitation_effect * np.log1p(np.minimum(state.victim_excitation, d.victim_excitation_saturation))
    rate = saturate(np.exp(pop.victim_trait + _age_curve(age, 20.0, 8.0, 15.0, 0.0) + repeat), d.victim_ceiling)
    return rate * pop.present


#: Months of offending and victimisation drawn before the world's start (never recorded) and their streams' key.
WARM_UP_MONTHS = 24
WARM_UP_KEY = 1_000_003


def warm_up(pop: Population, state: State, start: np.datetime64, d: Dynamics, seed: int) -> None:
    """Bring recent harm, repeat victimisation and drift to the level of a world already running.

    A real extract cuts into lives that began long before it: on the data's first day some people are
    in the middle of escalating. `WARM_UP_MONTHS` months of offending and victimisation are drawn at the
    start's ages (no programmes, nothing recorded, no victims by area) and only the latent state is kept.
    """
    n = len(pop)
    age = _age_years(pop, start)
    for month in range(WARM_UP_MONTHS):
        streams = Streams((seed, WARM_UP_KEY), month)
        hz = offending_hazards(pop, state, -1, start, d)
        off = draw_offending(hz, np.ones(n), np.ones(n), streams)
        partner = pop.partner[off.person[off.type == TYPE_CODE["domestic_abuse"]]]
        victim_only = poisson(victim_only_rate(pop, state, age, d), streams.generator("victim_only").random(n))
        victimised = np.bincount(partner[partner >= 0], minlength=n) + victim_only
        advance(state, d, streams, np.bincount(off.person, weights=off.harm, minlength=n), victimised)


def _day_offsets(u: np.ndarray, span: int) -> np.ndarray:
    return np.floor(u * span).astype(np.int64).astype("timedelta64[D]")


def _concern_types(age: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Child concern under 12; from 12 to 17 mostly missing from home or care, else a child concern;
    adults mostly a mental health concern, sometimes missing (simulation.calibration: missing people)."""
    return np.select(
        [age < 12, age < 18],
        [
            TYPE_CODE["child_concern"],
            np.where(u < MISSING_SHARE["child"], TYPE_CODE["missing_person"], TYPE_CODE["child_concern"]),
        ],
        np.where(u < MISSING_SHARE["adult"], TYPE_CODE["missing_person"], TYPE_CODE["mental_health_concern"]),
    ).astype(np.int8)


def _single_person_incidents(
    rate: np.ndarray,
    family: str,
    role: str,
    types_of,
    month_start: np.datetime64,
    span: int,
    streams: Streams,
    next_incident: int,
    events: Events,
) -> tuple[np.ndarray, int]:
    """Incidents that involve one person only; returns (the people involved, the next incident number)."""
    person = np.repeat(np.arange(len(rate)), poisson(rate, streams.generator(family).random(len(rate))))
    key = within_index(person)
    m = len(person)
    types = types_of(person, streams.uniform(f"{family}_type", person, key))
    harm = _harm(types, streams.normal(f"{family}_harm", person, key))
    recorded = streams.uniform(f"{family}_recorded", person, key) < _RECORDING_BASE[types]
    day = month_start + _day_offsets(streams.uniform(f"{family}_day", person, key), span)
    events.add(next_incident + np.arange(m), person, day, types, np.full(m, ROLE_CODE[role]), harm, recorded)
    return person, next_incident + m


def start_programme(
    pop: Population,
    state: State,
    people: np.ndarray,
    programme: str,
    month: int,
    month_start: np.datetime64,
    span: int,
    streams: Streams,
    out: Interventions,
) -> None:
    """Start `programme` for `people` (unique indexes) next month: effect window, completion, a row."""
    completed = streams.uniform("complete", people, PROGRAMMES.index(programme)) < pop.completion[programme][people]
    offset = np.floor(streams.uniform("start_day", people, PROGRAMMES.index(programme)) * 28).astype(np.int64)
    start = month_start + np.timedelta64(span, "D") + offset.astype("timedelta64[D]")
    state.effect_from[programme][people] = month + 1
    state.effect_until[programme][people] = month + 1 + EFFECT_MONTHS
    state.effect_size[programme][people] = pop.effect[programme][people] * np.where(completed, 1.0, PARTIAL_EFFECT)
    out.person.append(people)
    out.programme.append(np.full(len(people), programme, dtype=object))
    out.start_day.append(start)
    out.completed.append(completed)


def eligible(pop: Population, state: State, people: np.ndarray, programme: str, month: int) -> np.ndarray:
    """The unique `people` present and not in an effect window of `programme` (none in the last 24 months)."""
    people = np.unique(people)
    return people[pop.present[people] & state.can_start(programme, month)[people]]


def _refer(
    pop: Population,
    state: State,
    month: int,
    month_start: np.datetime64,
    span: int,
    age: np.ndarray,
    off: OffendingDraw,
    victim: np.ndarray,
    with_victim: np.ndarray,
    streams: Streams,
    out: Interventions,
) -> None:
    """The non-random referral policy: recorded recent harm drives who gets which programme."""
    rec = off.recorded
    is_da = off.type == TYPE_CODE["domestic_abuse"]
    youth = (age >= 10) & (age < 18)
    candidates = {
        "iris": victim[rec & is_da & with_victim],
        "drive": off.person[rec & is_da & (state.excitation[off.person] >= 4.0)],
        "youth_early_action": np.concatenate(
            [
                off.person[rec & youth[off.person]],
                np.flatnonzero(
                    (pop.ace >= 4) & youth & (streams.generator("youth_referral").random(len(pop)) < 0.0015)
                ),
            ]
        ),
        "diversion": off.person[
            rec & (off.harm < 3.0) & (age[off.person] >= 12) & (off.type != TYPE_CODE["domestic_abuse"])
        ],
    }
    referral_probability = {"iris": 0.3, "drive": 0.35, "youth_early_action": 0.2, "diversion": 0.15}
    for programme, people in candidates.items():
        people = eligible(pop, state, people, programme, month)
        u = streams.uniform("refer", people, PROGRAMMES.index(programme))
        start_programme(
            pop, state, people[u < referral_probability[programme]], programme, month, month_start, span, streams, out
        )


PROGRAMME_DURATION = {p: np.timedelta64(days, "D") for p, days in PROGRAMME_DAYS.items()}
