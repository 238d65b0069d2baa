"""MLflow scoring-server payloads (`dataframe_split`, `dataframe_records`) -> a typed feature frame,
and the model's output frame -> prediction records.

Checks against the model's input schema and reports every problem with its location, in
FastAPI's error shape: {"loc": [...], "msg": ..., "type": ...}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pandas as pd

from riskloop.experiments.served import InputColumn

SPLIT, RECORDS = "dataframe_split", "dataframe_records"
MAX_ERRORS = 100
#: The deepest nesting of arrays and objects in a body: a payload needs 4 (dataframe_split's rows of cells).
MAX_DEPTH = 8
FLOAT_TYPES: dict[str, type[np.floating]] = {"double": np.float64, "float": np.float32}
INT_TYPES: dict[str, type[np.signedinteger]] = {"long": np.int64, "integer": np.int32}
#: The Python types a JSON cell of each kind may have (None is JSON null, a missing value) before its range is checked.
CELL_TYPES: dict[str, set[type]] = {
    **dict.fromkeys(FLOAT_TYPES, {int, float, type(None)}),
    **dict.fromkeys(INT_TYPES, {int, float}),
    "boolean": {bool},
    "string": {str, type(None)},
}
FINITE = ("Input should be a finite number", "finite_number")


class PayloadError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]):
        super().__init__(errors[0]["msg"])
        self.status, self.errors = status, errors[:MAX_ERRORS]


def _error(loc: list, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


class _Constant:
    """NaN, Infinity or -Infinity in the body: Python's json reads them, but JSON has no such numbers, so they
    are parsed to this (never to a float) and refused wherever they are."""

    def __init__(self, literal: str):
        self.literal = literal


def _finite_as(value: int | float, numpy_type: type[np.floating]) -> bool:
    """Whether a number stays finite as `numpy_type` (10**400 and 1e39 do not as a 32-bit float); the same
    conversion as `_array`'s."""
    try:
        with np.errstate(over="ignore"):
            return bool(np.isfinite(np.array([value], dtype=numpy_type))[0])
    except OverflowError:
        return False


def _cell_error(value: Any, kind: str) -> tuple[str, str] | None:
    """(message, type) if a JSON value cannot be a cell of `kind`; None (JSON null) is a missing value."""
    if isinstance(value, _Constant):
        return FINITE
    if kind in FLOAT_TYPES:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "Input should be a valid number", "float_type"
        return None if _finite_as(value, FLOAT_TYPES[kind]) else FINITE
    if kind in INT_TYPES:
        whole = isinstance(value, float) and value.is_integer()
        if not (whole or (isinstance(value, int) and not isinstance(value, bool))):
            return "Input should be a valid integer", "int_type"
        info = np.iinfo(INT_TYPES[kind])
        if value > info.max:
            return f"Input should be less than or equal to {info.max}", "less_than_equal"
        if value < info.min:
            return f"Input should be greater than or equal to {info.min}", "greater_than_equal"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else ("Input should be a valid boolean", "bool_type")
    if kind == "string":
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


def _depth(text: bytes) -> int:
    """How deep arrays and objects nest in UTF-8 JSON text, brackets inside strings aside, in a few passes in C
    over the bytes: escaped backslashes, then escaped quotes, are blanked (pairs from the left, as JSON reads a
    run of backslashes), so the quotes left start and end strings."""
    data = np.frombuffer(text.replace(b"\\\\", b"__").replace(b'\\"', b"__"), dtype=np.uint8)
    quotes = np.flatnonzero(data == ord('"'))

    def outside_strings(positions: np.ndarray) -> np.ndarray:
        return positions[np.searchsorted(quotes, positions) % 2 == 0]

    opens = outside_strings(np.flatnonzero((data == ord("[")) | (data == ord("{"))))
    closes = outside_strings(np.flatnonzero((data == ord("]")) | (data == ord("}"))))
    return int((np.arange(1, opens.size + 1) - np.searchsorted(closes, opens)).max(initial=0))


def _load(raw: bytes) -> Any:
    """The JSON body (in any encoding json.loads reads), with NaN and Infinity parsed to `_Constant`;
    PayloadError if it is not JSON or nests deeper than MAX_DEPTH, found before parsing (the parser recurses
    for each level)."""
    try:
        encoding = json.detect_encoding(raw)
        text = raw.decode(encoding, "surrogatepass")
    except UnicodeDecodeError as exc:
        raise PayloadError(422, [_error([], f"Invalid JSON: {exc}", "json_invalid")]) from exc
    if _depth(raw if encoding == "utf-8" else text.encode("utf-8", "surrogatepass")) > MAX_DEPTH:
        message = f"JSON nested deeper than {MAX_DEPTH} levels (a payload needs 4)"
        raise PayloadError(422, [_error([], message, "value_error")])
    try:
        return json.loads(text, parse_constant=_Constant)
    except json.JSONDecodeError as exc:
        raise PayloadError(422, [_error([], f"Invalid JSON: {exc}", "json_invalid")]) from exc
    except ValueError as exc:  # int() refuses integers of more than sys.get_int_max_str_digits() digits
        limit = sys.get_int_max_str_digits()
        message = f"Invalid JSON: a number has more than {limit:,} digits"
        raise PayloadError(422, [_error([], message, "json_invalid")]) from exc


def _array(values: list, kind: str) -> Any:
    """The column as the schema types it if every value is valid for `kind` (a numpy array, or the values as
    they are for a type without a numpy match, left to pandas and MLflow), else None: vectorised, so a valid
    column costs no Python work per cell."""
    types = set(map(type, values))
    if kind not in CELL_TYPES:
        return None if _Constant in types else values
    if not types <= CELL_TYPES[kind]:
        return None
    try:
        if kind in FLOAT_TYPES:
            with np.errstate(over="ignore"):
                array = np.array(values, dtype=FLOAT_TYPES[kind])  # null -> NaN; too large -> inf
            return None if np.isinf(array).any() else array
        if kind in INT_TYPES:
            array = np.array(values, dtype=np.int64)  # OverflowError out of range
            if float in types and not np.array_equal(array, np.array(values, dtype=np.float64)):
                return None  # a float that is not whole
            info = np.iinfo(INT_TYPES[kind])
            in_range = array.min() >= info.min and array.max() <= info.max
            return array.astype(INT_TYPES[kind]) if in_range else None
    except OverflowError:
        return None
    return np.array(values, dtype=bool if kind == "boolean" else object)


def _column(values: list, kind: str) -> tuple[Any, list[tuple[int, tuple[str, str]]]]:
    """The column as the schema types it (see `_array`), or None and the (row, (message, type)) of its first
    MAX_ERRORS bad values."""
    array = _array(values, kind)
    if array is not None:
        return array, []
    problems = []
    for i, value in enumerate(values):
        problem = _cell_error(value, kind)
        if problem:
            problems.append((i, problem))
            if len(problems) == MAX_ERRORS:
                break
    return None, problems


def parse_payload(raw: bytes, columns: tuple[InputColumn, ...], max_rows: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The feature frame typed by the model's input schema and the request's params; PayloadError
    (413 or 422) with the problems found (at most MAX_ERRORS)."""
    fmt, given, rows, params = _rows(_load(raw), max_rows)
    types = {c.name: c.kind for c in columns}
    cells, errors = _cells(given, rows, list(types), {c.name for c in columns if c.required})
    position = {name: j for j, name in enumerate(given or ())}
    frame = {}
    for name, values in cells.items():
        frame[name], problems = _column(values, types[name])
        for i, (message, kind) in problems:
            loc = [SPLIT, "data", i, position[name]] if given is not None else [RECORDS, i, name]
            errors.append(_error(loc, f"{name}: {message}", kind))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise PayloadError(422, errors)
    return pd.DataFrame(frame, index=pd.RangeIndex(len(rows))), params


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts of Python values (a few times faster than `to_dict("records")` on Arrow strings)."""
    columns = list(frame.columns)
    return [dict(zip(columns, row)) for row in zip(*(frame[c].tolist() for c in columns))]
