"""The model contract travels with every registered model; consumers read it and nothing else."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import own_store

from riskloop.experiments.config import load_config
from riskloop.experiments.registry import ModelNotFound, load_model
from riskloop.experiments.tracking import log_training
from riskloop.jobs.model import model_data
from riskloop.learning.retrain import treatment_aware
from riskloop.models.contract import ContractError, ModelContract, riskloop_version
from riskloop.pipelines.train import train
from tests.test_experiments import DATA


def test_contract_round_trips_and_records_what_scoring_needs(escalation_run):
    config, data, result = escalation_run
    contract = result.scorer.contract
    again = ModelContract.from_json(contract.to_json())
    assert again == contract
    assert contract.snapshot.horizon_days == config.horizon_days and contract.snapshot.lookback_days == 1095
    assert contract.snapshot.windows == (90, 365, 1095) and contract.features == tuple(data.features)
    assert len(contract.band_cuts) == 19 and contract.audit == config.fairness
    assert contract.calibration_window[1] == data.frame.loc[data.final.validation, "as_of"].max().date()
    assert contract.training_window[1] < contract.calibration_window[0]
    # timechop: every label the model learned from closed before its test window began
    assert data.final is data.splits[-1]
    assert (
        contract.labels_closed_by() < contract.test_window[0] == data.frame.loc[data.final.test, "as_of"].min().date()
    )
    assert contract.riskloop_version == riskloop_version() and len(contract.config_hash) == 16


@pytest.mark.parametrize("broken", ['{"name": "x"}', "not json", '{"snapshot": null}'])
def test_an_incomplete_contract_is_refused(escalation_run, broken):
    with pytest.raises(ContractError, match="does not parse"):
        ModelContract.from_json(broken)
    payload = json.loads(escalation_run[2].scorer.contract.to_json())
    del payload["audit"]["band"]
    with pytest.raises(ContractError, match="audit: missing 'band'"):
        ModelContract.from_json(json.dumps(payload))


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A small table model, registered in a store of its own; (tracking dir, model URI, scorer)."""
    with own_store(tmp_path_factory.mktemp("registry")) as store:
        config = dataclasses.replace(load_config(DATA / "screening.yaml"), name="fresh")
        data = model_data(config)
        result = train(data, config)
        log_training(config, data, result, store / "out")
    return store, "models:/riskloop-fresh@challenger", result.scorer


def test_registered_model_loads_in_a_fresh_process_with_only_riskloop(registered):
    store, uri, scorer = registered
    code = textwrap.dedent(f"""
        import sys, mlflow, pandas as pd
        mlflow.set_tracking_uri("sqlite:///{store / "mlflow.db"}")
        mlflow.set_registry_uri("sqlite:///{store / "mlflow.db"}")
        assert "models" not in sys.modules
        model = mlflow.pyfunc.load_model("{uri}")
        row = pd.DataFrame({{"age": [40.0], "priors": [3.0], "charge_degree": ["F"]}})
        print(repr(float(model.predict(row)["risk"].iloc[0])))
        print(type(model.unwrap_python_model().scorer.contract).__module__)
        import importlib.util; print(importlib.util.find_spec("models") is None)
    """)
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=store, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    risk, module, no_generic = result.stdout.split()[-3:]
    row = pd.DataFrame({"age": [40.0], "priors": [3.0], "charge_degree": ["F"]})
    assert float(risk) == pytest.approx(float(scorer.risk(row)[0]))
    assert module == "riskloop.models.contract" and no_generic == "True"
    with own_store(store):
        requirements = mlflow.artifacts.download_artifacts(f"{uri}/requirements.txt")
        assert f"riskloop=={riskloop_version()}" in open(requirements).read().split()


def test_load_model_gives_the_contract_and_names_missing_aliases(registered, monkeypatch):
    store, uri, scorer = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    loaded = load_model(uri)
    assert loaded.contract == scorer.contract and loaded.version == "1" and loaded.name == "riskloop-fresh"
    with pytest.raises(ModelNotFound) as missing:
        load_model("models:/riskloop-fresh@champion")
    assert (
        str(missing.value)
        == "'models:/riskloop-fresh@champion': no such alias or version; riskloop-fresh has aliases @challenger (v1)"
    )
    with pytest.raises(ModelNotFound, match="no registered model 'riskloop-nothing' \\(registered: riskloop-fresh\\)"):
        load_model("models:/riskloop-nothing@champion")


def test_a_model_without_a_contract_is_refused(registered, monkeypatch, tmp_path):
    store, _, _ = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")

    class Bare(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="m", python_model=Bare(), registered_model_name="bare")
    with pytest.raises(ContractError, match="not a riskloop model with a model contract"):
        load_model("models:/bare/1")


def test_features_scored_as_untreated_are_set_to_no_programme_and_never_given_as_reasons(escalation_run):
    _, data, result = escalation_run
    history = treatment_aware(data).scored_as_untreated
    scorer = dataclasses.replace(
        result.scorer, contract=dataclasses.replace(result.scorer.contract, scored_as_untreated=history)
    )
    rows = data.frame[data.final.test]
    treated = rows[(rows[list(history)] > 0).any(axis=1)]
    assert len(treated) >= 20
    assert scorer.risk(treated).tolist() == result.scorer.risk(treated.assign(**{c: 0 for c in history})).tolist()
    assert not np.array_equal(result.scorer.risk(treated), scorer.risk(treated))
    as_recorded = result.scorer.reasons(treated).to_numpy().ravel().astype(str)
    assert any("intervention" in r for r in as_recorded)
    cited = scorer.reasons(treated).to_numpy().ravel().astype(str)
    assert not any("intervention" in r for r in cited)
    assert ModelContract.from_json(scorer.contract.to_json()) == scorer.contract
    payload = json.loads(result.scorer.contract.to_json())
    del payload["scored_as_untreated"]  # a contract written before the field existed scores everything as recorded
    assert ModelContract.from_json(json.dumps(payload)).scored_as_untreated == ()
    assert payload["snapshot"]["incidents"] == "all"  # the contract says which incidents built its snapshots
    del payload["snapshot"]["incidents"]  # one written before the setting existed was built from every incident
    assert ModelContract.from_json(json.dumps(payload)).data_set_snapshot.incidents == "all"
    reported = dataclasses.replace(
        scorer.contract, snapshot=dataclasses.replace(scorer.contract.data_set_snapshot, incidents="reported")
    )
    assert ModelContract.from_json(reported.to_json()).data_set_snapshot.incidents == "reported"
