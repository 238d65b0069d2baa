"""The scoring API: auth and scopes, lists, live scoring, limits, audit log, a real uvicorn process."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import stat
import subprocess
import sys
import threading
import warnings
from datetime import date
from pathlib import Path
from urllib.parse import quote

import httpx
import jsonschema
import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import hand_manifest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from riskloop.artifacts.scores import MANIFEST_ADAPTER, UnitCounts
from riskloop.cli import app as cli
from riskloop.serving import api
from riskloop.serving.api import ServeError, create_app
from riskloop.serving.audit_log import verify
from riskloop.serving.ratelimit import RateLimiter, failure_key
from riskloop.serving.server import wait_until_healthy
from riskloop.serving.settings import ServeSettings
from riskloop.serving.tokens import create_token, hash_token, load_tokens, revoke_token

REPO = Path(__file__).parent.parent
FEATURES = pd.DataFrame({"age": [30.0, 45.0, 19.0, 62.5], "priors": [0.0, 3.0, 1.0, 7.0]})
SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("area_id", pa.string()),
        ("local_authority", pa.string()),
        ("unit", pa.string()),
        ("rank", pa.int64()),
        ("listed", pa.bool_()),
        ("risk", pa.float64()),
        ("band", pa.int64()),
        ("band_label", pa.string()),
        ("prevention_tier", pa.string()),
        ("reason_1", pa.string()),
        ("reason_2", pa.string()),
        ("reason_3", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("data_fingerprint", pa.string()),
        ("as_of", pa.date32()),
        ("scored_at", pa.string()),
    ]
)
MANIFEST = hand_manifest(
    date(2025, 7, 1), {"Cardiff": UnitCounts(15, 10, 10), "W02a": UnitCounts(4, 3, 3), "W02b": UnitCounts(4, 3, 3)}
)


def person(pseudonym, la, area, unit, rank, listed, risk) -> dict:
    return {
        "person_id": pseudonym,
        "area_id": area,
        "local_authority": la,
        "unit": unit,
        "rank": rank,
        "listed": listed,
        "risk": risk,
        "band": max(1, int(risk * 20) + 1),
        "band_label": "high" if risk > 0.6 else "low",
        "prevention_tier": "tertiary" if listed else "primary",
        "reason_1": "prior violence" if listed else "",
        "reason_2": "recent harm" if listed else "",
        "reason_3": "",
        "model_name": "riskloop-escalation",
        "model_version": "3",
        "run_id": "run-abc",
        "data_fingerprint": "fp-123",
        "as_of": date(2025, 7, 1),
        "scored_at": "2025-07-02T03:00:00+00:00",
    }


def score_rows() -> list[dict]:
    """Cardiff ranked as one unit (15 people, 10 listed); Swansea ranked within two areas (4 each, 3 listed)."""
    rows = [
        person(f"pz-cdf-{r:02d}", "Cardiff", f"W01{r % 2}", "Cardiff", r, r <= 10, 0.95 - 0.05 * r)
        for r in range(1, 16)
    ]
    for area, top in (("W02a", 0.8), ("W02b", 0.9)):
        rows += [person(f"pz-swa-{area}-{r}", "Swansea", area, area, r, r <= 3, top - 0.1 * r) for r in range(1, 5)]
    return rows


@pytest.fixture(scope="module")
def scores_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scores")
    pq.write_table(pa.Table.from_pylist(score_rows(), schema=SCHEMA), folder / "prioritisation.parquet")
    (folder / "manifest.json").write_bytes(MANIFEST_ADAPTER.dump_json(MANIFEST))
    return folder


@pytest.fixture(scope="module")
def model_uri(tracking_dir):
    """The toy pyfunc, registered in the session's SQLite store, with a metric on its run."""
    uri = f"sqlite:///{tracking_dir / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name("api-toy")
        experiment_id = (
            experiment.experiment_id
            if experiment
            else mlflow.create_experiment("api-toy", artifact_location=(tracking_dir / "mlruns").as_uri())
        )
        example_output = pd.DataFrame(
            {"risk": [0.1], "band": [3], "band_label": ["low"], "reason_1": ["a"], "reason_2": ["b"], "reason_3": [""]}
        )
        with warnings.catch_warnings():  # the integer output `band` is never missing
            warnings.filterwarnings("ignore", message=".*integer column.*")
            signature = infer_signature(FEATURES, example_output, params={"reasons": 0})
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_metric("roc_auc", 0.71)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(REPO / "tests" / "toy_model.py"),
                signature=signature,
                input_example=FEATURES.head(2),
                registered_model_name="riskloop-api-toy",
                pip_requirements=["mlflow"],
            )
        yield f"models:/riskloop-api-toy/{info.registered_model_version}"
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("tokens") / "tokens.jsonl"
    return path, {
        name: create_token(path, name, scopes)
        for name, scopes in (("cardiff", ("Cardiff",)), ("wales", ("all",)), ("burst", ("Swansea",)))
    }


def settings(tmp_path, scores_dir, tokens, **overrides) -> ServeSettings:
    return ServeSettings(
        **{"scores": scores_dir, "tokens": tokens[0], "audit_log": tmp_path / "audit.jsonl", **overrides}
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory, scores_dir, tokens, model_uri):
    """Scores and model, with a rate limit no test reaches."""
    app = create_app(
        settings(tmp_path_factory.mktemp("app"), scores_dir, tokens, model_uri=model_uri, rate=10_000.0, burst=10_000)
    )
    with TestClient(app) as c:
        yield c


def auth(tokens, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[1][name]}"}


def test_tokens_file_keeps_only_hashes(tmp_path):
    path = tmp_path / "t.jsonl"
    token = create_token(path, "ops", ("Cardiff", "Newport"))
    text = path.read_text()
    assert token not in text and hash_token(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_tokens(path)[0].scopes == ("Cardiff", "Newport")
    runner = CliRunner()
    created = runner.invoke(cli, ["token", "create", "--name", "all-wales", "--scope", "all", "--tokens", str(path)])
    assert created.exit_code == 0 and created.stdout.strip() not in path.read_text()
    listed = runner.invoke(cli, ["token", "list", "--tokens", str(path)])
    assert "ops" in listed.stdout and "Cardiff, Newport" in listed.stdout and hash_token(token) not in listed.stdout
    duplicate = runner.invoke(cli, ["token", "create", "--name", "ops", "--scope", "all", "--tokens", str(path)])
    assert duplicate.exit_code == 2 and "already exists" in duplicate.output
    assert runner.invoke(cli, ["token", "revoke", "--name", "ops", "--tokens", str(path)]).exit_code == 0
    assert [t.name for t in load_tokens(path)] == ["all-wales"]
    (tmp_path / "a-file").write_text("")
    unreadable = runner.invoke(cli, ["token", "list", "--tokens", str(tmp_path / "a-file" / "t.jsonl")])
    assert unreadable.exit_code == 2 and "cannot read the tokens file" in unreadable.output
    assert "Traceback" not in unreadable.output


def test_missing_or_bad_token_is_401(client, tokens):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Basic {tokens[1]['wales']}"}):
        for method, path in (
            ("GET", "/people/pz-cdf-01"),
            ("GET", "/lists/Cardiff"),
            ("GET", "/model"),
            ("POST", "/invocations"),
        ):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_token_reads_only_its_local_authorities(client, tokens):
    own = client.get("/people/pz-cdf-02", headers=auth(tokens, "cardiff"))
    assert own.status_code == 200
    body = own.json()
    assert body["local_authority"] == "Cardiff" and body["rank"] == 2 and body["listed"] is True
    assert body["reasons"] == ["prior violence", "recent harm"] and body["model_version"] == "3"
    assert body["as_of"] == "2025-07-01" and body["risk"] == pytest.approx(0.85)
    assert client.get("/people/pz-swa-W02a-1", headers=auth(tokens, "cardiff")).status_code == 403
    assert client.get("/lists/Swansea", headers=auth(tokens, "cardiff")).status_code == 403
    assert client.get("/lists/Cardiff", headers=auth(tokens, "cardiff")).status_code == 200
    assert client.get("/people/pz-swa-W02a-1", headers=auth(tokens, "wales")).status_code == 200
    assert client.get("/lists/Swansea", headers=auth(tokens, "wales")).status_code == 200
    unlisted = client.get("/people/pz-cdf-12", headers=auth(tokens, "cardiff")).json()
    assert unlisted["listed"] is False and unlisted["reasons"] == []


def test_unknown_person_or_local_authority_is_404(client, tokens):
    assert client.get("/people/pz-nobody", headers=auth(tokens, "wales")).status_code == 404
    assert client.get("/lists/Atlantis", headers=auth(tokens, "wales")).status_code == 404


def test_a_scoped_token_cannot_tell_a_pseudonym_elsewhere_from_a_made_up_one(client, tokens):
    elsewhere = client.get("/people/pz-swa-W02a-1", headers=auth(tokens, "cardiff"))
    made_up = client.get("/people/pz-nobody", headers=auth(tokens, "cardiff"))
    assert (elsewhere.status_code, elsewhere.content) == (made_up.status_code, made_up.content)
    assert elsewhere.status_code == 403
    assert client.get("/lists/Atlantis", headers=auth(tokens, "cardiff")).status_code == 403


def test_lists_are_paged_in_rank_order(client, tokens):
    pages = [
        client.get("/lists/Cardiff", params={"page": p, "page_size": 4}, headers=auth(tokens, "cardiff")).json()
        for p in (1, 2, 3, 4)
    ]
    assert [(p["total"], p["pages"], len(p["people"])) for p in pages] == [
        (10, 3, 4),
        (10, 3, 4),
        (10, 3, 2),
        (10, 3, 0),
    ]
    assert [person["rank"] for p in pages for person in p["people"]] == list(range(1, 11))
    swansea = client.get("/lists/Swansea", headers=auth(tokens, "wales")).json()
    # ranked within areas: equal ranks across areas, higher risk first
    assert [p["person_id"] for p in swansea["people"]] == [
        "pz-swa-W02b-1",
        "pz-swa-W02a-1",
        "pz-swa-W02b-2",
        "pz-swa-W02a-2",
        "pz-swa-W02b-3",
        "pz-swa-W02a-3",
    ]
    for bad in ({"page_size": 501}, {"page": 0}):
        assert client.get("/lists/Cardiff", params=bad, headers=auth(tokens, "cardiff")).status_code == 422


def test_health_needs_no_auth(client):
    assert client.get("/health").json() == {"status": "ok", "model_loaded": True, "scores_as_of": "2025-07-01"}


def test_model_describes_scores_and_live_model(client, tokens, model_uri):
    body = client.get("/model", headers=auth(tokens, "cardiff")).json()
    assert body["scores"]["name"] == "riskloop-escalation" and body["scores"]["version"] == "3"
    assert body["scores"]["run_id"] == "run-abc" and body["scores"]["contract"] == json.loads(
        MANIFEST.contract.to_json()
    )
    assert body["scores"]["data_fingerprint"] == "fp-123" and body["scores"]["counts"]["listed"] == 16
    assert body["live"]["uri"] == model_uri and body["live"]["name"] == "riskloop-api-toy"
    assert body["live"]["version"] == model_uri.rsplit("/", 1)[1] and body["live"]["metrics"] == {"roc_auc": 0.71}


def test_model_served_by_alias_names_its_version(tmp_path, scores_dir, tokens, model_uri, tracking_dir, monkeypatch):
    """A model served as models:/NAME@ALIAS (as the README serves the champion) once made /model a 500: MLflow
    gives the alias's version as an int."""
    name, version = model_uri.removeprefix("models:/").split("/")
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.setenv(variable, f"sqlite:///{tracking_dir / 'mlflow.db'}")
    MlflowClient(f"sqlite:///{tracking_dir / 'mlflow.db'}").set_registered_model_alias(name, "champion", version)
    served = settings(tmp_path, scores_dir, tokens, model_uri=f"models:/{name}@champion")
    with TestClient(create_app(served)) as c:
        response = c.get("/model", headers=auth(tokens, "cardiff"))
    assert response.status_code == 200 and response.json()["live"]["version"] == version


def test_invocations_split_and_records_match_the_pyfunc(client, tokens, model_uri):
    split = {"dataframe_split": {"columns": list(FEATURES.columns), "data": FEATURES.values.tolist()}}
    records = {"dataframe_records": FEATURES.to_dict("records")}
    by_split = client.post("/invocations", json=split, headers=auth(tokens, "cardiff"))
    by_records = client.post("/invocations", json=records, headers=auth(tokens, "burst"))
    assert by_split.status_code == by_records.status_code == 200
    assert by_split.json() == by_records.json()
    expected = mlflow.pyfunc.load_model(model_uri).predict(FEATURES, params={"reasons": 3})
    got = pd.DataFrame(by_split.json()["predictions"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert list(got.columns) == ["risk", "band", "band_label", "reason_1", "reason_2", "reason_3"]
    whole_numbers = {"dataframe_records": [{"age": 30, "priors": 0}]}  # JSON integers in double columns
    assert client.post("/invocations", json=whole_numbers, headers=auth(tokens, "cardiff")).json()["predictions"][0][
        "risk"
    ] == pytest.approx(got["risk"][0])


def test_invocations_over_the_limits_is_413(client, tokens):
    headers = auth(tokens, "cardiff")
    big = {"dataframe_records": [{"age": 30.0, "priors": 1.0, "note": "x" * 1000}] * 1100}
    assert client.post("/invocations", json=big, headers=headers).status_code == 413
    rows = {"dataframe_split": {"columns": ["age", "priors"], "data": [[30.0, 1.0]] * 1001}}
    response = client.post("/invocations", json=rows, headers=headers)
    assert response.status_code == 413 and "1,001 rows" in response.json()["detail"][0]["msg"]
    streamed = (b"x" * 65536 for _ in range(20))  # chunked: no Content-Length to trust
    response = client.post("/invocations", content=streamed, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_invocations_invalid_input_is_422_with_field_errors(client, tokens):
    headers = auth(tokens, "cardiff")

    def errors(**kwargs):
        response = client.post("/invocations", headers={**headers, "Content-Type": "application/json"}, **kwargs)
        assert response.status_code == 422
        return [(e["loc"], e["type"]) for e in response.json()["detail"]]

    assert errors(content=b'{"dataframe_split": ') == [(["body"], "json_invalid")]
    assert errors(json={"dataframe_split": {"columns": ["age"], "data": [[30.0]]}}) == [
        (["body", "dataframe_split", "columns"], "missing")
    ]
    assert errors(json={"dataframe_records": [{"age": 30.0, "priors": 1.0}, {"age": "old", "priors": True}]}) == [
        (["body", "dataframe_records", 1, "age"], "float_type"),
        (["body", "dataframe_records", 1, "priors"], "float_type"),
    ]
    assert errors(json={"dataframe_split": {"columns": ["priors", "age"], "data": [[1.0, "x"], [2.0]]}}) == [
        (["body", "dataframe_split", "data", 1], "list_type")
    ]
    assert errors(json={"dataframe_records": [{"age": 1.0}], "inputs": []}) == [(["body", "inputs"], "extra_forbidden")]
    one = [{"age": 1.0, "priors": 1.0}]
    assert errors(json={"params": {"reasons": "three"}, "dataframe_records": one}) == [
        (["body", "params", "reasons"], "int_type")
    ]
    # one request asking for 10**9 reasons a row once took the server past 12 GB: refused before any work
    for huge in (11, 10**6, 10**9, 10**30, -1):
        assert errors(json={"params": {"reasons": huge}, "dataframe_records": one}) == [
            (["body", "params", "reasons"], "less_than_equal")
        ]
    assert errors(json={"params": {"reasons": True, "top": 3}, "dataframe_records": one}) == [
        (["body", "params", "top"], "extra_forbidden"),
        (["body", "params", "reasons"], "int_type"),
    ]
    assert client.post("/invocations", content=b"age=30", headers=headers).status_code == 415


def test_invocations_without_a_model_is_503(tmp_path, scores_dir, tokens):
    with TestClient(create_app(settings(tmp_path, scores_dir, tokens))) as c:
        response = c.post("/invocations", json={"dataframe_records": [{"age": 1.0}]}, headers=auth(tokens, "cardiff"))
        assert response.status_code == 503 and "no model loaded" in response.json()["detail"]
        assert c.get("/health").json()["model_loaded"] is False


def test_rate_limit_is_429_after_the_burst(tmp_path, scores_dir, tokens):
    clock = [0.0]
    limiter = RateLimiter(rate=20, burst=40, clock=lambda: clock[0])
    assert [limiter.acquire("t") for _ in range(41)] == [None] * 40 + [1]
    assert limiter.acquire("other") is None  # buckets are per token
    clock[0] += 0.05  # one request's worth at 20/s
    assert limiter.acquire("t") is None and limiter.acquire("t") == 1
    defaults = settings(tmp_path, scores_dir, tokens)
    assert (defaults.rate, defaults.burst) == (20.0, 40)
    # the server's bucket refills at 0.01/s, so however slowly a loaded machine serves 60 requests (no test
    # times anything), the 41st is the first refused; the refill arithmetic is the fake clock's above
    slow = settings(tmp_path, scores_dir, tokens, rate=0.01)
    with TestClient(create_app(slow)) as c:
        statuses = [c.get("/lists/Swansea", headers=auth(tokens, "burst")) for _ in range(60)]
    codes = [s.status_code for s in statuses]
    assert codes == [200] * 40 + [429] * 20
    assert 1 <= int(statuses[40].headers["retry-after"]) <= 100


def test_audit_log_has_one_line_per_request_and_no_secrets(tmp_path, scores_dir, tokens, model_uri):
    log = tmp_path / "audit.jsonl"
    app = create_app(settings(tmp_path, scores_dir, tokens, model_uri=model_uri, audit_log=log))
    with TestClient(app) as c:
        c.get("/health")
        c.get("/people/pz-cdf-03", headers=auth(tokens, "cardiff"))
        c.get("/people/pz-swa-W02b-1", headers=auth(tokens, "cardiff"))
        c.get("/lists/Cardiff", params={"page_size": 2}, headers=auth(tokens, "cardiff"))
        c.post(
            "/invocations",
            json={"dataframe_records": [{"age": 37.25, "priors": 4.0}] * 3},
            headers=auth(tokens, "wales"),
        )
        c.get("/model")
    text = log.read_text()
    everything = [json.loads(line) for line in text.splitlines()]
    assert [e["event"] for e in everything] == ["start"] + ["request"] * 5 + ["stop"]
    assert everything[0]["model"] == model_uri.rsplit("/", 1)[1] and everything[0]["scores"] == "3"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and verify([log]).intact
    lines = everything[1:-1]
    assert {e["client"] for e in lines} == {"testclient"}
    assert [(e["method"], e["endpoint"], e["token"], e["status"]) for e in lines] == [
        ("GET", "/people/{pseudonym}", "cardiff", 200),
        ("GET", "/people/{pseudonym}", "cardiff", 403),
        ("GET", "/lists/{local_authority}", "cardiff", 200),
        ("POST", "/invocations", "wales", 200),
        ("GET", "/model", None, 401),
    ]
    assert lines[0]["pseudonyms"] == ["pz-cdf-03"] and lines[0]["model_version"] == "3"
    assert lines[2]["pseudonyms"] == ["pz-cdf-01", "pz-cdf-02"] and lines[2]["local_authority"] == "Cardiff"
    assert lines[3]["rows"] == 3 and lines[3]["model_version"] == model_uri.rsplit("/", 1)[1]
    assert all(e["time"].endswith("+00:00") for e in lines)
    assert "37.25" not in text and "Bearer" not in text
    assert not any(token in text or hash_token(token) in text for token in tokens[1].values())


def test_payload_checks_and_scoring_leave_the_event_loop_free(tmp_path, scores_dir, tokens, model_uri, monkeypatch):
    """While one request's payload is being checked, /health answers (it once waited seconds behind them)."""
    entered, health_answered, stalled = threading.Event(), threading.Event(), []
    check = api.parse_payload

    def held(*args):
        entered.set()
        stalled.append(not health_answered.wait(10))  # on the event loop, /health could not answer meanwhile
        return check(*args)

    monkeypatch.setattr(api, "parse_payload", held)
    answers = []
    with TestClient(create_app(settings(tmp_path, scores_dir, tokens, model_uri=model_uri))) as c:
        body = {"dataframe_records": [{"age": 40.0, "priors": 2.0}]}
        worker = threading.Thread(
            target=lambda: answers.append(c.post("/invocations", json=body, headers=auth(tokens, "wales")))
        )
        worker.start()
        assert entered.wait(10)
        assert c.get("/health").status_code == 200
        health_answered.set()
        worker.join(20)
    assert stalled == [False] and answers[0].status_code == 200


def test_invocations_beyond_the_scoring_queue_are_503_without_reading_the_body(
    tmp_path, scores_dir, tokens, model_uri, monkeypatch
):
    """While one request is scored and one waits (scoring_queue=1), a third is refused at once, its body unread."""
    entered, queued, release = threading.Event(), threading.Event(), threading.Event()
    check, read = api.parse_payload, api.read_body
    bodies_read = []

    def held(*args):
        entered.set()
        release.wait(10)
        return check(*args)

    async def counted(request, limit):
        bodies_read.append(await read(request, limit))
        if len(bodies_read) == 2:
            queued.set()
        return bodies_read[-1]

    monkeypatch.setattr(api, "parse_payload", held)
    monkeypatch.setattr(api, "read_body", counted)
    assert ServeSettings().scoring_queue == 8
    answers = []
    with TestClient(create_app(settings(tmp_path, scores_dir, tokens, model_uri=model_uri, scoring_queue=1))) as c:
        body = {"dataframe_records": [{"age": 40.0, "priors": 2.0}]}

        def post():
            return c.post("/invocations", json=body, headers=auth(tokens, "wales"))

        workers = [threading.Thread(target=lambda: answers.append(post())) for _ in range(2)]
        workers[0].start()
        assert entered.wait(10)  # the first holds the scoring slot
        workers[1].start()
        assert queued.wait(10)  # the second has read its body and waits for the slot
        refused = post()
        release.set()
        for worker in workers:
            worker.join(20)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "queue" in refused.json()["detail"] and len(bodies_read) == 2
        assert [a.status_code for a in answers] == [200, 200]
        assert post().status_code == 200  # the queue empties as the requests finish


def test_a_request_whose_audit_line_cannot_be_written_gets_503_and_no_data(tmp_path, scores_dir, tokens):
    log = tmp_path / "audit.jsonl"
    with TestClient(create_app(settings(tmp_path, scores_dir, tokens, audit_log=log))) as c:
        assert c.get("/people/pz-cdf-02", headers=auth(tokens, "cardiff")).status_code == 200
        log.unlink()
        log.mkdir()  # the log's path is now a folder: no line can be written
        refused = c.get("/people/pz-cdf-02", headers=auth(tokens, "cardiff"))
        assert refused.status_code == 503 and "audit log" in refused.json()["detail"]
        assert "pz-cdf-02" not in refused.text and "prior violence" not in refused.text
        assert c.get("/health").status_code == 200
        log.rmdir()
        assert c.get("/people/pz-cdf-02", headers=auth(tokens, "cardiff")).status_code == 200
    # the start line and the first request's went with the unlinked file; the chain goes on from them
    assert [json.loads(line)["seq"] for line in log.read_text().splitlines()] == [3, 4]


def test_the_server_does_not_start_without_a_writable_audit_log(tmp_path, scores_dir, tokens):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ServeError, match="does not start without its audit log"):
        create_app(settings(tmp_path, scores_dir, tokens, audit_log=tmp_path / "file" / "audit.jsonl"))
    result = CliRunner().invoke(
        cli, ["serve", "--scores", str(scores_dir), "--tokens", str(tokens[0]), "--audit-log", "/dev/full"]
    )
    assert result.exit_code == 2 and "not a regular file" in result.output and result.output.count("\n") == 1


def test_a_revoked_token_is_refused_without_a_restart(tmp_path, scores_dir):
    path = tmp_path / "tokens.jsonl"
    keep, drop = create_token(path, "keep", ("all",)), create_token(path, "drop", ("all",))
    with TestClient(create_app(settings(tmp_path, scores_dir, (path, {})))) as c:
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {drop}"}).status_code == 200
        revoke_token(path, "drop")
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {drop}"}).status_code == 401
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {keep}"}).status_code == 200
        added = create_token(path, "added", ("Cardiff",))
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {added}"}).status_code == 200
        path.write_text("not a token file\n")  # a file that no longer parses refuses every token
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {keep}"}).status_code == 401


def test_a_token_revoked_in_place_is_refused_though_size_and_mtime_are_unchanged(tmp_path, scores_dir):
    """An edit within the file system's timestamp granularity keeps the file's inode, size and mtime."""
    path = tmp_path / "tokens.jsonl"
    keep, drop = create_token(path, "keep", ("all",)), create_token(path, "drop", ("all",))
    with TestClient(create_app(settings(tmp_path, scores_dir, (path, {})))) as c:
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {drop}"}).status_code == 200
        before = path.stat()
        with open(path, "r+b") as f:  # the same inode, the same size, another hash on drop's line
            f.write(path.read_bytes().replace(hash_token(drop).encode(), hash_token("revoked").encode()))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {drop}"}).status_code == 401
        assert c.get("/lists/Cardiff", headers={"Authorization": f"Bearer {keep}"}).status_code == 200


def test_an_unreadable_tokens_file_refuses_every_token_until_mended(tmp_path, scores_dir):
    """Any OSError reading the tokens file (here: not a folder, a symbolic link loop), or bytes that are not
    UTF-8, fail closed, never a 500."""
    folder = tmp_path / "tokens"
    folder.mkdir()
    path = folder / "tokens.jsonl"
    token = create_token(path, "keep", ("all",))
    kept = path.read_bytes()
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings(tmp_path, scores_dir, (path, {}))), raise_server_exceptions=False) as c:
        assert c.get("/lists/Cardiff", headers=bearer).status_code == 200
        path.unlink()
        folder.rmdir()
        folder.write_text("a file where the folder was")  # NotADirectoryError
        assert c.get("/lists/Cardiff", headers=bearer).status_code == 401
        folder.unlink()
        folder.mkdir()
        path.symlink_to(path.name)  # a link to itself: ELOOP
        assert c.get("/lists/Cardiff", headers=bearer).status_code == 401
        path.unlink()
        path.write_bytes(b"\xff" + kept)  # not UTF-8
        assert c.get("/lists/Cardiff", headers=bearer).status_code == 401
        path.write_bytes(kept)
        assert c.get("/lists/Cardiff", headers=bearer).status_code == 200


def test_failed_authentications_are_rate_limited_per_client_address(tmp_path, scores_dir, tokens):
    app = create_app(settings(tmp_path, scores_dir, tokens, failed_auth_rate=0.01, failed_auth_burst=5))
    bad = {"Authorization": "Bearer guess"}
    with (
        TestClient(app, client=("203.0.113.7", 4000)) as attacker,
        TestClient(app, client=("198.51.100.2", 4000)) as other,
    ):
        codes = [attacker.get("/lists/Cardiff", headers=bad).status_code for _ in range(8)]
        assert codes == [401] * 5 + [429] * 3
        # no more guesses from that address, not even a right one; another address is unaffected
        assert attacker.get("/lists/Cardiff", headers=auth(tokens, "cardiff")).status_code == 429
        assert other.get("/lists/Cardiff", headers=auth(tokens, "cardiff")).status_code == 200
        assert other.get("/lists/Cardiff", headers=bad).status_code == 401


def test_failed_authentications_are_counted_per_ipv6_64_block():
    """An IPv6 client is given a /64 (2^64 addresses to guess from): its failures count together."""
    assert failure_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == failure_key("2001:db8:1:2::7") == "2001:db8:1:2::/64"
    assert failure_key("2001:db8:1:3::7") == "2001:db8:1:3::/64"
    assert failure_key("fe80::1%eth0") == "fe80::/64"
    assert failure_key("203.0.113.7") == "203.0.113.7" != failure_key("203.0.113.8")
    assert failure_key("::ffff:203.0.113.7") == "203.0.113.7"  # IPv4-mapped: the IPv4 address
    assert failure_key("testclient") == "testclient" and failure_key("unknown") == "unknown"


def test_failed_authentications_from_one_ipv6_64_block_are_rate_limited_together(tmp_path, scores_dir, tokens):
    app = create_app(settings(tmp_path, scores_dir, tokens, failed_auth_rate=0.01, failed_auth_burst=5))
    bad = {"Authorization": "Bearer guess"}
    attackers = [TestClient(app, client=(f"2001:db8:1:2::{n:x}", 4000)) for n in range(1, 9)]
    with TestClient(app, client=("2001:db8:1:3::1", 4000)) as neighbour:
        codes = [attacker.get("/lists/Cardiff", headers=bad).status_code for attacker in attackers]
        assert codes == [401] * 5 + [429] * 3  # a new address in the same /64 for every guess
        assert attackers[0].get("/lists/Cardiff", headers=auth(tokens, "cardiff")).status_code == 429
        assert neighbour.get("/lists/Cardiff", headers=auth(tokens, "cardiff")).status_code == 200


def test_every_endpoint_answers_as_docs_openapi_json_says(tmp_path, client, tokens):
    """Each endpoint's answers, good and bad, have a status the schema documents and a body its schema
    accepts (where it gives one)."""
    doc = json.loads((REPO / "docs" / "openapi.json").read_text())
    cardiff, wales = auth(tokens, "cardiff"), auth(tokens, "wales")
    rows = {"dataframe_records": [{"age": 40.0, "priors": 2.0}]}
    bare = TestClient(create_app(ServeSettings(tokens=tokens[0], audit_log=tmp_path / "a.jsonl")))
    calls = [
        (client, "GET", "/health", "/health", {}, None),
        (client, "GET", "/people/pz-cdf-01", "/people/{pseudonym}", cardiff, None),
        (client, "GET", "/people/pz-swa-W02a-1", "/people/{pseudonym}", cardiff, None),
        (client, "GET", "/people/pz-nobody", "/people/{pseudonym}", wales, None),
        (client, "GET", "/people/pz-cdf-01", "/people/{pseudonym}", {}, None),
        (bare, "GET", "/people/pz-cdf-01", "/people/{pseudonym}", cardiff, None),
        (client, "GET", "/lists/Cardiff?page_size=3", "/lists/{local_authority}", cardiff, None),
        (client, "GET", "/lists/Cardiff?page=0", "/lists/{local_authority}", cardiff, None),
        (client, "GET", "/lists/Swansea", "/lists/{local_authority}", cardiff, None),
        (client, "GET", "/lists/Atlantis", "/lists/{local_authority}", wales, None),
        (client, "GET", "/model", "/model", wales, None),
        (bare, "GET", "/model", "/model", wales, None),
        (client, "POST", "/invocations", "/invocations", wales, rows),
        (client, "POST", "/invocations", "/invocations", wales, {"dataframe_records": [{"age": "x"}]}),
        (client, "POST", "/invocations", "/invocations", wales, {"dataframe_records": [{"age": 1.0}] * 1001}),
        (bare, "POST", "/invocations", "/invocations", wales, rows),
    ]
    seen = set()
    for app_client, method, url, route, headers, body in calls:
        response = app_client.request(method, url, headers=headers, json=body)
        documented = doc["paths"][route][method.lower()]["responses"]
        assert str(response.status_code) in documented, (method, url, response.status_code)
        schema = documented[str(response.status_code)].get("content", {}).get("application/json", {}).get("schema")
        if schema:
            jsonschema.validate(response.json(), {**schema, "components": doc["components"]})
        seen.add((route, response.status_code))
    assert {status for _, status in seen} >= {200, 401, 403, 404, 413, 422, 503}
    assert {route for route, status in seen if status == 200} == set(doc["paths"])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
BODIES = (
    JSON.map(lambda v: json.dumps(v).encode())
    | st.builds(
        lambda rows, columns: json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode(),
        st.lists(st.lists(JSON, max_size=3), max_size=3),
        st.lists(st.sampled_from(["age", "priors", "x", "age"]), max_size=3),
    )
    | st.builds(lambda rows: json.dumps({"dataframe_records": rows}).encode(), st.lists(JSON, max_size=3))
    | st.binary(max_size=200)
    | st.integers(1, 40).map(lambda depth: b"[" * (depth * 500) + b"]" * (depth * 500))
)
RESPONSE_LIMIT = 64 * 1024
MEMORY_CEILING = 1 << 30  # the test process's peak, bytes


@settings_(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.sampled_from([*json.loads((REPO / "docs" / "openapi.json").read_text())["paths"], "/", "/people/"]),
    tail=st.text(max_size=30),
    query=st.dictionaries(st.sampled_from(["page", "page_size", "x"]), st.text(max_size=12), max_size=3),
    who=st.sampled_from(["cardiff", "wales", "none", "bad"]),
    body=BODIES,
)
def test_fuzzed_requests_never_fail_the_server_or_overflow(fuzz_client, tokens, method, path, tail, query, who, body):
    headers = {"Content-Type": "application/json"}
    if who in tokens[1]:
        headers.update(auth(tokens, who))
    elif who == "bad":
        headers["Authorization"] = "Bearer " + who
    url = re.sub(r"\{[^}]+\}", quote(tail, safe=""), path)  # a path parameter gets the fuzzed text
    response = fuzz_client.request(method, url, params=query, content=body, headers=headers)
    assert response.status_code < 500, (method, url, response.text[:300])
    assert len(response.content) <= RESPONSE_LIMIT
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < MEMORY_CEILING


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory, scores_dir, tokens, model_uri):
    """The real app with scores and model; limits out of the way so each example reaches the handlers."""
    folder = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        settings(folder, scores_dir, tokens, model_uri=model_uri, rate=1e6, burst=10**6, failed_auth_burst=10**6)
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    assert verify([folder / "audit.jsonl"]).intact


def test_openapi_file_is_current(client):
    committed = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert committed == client.app.openapi(), "regenerate: riskloop serve --export-openapi docs/openapi.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def riskloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "riskloop.cli", *args]


def test_serve_refuses_to_start_without_tokens_or_off_loopback_when_insecure(tmp_path, scores_dir):
    no_tokens = subprocess.run(
        riskloop("serve", "--scores", str(scores_dir), "--tokens", str(tmp_path / "none.jsonl")),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert no_tokens.returncode == 2 and no_tokens.stderr.count("\n") == 1 and "no tokens in" in no_tokens.stderr
    exposed = subprocess.run(
        riskloop("serve", "--scores", str(scores_dir), "--insecure-local", "--host", "0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert exposed.returncode == 2 and "loopback only" in exposed.stderr
    assert not (tmp_path / "riskloop-audit.jsonl").exists()


@pytest.mark.slow
def test_real_server_keeps_pseudonyms_and_tokens_out_of_its_logs(tmp_path, scores_dir, tokens, model_uri):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
    server = subprocess.Popen(
        riskloop(
            "serve",
            "--scores",
            str(scores_dir),
            "--model",
            model_uri,
            "--port",
            str(port),
            "--tokens",
            str(tokens[0]),
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_healthy(base, server, 90), (tmp_path / "server.log").read_text()
        with httpx.Client(base_url=base, headers=auth(tokens, "cardiff"), timeout=10) as c:
            assert c.get("/people/pz-cdf-07").status_code == 200
            assert c.get("/people/pz-swa-W02a-2").status_code == 403
            (tmp_path / "audit.jsonl").rename(tmp_path / "audit.jsonl.1")  # rotated away, then SIGHUP
            server.send_signal(signal.SIGHUP)
            assert c.get("/lists/Cardiff", params={"page_size": 3}).json()["total"] == 10
            assert c.post("/invocations", json={"dataframe_records": [{"age": 40.0, "priors": 2.0}]}).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    output = (tmp_path / "server.log").read_text()
    assert "GET /people/<redacted> HTTP/1.1" in output and "POST /invocations" in output  # the access log is on
    assert not any(secret in output for secret in ("pz-cdf-07", "pz-swa-W02a-2", "pz-cdf-01", *tokens[1].values()))
    rotated = [tmp_path / "audit.jsonl.1", tmp_path / "audit.jsonl"]
    events = [json.loads(line)["event"] for path in rotated for line in path.read_text().splitlines()]
    assert events == ["start"] + ["request"] * 4 + ["stop"] and verify(rotated).intact


def test_invocations_hostile_numbers_nesting_and_columns_are_422_naming_the_problem(client, tokens):
    """Each of these was scored (NaN, 1e309, an unknown or a duplicated column) or a 500 (10**400, deep nesting)."""
    headers = {**auth(tokens, "cardiff"), "Content-Type": "application/json"}
    cell = (["body", "dataframe_records", 0, "age"], "finite_number")
    cases = {
        b'{"dataframe_records": [{"age": NaN, "priors": 1.0}]}': cell,
        b'{"dataframe_records": [{"age": -Infinity, "priors": 1.0}]}': cell,
        b'{"dataframe_records": [{"age": 1e309, "priors": 1.0}]}': cell,
        b'{"dataframe_split": {"columns": ["age", "priors"], "data": [[30.0, 1%s]]}}' % (b"0" * 400): (
            ["body", "dataframe_split", "data", 0, 1],
            "finite_number",
        ),
        b'{"dataframe_records": [{"age": 1.0, "priors": %s}]}' % (b"9" * 5000): (["body"], "json_invalid"),
        b'{"dataframe_records": ' + b"[" * 20_000 + b"]" * 20_000 + b"}": (["body"], "value_error"),
        b'{"dataframe_records": [{"age": 1.0, "priors": 1.0, "colour": "red"}]}': (
            ["body", "dataframe_records", 0, "colour"],
            "extra_forbidden",
        ),
        b'{"dataframe_records": [{"age": 1.0, "priors": 1.0, "age": 80.0}]}': (["body"], "value_error"),
        b'{"dataframe_records": [{"age": 1.0, "priors": 1.0}], "\\ud800": 1}': (["body", "\\ud800"], "extra_forbidden"),
    }
    for body, expected in cases.items():
        response = client.post("/invocations", content=body, headers=headers)
        assert response.status_code == 422, body[:60]
        assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [expected], body[:60]
    null = b'{"dataframe_records": [{"age": null, "priors": 1}]}'  # a missing value, still scored
    assert client.post("/invocations", content=null, headers=headers).status_code == 200
