"""LightGBM: the library's own `lightgbm.LGBMClassifier` behind the `CategoryEncoder` (it reads pandas
categoricals as categorical features and stores their categories with the booster), early-stopped on
the validation slice; its predictions and TreeSHAP attributions use the best iteration. Attributions are
LightGBM's own TreeSHAP values, computed by `models.treeshap` (the same values, several times faster; a tree
whose paths are too deep for its tables, and a frame of a few rows, by LightGBM itself)."""

from __future__ import annotations

import weakref

import lightgbm as lgb
import pandas as pd
from sklearn.pipeline import Pipeline

from riskloop.models.encoding import CategoryEncoder
from riskloop.models.families.base import Hyperparameter, ModelFamily
from riskloop.models.treeshap import PathTreeShap

#: LightGBM's settings unless a config's grid sets them (`subsample_freq=1` makes `subsample` bag every round).
LIGHTGBM_DEFAULTS = {
    "objective": "binary",
    "n_estimators": 500,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "verbose": -1,
    "deterministic": True,
}
#: Rounds without improvement of the validation log loss before LightGBM stops (config: early_stopping_rounds).
EARLY_STOPPING_ROUNDS = 50
#: the TreeSHAP tables of the booster explained last (by `TABLE_ROWS` rows or more), kept for its next call: one
#: model's tables at a time, so memory is bounded by one model's (`models.treeshap.MAX_TERMS`)
_LAST: list[tuple[weakref.ref, PathTreeShap]] = []
#: fewer rows than this LightGBM explains itself: its cost is per row, the tables' mostly per model (on 2 cores
#: 200 rows take about 80 ms either way; one row 1.5 ms against 70 ms or more)
TABLE_ROWS = 200


class LightGBM(ModelFamily):
    """Hyper-parameter names are `LGBMClassifier`'s constructor parameters, except `early_stopping_rounds`,
    the patience `fit` gives `lightgbm.early_stopping`."""

    name = "lightgbm"
    hyperparameters = {
        "n_estimators": Hyperparameter(int, 1),
        "learning_rate": Hyperparameter(float, 1e-6, 1.0),
        "num_leaves": Hyperparameter(int, 2, 131072),
        "min_child_samples": Hyperparameter(int, 1),
        "subsample": Hyperparameter(float, 1e-6, 1.0),
        "colsample_bytree": Hyperparameter(float, 1e-6, 1.0),
        "reg_lambda": Hyperparameter(float, 0.0),
        "early_stopping_rounds": Hyperparameter(int, 1),
    }
    method = "TreeSHAP, path-dependent (the values of LightGBM's pred_contrib)"
    reads_in_place = True  # a column-major float64 matrix goes to LightGBM as it is

    def build(self, params, features, categorical, seed, threads):
        chosen = {
            k: int(v) if self.hyperparameters[k].kind is int else v
            for k, v in params.items()
            if k != "early_stopping_rounds"
        }
        # threads None: -1, every CPU this process may use (joblib: affinity, cgroup quota, RISKLOOP_THREADS)
        model = lgb.LGBMClassifier(
            **{**LIGHTGBM_DEFAULTS, **chosen}, random_state=seed, n_jobs=threads if threads else -1
        )
        return Pipeline([("preprocess", CategoryEncoder(tuple(categorical))), ("model", model)])

    def fit(self, pipeline, params, X, y, X_val, y_val):
        encoder = pipeline.named_steps["preprocess"].fit(X)
        rounds = int(params.get("early_stopping_rounds", EARLY_STOPPING_ROUNDS))
        pipeline.named_steps["model"].fit(
            encoder.transform(X),
            y,
            eval_X=encoder.transform(X_val),
            eval_y=y_val,
            callbacks=[lgb.early_stopping(rounds, verbose=False)],
        )
        return pipeline

    def predict_with(self, pipeline, threads):
        # LGBMClassifier.predict's threads; Booster.predict (pred_contrib) takes OpenMP's default unless told
        pipeline.named_steps["model"].set_params(n_jobs=threads if threads else -1)

    def explain(self, pipeline, X):
        encoded = pipeline.named_steps["preprocess"].transform(X)
        model = pipeline.named_steps["model"]
        if len(X) < TABLE_ROWS:
            contrib = model.predict(encoded, pred_contrib=True)  # at the best iteration
            return pd.DataFrame(contrib[:, :-1], index=X.index, columns=X.columns), contrib[:, -1]
        values, base = _explainer(model.booster_)(encoded, model.booster_)
        return pd.DataFrame(values, index=X.index, columns=X.columns), base


def _explainer(booster: lgb.Booster) -> PathTreeShap:
    """`booster`'s tables: those of the last call if it was the same booster, else built (and kept instead)."""
    last = _LAST[0] if _LAST else None
    if last is not None and last[0]() is booster:
        return last[1]
    explainer = PathTreeShap.for_booster(booster)
    _LAST[:] = [(weakref.ref(booster), explainer)]
    return explainer
