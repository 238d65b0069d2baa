"""One learning cycle on the 20k world, as a partnership runs it (`riskloop score --shadow`, then `riskloop
learn --scores`): outcomes linked, effects per programme, a treatment-aware challenger fitted on every closed
label, judged by a backtest and in shadow, then by the gates; drift, and a report that names no one."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import own_store
from mlflow.tracking import MlflowClient

from riskloop.artifacts.dataset import read_dataset
from riskloop.experiments.config import ModelGrid
from riskloop.experiments.registry import load_model
from riskloop.experiments.tracking import log_training
from riskloop.features.snapshot import PreparedData
from riskloop.jobs.learn import LearnJob, learn
from riskloop.jobs.score import ScoreJob, score
from riskloop.learning.cycle import LearnSettings, closed_as_of, cycle_before, retraining_settings, trials
from riskloop.learning.linkage import monthly_cohorts
from riskloop.learning.policy import ESCALATIONS, HARM, NONE, RANDOM, RISK, RULES, USED
from riskloop.learning.retrain import INTERVENTION_FAMILIES, treatment_aware
from riskloop.pipelines.data import cut_to_schedule, from_dataset
from riskloop.pipelines.train import model_specs, procedure_model, run_temporal_validation, train
from riskloop.reports.words import words

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with own_store(tmp_path_factory.mktemp("learning-store")) as folder:
        yield folder


@pytest.fixture(scope="module")
def champion(escalation_run, store, tmp_path_factory):
    config, data, result = escalation_run
    config = dataclasses.replace(config, name="learn-test")
    outcome = log_training(config, data, result, tmp_path_factory.mktemp("champion") / "model")
    MlflowClient().set_registered_model_alias(config.registered_model, "champion", outcome.model_version)
    return config


@pytest.fixture(scope="module")
def prepared(world_20k) -> PreparedData:
    return PreparedData.from_dataset(read_dataset(world_20k))


@pytest.fixture(scope="module")
def aware_data(escalation_run):
    """The escalation run's model data made treatment-aware."""
    return treatment_aware(escalation_run[1])


@pytest.fixture(scope="module")
def cycle(champion, world_20k, store):
    config = dataclasses.replace(
        champion,
        models=dataclasses.replace(champion.models, logistic=None, prior_harm=None),
        schedule=dataclasses.replace(champion.schedule, n_test=1),
        max_people_per_as_of=2_000,  # the retraining samples people, as on a large population
    )
    champion_uri = f"models:/{config.registered_model}@champion"
    version = MlflowClient().get_model_version_by_alias(config.registered_model, "champion").version
    scored = store / "scores-2024-07-01"  # the champion's lists at T, the same model in shadow beside them
    score(
        ScoreJob(
            champion_uri,
            str(world_20k),
            date(2024, 7, 1),
            scored,
            shadow=f"models:/{config.registered_model}/{version}",
        )
    )
    learned = learn(LearnJob(champion_uri, world_20k, config, store / "learn-out", scores=scored, threads=2, repeats=2))
    return learned.result, learned.report


def test_treatment_aware_data_keeps_every_row_and_marks_the_intervention_history_to_be_scored_as_none(
    escalation_run, aware_data
):
    _, data, _ = escalation_run
    history = [s.name for s in data.catalogue if s.family in INTERVENTION_FAMILIES]
    assert len(history) >= 6 and set(history) <= set(data.features)
    assert aware_data.frame is data.frame and aware_data.features == data.features
    assert aware_data.scored_as_untreated == tuple(history)
    assert "scored as no programme" in aware_data.warnings[-1]


def test_naive_retraining_learns_that_people_in_a_programme_are_low_risk_and_treatment_aware_does_not(
    escalation_run, aware_data
):
    """The same people scored twice, with and without their programme history: the naive model's risk moves
    with the history (on the calibrated world, down for some people in DRIVE and up for others, whose
    referral marks recent harm); the treatment-aware model learns from the history too but scores everyone
    without it, and never gives it as a reason."""
    config, data, _ = escalation_run
    config = dataclasses.replace(config, models=dataclasses.replace(config.models, logistic=None, prior_harm=None))
    naive = train(data, config).scorer
    aware = train(aware_data, config).scorer
    history = [s.name for s in data.catalogue if s.family in INTERVENTION_FAMILIES]
    active = [s.name for s in data.catalogue if s.family == "intervention_active"]
    test = data.frame[data.final.test]
    in_programme = test[(test[active].fillna(0) > 0).any(axis=1)]
    without = in_programme.assign(**{name: 0.0 for name in history})
    assert len(in_programme) >= 50
    moved = naive.risk(in_programme) != naive.risk(without)
    assert moved.mean() > 0.2, f"naive retraining moved {moved.mean():.0%} of the treated"
    assert np.array_equal(aware.risk(in_programme), aware.risk(without))
    learned = aware.pipeline.predict_proba(in_programme[aware.features])[:, 1] != aware.raw_score(in_programme)
    assert learned.mean() > 0.2, "the treatment-aware model learned nothing from the history"
    cited = aware.reasons(in_programme).to_numpy().ravel().astype(str)
    assert not any("intervention" in r for r in cited)


def test_the_backtest_cuts_the_retrainings_rows_and_fits_only_the_splits_they_do_not_share(escalation_run, prepared):
    config, data, result = escalation_run
    schedule = config.data_schedule
    earlier = dataclasses.replace(
        config, schedule=dataclasses.replace(schedule, end=cycle_before(schedule.end, config))
    )
    cut, built = cut_to_schedule(data, earlier), from_dataset(earlier, prepared)
    # the cut is what building the earlier retraining's snapshots gives, split for split
    pd.testing.assert_frame_equal(cut.frame, built.frame)
    assert [m.name for m in cut.splits] == [m.name for m in built.splits] and cut.final.name == built.final.name
    for a, b in zip(cut.splits, built.splits):
        assert all((getattr(a, k) == getattr(b, k)).all() for k in ("fit", "validation", "test"))
    shared = [m for m in cut.splits if m.name in set(result.split_metrics["split"])]
    assert len(shared) == len(cut.splits) - 1  # one cycle earlier: one new split, the rest shared
    # a shared split holds the same rows, so fitting it again gives the figures the retraining measured
    again, _, _ = run_temporal_validation(dataclasses.replace(cut, splits=shared[:1]), earlier)
    measured = result.split_metrics.set_index(["group", "split"]).loc[again.set_index(["group", "split"]).index]
    pd.testing.assert_frame_equal(again.set_index(["group", "split"]), measured, check_dtype=False)
    steps: list[str] = []
    within = result.scorer.within.method if result.scorer.within is not None else None
    procedure_model(cut, earlier, within, steps.append, result.split_metrics)
    fitted = {step.rsplit(" on ", 1)[1] for step in steps if " on test-" in step}
    assert fitted == {cut.splits[0].name}


def test_monthly_cohorts_hold_each_start_once_with_its_features_as_of_the_month(champion, prepared, world_20k, store):
    loaded = load_model(f"models:/{champion.registered_model}@champion")
    as_of = date(2023, 1, 1)
    stacked = trials(loaded.scorer, prepared, as_of, 90)
    assert (
        sorted(stacked["month"].unique())
        == monthly_cohorts(as_of, 90)
        == [date(2023, 1, 1), date(2023, 2, 1), date(2023, 3, 1)]
    )
    interventions = read_dataset(world_20k).interventions
    starts = interventions[
        (interventions["start_date"] >= pd.Timestamp("2023-01-01"))
        & (interventions["start_date"] < pd.Timestamp("2023-04-01"))
    ]
    in_cohort = starts[starts["person_id"].isin(stacked["person_id"])]
    assert stacked.filter(like="started_").to_numpy().sum() == len(in_cohort)
    assert stacked["escalated"].notna().all()
    assert stacked["risk"].between(0, 1).all() and (stacked["weight"] >= 1).all()
    # each row's harm: its person's recorded offending harm in the year after the month's first day, each incident
    # once (a person both perpetrator and suspect in one incident: its largest harm)
    incidents = read_dataset(world_20k).incidents
    offending = (
        incidents[incidents["role"].isin(["perpetrator", "suspect"])]
        .groupby(["person_id", "incident_id"], as_index=False)
        .agg(date=("date", "first"), harm=("harm", "max"))
    )
    rows = stacked[["person_id", "month"]].assign(row=np.arange(len(stacked)))
    pairs = rows.merge(offending[["person_id", "date", "harm"]], on="person_id")
    month = pd.to_datetime(pairs["month"])
    inside = (pairs["date"] > month) & (pairs["date"] <= month + pd.Timedelta(days=365))
    expected = pairs[inside].groupby("row")["harm"].sum().reindex(rows["row"], fill_value=0.0)
    np.testing.assert_allclose(stacked["harm"].to_numpy(), expected.to_numpy())
    assert (stacked.loc[stacked["escalated"] == 1, "harm"] > 0).all() and (stacked["harm"] > 0).mean() > 0.02


def test_a_learning_cycle_links_outcomes_estimates_effects_and_registers_a_challenger(
    cycle, champion, world_20k, store
):
    result, report = cycle
    assert result.as_of == closed_as_of(date(2025, 12, 31), 365, 180) == date(2024, 7, 1)
    assert len(result.outcomes) == result.outcomes["person_id"].nunique()
    assert 0 < result.outcomes["listed"].mean() <= 0.06  # the model's 5% capacity per local authority
    names = [p.programme for p in result.programmes]
    assert names == ["diversion", "drive", "iris", "youth_early_action"]
    estimated = [p for p in result.programmes if p.effects is not None]
    assert estimated, "no programme had enough starts to estimate"
    for p in estimated:
        overall = p.overall
        assert overall["dr_ci_low"] < overall["dr"] < overall["dr_ci_high"]
        assert set(p.who_benefits["learner"]) == {"t_learner", "x_learner"}
        # which targeting would have prevented more: every rule at the places the rule used filled
        table = p.targeting.table
        assert list(table.index) == list(RULES)
        assert table.loc[RISK, "places"] <= table.loc[USED, "places"] == p.n_treated
        assert table.loc[RANDOM, "places"] == pytest.approx(p.n_treated) and table.loc[NONE, "places"] == 0
        for outcome in (ESCALATIONS, HARM):
            assert (table[outcome.low] <= table[outcome.value]).all()
            assert (table[outcome.value] <= table[outcome.high]).all()
        assert p.targeting.words.startswith(("No evidence to change", "Change to"))
    html = report.read_text()
    assert "Which targeting would have prevented more" in html
    assert "escalations (per 1,000 people, 95% interval)" in html
    assert "recorded harm (harm weight per 1,000 people, 95% interval)" in html
    challenger = load_model(f"models:/{champion.registered_model}@challenger")
    assert challenger.version == result.challenger.model_version
    retrain = MlflowClient().get_run(result.challenger.run_id)  # says which cycle, data end and role
    assert retrain.info.run_name.endswith(f"(cycle 2024-07-01, data to {date(2025, 12, 31)})")
    tags = retrain.data.tags
    assert (tags["riskloop.role"], tags["riskloop.cycle"], tags["riskloop.data_end"]) == (
        "challenger",
        "2024-07-01",
        "2025-12-31",
    )
    assert tags["riskloop.retraining"] == result.retrain_notes[0]  # what it chose from: the champion's group
    assert "was refitted on the new labels" in (store / "learn-out" / "challenger" / "model_card.html").read_text()
    history = {f for f in challenger.contract.features if f.startswith(("prior_", "active_"))}
    assert history and set(challenger.contract.scored_as_untreated) >= history  # read from the registry's contract
    assert result.promoted or result.promotion_reasons
    # fitted on every closed label: newer outcomes than the champion's, its test window included
    before = result.champion.contract
    assert challenger.contract.refit and not before.refit
    assert challenger.contract.training_window[1] > before.training_window[1]
    assert challenger.contract.calibration_window[1] == date(2024, 7, 1) > before.calibration_window[1]
    assert challenger.contract.labels_closed_by() > before.labels_closed_by()
    assert not (result.learned["change"].abs() < 0.0005).all()  # it learned something the champion did not
    # the champion's model group refitted (not the grid searched again): the two differ by their data alone
    assert result.retrain_notes[0] == (
        f"The champion's model group ({before.model_group}) was refitted on the new labels; the config's grid was not "
        "searched again (`riskloop learn --retune` searches it)."
    )
    # judged by a backtest: the retraining one cycle earlier, on outcomes it never learned from
    backtest = result.backtest
    assert backtest.judge == "backtest" and backtest.as_of == closed_as_of(date(2025, 12, 31), 365) == date(2024, 12, 1)
    assert set(backtest.metrics.index) == {"champion", "challenger"} and backtest.people > 2_000
    assert not backtest.caveat  # the champion's labels closed before the cohort's date
    assert np.isfinite(backtest.metrics.to_numpy()).all()
    runs = mlflow.search_runs(
        experiment_names=[champion.name], filter_string="tags.`riskloop.role` = 'backtest'", output_format="list"
    )
    assert len(runs) == 1 and runs[0].data.tags["riskloop.data_end"] == "2025-06-30"
    assert runs[0].data.tags["riskloop.retraining"] == result.retrain_notes[0]
    assert runs[0].data.tags["riskloop.labels_closed_by"] <= "2025-06-30"  # nothing after the earlier end
    assert runs[0].data.metrics["backtest_roc_auc"] == backtest.metrics.loc["challenger", "roc_auc"]
    # and in shadow, at T: the same model, so the same figures; promotion follows the shadow
    shadow = result.shadow
    assert shadow.judge == "shadow" and shadow.as_of == date(2024, 7, 1) and result.judgement is shadow
    assert shadow.people == int(result.outcomes["escalated"].notna().sum())
    assert np.allclose(shadow.metrics.loc["champion"], shadow.metrics.loc["challenger"]) and not shadow.reasons
    assert result.drift.iloc[-1:]["column"].isin(list(challenger.contract.features) + ["risk"]).all()


def test_the_retraining_refits_the_champions_model_group_unless_told_to_search_the_grid_again(champion):
    grid = ModelGrid(logistic={"C": [0.1, 1.0]}, lightgbm={"num_leaves": [15, 31], "n_estimators": [300]})
    settings = LearnSettings("models:/x@champion", Path("data"), dataclasses.replace(champion, models=grid))
    cut, refitted = retraining_settings(settings, "lightgbm_n_estimators=300_num_leaves=31")
    assert cut.config.models.grids() == {"lightgbm": {"n_estimators": [300], "num_leaves": [31]}}
    assert [s.name for s in model_specs(cut.config)] == ["lightgbm_n_estimators=300_num_leaves=31"]
    assert "was refitted on the new labels" in refitted
    for group, retune, why in [
        ("lightgbm_n_estimators=300_num_leaves=31", True, "--retune"),
        ("gam_n_knots=4", False, "not in the config's grid"),
    ]:
        whole, searched = retraining_settings(dataclasses.replace(settings, retune=retune), group)
        assert whole.config.models == grid and why in searched


def test_learning_outputs_name_no_one_and_are_logged(cycle, champion, world_20k):
    result, report = cycle
    folder = report.parent
    html = report.read_text()
    for p in result.programmes:
        assert words(p.programme) in html
    assert "doubly robust" in html and "What these records cannot reveal" in html
    assert "In shadow" in html and "By backtest" in html and "Promotion follows the shadow comparison" in html
    unchanged = bool((result.learned["change"].abs() < 0.0005).all())
    assert ("it scores everyone as if they had had no programme." in html) == unchanged
    ids = set(pd.read_parquet(world_20k / "people.parquet")["person_id"])
    for name in ("effects.csv", "who_benefits.csv", "drift.csv", "learning.json", "learning_report.html"):
        text = (folder / name).read_text()
        assert not any(i in text for i in list(ids)[:2000]), name
    summary = json.loads((folder / "learning.json").read_text())
    assert summary["challenger_version"] == result.challenger.model_version
    assert summary["judged_by"] == "shadow" and set(summary["judgement"]) == {"champion", "challenger"}
    # what was sampled, said in the report and the summary: the untreated of each month, and the retraining's people
    controls, people = summary["sampled"]
    assert controls.startswith("What worked: the people who started no programme in a month were sampled")
    assert people.startswith("SAMPLED: the model trained and was measured on a uniform random sample of at most 2,000")
    assert "What was sampled" in html and html.count(people) == 1 and controls in html
    runs = mlflow.search_runs(experiment_names=[f"{result.champion.contract.name}-learning"])
    assert len(runs) >= 1
    artifacts = {a.path for a in MlflowClient().list_artifacts(runs.iloc[0]["run_id"])}
    assert {"effects.csv", "learning_report.html", "drift.csv"} <= artifacts
    effects = pd.read_csv(folder / "effects.csv")
    small = pd.to_numeric(effects["n_treated"], errors="coerce")
    assert not small.between(1, 7).any()  # small counts are suppressed, others rounded to 5
    assert (small.dropna() % 5 == 0).all()
    assert np.isfinite(pd.to_numeric(effects["dr"], errors="coerce").dropna()).all()


def test_a_learning_cycle_refuses_folders_holding_what_it_does_not_write_before_any_work(tmp_path):
    """Before the champion is even loaded (it does not exist here): not after retraining and promoting."""
    from riskloop.features.io import DataError

    out = tmp_path / "learn-out"
    for folder, writer in (("challenger", "riskloop train"), ("learning", "riskloop learn")):
        (out / folder).mkdir(parents=True)
        (out / folder / "notes.txt").write_text("mine")
        job = LearnJob("models:/riskloop-nothing@champion", tmp_path / "no-data", tmp_path / "no.yaml", out)
        with pytest.raises(DataError, match=f"holds 'notes.txt', which {writer} does not write"):
            learn(job)
        (out / folder / "notes.txt").unlink()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="afile is a file"):
        learn(
            LearnJob(
                "models:/riskloop-nothing@champion", tmp_path / "no-data", tmp_path / "no.yaml", tmp_path / "afile"
            )
        )
