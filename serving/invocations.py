"""MLflow scoring-server payloads (`dataframe_split`, `dataframe_records`) -> a typed feature frame,
and the model's output frame -> prediction records.

Checks against the model's input schema and reports every problem with its location, in
FastAPI's error shape: {"loc": [...], "msg": ..., "type": ...}.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from riskloop.experiments.served import InputColumn

SPLIT, RECORDS = "dataframe_split", "dataframe_records"
MAX_ERRORS = 100
NUMPY_TYPES = {
    "double": np.float64,
    "float": np.float32,
    "long": np.int64,
    "integer": np.int32,
    "boolean": np.bool_,
    "string": object,
}


class PayloadError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]):
        super().__init__(errors[0]["msg"])
        self.status, self.errors = status, errors[:MAX_ERRORS]


def _error(loc: list, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _type_error(value: Any, dtype: str) -> tuple[str, str] | None:
    """(message, type) if a JSON value cannot be a cell of `dtype`; None (JSON null) is a missing value."""
    if dtype in ("double", "float"):
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        return None if ok else ("Input should be a valid number", "float_type")
    if dtype in ("long", "integer"):
        whole = isinstance(value, float) and value.is_integer()
        ok = (isinstance(value, int) and not isinstance(value, bool)) or whole
        return None if ok else ("Input should be a valid integer", "int_type")
    if dtype == "boolean":
        return None if isinstance(value, bool) else ("Input should be a valid boolean", "bool_type")
    if dtype == "string":
        return None if value is None or isinstance(value, str) else ("Input should be a valid string", "string_type")
    return None  # other types are left to MLflow's schema enforcement


#: The most reasons a row may ask for: a person's record gives a handful, and each one costs a column per row.
MAX_REASONS = 10


def _params_errors(params: dict[str, Any]) -> list[dict[str, Any]]:
    """`params` may hold only `reasons`, a whole number from 0 to MAX_REASONS."""
    errors = [
        _error(["params", key], "Extra inputs are not permitted", "extra_forbidden")
        for key in params
        if key != "reasons"
    ]
    reasons = params.get("reasons", 0)
    if isinstance(reasons, bool) or not isinstance(reasons, int):
        errors.append(_error(["params", "reasons"], "Input should be a valid integer", "int_type"))
    elif not 0 <= reasons <= MAX_REASONS:
        errors.append(
            _error(["params", "reasons"], f"Input should be from 0 to {MAX_REASONS} reasons", "less_than_equal")
        )
    return errors


def _rows(body: Any, max_rows: int) -> tuple[str, list[str] | None, list, dict[str, Any]]:
    """(format, columns of a split payload or None, rows, params) after the envelope's checks."""
    if not isinstance(body, dict):
        raise PayloadError(
            422, [_error([], f"Input should be a JSON object with '{SPLIT}' or '{RECORDS}'", "dict_type")]
        )
    errors = [
        _error([key], "Extra inputs are not permitted", "extra_forbidden")
        for key in body
        if key not in (SPLIT, RECORDS, "params")
    ]
    formats = [key for key in (SPLIT, RECORDS) if key in body]
    if len(formats) != 1:
        errors.append(
            _error([], f"Give exactly one of '{SPLIT}' and '{RECORDS}'", "missing" if not formats else "value_error")
        )
    params = body.get("params", {})
    if not isinstance(params, dict):
        errors.append(_error(["params"], "Input should be a valid dictionary", "dict_type"))
    else:
        errors += _params_errors(params)
    if errors:
        raise PayloadError(422, errors)
    fmt = formats[0]
    payload = body[fmt]
    if fmt == SPLIT:
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("columns"), list)
            or not isinstance(payload.get("data"), list)
        ):
            raise PayloadError(
                422, [_error([SPLIT], "Input should be an object with 'columns' and 'data' lists", "dict_type")]
            )
        columns, rows = payload["columns"], payload["data"]
        if not all(isinstance(c, str) for c in columns):
            raise PayloadError(422, [_error([SPLIT, "columns"], "Column names should be strings", "string_type")])
    else:
        if not isinstance(payload, list):
            raise PayloadError(422, [_error([RECORDS], "Input should be a valid list", "list_type")])
        columns, rows = None, payload
    if len(rows) > max_rows:
        raise PayloadError(
            413, [_error([fmt], f"{len(rows):,} rows is more than the limit of {max_rows:,}", "too_long")]
        )
    if not rows:
        raise PayloadError(422, [_error([fmt], "At least one row is needed", "too_short")])
    return fmt, columns, rows, params


def _cells(
    columns: list[str] | None, rows: list, names: list[str], required: set[str]
) -> tuple[dict[str, list], list[dict[str, Any]]]:
    """The values of each schema column the payload has (a record without one gives None), or the shape errors;
    `columns` are those of a split payload, None for records."""
    errors = []
    if columns is not None:  # split
        position = {c: i for i, c in enumerate(columns)}
        errors += [
            _error([SPLIT, "columns"], f"Missing feature column '{c}'", "missing")
            for c in names
            if c in required and c not in position
        ]
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                errors.append(
                    _error([SPLIT, "data", i], f"Each row should be a list of {len(columns)} values", "list_type")
                )
        if errors:
            return {}, errors
        return {c: [row[position[c]] for row in rows] for c in names if c in position}, errors
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(_error([RECORDS, i], "Input should be a valid dictionary", "dict_type"))
        else:
            errors += [
                _error([RECORDS, i, c], "Field required", "missing") for c in names if c in required and c not in row
            ]
    if errors:
        return {}, errors
    return {c: [row.get(c) for row in rows] for c in names if any(c in row for row in rows)}, errors


def parse_payload(raw: bytes, columns: tuple[InputColumn, ...], max_rows: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The feature frame typed by the model's input schema and the request's params; PayloadError
    (413 or 422) with every problem found."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(422, [_error([], f"Invalid JSON: {exc}", "json_invalid")]) from exc
    fmt, given, rows, params = _rows(body, max_rows)
    types = {c.name: c.kind for c in columns}
    cells, errors = _cells(given, rows, list(types), {c.name for c in columns if c.required})
    for name, values in cells.items():
        for i, value in enumerate(values):
            problem = _type_error(value, types[name])
            if problem:
                loc = [SPLIT, "data", i, given.index(name)] if given is not None else [RECORDS, i, name]
                errors.append(_error(loc, f"{name}: {problem[0]}", problem[1]))
    if errors:
        raise PayloadError(422, errors)
    return pd.DataFrame({name: _column(values, types[name]) for name, values in cells.items()}), params


def _column(values: list, dtype: str) -> Any:
    """A column as the schema types it; a type without a numpy match is left to pandas and MLflow."""
    numpy_type = NUMPY_TYPES.get(dtype)
    return values if numpy_type is None else np.array(values, dtype=numpy_type)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts of Python values (a few times faster than `to_dict("records")` on Arrow strings)."""
    columns = list(frame.columns)
    return [dict(zip(columns, row)) for row in zip(*(frame[c].tolist() for c in columns))]
