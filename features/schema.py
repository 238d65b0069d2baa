"""The data contract (docs/architecture.md, "Data contract") as typed table schemas.

A schema names each column's kind and rules; `features.rules` declares every rule of the contract
from them, and `features.validate` evaluates that declaration and quarantines failing rows with the
rule that failed. Incidents are *involvements*: several rows share an
`incident_id` (victim and perpetrator of one incident), so their key is (incident_id, person_id, role).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from riskloop.features.vocabulary import ATTENTION, ETHNICITIES, INCIDENT_TYPES, ROLES, SEXES, TIERS, YES_NO_UNKNOWN

Kind = Literal["string", "date", "int", "float", "bool"]
#: No record of this contract is dated before this day (an earlier one is a typo or a placeholder).
EARLIEST = date(1900, 1, 1)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "string"
    required: bool = True
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    not_future: bool = False
    earliest: date | None = None
    max_age_years: int | None = None  # a date at most this many years before today (a birth date)


@dataclass(frozen=True)
class Reference:
    """Every value of `column` must be a valid key of `table`."""

    column: str
    table: str
    table_column: str


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    references: tuple[Reference, ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


AREAS = TableSchema(
    "areas",
    (
        Column("area_id"),
        Column("local_authority"),
        Column("population", "int", minimum=0),
        Column("deprivation_rank", "int", minimum=1),
    ),
    key=("area_id",),
)
PEOPLE = TableSchema(
    "people",
    (
        Column("person_id"),
        Column("area_id"),
        Column("birth_date", "date", not_future=True, earliest=EARLIEST, max_age_years=120),
        Column("sex", allowed=SEXES),
        Column("ethnicity", allowed=ETHNICITIES),
        Column("disability", required=False, nullable=True, allowed=YES_NO_UNKNOWN),
        Column("household_id", required=False, nullable=True),
    ),
    key=("person_id",),
    references=(Reference("area_id", "areas", "area_id"),),
)
INCIDENTS = TableSchema(
    "incidents",
    (
        Column("incident_id"),
        Column("person_id"),
        Column("date", "date", not_future=True, earliest=EARLIEST),
        Column("type", allowed=INCIDENT_TYPES),
        Column("role", allowed=ROLES),
        Column("harm", "float", minimum=0),
        Column("attention", required=False, nullable=True, allowed=ATTENTION),
    ),
    key=("incident_id", "person_id", "role"),
    references=(Reference("person_id", "people", "person_id"),),
)
INTERVENTIONS = TableSchema(
    "interventions",
    (
        Column("intervention_id"),
        Column("person_id"),
        Column("programme"),
        Column("start_date", "date", not_future=True, earliest=EARLIEST),
        Column("tier", allowed=TIERS),
        Column("end_date", "date", required=False, nullable=True, not_future=True, earliest=EARLIEST),
        Column("completed", "bool", required=False, nullable=True),
    ),
    key=("intervention_id",),
    references=(Reference("person_id", "people", "person_id"),),
)

#: In dependency order: a table's references point to tables before it.
CONTRACT: tuple[TableSchema, ...] = (AREAS, PEOPLE, INCIDENTS, INTERVENTIONS)
TABLE_NAMES: tuple[str, ...] = tuple(s.name for s in CONTRACT)
PROTECTED_PEOPLE_COLUMNS: tuple[str, ...] = ("sex", "ethnicity", "disability")
