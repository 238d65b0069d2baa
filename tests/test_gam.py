"""The spline GAM family: it fits, its attributions add up to its log-odds exactly, its shape functions
follow the truth, and it goes end to end (train, model card, registry, score, explain, reasons)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from riskloop.artifacts.dataset import read_dataset
from riskloop.experiments.config import load_config, with_data
from riskloop.experiments.registry import load_model
from riskloop.experiments.tracking import log_training
from riskloop.features.snapshot import PreparedData
from riskloop.jobs.model import model_data
from riskloop.models.estimators import ModelSpec, fit_model
from riskloop.models.explain import attributions
from riskloop.models.families import FAMILIES
from riskloop.pipelines.explain import explain_cohort
from riskloop.pipelines.score import score_cohort
from riskloop.pipelines.train import train
from tests.conftest import TODAY, make_world, own_store
from tests.test_experiments import DATA

GAM = ModelSpec("gam", (("C", 1.0), ("degree", 3), ("n_knots", 6)))


def bump_data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Risk that rises then falls with `x` (no straight line fits it), rises with `z`, and is higher for kind 'b'."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.uniform(0, 20, n), "z": rng.uniform(0, 5, n), "kind": rng.choice(["a", "b"], n)})
    logit = -1 + 2 * np.exp(-(((X["x"] - 8) / 3) ** 2)) + 0.4 * X["z"] + (X["kind"] == "b")
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()


def test_a_gam_fits_and_its_attributions_add_up_to_its_log_odds():
    X, y = bump_data(4000, 0)
    model = fit_model(GAM, X, y, X, y, ["kind"], seed=0, threads=1)
    contributions, base = attributions(model, X)
    assert list(contributions.columns) == ["x", "z", "kind"]
    np.testing.assert_allclose(contributions.sum(axis=1) + base, model.decision_function(X), atol=1e-10)
    np.testing.assert_allclose(contributions.mean(), 0, atol=1e-10)  # centred on the training mean
    shapes = FAMILIES["gam"].shapes(model)
    assert set(shapes) == {"x", "z"}  # categoricals have no curve
    x = shapes["x"]
    peak = x.idxmax()
    assert 5 < peak < 11 and x.iloc[0] < x.max() - 1 and x.iloc[-1] < x.max() - 1  # the bump, not a line
    z = shapes["z"]
    assert 1.5 < z.iloc[-1] - z.iloc[0] < 2.5  # the true effect over z's range: 0.4 x 5
    # a shape function is the feature's contribution: the same as attributing rows at those values
    rows = pd.DataFrame({"x": x.index[:5], "z": 2.5, "kind": "a"})
    np.testing.assert_allclose(attributions(model, rows)[0]["x"], x.iloc[:5], atol=1e-10)


def test_gam_hyperparameters_reach_the_spline_and_the_penalty():
    X, y = bump_data(500, 1)
    spec = ModelSpec("gam", (("C", 0.5), ("degree", 2), ("n_knots", 4)))
    model = fit_model(spec, X, y, X, y, ["kind"], seed=0, threads=1)
    spline = model.named_steps["columns"].named_transformers_["splines"].named_steps["spline"]
    assert (spline.n_knots, spline.degree, model.named_steps["model"].C) == (4, 2, 0.5)
    assert model.named_steps["model"].coef_.shape == (1, 2 * (4 + 2 - 2) + 2)  # no bias column per feature
    assert FAMILIES["gam"].check({"n_knots": [1]}) == "n_knots: 1 is not a whole number between 2 and 50"


@pytest.fixture(scope="module")
def gam_run(tmp_path_factory):
    """The GAM config trained, logged and registered on a small world in a store of its own."""
    world = make_world(tmp_path_factory.mktemp("gam-world"), 3_000, seed=21)
    with own_store(tmp_path_factory.mktemp("gam-store")) as store:
        config = with_data(load_config(DATA / "gam.yaml"), world)
        data = model_data(config)
        result = train(data, config)
        outcome = log_training(config, data, result, store / "out")
        yield world, store, config, result, outcome


def test_a_gam_trains_end_to_end_with_its_shape_functions_on_the_model_card(gam_run):
    _, store, _, result, outcome = gam_run
    assert result.selected.family == "gam" and result.final_metrics["test_roc_auc"] > 0.7
    assert (store / "out" / "shape_functions.png").stat().st_size > 10_000
    card = outcome.model_card_path.read_text()
    assert "Shape functions of the selected additive model" in card and card.count("data:image/png") == 4


def test_a_registered_gam_scores_and_explains_as_trained(gam_run, monkeypatch):
    world, store, _, result, _ = gam_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    loaded = load_model("models:/riskloop-gam-test@challenger")
    prepared = PreparedData.from_dataset(read_dataset(world, TODAY))
    cohort = score_cohort(loaded.scorer, prepared, date(2025, 1, 1))
    frame = cohort.frame
    np.testing.assert_array_equal(frame["risk"], result.scorer.risk(frame))
    explained = explain_cohort(loaded.scorer, cohort, sample_size=400, person=frame["person_id"].iloc[0])
    assert explained.method == FAMILIES["gam"].method
    logit = loaded.scorer.pipeline.decision_function(explained.values)
    np.testing.assert_allclose(explained.contributions.sum(axis=1) + explained.base, logit, atol=1e-9)
    reasons = loaded.scorer.reasons(frame.nlargest(50, "risk"))
    assert (reasons["reason_1"] != "").all()
    protected = r"\baged\b|\bsex\b|ethnicity"  # never age or a protected characteristic ("sexual offence" is fine)
    assert not reasons.stack().str.contains(protected).any()
    assert explained.person.reasons[0] != "" and len(explained.person.contributions) == len(loaded.scorer.features)
    assert loaded.contract == result.scorer.contract and loaded.contract.model_group == result.selected.name
