"""Promotion fails closed: it recomputes its decision from verified evidence, never from tags, and every
attempt is recorded. The four fail-open cases found from outside are each a one-line refusal."""

from __future__ import annotations

import dataclasses
import getpass
import json
import re
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from riskloop.artifacts.training import EVIDENCE
from riskloop.cli import app
from riskloop.experiments.config import load_config
from riskloop.experiments.registry import EVIDENCE_DIGEST, PromotionRefused, promote
from riskloop.experiments.tracking import log_training
from riskloop.jobs.model import model_data
from riskloop.models.evidence import EvidenceError, parse_evidence
from riskloop.pipelines.train import train

DATA = Path(__file__).parent / "data"


class Constant(PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"risk": [0.5] * len(model_input)})


def register_without_evidence(name: str) -> str:
    """A version registered straight from the MLflow client, as anyone with access to the store could."""
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), registered_model_name=name)
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(name, "challenger", version)
    return version


def train_screening(tmp_path: Path, name: str, out: str) -> tuple[str, str]:
    """(registered model, version) of a screening model trained by riskloop."""
    config = dataclasses.replace(load_config(DATA / "screening.yaml"), name=name)
    data = model_data(config)
    return config.registered_model, log_training(config, data, train(data, config), tmp_path / out).model_version


def refusal(name: str) -> list[str]:
    with pytest.raises(PromotionRefused) as refused:
        promote(name)
    assert all("\n" not in r for r in refused.value.reasons)
    return refused.value.reasons


def test_a_version_without_evidence_is_refused_with_or_without_a_champion(tmp_path, mlflow_store):
    name = f"bare-{tmp_path.name}"
    register_without_evidence(name)
    assert refusal(name) == [
        f"evidence: challenger v1: no gate evidence: run {MlflowClient().get_model_version(name, '1').run_id} "
        "logged none (trained outside `riskloop train`, or before riskloop 0.6)"
    ]
    client = MlflowClient()
    assert "champion" not in client.get_registered_model(name).aliases

    # with an honest champion in place, an unevaluated version is refused (no KeyError), even wearing its tags
    trained, _ = train_screening(tmp_path, f"gov-{tmp_path.name}", "honest")
    champion = promote(trained)
    assert champion.version == "1" and not champion.forced
    bare = register_without_evidence(trained)
    for key, value in client.get_model_version(trained, "1").tags.items():
        if key.startswith("latest_") or key in ("fairness_gate", "fairness_reasons", EVIDENCE_DIGEST):
            client.set_model_version_tag(trained, bare, key, value)
    reasons = refusal(trained)
    assert len(reasons) == 1 and reasons[0].startswith(f"evidence: challenger v{bare}: no gate evidence: run ")
    assert str(client.get_model_version_by_alias(trained, "champion").version) == "1"


def test_evidence_that_was_modified_or_belongs_to_another_version_is_refused(tmp_path, mlflow_store):
    name, version = train_screening(tmp_path, f"tamper-{tmp_path.name}", "out")
    client = MlflowClient()
    run_id = client.get_model_version(name, version).run_id

    # the evidence file edited in the artifact store: the digest no longer matches
    artifact = Path(urlparse(client.get_run(run_id).info.artifact_uri).path) / EVIDENCE
    original = artifact.read_text()
    evidence = json.loads(original)
    for row in evidence["calibration"]:
        row["observed_events"] = round(row["expected_events"])  # "perfectly calibrated"
    artifact.write_text(json.dumps(evidence, indent=1, sort_keys=True) + "\n")
    (reason,) = refusal(name)
    assert reason.startswith(f"evidence: challenger v{version}: the evidence's sha256 ") and reason.endswith(
        "(modified)"
    )
    artifact.write_text("{not json")
    assert "(modified)" in refusal(name)[0]

    # ... and the version's digest tag edited to match a forged file: the run's parameter is immutable
    artifact.write_text(original)
    client.set_model_version_tag(name, version, EVIDENCE_DIGEST, "0" * 64)
    assert refusal(name) == [
        f"evidence: challenger v{version}: the version's {EVIDENCE_DIGEST} tag does not match its run's (the tag was edited)"
    ]
    recorded = client.get_run(run_id).data.params[EVIDENCE_DIGEST]
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.log_param(run_id, EVIDENCE_DIGEST, "0" * 64)
    client.set_model_version_tag(name, version, EVIDENCE_DIGEST, recorded)

    # the trained run's model registered again as a new version: its evidence is of another version
    copy = client.create_model_version(name, client.get_model_version(name, version).source, run_id=run_id)
    client.set_model_version_tag(name, copy.version, EVIDENCE_DIGEST, recorded)
    client.set_registered_model_alias(name, "challenger", copy.version)
    assert refusal(name) == [
        f"evidence: challenger v{copy.version}: the evidence is of another model ({name} v{version}, run {run_id})"
    ]
    client.set_registered_model_alias(name, "challenger", version)
    assert promote(name).version == version


def test_unreadable_evidence_is_one_line():
    with pytest.raises(EvidenceError, match=r"^model: Field required \(\d+ problem\(s\)\)$"):
        parse_evidence(b'{"settings": {}}')
    with pytest.raises(EvidenceError, match="JSON"):
        parse_evidence(b"{not json")


def test_governance_prints_every_attempt(tmp_path, mlflow_store):
    name = f"history-{tmp_path.name}"
    runner = CliRunner()
    assert "no promotion attempt" in runner.invoke(app, ["governance", "--model", name]).output
    register_without_evidence(name)
    refused = runner.invoke(app, ["promote", "--model", name])
    assert refused.exit_code == 1 and "no gate evidence" in refused.output
    forced = runner.invoke(app, ["promote", "--model", name, "--force", "--reason", "pilot", "--by", "the board"])
    assert forced.exit_code == 0 and "GOVERNANCE OVERRIDE" in forced.output
    shown = runner.invoke(app, ["governance", "--model", name], terminal_width=200).output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in shown.splitlines() if line.startswith("│")]
    assert [row[1:5] for row in rows if row[1]] == [
        ["refused", "v1", "none", getpass.getuser()],
        ["forced", "v1", "none", "the board"],
    ]
    assert "pilot over: evidence: challenger v1: no gate evidence" in " ".join(r[5] for r in rows)


def test_the_transparency_record_is_filled_from_verified_evidence_and_marks_what_only_the_partnership_knows(
    tmp_path, mlflow_store
):
    name, version = train_screening(tmp_path, f"atrs-{tmp_path.name}", "out")
    MlflowClient().set_registered_model_alias(name, "champion", version)
    result = CliRunner().invoke(app, ["transparency", "--model", f"models:/{name}@champion", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fields = pd.read_csv(tmp_path / "transparency_record.csv").set_index("field")
    for field in ("senior_responsible_owner", "dpia", "contact_email", "data_sharing_agreements"):
        assert fields.loc[field, "filled_by"] == "partnership"
        assert fields.loc[field, "value"].startswith("To be completed by the partnership")
    assert str(fields.loc["standard_version", "value"]) == "3.0"
    assert "evidence verified, sha256" in fields.loc["fairness_assessment", "value"]
    assert "Used as model inputs: none" in fields.loc["protected_characteristics", "value"]
    record = json.loads((tmp_path / "transparency_record.json").read_text())
    assert record["standard_version"] == "3.0" and "Tier 2: Owner and responsibility: dpia" not in record["to_complete"]
    assert "Tier 2: Risks, mitigations and impact assessments: dpia" in record["to_complete"]

    # the gate's table as published: no count of 1-7 people, and every ratio from the counts as shown
    html = (tmp_path / "transparency_record.html").read_text()
    rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)]
    gate = pd.DataFrame(rows[1:], columns=rows[0])
    assert "observed / expected" in gate.columns
    shown = gate[gate["observed events"].astype(str) != "*"]
    assert len(shown) and (gate["people"].astype(str) == "*").any()  # the screening table has small groups
    for people in gate["people"].astype(str):
        assert people == "*" or (int(people.replace(",", "")) % 5 == 0 and int(people.replace(",", "")) > 7)
    ratios = shown["observed events"].astype(float) / shown["expected events"].astype(float)
    assert (abs(ratios - shown["observed / expected"].astype(float)) < 0.006).all()
