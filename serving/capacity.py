"""Capacity (how many people each unit can work with) and the deterministic ranking that fills it.

Ranking within a unit is by calibrated risk, highest first, then by the model's uncalibrated score
(which calibration plateaus hide); exact ties are broken by a seeded hash of the pseudonym (SHA-256
of `<seed>:<person_id>`), so the same inputs give the same ranks, byte for byte, and no one is
favoured by the order of the input rows.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


class CapacityError(ValueError):
    """A capacity that cannot be used, with what is wrong."""


@dataclass(frozen=True)
class Capacity:
    """Places per unit: a table of places, or one number of places, or one share of each unit's cohort."""

    places: dict[str, int] | None = None
    number: int | None = None
    share: float | None = None

    @classmethod
    def parse(cls, text: str | None, default_share: float) -> Capacity:
        """'FILE.csv' (columns unit-name and places), 'N' places each, or a share in (0, 1) of each cohort."""
        if text is None:
            return cls(share=default_share)
        if Path(text).suffix == ".csv" or Path(text).exists():
            return cls(places=_read_places(Path(text)))
        try:
            value = float(text)
        except ValueError:
            raise CapacityError(f"--capacity: '{text}' is neither a CSV file, a number of places nor a share") from None
        if 0 < value < 1:
            return cls(share=value)
        if value >= 1 and value.is_integer():
            return cls(number=int(value))
        raise CapacityError(f"--capacity: {text} must be a whole number of places (>= 1) or a share between 0 and 1")

    def for_units(self, cohort_sizes: pd.Series) -> pd.Series:
        """Places for each unit (index: unit names) given its cohort size."""
        if self.places is not None:
            missing = sorted(set(cohort_sizes.index) - set(self.places))
            if missing:
                raise CapacityError(f"capacity file has no places for {len(missing)} unit(s): {', '.join(missing[:5])}")
            return pd.Series({u: self.places[u] for u in cohort_sizes.index}, dtype="int64")
        if self.number is not None:
            return pd.Series(self.number, index=cohort_sizes.index, dtype="int64")
        return cohort_sizes.map(lambda n: max(1, math.ceil(self.share * n))).astype("int64")

    def describe(self) -> dict:
        if self.places is not None:
            return {"kind": "places per unit (file)", "places": self.places}
        if self.number is not None:
            return {"kind": "places per unit", "places": self.number}
        return {"kind": "share of each unit's cohort", "share": self.share}


def _read_places(path: Path) -> dict[str, int]:
    if not path.exists():
        raise CapacityError(f"--capacity: file not found: {path}")
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CapacityError(f"--capacity: {path} cannot be read as a CSV file ({type(exc).__name__}: {exc})") from exc
    if len(table.columns) != 2 or table.columns[1] != "places":
        raise CapacityError(f"{path.name}: expected two columns, the unit (e.g. local_authority) and 'places'")
    places = pd.to_numeric(table["places"], errors="coerce")
    bad = places.isna() | (places < 0) | (places % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CapacityError(
            f"{path.name}: row {row + 2}: places must be a whole number >= 0, got '{table['places'][row]}'"
        )
    units = table.iloc[:, 0].str.strip()
    if units.duplicated().any():
        raise CapacityError(f"{path.name}: unit '{units[units.duplicated()].iloc[0]}' is listed twice")
    return dict(zip(units, places.astype(int)))


def tie_break(person_id: pd.Series, seed: int) -> np.ndarray:
    """A seeded, order-free number per pseudonym (first 8 bytes of SHA-256 of '<seed>:<person_id>')."""
    return np.array(
        [int.from_bytes(hashlib.sha256(f"{seed}:{p}".encode()).digest()[:8], "big") >> 1 for p in person_id],
        dtype=np.int64,
    )


def _equal_neighbours(*sorted_keys: np.ndarray) -> np.ndarray:
    """Per row of sorted keys: whether it equals the row before or after it on every key (NaN equals NaN)."""
    same = np.ones(max(len(sorted_keys[0]) - 1, 0), dtype=bool)
    for key in sorted_keys:
        equal = key[1:] == key[:-1]
        if key.dtype.kind == "f":
            equal |= np.isnan(key[1:]) & np.isnan(key[:-1])
        same &= equal
    tied = np.zeros(len(sorted_keys[0]), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    return tied


def rank_within(units: pd.Series, risk: np.ndarray, score: np.ndarray, person_id: pd.Series, seed: int) -> np.ndarray:
    """1 = highest risk within each unit; equal calibrated risks (a calibration plateau) ordered by the
    model's uncalibrated score, and exact ties by the seeded hash (computed for the tied rows only: it orders
    nothing else)."""
    unit = pd.factorize(units, sort=True)[0]  # codes in the order of the unit names
    order = np.lexsort((-score, -risk, unit))
    tied = _equal_neighbours(unit[order], risk[order], score[order])
    if tied.any():
        hashes = np.zeros(len(order), dtype=np.int64)
        hashes[order[tied]] = tie_break(person_id.iloc[order[tied]], seed)
        order = np.lexsort((hashes, -score, -risk, unit))
    ranks = np.empty(len(order), dtype=np.int64)
    sorted_units = unit[order]
    starts = np.r_[0, np.flatnonzero(sorted_units[1:] != sorted_units[:-1]) + 1]
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks[order] = position + 1
    return ranks


def select(
    capacity: Capacity, units: pd.Series, risk: np.ndarray, score: np.ndarray, person_id: pd.Series, seed: int
) -> tuple[np.ndarray, np.ndarray, pd.Series, pd.Series]:
    """(rank within unit, listed, cohort size per unit, places per unit): the top `places` of each unit are listed."""
    sizes = units.value_counts().sort_index()
    places = capacity.for_units(sizes)
    rank = rank_within(units, risk, score, person_id, seed)
    return rank, rank <= units.map(places).to_numpy(), sizes, places
