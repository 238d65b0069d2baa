"""Validate a data set against the contract: every row is used or quarantined with its reason.

`validate_tables` is pure: DataFrames in; typed DataFrames, the rejected rows with their reasons and a
report out. It evaluates the declared rules of `features.rules` (`rule_failures` evaluates one rule, and
serves the Spark engine too). Reading a data set folder and writing its quarantine is
`riskloop.artifacts.dataset`'s; input files are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd

from riskloop.features.io import DataError
from riskloop.features.keys import key_isin, key_positions, repeated_keys
from riskloop.features.rules import CELL_KINDS, QUOTED, Rule, table_rules
from riskloop.features.schema import CONTRACT, Column, Reference, TableSchema

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass
class TableReport:
    table: str
    read: int
    valid: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.read == self.valid + self.quarantined


@dataclass
class ValidationReport:
    tables: dict[str, TableReport]

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables.values())

    def require_rows(self, source: str, *tables: str) -> None:
        """Raise DataError naming the first of `tables` left with no valid rows (`source`: the data set)."""
        for name in tables:
            counts = self.tables[name]
            if not counts.valid:
                raise DataError(
                    f"{source}: no valid rows in {name} ({counts.read:,} read, {counts.quarantined:,} quarantined)"
                )


@dataclass
class Dataset:
    """A validated data set: typed tables, its fingerprint, coverage end and validation report."""

    areas: pd.DataFrame
    people: pd.DataFrame
    incidents: pd.DataFrame
    interventions: pd.DataFrame
    fingerprint: str
    end: date
    report: ValidationReport
    source: str = ""
    quarantine: dict[str, pd.DataFrame] = field(default_factory=dict)  # per table: the rejected rows, with `reason`

    def require_rows(self, *tables: str) -> None:
        """Raise DataError naming the first of `tables` left with no valid rows."""
        self.report.require_rows(self.source or "data set", *tables)


class ParsedColumn(NamedTuple):
    """A column's typed values, and its non-empty cells that did not parse or are not finite numbers."""

    values: pd.Series
    unparseable: pd.Series
    non_finite: pd.Series


def _parse_dates(cells: pd.Series, textual: bool) -> pd.Series:
    """Dates and date-times; a time zone is converted to UTC and then dropped."""
    values = pd.to_datetime(cells, errors="coerce", format="ISO8601" if textual else None, utc=True)
    return values.dt.tz_localize(None).astype("datetime64[s]")


def _parse_numbers(cells: pd.Series, textual: bool, kind: str) -> tuple[pd.Series, pd.Series]:
    """(numbers, mask of inf/nan cells); non-finite cells and non-whole ints become missing."""
    values = pd.to_numeric(cells, errors="coerce")
    non_finite = values.isin([np.inf, -np.inf])
    if textual:
        non_finite |= cells.str.fullmatch(r"[+-]?nan", case=False).fillna(False).astype(bool)
    values = values.where(~non_finite)
    if kind == "int":
        values = values.where(values.isna() | (values == np.floor(values)))
    return values, non_finite


def _parse_bools(text: pd.Series) -> pd.Series:
    """true/1/yes/y/t and false/0/no/n/f in any case; anything else is missing."""
    lowered = text.str.lower()
    values = pd.Series(pd.NA, index=text.index, dtype="boolean")
    values[lowered.isin(_TRUE)] = True
    values[lowered.isin(_FALSE)] = False
    return values


def _stripped_text(raw: pd.Series) -> pd.Series:
    """Text of the cells, stripped; a whole number stored as a float (as pandas writes an integer column that
    had a missing value) reads as the integer it is, so that an id 10000297.0 is the key '10000297'."""
    if pd.api.types.is_float_dtype(raw):
        numbers = raw.to_numpy(dtype=float, na_value=np.nan)
        whole = np.isfinite(numbers) & (numbers == np.floor(numbers)) & (np.abs(numbers) < 2.0**53)
        text = raw.astype("string[pyarrow]")
        text[whole] = pd.array(numbers[whole].astype(np.int64)).astype("string[pyarrow]")
        return text
    return raw.astype("string[pyarrow]").str.strip()


def _wrong_kind(raw: pd.Series, column: Column) -> bool:
    """A column stored as a type its values cannot be read from: numbers or booleans for a date (an integer
    such as 20170131 would otherwise be read as nanoseconds since 1970), booleans for a number."""
    if column.kind == "date":
        return pd.api.types.is_numeric_dtype(raw)  # booleans included
    return column.kind in ("int", "float") and pd.api.types.is_bool_dtype(raw)


def _parse_column(raw: pd.Series, column: Column) -> ParsedColumn:
    """Type a raw column; text cells are stripped of surrounding whitespace first. A column stored as a type
    its kind cannot be read from (`_wrong_kind`) has every present cell unparseable: the type rule quarantines
    those rows, quoting each value."""
    textual = raw.dtype == object or pd.api.types.is_string_dtype(raw)
    cells = _stripped_text(raw) if textual else raw
    present = (cells != "").fillna(False).astype(bool) if textual else raw.notna()
    non_finite = pd.Series(False, index=raw.index)
    if _wrong_kind(raw, column):
        values = pd.Series(None, index=raw.index, dtype="datetime64[s]" if column.kind == "date" else float)
    elif column.kind == "date":
        values = _parse_dates(cells, textual)
    elif column.kind in ("int", "float"):
        values, non_finite = _parse_numbers(cells, textual, column.kind)
    elif column.kind == "bool" and pd.api.types.is_bool_dtype(raw):
        values = raw.astype("boolean")
    else:  # strings, and booleans written as text
        text = cells if textual else _stripped_text(raw)
        values = _parse_bools(text) if column.kind == "bool" else text.where(text != "")
    return ParsedColumn(values, present & values.isna() & ~non_finite, non_finite)


class ParsedTable(NamedTuple):
    """A table's raw cells (index 0..n-1), its parsed columns, and each reference's parent rows once a rule has
    looked them up (`parent_rows`)."""

    raw: pd.DataFrame
    columns: dict[str, ParsedColumn]
    looked_up: dict[Reference, np.ndarray]

    @property
    def typed(self) -> dict[str, pd.Series]:
        return {name: column.values for name, column in self.columns.items()}

    def parent_rows(self, ref: Reference, parents: dict[str, pd.DataFrame]) -> np.ndarray:
        """Each row's position among the valid rows of `ref.table` (-1 where its value is missing or not a key
        there): looked up once for the rules that follow `ref` (its reference rule, and a `before` rule across
        tables), since hashing millions of keys is most of their cost. The positions are kept, so a parsed
        table is checked against one `parents` only (as `validate_table` does)."""
        if ref not in self.looked_up:
            values = self.columns[ref.column].values
            self.looked_up[ref] = key_positions(values, parents[ref.table][ref.table_column])
        return self.looked_up[ref]


class Failure(NamedTuple):
    """The rows that fail a rule and their reasons (a string Series aligned with the rows)."""

    rule: Rule
    rows: pd.Series
    reasons: pd.Series


def parse_table(schema: TableSchema, raw: pd.DataFrame, source: str = "") -> ParsedTable:
    """Type the schema's columns of `raw` (index 0..n-1); DataError naming the table and column for bytes that
    are not UTF-8 text (a Parquet binary column)."""
    columns = {}
    for column in schema.columns:
        if column.name in raw.columns:
            try:
                columns[column.name] = _parse_column(raw[column.name], column)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{source or schema.name}: column '{column.name}' holds bytes that are not UTF-8 text "
                    f"({exc.reason} at byte {exc.start} of a value)"
                ) from exc
    return ParsedTable(raw, columns, {})


def _lookup(positions: np.ndarray, column: pd.Series) -> np.ndarray:
    """`column` read at `positions` (missing at -1)."""
    padded = pd.concat([column, pd.Series([None], dtype=column.dtype)], ignore_index=True)
    return padded.to_numpy()[positions]


def _cell_failing(rule: Rule, parsed: ParsedColumn, today: date) -> pd.Series:
    values = parsed.values
    if rule.kind == "type":
        return parsed.unparseable
    if rule.kind == "finite":
        return parsed.non_finite
    if rule.kind == "missing":
        return values.isna() & ~parsed.unparseable & ~parsed.non_finite
    if rule.kind == "allowed":
        return values.notna() & ~key_isin(values, rule.allowed)
    if rule.kind == "minimum":
        return values < rule.limit
    if rule.kind == "not_future":
        return values >= pd.Timestamp(today) + pd.Timedelta(days=1)
    if rule.kind == "earliest":
        return values < pd.Timestamp(rule.limit)
    return values < pd.Timestamp(today) - pd.DateOffset(years=rule.limit)  # max_age


def _failing(rule: Rule, table: ParsedTable, parents: dict[str, pd.DataFrame], today: date) -> pd.Series:
    """The rows that fail `rule` (a boolean Series; missing counts as passing)."""
    if rule.kind in CELL_KINDS:
        return _cell_failing(rule, table.columns[rule.columns[0]], today)
    typed, ref = table.typed, rule.reference
    if rule.kind == "duplicate":
        return repeated_keys(pd.DataFrame({k: typed[k] for k in rule.columns}))
    if rule.kind == "reference":
        ref = rule.target
        return typed[ref.column].notna() & (table.parent_rows(ref, parents) < 0)
    other = (
        typed[rule.columns[1]].to_numpy()
        if ref is None
        # before
        else _lookup(table.parent_rows(ref, parents), parents[ref.table][rule.columns[1]])
    )
    return pd.Series(typed[rule.columns[0]].to_numpy() < other, index=table.raw.index)


def rule_failures(rule: Rule, table: ParsedTable, parents: dict[str, pd.DataFrame], today: date) -> Failure | None:
    """Where `rule` fails in `table` and why (None where no row fails). `parents` holds the valid rows of the
    table `rule.reference` points to (a row-local rule reads none). The value a reason names is the raw cell,
    for a reference the value not found."""
    rows = _failing(rule, table, parents, today).fillna(False).astype(bool)
    if not rows.any():
        return None
    before, after = rule.reason_parts(today)
    if not rule.names_value:
        return Failure(rule, rows, pd.Series(before, index=table.raw.index))
    shown = (
        table.typed[rule.columns[0]].astype("string[pyarrow]").fillna("")
        if rule.kind == "reference"
        else table.raw[rule.columns[0]].astype("string[pyarrow]")
    )
    return Failure(rule, rows, before + _quoted(shown, after, rule.cut_parts(today)))


def _quoted(shown: pd.Series, after: str, cut: tuple[str, str]) -> pd.Series:
    """Each value and the reason's text after it; a value longer than `QUOTED` characters is cut there and
    followed by its length (`cut`: `Rule.cut_parts`)."""
    quoted = shown + after
    lengths = shown.str.len()
    long = (lengths > QUOTED).fillna(False).astype(bool)
    if long.any():
        length = lengths[long].map("{:,}".format).astype("string[pyarrow]")
        quoted[long] = shown[long].str.slice(0, QUOTED) + cut[0] + length + cut[1]
    return quoted


def require_columns(schema: TableSchema, columns, source: str = "") -> None:
    """Raise DataError naming the first missing required column, and what the header suggests went wrong: names
    with spaces around them, or a whole header in one name (a file separated by something other than commas)."""
    missing = [c for c in schema.required if c not in columns]
    if not missing:
        return
    names = [str(c) for c in columns]
    hint = ""
    if missing[0] in {n.strip() for n in names}:
        hint = ": the header's names have spaces around them (write 'a,b', not 'a, b')"
    elif len(names) == 1 and (separator := next((s for s in (";", "\t", "|") if s in names[0]), None)):
        hint = f": the header is one name holding {separator!r}; riskloop reads comma-separated files"
    raise DataError(f"{source or schema.name}: missing required column '{missing[0]}'{hint}")


def validate_table(
    schema: TableSchema, raw: pd.DataFrame, parents: dict[str, pd.DataFrame], today: date, source: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame, TableReport]:
    """Return (valid typed rows, quarantined raw rows with `row` and `reason`, report): every rule of the
    table in `features.rules`, against the valid rows of its `parents`.

    Raises DataError naming the first missing required column.
    """
    require_columns(schema, raw.columns, source)
    raw = raw.reset_index(drop=True)
    table = parse_table(schema, raw, source)
    failures = [
        failure
        for rule in table_rules(schema.name)
        if rule.applies(raw.columns)
        if (failure := rule_failures(rule, table, parents, today)) is not None
    ]
    bad = np.zeros(len(raw), dtype=bool)
    for failure in failures:
        bad |= failure.rows.to_numpy()
    reasons = pd.Series("", index=raw.index[bad], dtype=object)
    counts: dict[str, int] = {}
    for failure in failures:
        hit, text = failure.rows[bad], failure.reasons[bad]
        reasons[hit] = np.where(reasons[hit] == "", text[hit], reasons[hit] + "; " + text[hit])
        counts[failure.rule.label] = counts.get(failure.rule.label, 0) + int(failure.rows.sum())
    quarantine = raw[bad].copy()
    quarantine.insert(0, "row", np.flatnonzero(bad) + 1)
    quarantine["reason"] = reasons.to_numpy()
    valid = pd.DataFrame({name: values[~bad].reset_index(drop=True) for name, values in table.typed.items()})
    report = TableReport(schema.name, len(raw), len(valid), int(bad.sum()), counts)
    return valid, quarantine, report


def validate_tables(
    raw: dict[str, pd.DataFrame], today: date, sources: dict[str, str] | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], ValidationReport]:
    """Validate the four contract tables in dependency order (a row whose parent was rejected is rejected)."""
    sources = sources or {}
    valid: dict[str, pd.DataFrame] = {}
    quarantined: dict[str, pd.DataFrame] = {}
    reports: dict[str, TableReport] = {}
    for schema in CONTRACT:
        valid[schema.name], quarantined[schema.name], reports[schema.name] = validate_table(
            schema, raw[schema.name], valid, today, sources.get(schema.name, "")
        )
    return valid, quarantined, ValidationReport(reports)
