"""MLflow scoring-server payloads (`dataframe_split`, `dataframe_records`) -> a typed feature frame,
and the model's output frame -> prediction records.

Checks the body against the model's input schema (columns, types, finite numbers within each type's range)
and reports the problems with their location, in FastAPI's error shape: {"loc": [...], "msg": ..., "type": ...},
at most MAX_ERRORS within MAX_DETAIL_CHARS. Any body gives a frame or a PayloadError, nothing else.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from riskloop.experiments.served import InputColumn

SPLIT, RECORDS = "dataframe_split", "dataframe_records"
MAX_ERRORS = 100
#: The deepest nesting of arrays and objects in a body: a payload needs 4 (dataframe_split's rows of cells).
MAX_DEPTH = 8
MAX_DETAIL_CHARS = 15_000  # of a 422's errors as JSON
MAX_QUOTED = 100  # characters of a name from the body quoted in an error
MAX_LISTED = 5  # names listed in one error
SCHEMA = "the model's MLflow signature lists its columns (GET /model gives its URI)"
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
    """A refused body: its HTTP status and errors, the first MAX_ERRORS of them within MAX_DETAIL_CHARS of JSON."""

    def __init__(self, status: int, errors: list[dict[str, Any]]):
        super().__init__(errors[0]["msg"])
        self.status, self.errors = status, _bounded(errors)


def _bounded(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first error, and those after it while the list stays within MAX_ERRORS and MAX_DETAIL_CHARS."""
    kept, size = errors[:1], len(json.dumps(errors[0]))
    for error in errors[1:MAX_ERRORS]:
        size += len(json.dumps(error)) + 2
        if size > MAX_DETAIL_CHARS:
            break
        kept.append(error)
    return kept


def _error(loc: list, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _short(text: str) -> str:
    """A name or key from the body as an error quotes it: its first MAX_QUOTED characters, a lone surrogate
    (which JSON's \\ud800 escape can give, and UTF-8 cannot encode) written as its escape."""
    text = text if len(text) <= MAX_QUOTED else f"{text[:MAX_QUOTED]}..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _listed(names: list[str]) -> str:
    """The first MAX_LISTED names, quoted, and how many more."""
    shown = ", ".join(f"'{_short(name)}'" for name in names[:MAX_LISTED])
    return shown if len(names) <= MAX_LISTED else f"{shown} and {len(names) - MAX_LISTED:,} more"


class _Constant:
    """What NaN, Infinity and -Infinity in the body parse to (never a float): Python's json reads them, but JSON
    has no such numbers, so a cell holding one is refused whatever its column."""


CONSTANT = _Constant()


def _finite_as(value: int | float, numpy_type: type[np.floating]) -> bool:
    """Whether a number stays finite as `numpy_type` (10**400 and 1e39 do not as a 32-bit float), converted as
    `_array` converts it; call it under np.errstate(over="ignore")."""
    try:
        return math.isfinite(numpy_type(value))
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
        _error(["params", _short(key)], "Extra inputs are not permitted", "extra_forbidden")
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
        _error([_short(key)], "Extra inputs are not permitted", "extra_forbidden")
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
        extra = [
            _error([SPLIT, _short(key)], "Extra inputs are not permitted", "extra_forbidden")
            for key in payload
            if key not in ("columns", "data", "index")
        ]
        if extra:
            raise PayloadError(422, extra)
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


def _unknown(unknown: list[str]) -> str:
    return f"Columns not in the model's input schema ({len(unknown):,}): {_listed(unknown)}"


def _missing(missing: list[str], required: int, among: str = "") -> str:
    return f"Required columns missing ({len(missing):,} of {required:,}): {_listed(missing)}{among}; {SCHEMA}"


def _split_column_errors(columns: list[str], names: list[str], required: set[str]) -> list[dict[str, Any]]:
    """Duplicated columns, columns the model does not take and missing required ones: one error each."""
    counts, known = Counter(columns), set(names)
    duplicated = [c for c, n in counts.items() if n > 1]
    unknown = [c for c in counts if c not in known]
    missing = [c for c in names if c in required and c not in counts]
    problems = [
        (duplicated, f"Duplicated columns: {_listed(duplicated)}", "value_error"),
        (unknown, _unknown(unknown), "extra_forbidden"),
        (missing, _missing(missing, len(required)), "missing"),
    ]
    return [_error([SPLIT, "columns"], message, kind) for found, message, kind in problems if found]


def _record_column_errors(rows: list[dict], names: list[str], required: set[str]) -> list[dict[str, Any]]:
    """One error for keys the model does not take and one for missing required columns, each at the first
    record with the problem and counting the records that have it (an error per record would be megabytes)."""
    known, errors = set(names), []
    extra = [i for i, row in enumerate(rows) if not known.issuperset(row)]
    if extra:
        unknown = list(dict.fromkeys(key for i in extra for key in rows[i] if key not in known))
        first = next(key for key in rows[extra[0]] if key not in known)
        among = f" (in {len(extra):,} of {len(rows):,} records)"
        errors.append(_error([RECORDS, extra[0], _short(first)], _unknown(unknown) + among, "extra_forbidden"))
    lacking = [i for i, row in enumerate(rows) if not required.issubset(row)]
    if lacking:
        missing = [c for c in names if c in required and c not in rows[lacking[0]]]
        among = f" ({len(lacking):,} of {len(rows):,} records lack some)"
        errors.append(_error([RECORDS, lacking[0], missing[0]], _missing(missing, len(required), among), "missing"))
    return errors


def _cells(
    columns: list[str] | None, rows: list, names: list[str], required: set[str]
) -> tuple[dict[str, list], list[dict[str, Any]]]:
    """The values of each schema column the payload has (a record without one gives None), or the shape and
    column errors; `columns` are those of a split payload, None for records."""
    if columns is not None:  # split
        errors = _split_column_errors(columns, names, required)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                errors.append(
                    _error([SPLIT, "data", i], f"Each row should be a list of {len(columns)} values", "list_type")
                )
        if errors:
            return {}, errors
        position = {c: i for i, c in enumerate(columns)}
        return {c: [row[position[c]] for row in rows] for c in names if c in position}, errors
    errors = [
        _error([RECORDS, i], "Input should be a valid dictionary", "dict_type")
        for i, row in enumerate(rows)
        if not isinstance(row, dict)
    ]
    errors = errors or _record_column_errors(rows, names, required)
    if errors:
        return {}, errors
    return {c: [row.get(c) for row in rows] for c in names if any(c in row for row in rows)}, errors


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; PayloadError if a key is repeated (json.loads would keep the last value silently)."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        duplicated = [key for key, n in Counter(key for key, _ in pairs).items() if n > 1]
        raise PayloadError(422, [_error([], f"Duplicated keys in a JSON object: {_listed(duplicated)}", "value_error")])
    return obj


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
    """The JSON body (in any encoding json.loads reads), with NaN and Infinity parsed to CONSTANT;
    PayloadError if it is not JSON, repeats a key in an object or nests deeper than MAX_DEPTH (found before
    parsing: the parser recurses for each level)."""
    try:
        encoding = json.detect_encoding(raw)
        text = raw.decode(encoding, "surrogatepass")
    except UnicodeDecodeError as exc:
        raise PayloadError(422, [_error([], f"Invalid JSON: {exc}", "json_invalid")]) from exc
    if _depth(raw if encoding == "utf-8" else text.encode("utf-8", "surrogatepass")) > MAX_DEPTH:
        message = f"JSON nested deeper than {MAX_DEPTH} levels (a payload needs 4)"
        raise PayloadError(422, [_error([], message, "value_error")])
    try:
        return json.loads(text, parse_constant=lambda _: CONSTANT, object_pairs_hook=_object)
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
    with np.errstate(over="ignore"):  # once: a cell at a time it would cost more than the check
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
