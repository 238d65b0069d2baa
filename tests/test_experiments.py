"""Experiments: typed configs, temporal validation, calibration, MLflow tracking, registry, promotion."""

from __future__ import annotations

import dataclasses
import getpass
import json
import logging
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from riskloop.experiments.config import ConfigError, load_config, with_data
from riskloop.experiments.governance import history
from riskloop.experiments.pyfunc import RiskModel
from riskloop.experiments.registry import PromotionRefused, promote
from riskloop.experiments.tracking import PICKLE_WARNING, dataset_schema_rows, frame_digest, log_training
from riskloop.jobs.model import model_data
from riskloop.pipelines import train as training
from riskloop.pipelines.train import fits_at_once, run_temporal_validation, train

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


def write_config(tmp_path, text: str, name="c.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {logistic: {}}\ncolour: red\n",
            "c.yaml: unknown key 'colour'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {lightgbm: {num_leaves: many}}\n",
            "c.yaml: models.lightgbm.num_leaves: input should be a valid list, got 'many'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {logistic: {}}\ncapacity: lots\n",
            "c.yaml: capacity: input should be a valid number, unable to parse string as a number, got 'lots'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: soon, end: 2021-01-01}\nmodels: {logistic: {}}\n",
            "c.yaml: schedule.start: input should be a valid date or datetime, input is too short, got 'soon'",
        ),
        (
            "name: x\ntable: {path: nowhere.csv, id_column: i, date_column: d, label_column: l, feature_columns: [a]}\n"
            "models: {logistic: {}}\n",
            "c.yaml: table.path: file not found",
        ),
        ("data: .\n", "c.yaml: missing key 'name'"),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {logistic: {}}\nfairness: {colour: red}\n",
            "c.yaml: fairness: unknown key 'colour'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {forest: {}}\n",
            "c.yaml: models: unknown key 'forest'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {gam: {n_knots: [1]}}\n",
            "c.yaml: models.gam.n_knots: 1.0 is not a whole number between 2 and 50",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {gam: {degree: [2.5]}}\n",
            "c.yaml: models.gam.degree: 2.5 is not a whole number between 1 and 5",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2021-01-01}\nmodels: {logistic: {}}\nlabel: arrests\n",
            "c.yaml: label: input should be 'escalation' or 'repeat_victimisation', got 'arrests'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leavs: [7]}}\n",
            "c.yaml: models.lightgbm.unknown hyper-parameter 'num_leavs'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: []}}\n",
            "c.yaml: models.lightgbm.num_leaves: the list is empty",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [-3]}}\n",
            "c.yaml: models.lightgbm.num_leaves: -3.0 is not a whole number between 2",
        ),
        (
            "name: x\ndata: .\nmodels: {lightgbm: {num_leaves: [7]}}\nschedule: {start: 2020-01-01, end: 2022-01-01, every_months: 0}\n",
            "c.yaml: schedule.every_months: must be at least 1",
        ),
        (
            "name: x\ndata: .\nmodels: {lightgbm: {num_leaves: [7]}}\nschedule: {start: 2023-01-01, end: 2022-01-01}\n",
            "c.yaml: schedule: start 2023-01-01 is not before end 2022-01-01",
        ),
        (
            "name: x\ndata: .\nmodels: {lightgbm: {num_leaves: [7]}}\nschedule: {start: 2020-01-01, end: 2022-01-01, n_test: -1}\n",
            "c.yaml: schedule.n_test: must be at least 1",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\ncalibration: []\n",
            "c.yaml: calibration: name at least one method",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nselection: {auc_tolerance: -1}\n",
            "c.yaml: selection.auc_tolerance: must be between 0 and 1",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nhorizon_days: 0\n",
            "c.yaml: horizon_days: must be at least 1",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nhorizon_days: -30\n",
            "c.yaml: horizon_days: must be at least 1",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nfairness: {min_group_size: 0}\n",
            "c.yaml: fairness.min_group_size: must be at least 1",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nfairness: {band: [1.25, 0.8]}\n",
            "c.yaml: fairness.band: need low < 1 < high",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nharm_threshold: .nan\n",
            "c.yaml: harm_threshold: must be a finite number",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nbands: {medium_from: 25, high_from: 0}\n",
            "c.yaml: bands: need 1 <= medium_from < high_from <= 20",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nprotected: [sex, religion]\n",
            "c.yaml: protected: 'religion' is not a protected column",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nprotected: [sex]\ncalibrate_within: [ethnicity]\n",
            "c.yaml: calibrate_within: 'ethnicity' is not one of protected (sex)",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\ncalibrate_within: [sex, sex]\n",
            "c.yaml: calibrate_within: 'sex' is named twice",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nprotected_as_features: [sex]\ncalibrate_within: [sex]\n",
            "c.yaml: calibrate_within: 'sex' is also in protected_as_features",
        ),
        (
            "data: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nname: ''\n",
            "c.yaml: name: must not be empty",
        ),
        (
            "data: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nname: a/b\n",
            "c.yaml: name: 'a/b' may hold only letters",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nincidents: proactive\n",
            "c.yaml: incidents: input should be 'all' or 'reported', got 'proactive'",
        ),
        (
            "name: x\ndata: .\nschedule: {start: 2020-01-01, end: 2022-01-01}\nmodels: {lightgbm: {num_leaves: [7]}}\nmax_people_per_as_of: 10\n",
            "c.yaml: max_people_per_as_of: must be at least 1,000 (or null: the whole cohort), got 10",
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path, text))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_hyperparameter_names_are_the_estimators_own():
    import inspect

    import lightgbm

    from riskloop.models.families import FAMILIES

    constructor = set(inspect.signature(lightgbm.LGBMClassifier).parameters)
    # early_stopping_rounds is the patience the family's fit gives lightgbm.early_stopping
    assert set(FAMILIES["lightgbm"].hyperparameters) - {"early_stopping_rounds"} <= constructor


def test_lightgbm_is_the_librarys_classifier_early_stopped_and_deterministic():
    import lightgbm

    from riskloop.models.estimators import ModelSpec, fit_model

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"a": rng.normal(size=3000), "b": rng.normal(size=3000), "kind": rng.choice(["x", "y", "z"], size=3000)}
    )
    y = (rng.random(3000) < 1 / (1 + np.exp(-(X["a"] + (X["kind"] == "z"))))).astype(int)
    fit, val = slice(0, 2000), slice(2000, 3000)
    spec = ModelSpec("lightgbm", (("early_stopping_rounds", 5), ("n_estimators", 400), ("num_leaves", 7)))
    one = fit_model(spec, X[fit], y[fit], X[val], y[val], ["kind"], seed=1, threads=1)
    model = one.named_steps["model"]
    assert isinstance(model, lightgbm.LGBMClassifier) and model.get_params()["subsample_freq"] == 1
    assert model.n_jobs == 1 and model.booster_.pandas_categorical == [["x", "y", "z"]]
    # stopped 5 rounds after its best iteration; the booster keeps the trees up to it
    assert len(model.evals_result_["valid_0"]["binary_logloss"]) == model.best_iteration_ + 5 < 400
    assert model.booster_.current_iteration() == model.best_iteration_
    encoded = one.named_steps["preprocess"].transform(X[val])
    best = model.booster_.predict(encoded, num_iteration=model.best_iteration_, raw_score=True)
    np.testing.assert_allclose(one.predict_proba(X[val])[:, 1], 1 / (1 + np.exp(-best)), rtol=1e-12)
    contributions = model.predict(encoded, pred_contrib=True)
    np.testing.assert_allclose(contributions.sum(axis=1), best, atol=1e-10)
    again = fit_model(spec, X[fit], y[fit], X[val], y[val], ["kind"], seed=1, threads=1)
    assert np.array_equal(one.predict_proba(X[val]), again.predict_proba(X[val]))


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_configs_load():
    for name in ("escalation", "victim_safeguarding"):
        config = load_config(REPO / "experiments" / f"{name}.yaml")
        assert config.registered_model == f"riskloop-{name}"
        assert config.schedule.dates()[0].isoformat() == "2020-01-01"


def screening_config(tmp_path, **changes):
    config = load_config(DATA / "screening.yaml")
    return dataclasses.replace(config, name=changes.pop("name", f"screening-{tmp_path.name}"), **changes)


def test_bring_your_own_table_trains_tracks_and_registers(tmp_path, mlflow_store):
    config = screening_config(tmp_path)
    data = model_data(config)
    assert len(data.frame) + len(data.rejected) == 900
    assert sorted(data.rejected["row"]) == [6, 18, 41]
    assert not (data.frame.loc[data.final.test, "as_of"].min() < data.frame.loc[data.final.fit, "as_of"].max())
    result = train(data, config)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    heard: list[str] = []
    listener = logging.Handler(logging.WARNING)
    listener.emit = lambda record: heard.append(record.getMessage())  # type: ignore[method-assign]
    pyfunc_log.addHandler(listener)
    try:
        outcome = log_training(config, data, result, tmp_path / "out")
        quiet = list(heard)
        with mlflow.start_run(run_name="a bare pyfunc"):  # MLflow itself still warns with the text riskloop drops
            mlflow.pyfunc.log_model(name="bare", python_model=RiskModel(result.scorer))
    finally:
        pyfunc_log.removeHandler(listener)
    assert not any(message.startswith(PICKLE_WARNING) for message in quiet), quiet
    assert any(message.startswith(PICKLE_WARNING) for message in heard[len(quiet) :]), heard
    metrics = json.loads(outcome.metrics_path.read_text())
    for key in ("test_roc_auc", "test_average_precision", "test_brier", "test_ece"):
        assert 0 <= metrics[key] <= 1
    assert metrics["test_roc_auc"] > 0.65

    client = MlflowClient()
    run = client.get_run(outcome.run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(metrics["test_roc_auc"])
    assert {"metrics.json", "model_card.html", "calibration.png", "precision_at_k.png"} <= {
        a.path for a in client.list_artifacts(outcome.run_id)
    }
    assert run.info.run_name == f"train-{config.name}" and run.data.tags["riskloop.role"] == "challenger"
    assert run.data.tags["riskloop.labels_closed_by"] == str(result.scorer.contract.labels_closed_by())
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{outcome.run_id}'")
    assert len(children) == 2 * 3  # two model groups x three temporal splits
    logged = run.inputs.dataset_inputs[0].dataset
    assert logged.digest == frame_digest(data.frame[data.features + ["label"]])
    changed = data.frame[data.features + ["label"]].copy()
    changed.iloc[-1, 0] = 1 + changed.iloc[-1, 0]  # one cell of the last row: MLflow's own digest reads the first rows
    assert frame_digest(changed) != logged.digest
    full = mlflow.data.from_pandas(data.frame[data.features + ["label"]], targets="label").schema
    assert json.loads(logged.schema)["mlflow_colspec"] == full.to_dict()  # as MLflow infers it from every row

    model = mlflow.pyfunc.load_model(f"models:/{config.registered_model}@challenger")
    one_row = pd.DataFrame({"age": [40.0], "priors": [3.0], "charge_degree": ["F"]})
    scored = model.predict(one_row)
    assert list(scored.columns) == ["risk", "band", "band_label"]
    assert 0 < scored["risk"].iloc[0] < 1 and 1 <= scored["band"].iloc[0] <= 20
    unseen = model.predict(pd.DataFrame({"age": [40.0], "priors": [3.0], "charge_degree": ["X"]}))
    assert 0 < unseen["risk"].iloc[0] < 1  # an unseen category is treated as missing, not an error
    # a small batch holding only one of the categories: its own categoricals would not match training's
    batch = data.frame.loc[data.final.test, data.features]
    batch = batch[batch["charge_degree"] == "M"].head(7).astype({"charge_degree": str})
    np.testing.assert_allclose(model.predict(batch)["risk"], result.scorer.risk(batch))
    card = outcome.model_card_path.read_text()
    assert "Intended use" in card and "data:image/png;base64," in card and "ethnicity" in card


def test_promotion_gate_refuses_a_challenger_that_fails_fairness(tmp_path, mlflow_store):
    """Group C's outcomes in the test window are all positive: the model, which cannot know, under-predicts
    them far beyond the calibration tolerance, and the gate refuses."""
    table = pd.read_csv(DATA / "screening.csv")
    late = pd.to_datetime(table["screening_date"], errors="coerce") >= "2023-02-01"
    table.loc[late & (table["ethnicity"] == "C"), "outcome"] = 1
    table.to_csv(tmp_path / "screening.csv", index=False)
    config = screening_config(tmp_path)
    biased = dataclasses.replace(
        config,
        table=dataclasses.replace(config.table, path=tmp_path / "screening.csv"),
        fairness=dataclasses.replace(config.fairness, min_events=3, min_group_size=10),
    )
    data = model_data(biased)
    result = train(data, biased)
    assert any(r.startswith("calibration for ethnicity=C (overall)") for r in result.fairness.gate_reasons())
    log_training(biased, data, result, tmp_path / "out")
    with pytest.raises(PromotionRefused) as refused:
        promote(biased.registered_model)
    assert all(r.startswith("fairness: ") for r in refused.value.reasons)
    assert any(r.startswith("fairness: calibration for ethnicity=C") for r in refused.value.reasons)
    client = MlflowClient()
    assert client.get_model_version(biased.registered_model, "1").tags["fairness_gate"] == "fail"
    # the tags are a summary for people: setting them to a pass changes nothing
    client.set_model_version_tag(biased.registered_model, "1", "fairness_reasons", "none")
    client.set_model_version_tag(biased.registered_model, "1", "fairness_gate", "pass")
    with pytest.raises(PromotionRefused) as again:
        promote(biased.registered_model)
    assert again.value.reasons == refused.value.reasons


def test_promotion_gate_refuses_a_worse_challenger(tmp_path, mlflow_store):
    name = f"gate-{tmp_path.name}"
    good = screening_config(tmp_path, name=name)
    data = model_data(good)
    log_training(good, data, train(data, good), tmp_path / "good")
    assert promote(good.registered_model).version == "1"

    weak_table = dataclasses.replace(good.table, feature_columns=("age",), categorical_columns=())
    weak = dataclasses.replace(good, table=weak_table)
    weak_data = model_data(weak)
    log_training(weak, weak_data, train(weak_data, weak), tmp_path / "weak")
    with pytest.raises(PromotionRefused) as refused:
        promote(weak.registered_model)
    assert any("roc_auc on the latest split" in r for r in refused.value.reasons)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(weak.registered_model, "champion").version) == "1"
    with pytest.raises(ValueError, match="--reason"):
        promote(weak.registered_model, force=True)
    forced = promote(weak.registered_model, force=True, reason="board approved trial", by="board")
    assert (forced.version, forced.forced) == ("2", True)
    version = client.get_model_version(weak.registered_model, "2")
    assert version.tags["promotion_forced_reason"] == "board approved trial"
    assert "roc_auc on the latest split" in version.tags["promotion_overrode"]
    attempts = history(weak.registered_model)
    assert attempts[["decision", "challenger", "champion", "by"]].values.tolist() == [
        ["promoted", "1", "none", getpass.getuser()],
        ["refused", "2", "1", getpass.getuser()],
        ["forced", "2", "1", "board"],
    ]
    assert attempts["forced_reason"].iloc[-1] == "board approved trial"


def test_temporal_validation_fits_side_by_side_and_its_figures_do_not_depend_on_the_thread_count(tmp_path):
    config = screening_config(tmp_path)
    data = model_data(config)
    runs = [run_temporal_validation(data, dataclasses.replace(config, threads=n)) for n in (1, 2)]
    (one, latest_one, fitted_one), (two, latest_two, fitted_two) = runs
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(latest_one, latest_two)
    assert list(one[["split", "group"]].itertuples(index=False, name=None)) == [
        (masks.name, group)
        for masks in data.splits
        for group in sorted(set(one["group"]), key=list(one["group"]).index)
    ]  # in the order of the splits, then the grid, however the fits finished
    assert fitted_one.keys() == fitted_two.keys() and len(fitted_one) == len(one)
    # fitted on one thread each, they predict on the config's threads (a registered model is not served on one)
    lightgbm = [
        m.estimator.named_steps["model"] for m in fitted_two.values() if m.estimator.riskloop_family_ == "lightgbm"
    ]
    assert lightgbm and all(m.n_jobs == 2 for m in lightgbm)


def test_side_by_side_fits_are_as_many_as_the_threads_and_the_memory_allow(tmp_path, monkeypatch):
    data = model_data(screening_config(tmp_path))
    assert fits_at_once(data, 2) == 2 and fits_at_once(data, 1) == 1
    rows = max(int((m.fit | m.validation).sum()) for m in data.splits)
    monkeypatch.setattr(training, "FIT_MEMORY", 3 * 2 * 8 * rows * len(data.features))  # room for three fits
    assert fits_at_once(data, 8) == 3
    monkeypatch.setattr(training, "FIT_MEMORY", 1)
    assert fits_at_once(data, 8) == 1


def test_fewer_fits_than_cpus_share_the_threads(tmp_path, monkeypatch):
    data = model_data(screening_config(tmp_path))  # two model groups
    threads, fit = [], training.fit_model
    monkeypatch.setattr(training, "fit_model", lambda *args: threads.append(args[-1]) or fit(*args))
    config = screening_config(tmp_path, threads=4)
    run_temporal_validation(dataclasses.replace(data, splits=data.splits[-1:]), config)
    assert threads == [2, 2]  # one split: two fits on two threads each
    threads.clear()
    run_temporal_validation(data, config)
    assert threads == [1] * 2 * len(data.splits)  # as many fits as CPUs or more: one thread each


def test_escalation_model_beats_the_one_feature_baseline_and_is_calibrated(escalation_run):
    config, data, result = escalation_run
    assert "sex" not in data.features and "ethnicity" not in data.features
    summary = result.summary
    lightgbm = summary[summary["family"] == "lightgbm"].iloc[0]
    baseline = summary[summary["family"] == "prior_harm"].iloc[0]
    assert lightgbm["roc_auc_mean"] > baseline["roc_auc_mean"] + 0.03
    assert lightgbm["precision_at_k_mean"] > baseline["precision_at_k_mean"]
    assert result.final_metrics["test_ece"] < 0.03
    assert result.selected.family == "lightgbm"
    scored = result.scorer.score(data.frame[data.final.validation])
    assert scored["band"].between(1, 20).all()
    assert abs((scored["band"] >= 19).mean() - 0.1) < 0.05  # ventiles of the reference population


def test_selection_reads_validation_metrics_only():
    from riskloop.pipelines.train import select

    config = load_config(REPO / "experiments" / "escalation.yaml")
    summary = pd.DataFrame(
        {
            "roc_auc_mean": [0.90, 0.70],
            "precision_at_k_mean": [0.5, 0.1],
            "val_roc_auc_mean": [0.70, 0.80],
            "val_precision_at_k_mean": [0.1, 0.3],
        },
        index=["best_on_test", "best_on_validation"],
    )
    assert select(summary, config) == "best_on_validation"


def test_registered_model_metrics_and_audit_are_out_of_time(escalation_run):
    config, data, result = escalation_run
    test = data.frame[data.final.test]
    assert not (data.final.test & (data.final.fit | data.final.validation)).any()
    assert result.final_metrics["test_n"] == len(test)
    assert result.final_metrics["test_roc_auc"] == pytest.approx(
        result.split_metrics.set_index(["group", "split"]).loc[(result.selected.name, data.final.name), "roc_auc"]
    )
    assert result.fairness.operating_point["n"] == len(test)


def test_bands_stay_ventiles_when_isotonic_calibration_has_plateaus(escalation_run):
    _, data, result = escalation_run
    cuts = np.asarray(result.scorer.contract.band_cuts)
    assert len(np.unique(cuts)) == 19 and (np.diff(cuts) > 0).all()
    reference = data.frame[data.final.validation]
    shares = result.scorer.score(reference)["band"].value_counts(normalize=True)
    assert len(shares) == 20 and shares.between(0.04, 0.06).all()
    plateaus = pd.Series(result.scorer.risk(reference)).round(12).nunique()
    assert result.scorer.calibrated.method != "isotonic" or plateaus < 200  # risk alone could not cut 20 bands


def test_protected_features_only_when_asked_loudly(world_20k, tmp_path):
    config = with_data(load_config(REPO / "experiments" / "escalation.yaml"), world_20k)
    loud = dataclasses.replace(config, protected_as_features=("sex",))
    data = model_data(loud)
    assert "sex" in data.features and "sex" in data.categorical
    assert any("PROTECTED CHARACTERISTIC USED AS A MODEL FEATURE: 'sex'" in w for w in data.warnings)


def test_a_large_cohort_trains_on_a_uniform_sample_of_people_that_every_report_names(world_20k):
    """Each as-of date keeps at most max_people_per_as_of labelled rows: the same people wherever they are in the
    cohort (a keyed hash, not a draw per date), their features the whole cohort's; the note says how many."""
    config = with_data(load_config(REPO / "experiments" / "escalation.yaml"), world_20k)
    whole = model_data(dataclasses.replace(config, max_people_per_as_of=None))
    sampled = model_data(dataclasses.replace(config, max_people_per_as_of=1_000))
    assert not any(w.startswith("SAMPLED") for w in whole.warnings)
    per_date = sampled.frame.groupby("as_of").size()
    assert (per_date == 1_000).all() and len(per_date) == whole.frame["as_of"].nunique()
    keys = ["as_of", "person_id"]
    kept = sampled.frame.merge(whole.frame[keys], on=keys, how="left", indicator=True)
    assert (kept["_merge"] == "both").all()
    pd.testing.assert_frame_equal(
        sampled.frame, whole.frame.merge(sampled.frame[keys], on=keys).reset_index(drop=True), check_like=False
    )
    # a person kept at one date is kept at the next wherever both cohorts hold them, far beyond chance
    first, second = (set(g["person_id"]) for _, g in list(sampled.frame.groupby("as_of"))[-2:])
    both = set(whole.frame.loc[whole.frame["as_of"] == whole.frame["as_of"].max(), "person_id"]) & set(
        whole.frame.loc[whole.frame["as_of"] == sorted(whole.frame["as_of"].unique())[-2], "person_id"]
    )
    assert len(first & second & both) > 0.9 * len(first & both)
    assert sampled.frame["label"].mean() == pytest.approx(whole.frame["label"].mean(), abs=0.02)
    note = next(w for w in sampled.warnings if w.startswith("SAMPLED"))
    assert f"{len(sampled.frame):,} of {len(whole.frame):,} labelled rows" in note
    again = model_data(dataclasses.replace(config, max_people_per_as_of=1_000))
    pd.testing.assert_frame_equal(again.frame, sampled.frame)
    other_seed = model_data(dataclasses.replace(config, max_people_per_as_of=1_000, seed=7))
    assert set(other_seed.frame["person_id"]) != set(sampled.frame["person_id"])


def test_a_table_column_both_feature_and_protected_needs_protected_as_features(tmp_path):
    text = (
        (DATA / "screening.yaml")
        .read_text()
        .replace("feature_columns: [age, priors, charge_degree]", "feature_columns: [age, priors, charge_degree, sex]")
    )
    (tmp_path / "screening.csv").write_bytes((DATA / "screening.csv").read_bytes())
    with pytest.raises(ConfigError, match="'sex' is also a protected column; list it under protected_as_features"):
        load_config(write_config(tmp_path, text))
    loud = dataclasses.replace(load_config(DATA / "screening.yaml"), protected_as_features=("sex",))
    data = model_data(loud)
    assert data.features == ["age", "priors", "charge_degree", "sex"] and "sex" in data.categorical
    assert list(data.frame.columns).count("sex") == 1 and "sex" in data.protected
    assert any("PROTECTED CHARACTERISTIC USED AS A MODEL FEATURE: 'sex'" in w for w in data.warnings)


def test_a_config_trains_on_reported_incidents_only_where_the_data_says_how_each_came_to_attention(world_20k, tmp_path):
    config = dataclasses.replace(
        with_data(load_config(REPO / "experiments" / "escalation.yaml"), world_20k), incidents="reported"
    )
    data = model_data(config)
    assert data.snapshot is not None and data.snapshot.incidents == "reported"
    found = [c for c in data.features if "_drugs_" in c or "_public_order_" in c]
    assert found and (data.frame[found] == 0).all().all()  # only the proactively found types are drugs, public order
    everything = model_data(dataclasses.replace(config, incidents="all"))
    assert (everything.frame[found] > 0).any().any()
    unknown = tmp_path / "no-attention"
    shutil.copytree(world_20k, unknown, ignore=shutil.ignore_patterns("truth"))
    incidents = pd.read_parquet(unknown / "incidents.parquet").drop(columns="attention")
    incidents.to_parquet(unknown / "incidents.parquet", index=False)
    with pytest.raises(
        ValueError, match="^incidents: reported needs the incidents table's optional 'attention' column"
    ):
        model_data(with_data(config, unknown))
    text = (DATA / "screening.yaml").read_text() + "incidents: reported\n"
    (tmp_path / "screening.csv").write_bytes((DATA / "screening.csv").read_bytes())
    with pytest.raises(ConfigError, match="incidents: 'reported' filters a data set's incidents"):
        load_config(write_config(tmp_path, text))


def test_a_prevalence_shift_is_warned_about(escalation_run):
    from riskloop.pipelines.train import prevalence_shift

    _, data, result = escalation_run
    assert result.warnings == prevalence_shift(data)
    shifted = dataclasses.replace(
        data, frame=data.frame.assign(label=np.where(data.final.test, 1.0, data.frame["label"]))
    )
    assert "calibration measured on test is unreliable" in prevalence_shift(shifted)[0]


def test_dataset_schema_rows_hold_each_columns_first_missing_value_so_the_schema_is_the_full_frames():
    n = 5_000
    frame = pd.DataFrame(
        {
            "a": np.arange(n, dtype=float),
            "b": np.ones(n),
            "c": pd.Categorical(["x"] * n),
            "label": np.zeros(n, dtype=int),
        }
    )
    frame.loc[4_321, "a"] = np.nan  # missing only far past the head
    frame.loc[4_999, "c"] = np.nan
    rows = dataset_schema_rows(frame, head=10)
    assert rows.index.tolist() == [*range(10), 4_321, 4_999]
    schema = lambda f: mlflow.data.from_pandas(f, targets="label").schema.to_dict()  # noqa: E731
    assert schema(rows) == schema(frame) != schema(frame.head(10))
