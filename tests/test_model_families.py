"""The model-family protocol: every registered family builds a pipeline the grid can fit, predicts, and
explains additively (contributions + base value = its log-odds); the registry is what configs name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskloop.experiments.config import ModelGrid
from riskloop.models.estimators import ModelSpec, expand_grid, fit_model
from riskloop.models.explain import attributions
from riskloop.models.families import FAMILIES, PRIOR_HARM_FEATURE, family_of


def frame(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            PRIOR_HARM_FEATURE: rng.exponential(3, n),
            "age": rng.uniform(10, 80, n),
            "kind": rng.choice(["a", "b", "c"], n),
        }
    )
    logit = -2 + 0.3 * X[PRIOR_HARM_FEATURE] - 0.02 * X["age"] + (X["kind"] == "c")
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_fits_predicts_and_explains_additively(name):
    X, y = frame()
    fit, val = slice(0, 1000), slice(1000, None)
    model = fit_model(ModelSpec(name, ()), X[fit], y[fit], X[val], y[val], ["kind"], seed=0, threads=1)
    assert family_of(model) is FAMILIES[name]
    assert list(model.named_steps)[0] == "preprocess" and list(model.named_steps)[-1] == "model"
    risk = model.predict_proba(X[val])[:, 1]
    assert ((0 < risk) & (risk < 1)).all() and np.corrcoef(risk, y[val])[0, 1] > 0.2
    contributions, base = attributions(model, X[val])
    assert list(contributions.columns) == list(X.columns) and len(base) == len(contributions)
    log_odds = np.log(risk / (1 - risk))
    np.testing.assert_allclose(contributions.sum(axis=1) + base, log_odds, atol=1e-6)


def test_the_config_grid_has_one_block_per_registered_family_in_registry_order():
    assert list(ModelGrid.__dataclass_fields__) == list(FAMILIES)
    grid = ModelGrid(gam={"n_knots": [4, 6]}, logistic={"C": [1.0]})
    assert list(grid.grids()) == ["logistic", "gam"]
    assert [s.name for s in expand_grid(grid.grids())] == ["logistic_C=1", "gam_n_knots=4", "gam_n_knots=6"]
