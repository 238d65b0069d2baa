"""A partnership's mapping file: its extracts and how they become the data contract, as typed objects.

YAML validated by pydantic, with one-line errors naming the key path, as experiment configs are
(`mapping.yaml: incidents[0].values.type: 'burglary' is not a contract type (domestic_abuse, ...)`). The
mapping declares the sources (files or database tables and queries), and per contract table the feeds that
fill it: which source column becomes which contract column, constants, value maps into the contract's
vocabulary with the values deliberately left out (`exclude:`), date formats, harm weights from a lookup
table by offence code, who the person of each row is (identity columns, for linkage only), the linkage
settings and where the partnership key is. Columns are checked against the sources by
`transform.check_columns` once the sources are read, before any row is transformed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from riskloop.artifacts.declared import BesideFile, key_path, read_declaration
from riskloop.features.schema import AREAS, INCIDENTS, INTERVENTIONS, TableSchema
from riskloop.features.vocabulary import ATTENTION, ETHNICITIES, INCIDENT_TYPES, ROLES, SEXES, TIERS
from riskloop.ingest.linkage import LinkageSettings
from riskloop.ingest.pseudonym import KEY_ENV


class MappingError(ValueError):
    """A mapping file that cannot be used, with the key or file at fault (one line)."""


#: The contract vocabulary a value map into each column must use.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "type": INCIDENT_TYPES,
    "role": ROLES,
    "attention": ATTENTION,
    "tier": TIERS,
    "completed": ("true", "false"),
    "sex": SEXES,
    "ethnicity": ETHNICITIES,
}
#: The person attributes a cluster of linked records reconciles into one contract person.
PersonAttribute = Literal["birth_date", "sex", "ethnicity", "area_id"]
PERSON_ATTRIBUTES: tuple[PersonAttribute, ...] = ("birth_date", "sex", "ethnicity", "area_id")
#: Contract columns that hold dates (parsed with the mapping's date formats).
DATE_COLUMNS = frozenset({"date", "start_date", "end_date", "birth_date"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Database(_Strict):
    """A table or a query in a database; the SQLAlchemy URL is read from an environment variable."""

    url_env: str
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Database:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class Source(_Strict):
    """One extract: a CSV, Parquet or Excel file (`sheet` for Excel), or a database table or query."""

    file: BesideFile | None = None
    sheet: str | None = None
    database: Database | None = None

    @model_validator(mode="after")
    def _one(self) -> Source:
        if (self.file is None) == (self.database is None):
            raise ValueError("give exactly one of 'file' or 'database'")
        if self.file is not None and self.file.suffix.lower() not in (".csv", ".parquet", ".xlsx"):
            raise ValueError(f"'file' must be .csv, .parquet or .xlsx, got {self.file.name}")
        if self.sheet is not None and (self.file is None or self.file.suffix.lower() != ".xlsx"):
            raise ValueError("'sheet' is for an Excel (.xlsx) file")
        return self


class Join(_Strict):
    """Each row of the feed's source takes the columns of the one row of `source` with the same `column`."""

    source: str
    column: str


class Person(_Strict):
    """Who a row is about: the source's own person id and the identity columns (used for linkage only).

    Give `first_name` and `last_name`, or `full_name` ("Forename Surname" or "SURNAME, Forename").
    """

    id: str
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    ethnicity: str | None = None
    area_id: str | None = None

    @model_validator(mode="after")
    def _names(self) -> Person:
        if self.full_name is not None and (self.first_name or self.last_name):
            raise ValueError("give 'full_name' or 'first_name' and 'last_name', not both")
        return self

    def columns(self) -> dict[str, str]:
        """Attribute -> source column, for the attributes given."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Feed(_Strict):
    """One source filling one contract table."""

    source: str
    join: Join | None = None
    #: the columns whose values identify a record (incident, intervention); the contract id is their keyed hash
    record_id: list[str] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict)  # contract column -> source column
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)  # contract column -> {source value: contract}
    exclude: dict[str, list[str]] = Field(default_factory=dict)  # contract column -> source values not ingested
    harm_code: str | None = None  # the source column looked up in the harm weights
    person: Person | None = None

    def source_columns(self) -> dict[str, str]:
        """Every source column the feed names -> where it is named (for the one-line missing-column error)."""
        named = {c: f"record_id[{i}]" for i, c in enumerate(self.record_id)}
        named |= {c: f"columns.{k}" for k, c in self.columns.items()}
        if self.harm_code:
            named[self.harm_code] = "harm_code"
        if self.person:
            named |= {c: f"person.{k}" for k, c in self.person.columns().items()}
        return named


class HarmWeights(_Strict):
    """The partnership's harm lookup table: a weight per offence code (e.g. the ONS Crime Severity Score)."""

    source: str
    code: str
    weight: str


class Key(_Strict):
    """Where the partnership key is: a key file if given, else the environment variable."""

    env: str = KEY_ENV
    file: BesideFile | None = None


class PeopleRules(_Strict):
    """Per person attribute, the sources to trust first; otherwise a cluster's most frequent value wins."""

    precedence: dict[PersonAttribute, list[str]] = Field(default_factory=dict)


class Mapping(_Strict):
    sources: dict[str, Source]
    date_formats: list[str] = Field(min_length=1)
    harm_weights: HarmWeights | None = None
    areas: list[Feed] = Field(min_length=1)
    incidents: list[Feed] = Field(min_length=1)
    interventions: list[Feed] = Field(default_factory=list)
    people: PeopleRules = Field(default_factory=PeopleRules)
    linkage: LinkageSettings = Field(default_factory=lambda: LinkageSettings.model_validate({}))
    key: Key = Field(default_factory=Key)

    def feeds(self) -> list[tuple[str, int, Feed]]:
        """(contract table, position, feed) for every feed, in the contract's order."""
        return [
            (table, i, feed)
            for table in ("areas", "incidents", "interventions")
            for i, feed in enumerate(getattr(self, table))
        ]


SCHEMAS: dict[str, TableSchema] = {"areas": AREAS, "incidents": INCIDENTS, "interventions": INTERVENTIONS}
#: contract columns a feed fills another way than `columns`/`constants`
_DERIVED = {"incidents": {"incident_id", "person_id"}, "interventions": {"intervention_id", "person_id"}}


def _message(error: ErrorDetails) -> str:
    """One pydantic error as 'key.path: why' (union branches and validator wrappers left out of the path)."""
    loc = [k for k in error["loc"] if not (isinstance(k, str) and ("[" in k or k.startswith("function-")))]
    *parents, key = loc or [""]
    if error["type"] in ("extra_forbidden", "missing") and isinstance(key, str):
        what = f"{'missing' if error['type'] == 'missing' else 'unknown'} key '{key}'"
        return f"{key_path(parents)}: {what}" if parents else what
    msg = error["msg"].removeprefix("Value error, ")
    shown = "" if error["type"] == "value_error" else f", got {error['input']!r}"
    return f"{key_path(loc)}: {msg[0].lower()}{msg[1:]}{shown}" if loc != [""] else msg


def _feed_problem(table: str, feed: Feed, mapping: Mapping) -> str | None:
    schema = SCHEMAS[table]
    names = {c.name for c in schema.columns}
    if feed.source not in mapping.sources:
        return f"source: '{feed.source}' is not one of the declared sources ({', '.join(mapping.sources)})"
    if feed.join is not None and feed.join.source not in mapping.sources:
        return f"join.source: '{feed.join.source}' is not one of the declared sources"
    for key in [*feed.columns, *feed.constants]:
        if key not in names or key in _DERIVED.get(table, ()):
            return f"columns: '{key}' is not a column the feed can fill in {table}"
    person_keys = set(feed.person.columns()) if feed.person else set()
    for key, mapped in feed.values.items():
        if key not in feed.columns and key not in person_keys:
            return f"values.{key}: '{key}' is not a mapped column of this feed"
        allowed = VOCABULARY.get(key)
        wrong = [v for v in mapped.values() if allowed is not None and v not in allowed]
        if wrong:
            return f"values.{key}: '{wrong[0]}' is not a contract {key} ({', '.join(allowed or ())})"
    for key in feed.exclude:
        if key not in feed.columns and key not in person_keys:
            return f"exclude.{key}: '{key}' is not a mapped column of this feed"
    filled = set(feed.columns) | set(feed.constants) | _DERIVED.get(table, set())
    if feed.harm_code:
        if mapping.harm_weights is None:
            return "harm_code: needs the mapping's harm_weights"
        filled.add("harm")
    lacking = [c for c in schema.required if c not in filled]
    if lacking:
        return f"columns: nothing fills the required {table} column '{lacking[0]}'"
    if table != "areas":
        if feed.person is None:
            return "person: missing key 'person' (who each row is about)"
        if not feed.record_id:
            return "record_id: name the columns that identify a record"
        if feed.person.full_name is None and (feed.person.first_name is None or feed.person.last_name is None):
            return "person: give 'first_name' and 'last_name', or 'full_name'"
    elif feed.person is not None:
        return "person: areas are not about a person"
    return None


def _problem(mapping: Mapping) -> str | None:
    """The first declared thing that parses but cannot work, as 'key: why', or None."""
    for table, i, feed in mapping.feeds():
        why = _feed_problem(table, feed, mapping)
        if why:
            return f"{table}[{i}].{why}"
    if mapping.harm_weights is not None and mapping.harm_weights.source not in mapping.sources:
        return f"harm_weights.source: '{mapping.harm_weights.source}' is not one of the declared sources"
    for attribute, sources in mapping.people.precedence.items():
        unknown = [s for s in sources if s not in mapping.sources]
        if unknown:
            return f"people.precedence.{attribute}: '{unknown[0]}' is not one of the declared sources"
    return None


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file; files in it are relative to the mapping file."""
    path = Path(path)
    _, raw = read_declaration(path, MappingError, "mapping")
    try:
        mapping = Mapping.model_validate(raw, context={"base": path.parent.resolve()})
    except ValidationError as exc:
        errors = exc.errors()  # a typo is both an unknown key and a missing one: name the typo
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        raise MappingError(f"{path.name}: {_message(first)}") from None
    problem = _problem(mapping)
    if problem:
        raise MappingError(f"{path.name}: {problem}")
    return mapping
