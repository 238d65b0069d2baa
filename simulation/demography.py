"""The world's demography, one month at a time: deaths, departures, moves, couples, births, arrivals.

Vectorised over people and households. Nothing here depends on policy (who is enrolled or watched),
so two runs of one world on different policies keep the same people. Indexes are stable: the dead
and those who left stay in the arrays (not `present`); births and newcomers are appended.
"""

from __future__ import annotations

import numpy as np

from riskloop.simulation.dynamics import State
from riskloop.simulation.parameters import (
    ARRIVAL_UNITS,
    COUPLE_FORMATION,
    FERTILITY_AGE,
    FERTILITY_PARTNERED,
    FERTILITY_PEAK,
    LEAVE_HOUSEHOLD,
    MORTALITY_GOMPERTZ,
    MORTALITY_MAKEHAM,
    MOVE_HOUSEHOLD,
    MOVE_WITHIN_AUTHORITY,
    WorldConfig,
)
from riskloop.simulation.population import (
    Areas,
    Population,
    draw_ethnicity,
    new_people,
    pair_within_areas,
    pseudonym_base,
    recording_factor,
)
from riskloop.simulation.streams import Streams

_NAT = np.datetime64("NaT", "D")


def monthly_death_probability(age: np.ndarray) -> np.ndarray:
    """Gompertz-Makeham: annual hazard 0.0002 + exp(-10 + 0.088 age), as a monthly probability."""
    a, b = MORTALITY_GOMPERTZ
    return -np.expm1(-(MORTALITY_MAKEHAM + np.exp(a + b * age)) / 12)


def monthly_birth_probability(age: np.ndarray, partnered: np.ndarray) -> np.ndarray:
    """Births per woman this month: a normal curve over ages 16-45, higher in a couple."""
    mean, sd = FERTILITY_AGE
    relative = np.where(partnered, FERTILITY_PARTNERED, 2 - FERTILITY_PARTNERED)
    curve = np.exp(-0.5 * ((age - mean) / sd) ** 2) * ((age >= 16) & (age < 46))
    return FERTILITY_PEAK / 12 * curve * relative


def step_demography(
    config: WorldConfig, areas: Areas, pop: Population, state: State, month_start: np.datetime64, streams: Streams
) -> None:
    """Apply one month's demography at `month_start` (deaths, departures and moves dated that day)."""
    age = (month_start - pop.birth_day).astype(np.float64) / 365.25
    _deaths(pop, age, month_start, streams)
    _households_leave(pop, month_start, streams)
    _households_move(config, areas, pop, streams)
    _couples_form(pop, age, streams)
    born = _births(config, areas, pop, age, month_start, streams)
    arrived = _arrivals(config, areas, pop, len(born), month_start, streams)
    born.append(arrived)
    _append(config, pop, state, born, streams)


def _deaths(pop: Population, age: np.ndarray, day: np.datetime64, streams: Streams) -> None:
    """The dead leave the world; their partners become partnerless."""
    u = streams.generator("deaths").random(len(pop))
    dead = np.flatnonzero(pop.present & (u < monthly_death_probability(age)))
    pop.present[dead] = False
    pop.died_day[dead] = day
    widowed = pop.partner[dead]
    pop.partner[widowed[widowed >= 0]] = -1
    pop.partner[dead] = -1


def _household_draw(pop: Population, family: str, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
    """(one uniform per household, the present people's indexes)."""
    return streams.generator(family).random(int(pop.household.max()) + 1), np.flatnonzero(pop.present)


def _households_leave(pop: Population, day: np.datetime64, streams: Streams) -> None:
    """Whole households leave Wales: no more incidents, kept in the arrays."""
    u, here = _household_draw(pop, "departures", streams)
    gone = here[u[pop.household[here]] < LEAVE_HOUSEHOLD]
    pop.present[gone] = False
    pop.left_day[gone] = day


def _households_move(config: WorldConfig, areas: Areas, pop: Population, streams: Streams) -> None:
    """Whole households change small area, mostly within their local authority."""
    rng = streams.generator("moves")
    n_households = int(pop.household.max()) + 1
    u = rng.random(n_households)
    within = rng.random(n_households) < MOVE_WITHIN_AUTHORITY
    pick = rng.random(n_households)
    here = np.flatnonzero(pop.present)
    movers = here[u[pop.household[here]] < MOVE_HOUSEHOLD]
    if len(movers) == 0:
        return
    la_codes, la_of_area = np.unique(areas.local_authority, return_inverse=True)
    by_authority = np.argsort(la_of_area, kind="stable")  # area indexes, each authority's together
    la_count = np.bincount(la_of_area, minlength=len(la_codes))
    la_first = np.cumsum(la_count) - la_count
    household = pop.household[movers]
    la = la_of_area[pop.area[movers]]
    inside = by_authority[la_first[la] + np.floor(pick[household] * la_count[la]).astype(np.int64)]
    destination = np.where(within[household], inside, np.floor(pick[household] * len(areas)).astype(np.int64))
    shift = areas.deprivation[destination] - pop.deprivation[movers]
    d = config.dynamics
    pop.offending_trait[movers] += d.offending_deprivation * shift
    pop.domestic_trait[movers] += d.domestic_deprivation * shift
    pop.victim_trait[movers] += d.victim_deprivation * shift
    pop.area[movers] = destination
    pop.deprivation[movers] = areas.deprivation[destination]
    pop.recording_factor[movers] = recording_factor(areas, destination, pop.ethnicity[movers])


def _couples_form(pop: Population, age: np.ndarray, streams: Streams) -> None:
    """Some single adults of 18-55 seek a partner; the man moves into the woman's household (her children stay with her)."""
    rng = streams.generator("couples")
    seeking = pop.present & (pop.partner < 0) & (age >= 18) & (age < 55) & (rng.random(len(pop)) < COUPLE_FORMATION)
    men, women = pair_within_areas(np.flatnonzero(seeking), pop.area, pop.male, age, rng)
    pop.partner[men], pop.partner[women] = women, men
    pop.household[men] = pop.household[women]


def _births(
    config: WorldConfig, areas: Areas, pop: Population, age: np.ndarray, month_start: np.datetime64, streams: Streams
) -> Population:
    """Babies born last month: the mother's household, area and ethnicity; their own traits."""
    rng = streams.generator("births")
    u = rng.random(len(pop))
    women = np.flatnonzero(pop.present & ~pop.male & (age >= 16) & (age < 46))
    mother = women[u[women] < monthly_birth_probability(age[women], pop.partner[women] >= 0)]
    n = len(mother)
    previous_start = (month_start.astype("datetime64[M]") - 1).astype("datetime64[D]")
    days = int((month_start - previous_start).astype(int))
    birth_day = previous_start + np.floor(rng.random(n) * days).astype(np.int64).astype("timedelta64[D]")
    area = pop.area[mother]
    return new_people(
        config.dynamics,
        areas,
        area,
        birth_day,
        rng.random(n) < 0.512,
        pop.ethnicity[mother],
        pop.household[mother],
        np.full(n, -1, dtype=np.int64),
        np.full(n, _NAT),
        _next_pseudonyms(config, len(pop), n),
        (month_start - birth_day).astype(np.float64) / 365.25,
        rng,
    )


def _arrivals(
    config: WorldConfig, areas: Areas, pop: Population, born: int, month_start: np.datetime64, streams: Streams
) -> Population:
    """Newcomers to Wales (single adults, couples, couples with children) fill the gap to the world's size.

    They are numbered after the `born` babies of the month, who join the population with them.
    """
    rng = streams.generator("arrivals")
    sizes = np.array([1.0, 2.0, 4.0])
    deficit = config.people - int(pop.present.sum()) - born
    units = max(0, round(deficit / float(np.dot(ARRIVAL_UNITS, sizes))))
    kind = rng.choice(3, size=units, p=ARRIVAL_UNITS)
    adults = np.where(kind == 0, 1, 2)
    children = np.where(kind == 2, 1 + rng.integers(0, 3, units), 0)
    size = adults + children
    unit = np.repeat(np.arange(units), size)
    rank = np.arange(len(unit)) - np.repeat(np.cumsum(size) - size, size)  # 0, 1 adults; 2.. children
    lead_age = 18 + rng.gamma(2.0, 6.0, units)
    age = np.where(
        rank == 0,
        lead_age[unit],
        np.where(
            rank == 1,
            np.maximum(18, lead_age[unit] + rng.normal(-2, 3, len(unit))),
            rng.random(len(unit)) * np.minimum(18, lead_age[unit] - 16).clip(1),
        ),
    )
    male = np.where(
        rank == 0,
        np.where(kind[unit] == 0, rng.random(len(unit)) < 0.55, True),
        np.where(rank == 1, False, rng.random(len(unit)) < 0.51),
    )
    area_of_unit = rng.choice(len(areas), size=units, p=areas.population / areas.population.sum())
    area = area_of_unit[unit]
    ethnicity = draw_ethnicity(areas.deprivation[area_of_unit], rng)[unit]
    first = len(pop) + born
    index = first + np.arange(len(unit))
    partner = np.full(len(unit), -1, dtype=np.int64)
    couple = (kind[unit] > 0) & (rank < 2)
    partner[couple] = index[couple] + np.where(rank[couple] == 0, 1, -1)
    household = int(pop.household.max()) + 1 + unit
    birth_day = month_start - np.round(age * 365.25).astype("timedelta64[D]")
    return new_people(
        config.dynamics,
        areas,
        area,
        birth_day,
        male,
        ethnicity,
        household,
        partner,
        np.full(len(unit), month_start),
        _next_pseudonyms(config, first, len(unit)),
        age,
        rng,
    )


def _next_pseudonyms(config: WorldConfig, first: int, n: int) -> np.ndarray:
    """Pseudonym numbers of people added after the start from index `first`: on from the initial residents'."""
    return pseudonym_base(config.people) + first + np.arange(n)


def _append(config: WorldConfig, pop: Population, state: State, new: Population, streams: Streams) -> None:
    """Append new people to the population and give them a fresh state (stationary drift)."""
    if len(new) == 0:
        return
    pop.append(new)
    rng = np.random.default_rng([*streams.key, streams.month, len(pop)])
    state.append(State.initial(len(new), config.dynamics, rng))
