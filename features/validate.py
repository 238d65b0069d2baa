"""Validate a data set against the contract: every row is used or quarantined with its reason.

`validate_tables` is pure: DataFrames in; typed DataFrames, the rejected rows with their reasons and a
report out. Reading a data set folder and writing its quarantine is `riskloop.artifacts.dataset`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskloop.features.io import (
    DataError,
)
from riskloop.features.schema import CONTRACT, Column, TableSchema



def _arrow(values) -> pa.Array:
    return pa.array(pd.Series(values).astype("string[pyarrow]").array)


def _isin(values: pd.Series, allowed) -> pd.Series:
    """`values.isin(allowed)` by Arrow's hash lookup (pandas' is slow on millions of strings)."""
    hit = pc.is_in(_arrow(values), value_set=_arrow(pd.Series(list(allowed), dtype=object)))
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)


def _positions(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Row position of each value in `keys` (-1 if absent)."""
    found = pc.index_in(_arrow(values), value_set=_arrow(keys))
    return found.fill_null(-1).to_numpy(zero_copy_only=False)
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
        for name in tables:
            counts = self.report.tables[name]
            if not counts.valid:
                raise DataError(f"{self.source or 'data set'}: no valid rows in {name} "
                                f"({counts.read:,} read, {counts.quarantined:,} quarantined)")


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
    return raw.astype("string[pyarrow]").str.strip()


def _parse_column(raw: pd.Series, column: Column) -> ParsedColumn:
    """Type a raw column; text cells are stripped of surrounding whitespace first."""
    textual = raw.dtype == object or pd.api.types.is_string_dtype(raw)
    cells = _stripped_text(raw) if textual else raw
    present = (cells != "").fillna(False).astype(bool) if textual else raw.notna()
    non_finite = pd.Series(False, index=raw.index)
    if column.kind == "date":
        values = _parse_dates(cells, textual)
    elif column.kind in ("int", "float"):
        values, non_finite = _parse_numbers(cells, textual, column.kind)
    elif column.kind == "bool" and pd.api.types.is_bool_dtype(raw):
        values = raw.astype("boolean")
    else:  # strings, and booleans written as text
        text = cells if textual else _stripped_text(raw)
        values = _parse_bools(text) if column.kind == "bool" else text.where(text != "")
    return ParsedColumn(values, present & values.isna() & ~non_finite, non_finite)


Reason = str | Callable[[], pd.Series]
Fail = Callable[[pd.Series, Reason], None]


def _column_rules(column: Column, parsed: ParsedColumn, raw: pd.Series, today: date, fail: Fail) -> None:
    """One column's own rules: parses, present, allowed, in range, a plausible date."""
    name, values = column.name, parsed.values

    def shown() -> pd.Series:
        return raw.astype("string[pyarrow]")

    fail(parsed.unparseable, lambda: f"{name}: not a valid {column.kind} ('" + shown() + "')")
    fail(parsed.non_finite, lambda: f"{name}: not a finite number ('" + shown() + "')")
    if not column.nullable:
        fail(values.isna() & ~parsed.unparseable & ~parsed.non_finite, f"{name}: missing")
    if column.allowed is not None:
        fail(values.notna() & ~_isin(values, column.allowed),
             lambda: f"{name}: '" + shown() + f"' is not one of {', '.join(column.allowed)}")
    if column.minimum is not None:
        fail(values < column.minimum, lambda: f"{name}: " + shown() + f" is below {column.minimum:g}")
    if column.not_future:
        fail(values >= pd.Timestamp(today) + pd.Timedelta(days=1),
             lambda: f"{name}: " + shown() + f" is after today ({today.isoformat()})")
    if column.earliest is not None:
        fail(values < pd.Timestamp(column.earliest),
             lambda: f"{name}: " + shown() + f" is before {column.earliest.isoformat()}")
    if column.max_age_years is not None:
        fail(values < pd.Timestamp(today) - pd.DateOffset(years=column.max_age_years),
             lambda: f"{name}: " + shown() + f" gives an age over {column.max_age_years} years today ({today.isoformat()})")


def duplicate_reason(schema: TableSchema) -> str:
    return f"duplicate {'/'.join(schema.key)}: the same key is on more than one row"


def reference_reason_parts(column: str, table: str) -> tuple[str, str]:
    """(text before, text after) the missing value in a reference rule's reason."""
    return f"{column}: '", f"' not found in valid {table}"


def reference_reason(column: str, table: str, values: pd.Series) -> pd.Series:
    before, after = reference_reason_parts(column, table)
    return before + values.astype("string[pyarrow]").fillna("") + after


BEFORE_BIRTH = "date: before the person's birth_date"
END_BEFORE_START = "end_date: before start_date"


def row_failures(schema: TableSchema, raw: pd.DataFrame, parsed: dict[str, ParsedColumn], today: date,
                 fail: Fail) -> None:
    """The rules that read one row only: each column's own rules (the `late` rule comes in `late_failures`)."""
    for column in schema.columns:
        if column.name in parsed:
            _column_rules(column, parsed[column.name], raw[column.name], today, fail)


def late_failures(schema: TableSchema, typed: dict[str, pd.Series], fail: Fail) -> None:
    """The row-local rule checked after the key and reference rules (its place in a row's reasons)."""
    if schema.name == "interventions" and "end_date" in typed:
        fail(typed["end_date"] < typed["start_date"], END_BEFORE_START)


def _rule_failures(schema: TableSchema, raw: pd.DataFrame, parsed: dict[str, ParsedColumn],
                   parents: dict[str, pd.DataFrame], today: date) -> list[tuple[pd.Series, pd.Series]]:
    """(mask, reason) pairs; a reason is a string Series aligned with the rows."""
    failures: list[tuple[pd.Series, pd.Series]] = []
    fail = failure_collector(failures, raw.index)
    row_failures(schema, raw, parsed, today, fail)
    typed = {name: column.values for name, column in parsed.items()}

    key = pd.DataFrame({k: typed[k] for k in schema.key})
    fail(key.duplicated(keep=False) & key.notna().all(axis=1), duplicate_reason(schema))

    for ref in schema.references:
        known = parents[ref.table][ref.table_column]
        values = typed[ref.column]
        fail(values.notna() & ~_isin(values, known), lambda: reference_reason(ref.column, ref.table, values))

    if schema.name == "incidents":
        people = parents["people"]
        where = _positions(typed["person_id"], people["person_id"])
        # position -1 (a person not in people, or no people at all) reads the appended NaT: never before birth
        birth = np.append(people["birth_date"].to_numpy(), np.datetime64("NaT", "s"))[where]
        fail(pd.Series(typed["date"].to_numpy() < birth, index=raw.index), BEFORE_BIRTH)
    late_failures(schema, typed, fail)
    return failures


def failure_collector(failures: list[tuple[pd.Series, pd.Series]], index: pd.Index) -> Fail:
    def fail(mask: pd.Series, reason: Reason) -> None:
        """Record a rule; a reason naming row values is a callable, rendered only if rows fail."""
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            text = reason() if callable(reason) else pd.Series(reason, index=index)
            failures.append((mask, text))
    return fail


def parse_table(schema: TableSchema, raw: pd.DataFrame) -> dict[str, ParsedColumn]:
    return {c.name: _parse_column(raw[c.name], c) for c in schema.columns if c.name in raw.columns}


def require_columns(schema: TableSchema, columns, source: str = "") -> None:
    """Raise DataError naming the first missing required column."""
    missing = [c for c in schema.required if c not in columns]
    if missing:
        raise DataError(f"{source or schema.name}: missing required column '{missing[0]}'")


def validate_table(schema: TableSchema, raw: pd.DataFrame, parents: dict[str, pd.DataFrame],
                   today: date, source: str = "") -> tuple[pd.DataFrame, pd.DataFrame, TableReport]:
    """Return (valid typed rows, quarantined raw rows with `row` and `reason`, report).

    Raises DataError naming the first missing required column.
    """
    require_columns(schema, raw.columns, source)
    raw = raw.reset_index(drop=True)
    parsed = parse_table(schema, raw)
    failures = _rule_failures(schema, raw, parsed, parents, today)
    bad = np.zeros(len(raw), dtype=bool)
    for mask, _ in failures:
        bad |= mask.to_numpy()
    reasons = pd.Series("", index=raw.index[bad], dtype=object)
    counts: dict[str, int] = {}
    for mask, text in failures:
        hit = mask[bad]
        reasons[hit] = np.where(reasons[hit] == "", text[bad][hit], reasons[hit] + "; " + text[bad][hit])
        rule = text[mask].iloc[0].split(":")[0]
        counts[rule] = counts.get(rule, 0) + int(mask.sum())
    quarantine = raw[bad].copy()
    quarantine.insert(0, "row", np.flatnonzero(bad) + 1)
    quarantine["reason"] = reasons.to_numpy()
    valid = pd.DataFrame({name: column.values[~bad].reset_index(drop=True) for name, column in parsed.items()})
    report = TableReport(schema.name, len(raw), len(valid), int(bad.sum()), counts)
    return valid, quarantine, report


def validate_tables(raw: dict[str, pd.DataFrame], today: date,
                    sources: dict[str, str] | None = None
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], ValidationReport]:
    """Validate the four contract tables in dependency order (a row whose parent was rejected is rejected)."""
    sources = sources or {}
    valid: dict[str, pd.DataFrame] = {}
    quarantined: dict[str, pd.DataFrame] = {}
    reports: dict[str, TableReport] = {}
    for schema in CONTRACT:
        valid[schema.name], quarantined[schema.name], reports[schema.name] = validate_table(
            schema, raw[schema.name], valid, today, sources.get(schema.name, ""))
    return valid, quarantined, ValidationReport(reports)
