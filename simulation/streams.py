"""Common random numbers: every draw of the world is a function of (seed, month, family, person, k).

Two runs of the same world that differ in policy (who is enrolled, who is watched) then differ only
where the policy made them differ: the same person's k-th offence of a month gets the same type,
harm, day and recording uniform in both. Person-level draws come from one generator per (month,
family) read in person order (indexes are stable and the population only grows by appending);
event-level draws hash (person, k) so that one person's extra event does not shift anyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

FAMILIES: tuple[str, ...] = (
    "offending",
    "domestic",
    "victim_only",
    "subject",
    "drift",
    "youth_referral",
    "off_severe",
    "off_type",
    "off_harm",
    "off_recorded",
    "off_day",
    "off_role",
    "off_victim",
    "victim_only_type",
    "victim_only_harm",
    "victim_only_recorded",
    "victim_only_day",
    "subject_type",
    "subject_harm",
    "subject_recorded",
    "subject_day",
    "refer",
    "complete",
    "start_day",
    "deaths",
    "departures",
    "moves",
    "couples",
    "births",
    "arrivals",
)
_CODE = {name: code for code, name in enumerate(FAMILIES)}
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that scrambles every bit."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class Streams:
    """The random numbers of one month of one world (`key` is the seed, plus a replicate for truth)."""

    key: tuple[int, ...]
    month: int

    def generator(self, family: str) -> np.random.Generator:
        """A generator for person-level draws: read it in person order, one value per person."""
        return np.random.default_rng([*self.key, self.month, _CODE[family]])

    def _hash_key(self, family: str) -> np.uint64:
        return np.random.SeedSequence([*self.key, self.month, _CODE[family]]).generate_state(1, np.uint64)[0]

    def uniform(self, family: str, person: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
        """Open-interval uniforms keyed by (person, k): the k-th event of `person` in this family."""
        x = np.asarray(person, dtype=np.uint64) | (np.asarray(k, dtype=np.uint64) << np.uint64(40))
        bits = _mix(_mix(x ^ self._hash_key(family)) + np.uint64(0x9E3779B97F4A7C15))
        return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53

    def normal(self, family: str, person: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
        return ndtri(self.uniform(family, person, k))


def poisson(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson counts by inversion of one uniform per person (monotone in both: common random numbers)."""
    count = np.zeros(len(lam), dtype=np.int64)
    p = np.exp(-lam)
    cdf = p.copy()
    todo = np.flatnonzero(u > cdf)
    k = 0
    while len(todo):
        k += 1
        p[todo] *= lam[todo] / k
        cdf[todo] += p[todo]
        count[todo] = k
        todo = todo[(u[todo] > cdf[todo]) & (p[todo] > 0)]
    return count


def within_index(person: np.ndarray) -> np.ndarray:
    """For rows grouped by person (as np.repeat makes them): 0, 1, ... within each person."""
    if len(person) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(person)) + 1]
    return np.arange(len(person)) - np.repeat(starts, np.diff(np.r_[starts, len(person)]))
