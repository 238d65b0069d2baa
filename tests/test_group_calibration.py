"""Calibration within protected groups (`calibrate_within`): the maps, the scorer's refusals, training with the
remedy, the contract and the API."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from riskloop.cli import app as cli
from riskloop.experiments.config import ConfigError, load_config, with_data
from riskloop.experiments.served import LoadedModel
from riskloop.experiments.tracking import log_training, signature_rows
from riskloop.jobs.model import model_data
from riskloop.models.contract import ModelContract
from riskloop.models.fairness import audit
from riskloop.models.gate import GateSettings, calibration_by_group
from riskloop.models.group_calibration import (
    GroupValueError,
    fit_groupwise,
    fit_maps,
    fit_multicalibration,
    off_beyond_chance,
    unknown_values,
)
from riskloop.pipelines.score import score_frame
from riskloop.pipelines.train import train, within_group_map
from riskloop.reports.model_card import card_plots, render_model_card
from riskloop.serving.api import create_app
from riskloop.serving.batch import uncalibrated_groups_warning
from riskloop.serving.settings import ServeSettings
from riskloop.serving.tokens import create_token
from tests.conftest import hand_contract, own_store

REPO = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"


def off_for_women(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(pooled risk, outcomes, frame with sex): the pooled risk is right for men and twice the truth for women."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"]), n)
    pooled = np.clip(rng.beta(0.6, 12, n), 1e-4, 0.95)
    truth = np.where(sex == "F", pooled / 2, pooled)
    return pooled, rng.random(n) < truth, pd.DataFrame({"sex": sex})


def verdict_by_sex(y: np.ndarray, risk: np.ndarray, sex: np.ndarray) -> dict[str, str]:
    selected = risk >= np.quantile(risk, 0.95)
    table = calibration_by_group(y.astype(int), risk, selected, sex, GateSettings())
    return dict(table.loc[table["scope"] == "all", ["group", "status"]].to_numpy())


def test_both_maps_fix_a_pooled_risk_that_is_off_for_one_group_out_of_sample():
    risk, y, frame = off_for_women(60_000, seed=1)
    later_risk, later_y, later = off_for_women(60_000, seed=2)  # fitted on one sample, judged on another
    assert verdict_by_sex(later_y, later_risk, later["sex"].to_numpy()) == {"F": "fail", "M": "pass"}
    for within in fit_maps(risk, y.astype(float), frame, ("sex",), min_events=10):
        remedied = within.apply(later_risk, later)
        assert verdict_by_sex(later_y, remedied, later["sex"].to_numpy()) == {"F": "pass", "M": "pass"}, within.method
        men = later["sex"].to_numpy() == "M"
        assert np.abs(remedied[men] / later_risk[men] - 1).mean() < 0.1  # men's right risk is left nearly alone


def test_multicalibration_leaves_no_judged_cell_off_beyond_alpha_and_chance():
    risk, y, frame = off_for_women(30_000, seed=3)
    alpha = 0.1 * y.mean()
    within = fit_multicalibration(risk, y.astype(float), frame, ("sex",), min_events=20, alpha=alpha)
    assert within.patches and {dict(p.group).get("sex") for p in within.patches} >= {"F"}
    p = within.apply(risk, frame)
    inner = np.unique(np.quantile(np.clip(risk, 1e-6, 1 - 1e-6), np.arange(1, 10) / 10))
    bins = np.searchsorted(inner, p, side="right")
    for member in (np.ones(len(p), bool), frame["sex"].to_numpy() == "F", frame["sex"].to_numpy() == "M"):
        for b in np.unique(bins):
            cell = member & (bins == b)
            if p[cell].sum() >= 20:
                residual = (y[cell] - p[cell]).mean()
                assert abs(residual) <= alpha + 1e-12 or not off_beyond_chance(y[cell].sum(), p[cell].sum())


def test_a_group_whose_pooled_risk_is_off_only_by_chance_keeps_it():
    rng = np.random.default_rng(5)
    risk = np.full(4_000, 0.01)
    frame = pd.DataFrame({"sex": np.repeat(np.array(["F", "M"]), 2_000)})
    y = np.zeros(4_000)
    y[rng.choice(2_000, 15, replace=False)] = 1  # women: 15 events against 20 expected, within chance
    y[2_000 + rng.choice(2_000, 45, replace=False)] = 1  # men: 45 against 20, beyond it
    groupwise, multicalibrated = fit_maps(risk, y, frame, ("sex",), min_events=10)
    assert set(groupwise.maps) == {("M",)} and groupwise.corrects() == "sex = M"
    assert {p.group for p in multicalibrated.patches} <= {(), (("sex", "M"),)}
    for within in (groupwise, multicalibrated):
        np.testing.assert_allclose(within.apply(risk, frame)[:2_000], risk[:2_000], err_msg=within.method)
        assert within.apply(risk, frame)[2_000:].mean() > 0.015, within.method


def test_groupwise_map_keeps_the_pooled_risk_for_a_group_too_small_to_fit_or_already_right():
    risk, y, frame = off_for_women(20_000, seed=4)
    frame.loc[:4, "sex"] = "X"  # five people: no map of their own
    within = fit_groupwise(risk, y.astype(float), frame, ("sex",), min_events=10)
    assert set(within.maps) == {("F",)} and "X" in within.levels[0]  # men's pooled risk is right already
    mapped = within.apply(risk, frame)
    women = (frame["sex"] == "F").to_numpy()
    np.testing.assert_array_equal(mapped[~women], risk[~women])
    assert (mapped[women] < risk[women]).mean() > 0.9


@pytest.fixture(scope="module")
def remedied_run(world_20k):
    """A quick escalation experiment (logistic only) calibrated within sex, on the 20k world with 60% of women's
    escalations taken out of the labels: a sex-blind model then over-predicts women about threefold."""
    config = with_data(load_config(REPO / "experiments" / "escalation.yaml"), world_20k)
    config = dataclasses.replace(
        config,
        name="esc-within",
        threads=1,
        calibrate_within=("sex",),
        models=dataclasses.replace(config.models, lightgbm=None, prior_harm=None),
    )
    data = model_data(config)
    frame = data.frame
    women = (frame["sex"] == "F").to_numpy() & (frame["label"] == 1).to_numpy()
    taken = women & (np.random.default_rng(0).random(len(frame)) < 0.6)
    data = dataclasses.replace(data, frame=frame.assign(label=np.where(taken, 0, frame["label"])))
    return config, data, train(data, config)


def test_with_the_remedy_the_gate_passes_where_the_same_model_without_it_fails_for_women(remedied_run):
    config, data, result = remedied_run
    test = data.frame[data.final.test]
    pooled = result.scorer.calibrated.calibrate_scores(result.scorer.raw_score(test))
    sex_blind = audit(test["label"].to_numpy(), pooled, test, data.protected, config.fairness, config.capacity)
    assert any(r.startswith("calibration for sex=F (overall)") for r in sex_blind.gate_reasons())
    assert result.fairness.gate_reasons() == []
    judged = result.fairness.calibration
    by_sex = judged[(judged["characteristic"] == "sex") & (judged["scope"] == "all")].set_index("group")
    assert (by_sex["status"] != "fail").all() and 0.5 < by_sex.loc["F", "ratio"] < 1.5
    assert result.scorer.within.corrects() == "sex = F"


def test_training_with_the_remedy_fits_the_map_on_the_calibration_window_only(remedied_run):
    config, data, result = remedied_run
    scorer = result.scorer
    assert scorer.contract.calibrated_within == ("sex",) and scorer.within is not None
    assert any(w.startswith("CALIBRATED WITHIN SEX: the score is mapped to a probability") for w in data.warnings)
    validation = data.frame[data.final.validation]
    pooled = scorer.calibrated.calibrate_scores(scorer.raw_score(validation))
    refit = {m.method: m for m in fit_maps(pooled, validation["label"].to_numpy(), validation, ("sex",), 10)}
    assert refit[scorer.within.method] == scorer.within  # the same map from the calibration rows alone
    elsewhere = ~(data.final.validation | data.final.test)  # outcomes there must not move the map
    flipped = data.frame.assign(label=np.where(elsewhere, 1 - data.frame["label"], data.frame["label"]))
    test = data.frame[data.final.test]
    test_pooled = scorer.calibrated.calibrate_scores(scorer.raw_score(test))
    again, _ = within_group_map(dataclasses.replace(data, frame=flipped), config, pooled, test, test_pooled)
    assert again == scorer.within
    assert [v.method for v in result.within][0] == scorer.within.method and len(result.within) == 2


def test_the_test_window_audit_and_metrics_judge_the_remedied_risk(remedied_run):
    config, data, result = remedied_run
    test = data.frame[data.final.test]
    risk = result.scorer.risk(test)
    pooled = result.scorer.calibrated.calibrate_scores(result.scorer.raw_score(test))
    assert not np.allclose(risk, pooled)
    by_sex = result.fairness.by_group.set_index(["characteristic", "group"]).loc["sex"]
    for sex in ("F", "M"):
        np.testing.assert_allclose(by_sex.loc[sex, "mean_predicted"], risk[test["sex"].to_numpy() == sex].mean())
    assert result.final_metrics["test_brier"] == pytest.approx(np.mean((risk - test["label"].to_numpy()) ** 2))


def test_sex_maps_the_probability_but_is_never_a_feature(remedied_run):
    _, data, result = remedied_run
    scorer = result.scorer
    assert "sex" not in scorer.features and "sex" not in scorer.contract.protected_as_features
    assert scorer.input_columns == [*scorer.features, "sex"]
    rows = data.frame[data.final.test].head(300)
    flipped = rows.assign(sex=rows["sex"].map({"F": "M", "M": "F"}).fillna(rows["sex"]))
    np.testing.assert_array_equal(scorer.raw_score(rows), scorer.raw_score(flipped))
    contrib, _ = scorer.attributions(rows)
    contrib_flipped, _ = scorer.attributions(flipped)
    assert list(contrib.columns) == scorer.features
    pd.testing.assert_frame_equal(contrib, contrib_flipped)
    scored, scored_flipped = scorer.score(rows), scorer.score(flipped)
    np.testing.assert_array_equal(scored["band"], scored_flipped["band"])  # bands are cut on the raw score
    assert not np.allclose(scored["risk"], scored_flipped["risk"])


def test_a_group_the_calibration_window_never_held_keeps_the_pooled_risk_and_is_named(remedied_run):
    """One person with sex 'U' once refused everyone's list; now that person keeps the pooled risk, said so."""
    _, data, result = remedied_run
    scorer = result.scorer
    assert scorer.within is not None and scorer.within.columns == ("sex",) and "U" not in scorer.within.levels[0]
    rows = data.frame[data.final.test].head(50).reset_index(drop=True)
    rows.loc[:4, "sex"] = "U"
    raw = scorer.raw_score(rows)
    pooled, risk = scorer.calibrated.calibrate_scores(raw), scorer.risk(rows)
    np.testing.assert_array_equal(risk[:5], pooled[:5])
    np.testing.assert_array_equal(risk[5:], scorer.risk(rows.iloc[5:]))  # the others as before
    assert unknown_values(rows, scorer.within.columns, scorer.within.levels) == [("sex", "U", 5)]
    (warning,) = uncalibrated_groups_warning(scorer, rows)
    assert "calibration within sex never saw: sex 'U' (5)" in warning and "pooled calibrated risk" in warning
    assert uncalibrated_groups_warning(scorer, rows.iloc[5:]) == ()


def test_the_scorer_refuses_rows_without_a_valid_group_in_one_line(remedied_run):
    _, data, result = remedied_run
    scorer = result.scorer
    rows = data.frame[data.final.test].head(20)
    for frame, message in (
        (rows[scorer.features], "the frame lacks protected column 'sex'"),
        (rows.assign(sex=None), "column 'sex' is missing in 20 row(s)"),
    ):
        for score in (scorer.risk, scorer.score, lambda f: score_frame(scorer, f)):
            with pytest.raises(GroupValueError) as error:
                score(frame)
            assert message in str(error.value) and "\n" not in str(error.value)


def test_batch_scoring_reads_the_group_from_the_snapshot(remedied_run):
    _, data, result = remedied_run
    rows = data.frame[data.final.test]
    scored = score_frame(result.scorer, rows, chunk_rows=1_000)
    np.testing.assert_allclose(scored["risk"], result.scorer.risk(rows))
    np.testing.assert_allclose(scored["score"], result.scorer.raw_score(rows))


def test_contract_round_trip_keeps_the_groups_and_an_older_contract_loads_pooled():
    contract = dataclasses.replace(hand_contract(), calibrated_within=("sex",))
    assert ModelContract.from_json(contract.to_json()) == contract
    older = json.loads(hand_contract().to_json())
    del older["calibrated_within"]
    assert ModelContract.from_json(json.dumps(older)).calibrated_within == ()


def test_a_scorer_whose_map_disagrees_with_its_contract_is_refused(remedied_run):
    _, _, result = remedied_run
    with pytest.raises(ValueError, match=r"the contract says the model is calibrated within \[\]"):
        dataclasses.replace(result.scorer, contract=dataclasses.replace(result.scorer.contract, calibrated_within=()))


def test_a_table_config_names_groups_from_its_protected_columns(tmp_path):
    text = (DATA / "screening.yaml").read_text() + "calibrate_within: [age]\n"
    (tmp_path / "screening.csv").write_bytes((DATA / "screening.csv").read_bytes())
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "c.yaml")
    assert str(error.value) == "c.yaml: calibrate_within: 'age' is not one of table.protected_columns (ethnicity, sex)"


def test_the_model_card_says_so_in_words(remedied_run):
    config, data, result = remedied_run
    card = html.unescape(render_model_card(config, data, result, card_plots(config, data, result)))
    notice = "CALIBRATED WITHIN SEX: the score is mapped to a probability separately for each sex"
    assert card.count(notice) == 2  # among the warnings at the top, and under Calibration
    assert f"the {result.within[0].method} map was kept" in card


def test_the_registered_version_and_the_api_require_the_group(remedied_run, world_20k, tmp_path):
    config, data, result = remedied_run
    with own_store(tmp_path):
        outcome = log_training(config, data, result, tmp_path / "out")
        client = mlflow.MlflowClient()
        version = client.get_model_version(outcome.registered_model, outcome.model_version)
        assert version.tags["calibrated_within"] == "sex"
        params = client.get_run(outcome.run_id).data.params
        assert params["calibrated_within"] == "sex" and params["calibrated_within_method"] == result.within[0].method
        contract = ModelContract.from_json((tmp_path / "out" / "contract.json").read_text())
        assert contract.calibrated_within == ("sex",)
        tokens = tmp_path / "tokens.jsonl"
        token = create_token(tokens, "wales", ("all",))
        uri = f"models:/{outcome.registered_model}/{outcome.model_version}"
        columns = {c.name: c for c in LoadedModel.load(uri).columns}
        assert columns["sex"].required and columns["sex"].kind == "string"
        app = create_app(ServeSettings(tokens=tokens, audit_log=tmp_path / "audit.jsonl", model_uri=uri))
        with TestClient(app) as api:

            def post(records: list[dict]):
                return api.post(
                    "/invocations", json={"dataframe_records": records}, headers={"Authorization": f"Bearer {token}"}
                )

            rows = signature_rows(data, result.scorer.input_columns)
            record = {k: (None if pd.isna(v) else v) for k, v in rows.iloc[0].to_dict().items()}
            scored = post([record])
            assert scored.status_code == 200
            assert scored.json()["predictions"][0]["risk"] == pytest.approx(float(result.scorer.risk(rows.head(1))[0]))
            without = {k: v for k, v in record.items() if k != "sex"}
            response = post([without])
            assert response.status_code == 422
            assert response.json()["detail"][0]["loc"] == ["body", "dataframe_records", 0, "sex"]
            response = post([{**record, "sex": None}])
            assert response.status_code == 422
            assert any("'sex' is missing" in e["msg"] for e in response.json()["detail"]), response.json()
            unseen = post([{**record, "sex": "Q"}])  # a group the calibration never held: the pooled risk, as in lists
            pooled = result.scorer.calibrated.calibrate_scores(result.scorer.raw_score(rows.head(1)))[0]
            assert unseen.status_code == 200 and unseen.json()["predictions"][0]["risk"] == pytest.approx(float(pooled))
            # the README's example request: real feature rows of the cohort, no pseudonyms, scored as they are
            example = CliRunner().invoke(
                cli,
                ["example-request", "--model", uri, "--data", str(world_20k), "--as-of", "2025-07-01", "--rows", "3"],
            )
            assert example.exit_code == 0, example.output
            split = json.loads(example.stdout)["dataframe_split"]
            assert split["columns"] == result.scorer.input_columns and len(split["data"]) == 3
            assert "person_id" not in example.stdout
            scored = api.post(
                "/invocations",
                content=example.stdout,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert scored.status_code == 200 and len(scored.json()["predictions"]) == 3
