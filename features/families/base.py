"""What every feature family is: it declares its columns (`specs`) and computes them (`compute`), in
the same order. The catalogue asks the families for their specs; the snapshot builder for their values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from riskloop.features.catalogue import FeatureSpec
from riskloop.features.vocabulary import HIGH_HARM_TYPES, INCIDENT_TYPES, OFFENDING_ROLES, ROLES

if TYPE_CHECKING:
    from riskloop.features.snapshot import PreparedData, SnapshotConfig

OFFENDING = np.isin(np.array(ROLES), OFFENDING_ROLES)  # per role code: perpetrator or suspect
VICTIM = ROLES.index("victim")
DOMESTIC_ABUSE = INCIDENT_TYPES.index("domestic_abuse")
_HIGH_HARM_TYPE = np.isin(np.array(INCIDENT_TYPES), HIGH_HARM_TYPES)


def high_harm(d: PreparedData, rows: np.ndarray, threshold: float) -> np.ndarray:
    """Per incident row: harm above the threshold, or a high-harm type."""
    return (d.inc_harm[rows] > threshold) | _HIGH_HARM_TYPE[d.inc_type[rows]]


@dataclass(frozen=True)
class Layout:
    """What decides a catalogue's columns: the data's programmes, the count windows, household links."""

    programmes: tuple[str, ...]
    windows: tuple[int, ...]
    households: bool


@dataclass(frozen=True)
class Cohort:
    """The cohort at T, as every family reads it: its people (`people`, sorted person codes), the
    incident rows in the lookback (`rows`) with each row's position in the cohort (`pos`)."""

    d: PreparedData
    t: int
    config: SnapshotConfig
    people: np.ndarray
    rows: np.ndarray
    pos: np.ndarray

    @property
    def n(self) -> int:
        return len(self.people)

    @property
    def area(self) -> np.ndarray:
        return self.d.person_area[self.people]

    @property
    def age(self) -> np.ndarray:
        return (self.t - self.d.birth_day[self.people]) / 365.25


class FeatureFamily(ABC):
    """One family of features: its columns' specs and their values, in the same order."""

    def applies(self, layout: Layout) -> bool:
        """Whether a data set of this layout has the family (all but households always)."""
        return True

    @abstractmethod
    def specs(self, layout: Layout) -> list[FeatureSpec]:
        """The family's columns, in snapshot order."""

    @abstractmethod
    def compute(self, cohort: Cohort) -> Iterator[tuple[str, np.ndarray]]:
        """Each column of `specs` and its values, in the same order, computed as it is asked for: the snapshot
        copies each into its block before the next is computed, so a family's columns are never all held."""
