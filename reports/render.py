"""One Jinja2 environment for every report: templates shipped as package data, autoescaping on.

Data values reach templates as plain values or as `Table`s of formatted strings, never as markup;
figures are PNG bytes that the `data_uri` filter embeds, so every report is one self-contained file.
"""

from __future__ import annotations

import base64
import math
import numbers
import re
from dataclasses import dataclass
from datetime import date

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from riskloop.reports.disclosure import SUPPRESSED
from riskloop.reports.words import words

#: Names of counts of people, shown as whole numbers (731, never 731.000) in columns and measure tables.
COUNTS = frozenset({"n", "test_n", "k", "selected", "listed_by_both_models"})


def whole(name: str, value):
    """`value` as an int when `name` is a count of people; otherwise unchanged."""
    return int(value) if name in COUNTS and isinstance(value, (int, float)) and float(value).is_integer() else value


@dataclass(frozen=True)
class Table:
    """A table ready to show: column headings in words, cells formatted as text."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]


def format_value(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


#: An interval as the fairness tables show it: "0.62-0.86".
INTERVAL = re.compile(r"\d[\d.,]*-\d[\d.,]*")


def _number_like(v) -> bool:
    if isinstance(v, str):
        return v in (SUPPRESSED, "-") or bool(INTERVAL.fullmatch(v))
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _numeric(column: pd.Series) -> bool:
    """Numbers, counting a suppressed cell ("*") and an interval ("0.62-0.86") as one: such columns are
    right-aligned and never wrapped."""
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    return len(column) > 0 and column.map(_number_like).all()


def table(frame: pd.DataFrame, index: bool = False, digits: int = 3) -> Table:
    """A DataFrame as a `Table`; with `index`, its index becomes the first column."""
    if index:
        frame = frame.reset_index()
    numeric = tuple(_numeric(frame[c]) for c in frame.columns)
    rows = tuple(
        tuple(
            format_value(whole(str(c), v.item() if hasattr(v, "item") else v), digits)
            for c, v in zip(frame.columns, row)
        )
        for row in frame.itertuples(index=False)
    )
    return Table(tuple(words(str(c)) for c in frame.columns), rows, numeric)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


ENVIRONMENT = Environment(
    loader=PackageLoader("riskloop.reports", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters.update(data_uri=data_uri, words=words, value=format_value)


def render(template: str, **context) -> str:
    """Render a report template; every page gets `today`."""
    return ENVIRONMENT.get_template(template).render(today=date.today().isoformat(), **context)
