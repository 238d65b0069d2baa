"""Areas and people of the synthetic world: static traits, households, partners, true effects.

All functions are vectorised over people (no Python loop over people) and draw from one
`numpy.random.Generator`, so a seed fixes the population.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.special import expit, logit, ndtri

from riskloop.simulation.parameters import (
    ACE_MEAN,
    ACE_PROBABILITIES,
    ACE_SD,
    ETHNICITY_BASE,
    GROUP_RECORDING_FACTOR,
    LOCAL_AUTHORITY_NAMES,
    MAX_EFFECT,
    OVER_POLICED_AREA_FACTOR,
    OVER_POLICED_AREA_SHARE,
    PROGRAMME_COMPLETION,
    PROGRAMMES,
    Dynamics,
    WorldConfig,
)

ETHNICITY_NAMES = tuple(ETHNICITY_BASE)
# Share of residents in each 5-year age band 0-4 ... 85-89 (a Wales-like pyramid).
AGE_BAND_WEIGHTS = np.array([5.2, 5.6, 5.8, 5.6, 6.0, 6.2, 6.1, 6.0, 5.8, 6.4, 7.0, 7.0, 6.6, 6.0, 5.8, 4.4, 3.2, 2.4])


def append_arrays(target, other) -> None:
    """Concatenate each per-person array field of dataclass `other` (or dict of arrays) onto `target`'s."""
    for f in fields(target):
        mine, theirs = getattr(target, f.name), getattr(other, f.name)
        if isinstance(mine, dict):
            setattr(target, f.name, {k: np.concatenate([mine[k], theirs[k]]) for k in mine})
        else:
            setattr(target, f.name, np.concatenate([mine, theirs]))


@dataclass
class Areas:
    """Small areas, sorted by local authority."""

    area_id: np.ndarray  # str, LSOA-like code
    local_authority: np.ndarray  # str
    deprivation: np.ndarray  # standardised latent deprivation, higher = more deprived
    deprivation_rank: np.ndarray  # 1 = most deprived
    policing_factor: np.ndarray  # the planted area recording bias
    population: np.ndarray  # residents at the start (newcomers settle in proportion)

    def __len__(self) -> int:
        return len(self.area_id)


@dataclass
class Population:
    """Traits of everyone ever present; index i is the same person in every array, for ever.

    Births and newcomers are appended; the dead and those who left stay (not `present`).
    """

    pseudonym: np.ndarray  # int64: person_id is "P" and this number
    area: np.ndarray  # index into Areas: current (or last) small area
    birth_day: np.ndarray  # datetime64[D]
    male: np.ndarray  # bool
    ethnicity: np.ndarray  # index into ETHNICITY_NAMES
    disability: np.ndarray  # bool
    household: np.ndarray  # int household number
    partner: np.ndarray  # index of partner, -1 if none
    ace: np.ndarray  # adverse childhood experiences, 0..7
    deprivation: np.ndarray  # current area's deprivation copied per person
    recording_factor: np.ndarray  # area x group recording bias on offending
    offending_trait: np.ndarray  # static part of the log offending hazard
    domestic_trait: np.ndarray  # static part of the log domestic-abuse perpetration hazard (with a partner)
    victim_trait: np.ndarray
    subject_trait: np.ndarray
    effect: dict[str, np.ndarray]  # true individual effect of each programme, 0..1
    completion: dict[str, np.ndarray]  # probability of completing each programme
    present: np.ndarray  # bool: alive and living in Wales now
    arrived_day: np.ndarray  # datetime64[D], NaT unless the person moved to Wales during the run
    died_day: np.ndarray  # datetime64[D], NaT if alive
    left_day: np.ndarray  # datetime64[D], NaT unless the person left Wales

    def __len__(self) -> int:
        return len(self.area)

    @property
    def person_id(self) -> np.ndarray:
        """The pseudonyms as strings (object array), built on demand for tables."""
        return np.char.add("P", self.pseudonym.astype(str)).astype(object)

    def append(self, other: Population) -> None:
        """Add `other`'s people at the end (their partner indexes are already global)."""
        append_arrays(self, other)


def build_areas(config: WorldConfig, rng: np.random.Generator) -> Areas:
    """Areas grouped in local authorities, with a deprivation gradient and policing intensity."""
    n_la, n_areas = config.local_authorities, config.areas
    la_of_area = np.sort(rng.integers(0, n_la, n_areas))
    la_of_area[:n_la] = np.arange(n_la)  # every local authority has at least one area
    la_of_area.sort()
    latent = rng.normal(0, 0.5, n_la)[la_of_area] + rng.normal(0, 0.9, n_areas)
    deprivation = (latent - latent.mean()) / latent.std()
    rank = np.empty(n_areas, dtype=np.int64)
    rank[np.argsort(-deprivation, kind="stable")] = np.arange(1, n_areas + 1)
    over_policed = rank <= max(1, round(OVER_POLICED_AREA_SHARE * n_areas))
    weights = rng.gamma(50.0, 1.0, n_areas)
    population = rng.multinomial(config.people, weights / weights.sum())
    local_authority = np.array(LOCAL_AUTHORITY_NAMES[:n_la], dtype=object)[la_of_area]
    area_id = np.array([f"W01{n:06d}" for n in range(1, n_areas + 1)], dtype=object)
    return Areas(
        area_id, local_authority, deprivation, rank, np.where(over_policed, OVER_POLICED_AREA_FACTOR, 1.0), population
    )


def _within_group_rank(group: np.ndarray, order_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (order, rank) where order sorts by (group, key) and rank counts from 0 in a group."""
    order = np.lexsort((order_key, group))
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    rank_sorted = np.arange(len(order)) - np.repeat(starts, counts)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = rank_sorted
    return order, rank


def pair_within_areas(
    idx: np.ndarray, area: np.ndarray, male: np.ndarray, age: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pair the people `idx` into age-matched opposite-sex couples within each area: (men, women)."""
    if len(idx) == 0:
        return idx, idx
    group = area[idx] * 2 + male[idx]
    order, rank = _within_group_rank(group, age[idx] + rng.normal(0, 3, len(idx)))
    n_areas = int(area.max()) + 1
    counts = np.bincount(group, minlength=2 * n_areas).reshape(n_areas, 2)
    couples = counts.min(axis=1)
    # Position in `order` of the rank-r member of each (area, sex) group.
    group_start = np.concatenate([[0], np.cumsum(counts.ravel())[:-1]]).reshape(n_areas, 2)
    men = male[idx] & (rank < couples[area[idx]])
    women_pos = group_start[area[idx[men]], 0] + rank[men]
    return idx[men], idx[order[women_pos]]


def _pair_partners(area: np.ndarray, male: np.ndarray, age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pair adults into couples within each area at the start; -1 if single."""
    n = len(area)
    partner = np.full(n, -1, dtype=np.int64)
    willing = (age >= 18) & (rng.random(n) < np.clip(0.25 + 0.03 * (age - 18), 0, 0.72))
    men, women = pair_within_areas(np.flatnonzero(willing), area, male, age, rng)
    partner[men], partner[women] = women, men
    return partner


def _households(area: np.ndarray, age: np.ndarray, partner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Couples share a household; children join a random couple of their area, else live alone."""
    n = len(area)
    household = np.arange(n, dtype=np.int64)
    couple_lead = np.flatnonzero((partner >= 0) & (np.arange(n) < partner))
    household[partner[couple_lead]] = couple_lead
    children = np.flatnonzero(age < 18)
    lead_area = area[couple_lead]
    n_areas = int(area.max()) + 1
    per_area = np.bincount(lead_area, minlength=n_areas)
    start = np.concatenate([[0], np.cumsum(per_area)[:-1]])
    child_area = area[children]
    has_couple = per_area[child_area] > 0
    pick = start[child_area] + np.floor(rng.random(len(children)) * np.maximum(per_area[child_area], 1)).astype(
        np.int64
    )
    household[children[has_couple]] = couple_lead[pick[has_couple]]
    _, dense = np.unique(household, return_inverse=True)
    return dense.astype(np.int64)


def _ace_counts(deprivation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ACE counts with the Welsh ACE study's marginal distribution, more common where deprived."""
    loading = 0.35
    latent = loading * deprivation + np.sqrt(1 - loading**2) * rng.standard_normal(len(deprivation))
    cut_points = ndtri(np.cumsum(ACE_PROBABILITIES)[:-1])
    return np.searchsorted(cut_points, latent).astype(np.int64)


def _age_at_start(n: int, rng: np.random.Generator) -> np.ndarray:
    band = rng.choice(len(AGE_BAND_WEIGHTS), size=n, p=AGE_BAND_WEIGHTS / AGE_BAND_WEIGHTS.sum())
    return band * 5 + rng.random(n) * 5


def _pseudonyms(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(n) + pseudonym_base(n)


def pseudonym_base(people: int) -> int:
    """The first pseudonym number: initial residents get base..base+n-1 shuffled, later ones count on."""
    return 10 ** max(7, len(str(people)))


def draw_ethnicity(deprivation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ethnic group, minorities more common where deprived."""
    minority_odds = np.exp(0.6 * deprivation)
    base = np.array(list(ETHNICITY_BASE.values()))
    weights = np.column_stack(
        [np.full(len(deprivation), base[0])] + [base[k] * minority_odds for k in range(1, len(base))]
    )
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    return (rng.random(len(deprivation))[:, None] > cumulative).sum(axis=1).clip(0, len(base) - 1)


def recording_factor(areas: Areas, area: np.ndarray, ethnicity: np.ndarray) -> np.ndarray:
    """The planted recording bias on offending: the area's policing times the group's."""
    group_factor = np.array([GROUP_RECORDING_FACTOR[e] for e in ETHNICITY_NAMES])
    return areas.policing_factor[area] * group_factor[ethnicity]


def new_people(
    d: Dynamics,
    areas: Areas,
    area: np.ndarray,
    birth_day: np.ndarray,
    male: np.ndarray,
    ethnicity: np.ndarray,
    household: np.ndarray,
    partner: np.ndarray,
    arrived_day: np.ndarray,
    pseudonym: np.ndarray,
    age: np.ndarray,
    rng: np.random.Generator,
) -> Population:
    """People with their latent traits (ACEs, propensities) and true programme effects drawn."""
    n = len(area)
    deprivation = areas.deprivation[area]
    disability = rng.random(n) < expit(-1.9 + 0.035 * (age - 40) + 0.3 * deprivation)
    ace = _ace_counts(deprivation, rng)
    ace_capped = np.minimum(ace, 6)
    shared = rng.standard_normal(n)
    offending_trait = (
        d.offending_intercept
        + d.offending_ace * ace_capped
        + d.offending_male * male
        + d.offending_deprivation * deprivation
        + d.offending_sd * shared
    )
    domestic_trait = (
        d.domestic_intercept
        + d.domestic_ace * ace_capped
        + d.domestic_male * male
        + d.domestic_deprivation * deprivation
        + d.domestic_offending_link * shared
        + d.domestic_sd * rng.standard_normal(n)
    )
    victim_trait = (
        d.victim_intercept
        + d.victim_ace * ace_capped
        + d.victim_deprivation * deprivation
        + d.victim_sd * rng.standard_normal(n)
    )
    subject_trait = d.subject_intercept + d.subject_ace * ace_capped + d.subject_sd * rng.standard_normal(n)
    # What the effects vary with (Dynamics.effect_modifier): the unrecorded ACEs, or recorded deprivation.
    modifier = ace_capped if d.effect_modifier == "aces" else np.clip(ACE_MEAN + ACE_SD * deprivation, 0, 6)
    effect = {
        "drive": np.clip(0.55 - 0.07 * modifier + rng.normal(0, 0.1, n), 0, 0.9),
        "iris": np.clip(0.40 + 0.15 * (age < 35) - 0.10 * deprivation + rng.normal(0, 0.1, n), 0, 0.9),
        "youth_early_action": np.clip(0.05 + 0.07 * modifier + rng.normal(0, 0.08, n), 0, 0.8),
        "diversion": np.clip(rng.normal(0.12, 0.15, n), 0, 0.6),
    }
    effect = {p: np.minimum(d.programme_effect_scale * e, MAX_EFFECT) for p, e in effect.items()}
    completion = {p: expit(logit(PROGRAMME_COMPLETION[p]) - 0.15 * (modifier - 2)) for p in PROGRAMMES}
    never = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    return Population(
        pseudonym=pseudonym,
        area=area,
        birth_day=birth_day,
        male=male,
        ethnicity=ethnicity,
        disability=disability,
        household=household,
        partner=partner,
        ace=ace,
        deprivation=deprivation,
        recording_factor=recording_factor(areas, area, ethnicity),
        offending_trait=offending_trait,
        domestic_trait=domestic_trait,
        victim_trait=victim_trait,
        subject_trait=subject_trait,
        effect=effect,
        completion=completion,
        present=np.ones(n, dtype=bool),
        arrived_day=arrived_day,
        died_day=never,
        left_day=never.copy(),
    )


def build_population(config: WorldConfig, areas: Areas, rng: np.random.Generator) -> Population:
    """The residents at the start: traits, households, partners, latent propensities, true effects."""
    n = config.people
    area = np.repeat(np.arange(len(areas)), areas.population)
    age = _age_at_start(n, rng)
    birth_day = np.datetime64(config.start, "D") - np.round(age * 365.25).astype("timedelta64[D]")
    male = rng.random(n) < 0.49
    ethnicity = draw_ethnicity(areas.deprivation[area], rng)
    partner = _pair_partners(area, male, age, rng)
    household = _households(area, age, partner, rng)
    return new_people(
        config.dynamics,
        areas,
        area,
        birth_day,
        male,
        ethnicity,
        household,
        partner,
        np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"),
        _pseudonyms(n, rng),
        age,
        rng,
    )
