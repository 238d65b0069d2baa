"""The /invocations payload parser on its own: every JSON body gives a typed frame or a bounded PayloadError."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from riskloop.experiments.served import InputColumn
from riskloop.serving.invocations import MAX_ERRORS, PayloadError, parse_payload

COLUMNS = (
    InputColumn("age", "double", True),
    InputColumn("incidents", "long", True),
    InputColumn("weight", "float", False),
    InputColumn("visits", "integer", False),
    InputColumn("flag", "boolean", False),
    InputColumn("sex", "string", False),
)
GOOD = {"age": 30.0, "incidents": 2}


def refused(raw: bytes | dict, columns: tuple[InputColumn, ...] = COLUMNS) -> list[dict[str, Any]]:
    """The errors of a 422 for a body (a dict is sent as JSON, NaN and Infinity as Python writes them)."""
    body = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(PayloadError) as caught:
        parse_payload(body, columns, max_rows=1000)
    assert caught.value.status == 422
    return caught.value.errors


def records(*rows: dict) -> bytes:
    return json.dumps({"dataframe_records": list(rows)}).encode()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"])
def test_a_non_finite_number_is_refused_naming_its_field(literal):
    body = b'{"dataframe_records": [{"age": 30.0, "incidents": 2}, {"age": %s, "incidents": 1}]}' % literal.encode()
    assert refused(body) == [
        {
            "loc": ["body", "dataframe_records", 1, "age"],
            "msg": "age: Input should be a finite number",
            "type": "finite_number",
        }
    ]
    split = (
        b'{"dataframe_split": {"columns": ["incidents", "weight", "age"], "data": [[1, %s, 3.0]]}}' % literal.encode()
    )
    assert [(e["loc"], e["type"]) for e in refused(split)] == [
        (["body", "dataframe_split", "data", 0, 1], "finite_number")
    ]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_values_anywhere(literal):
    """JSON has no NaN or Infinity: a string column or params holding one is refused as well."""
    assert refused(records({**GOOD, "sex": "__"}).replace(b'"__"', literal.encode()))[0]["type"] == "finite_number"
    params = b'{"dataframe_records": [{"age": 1.0, "incidents": 1}], "params": {"reasons": %s}}' % literal.encode()
    assert refused(params)[0]["loc"] == ["body", "params", "reasons"]


def test_null_is_a_missing_value():
    frame, _ = parse_payload(records({**GOOD, "weight": None}, {"age": None, "incidents": 0}), COLUMNS, 10)
    assert np.isnan(frame["age"][1]) and np.isnan(frame["weight"]).all()


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("incidents", 2**63, "less_than_equal"),
        ("incidents", -(2**63) - 1, "greater_than_equal"),
        ("incidents", 10**400, "less_than_equal"),
        ("incidents", 1e300, "less_than_equal"),
        ("visits", 2**31, "less_than_equal"),
        ("visits", -(2**31) - 1, "greater_than_equal"),
        ("age", 10**400, "finite_number"),
        ("weight", 10**39, "finite_number"),
        ("weight", 1e39, "finite_number"),
    ],
    ids=["2**63", "-2**63-1", "10**400", "1e300", "2**31", "-2**31-1", "double 10**400", "float 10**39", "float 1e39"],
)
def test_a_number_out_of_its_columns_range_is_refused_naming_its_field(field, value, kind):
    errors = refused(records({**GOOD, field: 0}, {**GOOD, field: value}))
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", "dataframe_records", 1, field], kind)]
    assert errors[0]["msg"].startswith(f"{field}: ")


def test_the_ends_of_each_range_are_accepted():
    rows = [{**GOOD, "incidents": 2**63 - 1, "visits": 2**31 - 1}, {**GOOD, "incidents": -(2**63), "visits": -(2**31)}]
    frame, _ = parse_payload(
        records(*rows, {"age": 1.7e308, "incidents": 3.0, "weight": 3.4e38, "visits": 0}), COLUMNS, 10
    )
    assert frame["incidents"].tolist() == [2**63 - 1, -(2**63), 3] and frame["visits"].dtype == np.int32
    assert frame["weight"].dtype == np.float32 and np.isfinite(frame["weight"].dropna()).all()


def test_an_integer_of_more_digits_than_python_reads_is_refused():
    errors = refused(b'{"dataframe_records": [{"age": 1.0, "incidents": %s}]}' % (b"9" * 5000))
    assert [e["type"] for e in errors] == ["json_invalid"] and "digits" in errors[0]["msg"]
    assert "set_int_max_str_digits" not in errors[0]["msg"]


@pytest.mark.parametrize(
    "deep",
    [b"[" * 20_000 + b"]" * 20_000, b'{"a":' * 20_000 + b"1" + b"}" * 20_000, b"[" * 10, b"[" * 20_000],
    ids=["lists", "objects", "unclosed", "unclosed, deep"],
)
def test_json_nested_deeper_than_a_payload_needs_is_refused_before_it_is_parsed(deep):
    body = b'{"dataframe_records": [{"age": 1.0, "incidents": 1, "sex": %s}]}' % deep
    assert refused(body) == [
        {"loc": ["body"], "msg": "JSON nested deeper than 8 levels (a payload needs 4)", "type": "value_error"}
    ]


def test_brackets_and_escaped_quotes_inside_strings_do_not_nest():
    text = '\\"[[[[[[[[[[{{{{{{{{{{\\\\"'  # in JSON, quotes after runs of 3 and 5 backslashes
    frame, _ = parse_payload(records({**GOOD, "sex": text}, {**GOOD, "sex": "]]]]]]]]]"}), COLUMNS, 10)
    assert frame["sex"].tolist() == [text, "]]]]]]]]]"]
    eight = {"dataframe_records": [GOOD], "params": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}
    assert [e["type"] for e in refused(eight)] == ["extra_forbidden"]  # deep enough to parse, and refused as extra


def test_a_utf16_body_is_read_like_json_loads_reads_it():
    frame, _ = parse_payload(json.dumps({"dataframe_records": [GOOD]}).encode("utf-16"), COLUMNS, 10)
    assert frame["incidents"].tolist() == [2]
    deep = ('{"dataframe_records": ' + "[" * 20 + "]" * 20 + "}").encode("utf-16")
    assert refused(deep)[0]["msg"].startswith("JSON nested deeper than 8")


def split(columns: list, *rows: list) -> dict:
    return {"dataframe_split": {"columns": columns, "data": list(rows)}}


def test_columns_the_model_does_not_take_are_refused_by_name():
    long = "x" * 10_000
    (error,) = refused(split(["age", "colour", "incidents", long], [1.0, "red", 2, 3]))
    assert (error["loc"], error["type"]) == (["body", "dataframe_split", "columns"], "extra_forbidden")
    assert "schema (2): " in error["msg"] and "'colour'" in error["msg"] and "x" * 100 in error["msg"]
    assert len(error["msg"]) < 300
    (error,) = refused(records(GOOD, {**GOOD, "colour": "red"}, {**GOOD, "shape": 1, "colour": "blue"}))
    assert (error["loc"], error["type"]) == (["body", "dataframe_records", 1, "colour"], "extra_forbidden")
    assert "'colour', 'shape'" in error["msg"] and "2 of 3 records" in error["msg"]


def test_duplicated_columns_are_refused_by_name():
    (error,) = refused(split(["age", "incidents", "age"], [1.0, 2, 3.0]))
    assert (error["loc"], error["type"]) == (["body", "dataframe_split", "columns"], "value_error")
    assert "'age'" in error["msg"]
    for body in (
        b'{"dataframe_records": [{"age": 1.0, "incidents": 2, "age": 3.0}]}',
        b'{"dataframe_records": [{"age": 1.0, "incidents": 2}], "params": {"reasons": 1, "reasons": 20}}',
        b'{"dataframe_records": [], "dataframe_records": [{"age": 1.0, "incidents": 2}]}',
    ):
        (error,) = refused(body)
        assert error["loc"] == ["body"] and error["type"] == "value_error" and "Duplicated key" in error["msg"]
    assert "'age'" in refused(b'{"dataframe_records": [{"age": 1.0, "incidents": 2, "age": 3.0}]}')[0]["msg"]


def test_split_keys_other_than_columns_data_and_index_are_refused():
    body = {"dataframe_split": {"columns": ["age", "incidents"], "data": [[1.0, 2]], "index": [7], "dtypes": {}}}
    assert [(e["loc"], e["type"]) for e in refused(body)] == [
        (["body", "dataframe_split", "dtypes"], "extra_forbidden")
    ]


WIDE = tuple(InputColumn(f"feature_{i:03d}", "double", True) for i in range(190))


def test_missing_columns_are_one_short_error():
    (error,) = refused(split(["feature_000"], [1.0]), WIDE)
    assert (error["loc"], error["type"]) == (["body", "dataframe_split", "columns"], "missing")
    assert error["msg"].startswith("Required columns missing (189 of 190): 'feature_001', 'feature_002'")
    assert "'feature_005' and 184 more" in error["msg"] and "signature" in error["msg"] and len(error["msg"]) < 300
    rows = [{"feature_000": 1.0}, {f"feature_{i:03d}": 1.0 for i in range(190)}, {}]
    (error,) = refused(records(*rows), WIDE)
    assert (error["loc"], error["type"]) == (["body", "dataframe_records", 0, "feature_001"], "missing")
    assert "(189 of 190)" in error["msg"] and "2 of 3 records" in error["msg"] and len(error["msg"]) < 300


def test_a_refusal_stays_small_whatever_the_names_and_values():
    named = (InputColumn("n" * 5000, "double", True),)
    for body in (
        records(*[{"n" * 5000: "v" * 5000}] * 1000),
        json.dumps(split(["n" * 5000, *[f"{i}" * 3000 for i in range(10)]], [1.0] * 11)).encode(),
        records(*[{"n" * 5000: 1.0, f"{i}" * 3000: 1} for i in range(1000)]),
        json.dumps(split(["n" * 5000], *[[1.0, 2.0]] * 1000)).encode(),
    ):
        with pytest.raises(PayloadError) as caught:
            parse_payload(body, named, 1000)
        assert 1 <= len(caught.value.errors) <= 100 and len(json.dumps({"detail": caught.value.errors})) < 16_000


NAMES = [c.name for c in COLUMNS]
KINDS = {c.name: c.kind for c in COLUMNS}
DTYPES = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32, "boolean": np.bool_}
EDGES = [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**400, 1e39, 1.7e308, 2**1024]
SCALARS = (
    st.none()
    | st.booleans()
    | st.floats()  # NaN and infinities included: json.dumps writes them as NaN and Infinity
    | st.integers()
    | st.sampled_from(EDGES)
    | st.text(max_size=12)
)
#: Values each kind of column takes (null only where it can stand for a missing value).
CELLS = {
    "double": st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
    "float": st.none() | st.floats(width=32, allow_nan=False, allow_infinity=False),
    "long": st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**53), 2**53).map(float),
    "integer": st.integers(-(2**31), 2**31 - 1),
    "boolean": st.booleans(),
    "string": st.none() | st.text(max_size=12),
}
KEYS = st.sampled_from([*NAMES, "\ud800"]) | st.text(max_size=12)  # a lone surrogate: JSON can escape one
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12
)
VALID_RECORD = st.fixed_dictionaries(
    {"age": CELLS["double"], "incidents": CELLS["long"]}, optional={"weight": CELLS["float"], "sex": CELLS["string"]}
)
RECORD = st.fixed_dictionaries(
    {"age": SCALARS, "incidents": SCALARS}, optional={**{name: SCALARS for name in NAMES[2:]}, "other": VALUES}
)
VALID_SPLIT = st.permutations(NAMES[2:]).flatmap(
    lambda rest: st.integers(0, len(rest)).flatmap(
        lambda k: st.lists(st.tuples(*(CELLS[KINDS[c]] for c in ["age", "incidents", *rest[:k]])), max_size=5).map(
            lambda data: {"dataframe_split": {"columns": ["age", "incidents", *rest[:k]], "data": data}}
        )
    )
)
SPLIT_BODY = st.lists(KEYS, max_size=8).flatmap(
    lambda columns: st.lists(st.lists(SCALARS, min_size=len(columns), max_size=len(columns)) | VALUES, max_size=5).map(
        lambda data: {"dataframe_split": {"columns": columns, "data": data}}
    )
)
PARAMS = st.fixed_dictionaries({}, optional={"reasons": st.integers(0, 10) | SCALARS}) | VALUES
BODIES = st.one_of(
    st.fixed_dictionaries({"dataframe_records": st.lists(VALID_RECORD, max_size=5)}, optional={"params": PARAMS}),
    VALID_SPLIT,
    st.fixed_dictionaries({"dataframe_records": st.lists(RECORD | VALUES, max_size=5)}, optional={"params": PARAMS}),
    SPLIT_BODY,
    st.dictionaries(st.sampled_from(["dataframe_split", "dataframe_records", "params", "inputs"]), VALUES, max_size=3),
    VALUES,
).map(lambda body: json.dumps(body).encode())


@settings(max_examples=200, deadline=None)
@given(BODIES | st.binary(max_size=64))
def test_any_body_gives_a_typed_frame_or_a_bounded_refusal(raw):
    """Arbitrary JSON (NaN, infinities and huge integers among it) in and around the payload's shapes, and bytes."""
    try:
        frame, params = parse_payload(raw, COLUMNS, max_rows=4)
    except PayloadError as exc:
        assert exc.status in (413, 422) and 1 <= len(exc.errors) <= MAX_ERRORS
        assert all(set(e) == {"loc", "msg", "type"} and e["loc"][0] == "body" for e in exc.errors)
        assert len(json.dumps({"detail": exc.errors}, ensure_ascii=False).encode()) < 16_000  # as FastAPI sends it
        event(f"refused {exc.errors[0]['type']}")
        return
    event("accepted")
    body = json.loads(raw)
    if "dataframe_records" in body:
        incidents = [row["incidents"] for row in body["dataframe_records"]]
    else:
        incidents = [
            row[body["dataframe_split"]["columns"].index("incidents")] for row in body["dataframe_split"]["data"]
        ]
    assert frame["incidents"].tolist() == incidents and len(frame) <= 4 and set(params) <= {"reasons"}
    assert {"age", "incidents"} <= set(frame.columns) <= set(NAMES)
    for column in COLUMNS:
        if column.name in frame and column.kind in DTYPES:
            values = frame[column.name]
            assert values.dtype == DTYPES[column.kind]
            assert not np.isinf(values.to_numpy(dtype=np.float64)).any()
