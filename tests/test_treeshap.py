"""The vectorised TreeSHAP gives LightGBM's own `pred_contrib` values: numerical splits with each missing type,
categorical splits, repeated features on a path, early stopping; deep models go to LightGBM itself."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from riskloop.models import treeshap
from riskloop.models.families import gbm
from riskloop.models.treeshap import PathTreeShap


def _frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "count": rng.poisson(1.0, rows).astype(float),  # many zeros
            "rate": rng.normal(0, 1, rows),
            "gappy": np.where(rng.random(rows) < 0.2, np.nan, rng.exponential(2.0, rows)),
            "kind": pd.Categorical(rng.choice(["a", "b", "c", "d"], rows), categories=["a", "b", "c", "d"]),
        }
    )
    frame.loc[rng.random(rows) < 0.05, "kind"] = np.nan
    logit = frame["count"] - 2 * frame["rate"].abs() + frame["gappy"].fillna(3) / 2 + (frame["kind"] == "c") - 1.5
    return frame, (rng.random(rows) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_values_are_lightgbms_own(zero_as_missing):
    X, y = _frame(3000, 1)
    model = lgb.LGBMClassifier(
        n_estimators=300,
        num_leaves=24,
        min_child_samples=5,
        max_cat_to_onehot=2,  # category sets, not one-hot splits
        zero_as_missing=zero_as_missing,
        verbose=-1,
        n_jobs=1,
        deterministic=True,
        force_col_wise=True,
    )
    model.fit(X[:2000], y[:2000], eval_set=[(X[2000:], y[2000:])], callbacks=[lgb.early_stopping(10, verbose=False)])
    booster = model.booster_
    assert 0 < booster.best_iteration < 300  # stopped early: both count only the trees it kept
    kinds = {node["decision_type"] for tree in booster.dump_model()["tree_info"] for node in _nodes(tree)}
    missing = {node["missing_type"] for tree in booster.dump_model()["tree_info"] for node in _nodes(tree)}
    assert kinds == {"<=", "=="} and ("Zero" if zero_as_missing else "NaN") in missing

    rows, _ = _frame(500, 2)
    rows.iloc[:5, :3] = np.nan  # missing everywhere in some rows
    explainer = PathTreeShap.for_booster(booster)
    assert not explainer.untabled  # every tree by its tables
    assert any(len(splits) > 1 for tree in explainer.trees for leaf in tree.leaves for splits in leaf.follows)
    values, base = explainer(rows, booster)
    expected = model.predict(rows, pred_contrib=True)
    np.testing.assert_allclose(values, expected[:, :-1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(base, expected[:, -1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(values.sum(axis=1) + base, model.predict(rows, raw_score=True), atol=1e-9)


def test_tables_built_a_leaf_at_a_time_are_the_same(monkeypatch):
    """The leaves of every tree are tabled together, `TABLE_BATCH` terms at a time: one leaf per call gives the
    same values."""
    X, y = _frame(2000, 4)
    model = lgb.LGBMClassifier(n_estimators=60, num_leaves=24, verbose=-1, n_jobs=1, deterministic=True).fit(X, y)
    rows, _ = _frame(300, 5)
    batched = PathTreeShap.for_booster(model.booster_)(rows, model.booster_)
    monkeypatch.setattr(treeshap, "TABLE_BATCH", 1)
    one_by_one = PathTreeShap.for_booster(model.booster_)(rows, model.booster_)
    np.testing.assert_allclose(batched[0], one_by_one[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(batched[1], one_by_one[1], rtol=0, atol=1e-12)


def _nodes(tree: dict) -> list[dict]:
    found, todo = [], [tree["tree_structure"]]
    while todo:
        node = todo.pop()
        if "split_feature" in node:
            found.append(node)
            todo += [node["left_child"], node["right_child"]]
    return found


def test_trees_too_deep_for_the_tables_and_a_few_rows_are_explained_by_lightgbm(monkeypatch):
    X, y = _frame(1500, 3)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=16, verbose=-1, n_jobs=1).fit(X, y)
    pipeline = gbm.Pipeline([("preprocess", gbm.CategoryEncoder(("kind",)).fit(X)), ("model", model)])
    rows = X.head(gbm.TABLE_ROWS)
    expected = model.predict(rows, pred_contrib=True)
    monkeypatch.setattr(treeshap, "MAX_PATH", 3)  # a few trees have no path over 3 features
    mixed = PathTreeShap.for_booster(model.booster_)
    assert mixed.trees and mixed.untabled and sum(count for _, count in mixed.untabled) < 40 - 1
    values, base = mixed(rows, model.booster_)
    np.testing.assert_allclose(values, expected[:, :-1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(base, expected[:, -1], rtol=0, atol=1e-10)

    monkeypatch.setattr(gbm, "_LAST", [])
    few, few_base = gbm.LightGBM().explain(pipeline, X.head(3))  # by LightGBM: no tables built
    assert gbm._LAST == []
    gbm.LightGBM().explain(pipeline, rows)
    assert gbm._LAST[0][0]() is model.booster_  # the tables of the model explained last, one model's only
    other = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)
    gbm.LightGBM().explain(gbm.Pipeline([("preprocess", pipeline.named_steps["preprocess"]), ("model", other)]), rows)
    assert len(gbm._LAST) == 1 and gbm._LAST[0][0]() is other.booster_
    np.testing.assert_allclose(few.to_numpy(), expected[:3, :-1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(few_base, expected[:3, -1], rtol=0, atol=1e-10)
