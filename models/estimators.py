"""The model grid: a scaled logistic baseline, LightGBM and a one-feature prior-harm baseline.

Every model is a scikit-learn Pipeline (`preprocess` then `model`), so they are interchangeable:
fit on a fitting slice, early-stop on a validation slice in time (LightGBM), predict_proba.
LightGBM is the library's own `lightgbm.LGBMClassifier`: it reads the encoder's pandas categoricals as
categorical features (their categories are stored with the booster), and after early stopping its
`predict_proba` and `predict(..., pred_contrib=True)` use the best iteration.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from riskloop.models.explain import remember_linear_centre


PRIOR_HARM_FEATURE = "offending_harm_365d"


class CategoryEncoder(BaseEstimator, TransformerMixin):
    """Fix each categorical column's categories at fit time.

    At predict time a column arrives as strings (MLflow's schema enforcement) or as categoricals
    with other categories (a one-row request); both are mapped onto the stored categories, and an
    unseen category becomes missing (NaN). Numeric columns are cast to float.
    """

    def __init__(self, categorical: tuple[str, ...] = ()):
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y=None):
        self.columns_ = list(X.columns)
        self.categories_ = {c: sorted(pd.Series(X[c]).dropna().astype(str).unique()) for c in self.categorical}
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"missing feature column '{missing[0]}'")
        if not self.categories_ and list(X.columns) == self.columns_ and (X.dtypes == np.float64).all():
            return X  # already what the model needs: no copy of a large matrix
        out = {}
        for c in self.columns_:
            if c in self.categories_:
                values = pd.Series(X[c], index=X.index).astype("string").astype(object)
                out[c] = pd.Categorical(values, categories=self.categories_[c])
            elif X[c].dtype == np.float64:
                out[c] = X[c]
            else:
                out[c] = pd.to_numeric(X[c], errors="coerce").astype(float)
        return pd.DataFrame(out, index=X.index, copy=False)


#: LightGBM's settings unless a config's grid sets them (`subsample_freq=1` makes `subsample` bag every round).
LIGHTGBM_DEFAULTS = {"objective": "binary", "n_estimators": 500, "learning_rate": 0.05, "num_leaves": 31,
                     "min_child_samples": 50, "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8,
                     "reg_lambda": 1.0, "verbose": -1, "deterministic": True}
#: Rounds without improvement of the validation log loss before LightGBM stops (config: early_stopping_rounds).
EARLY_STOPPING_ROUNDS = 50


#: The hyper-parameters a config may set per family, with their valid range (kind, lowest, highest).
#: LightGBM's names are `lightgbm.LGBMClassifier`'s own constructor parameters (checked in tests), except
#: `early_stopping_rounds`, the patience `fit_model` gives `lightgbm.early_stopping`.
HYPERPARAMETERS: dict[str, dict[str, tuple[type, float, float | None]]] = {
    "lightgbm": {"n_estimators": (int, 1, None), "learning_rate": (float, 1e-6, 1.0), "num_leaves": (int, 2, 131072),
                 "min_child_samples": (int, 1, None), "subsample": (float, 1e-6, 1.0),
                 "colsample_bytree": (float, 1e-6, 1.0), "reg_lambda": (float, 0.0, None),
                 "early_stopping_rounds": (int, 1, None)},
    "logistic": {"C": (float, 1e-12, None)},
    "prior_harm": {},
}


def check_hyperparameters(family: str, params: dict[str, list[float]]) -> str | None:
    """Why a family's grid cannot be used (unknown name, empty list, value out of range), or None."""
    allowed = HYPERPARAMETERS[family]
    for name, values in params.items():
        if name not in allowed:
            return f"unknown hyper-parameter '{name}' (known: {', '.join(sorted(allowed)) or 'none'})"
        kind, low, high = allowed[name]
        if not values:
            return f"{name}: the list is empty"
        for value in values:
            if value != value or value < low or (high is not None and value > high) or (kind is int and value % 1):
                bounds = f">= {low:g}" if high is None else f"between {low:g} and {high:g}"
                return f"{name}: {value!r} is not {'a whole number ' if kind is int else 'a number '}{bounds}"
    return None


@dataclass(frozen=True)
class ModelSpec:
    """One model group: a family and its hyper-parameters."""

    family: str
    params: tuple[tuple[str, float], ...]

    @property
    def name(self) -> str:
        return self.family + "".join(f"_{k}={v:g}" for k, v in self.params)

    def build(self, numeric: list[str], categorical: list[str], seed: int, threads: int | None = None) -> Pipeline:
        params = dict(self.params)
        encoder = CategoryEncoder(tuple(categorical))
        if self.family == "lightgbm":
            integer = ("n_estimators", "num_leaves", "min_child_samples")
            chosen = {k: int(v) if k in integer else v for k, v in params.items() if k != "early_stopping_rounds"}
            # threads None: every logical core (-1), as `threads` documents, not LightGBM's physical cores
            model = lgb.LGBMClassifier(**{**LIGHTGBM_DEFAULTS, **chosen}, random_state=seed,
                                       n_jobs=threads if threads else -1)
            return Pipeline([("preprocess", encoder), ("model", model)])
        if self.family == "logistic":
            columns = ColumnTransformer([
                ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                                      ("log", FunctionTransformer(_signed_log1p, feature_names_out="one-to-one")), ("scale", StandardScaler())]), numeric),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ])
            model = LogisticRegression(C=params.get("C", 1.0), max_iter=2000)
            return Pipeline([("preprocess", encoder), ("columns", columns), ("model", model)])
        if self.family == "prior_harm":
            if PRIOR_HARM_FEATURE not in numeric:
                raise ValueError(f"the prior-harm baseline needs the feature '{PRIOR_HARM_FEATURE}'")
            pick = ColumnTransformer([("harm", FunctionTransformer(_signed_log1p, feature_names_out="one-to-one"), [PRIOR_HARM_FEATURE])])
            return Pipeline([("preprocess", encoder), ("columns", pick), ("model", LogisticRegression())])
        raise ValueError(f"unknown model family '{self.family}'")


def _signed_log1p(x):
    return np.sign(x) * np.log1p(np.abs(x))


def expand_grid(grid: dict[str, dict[str, list[float]] | None]) -> list[ModelSpec]:
    """Every combination of each family's hyper-parameter lists."""
    specs = []
    for family, params in grid.items():
        if params is None:
            continue
        keys = sorted(params)
        for values in itertools.product(*(params[k] for k in keys)) if keys else [()]:
            specs.append(ModelSpec(family, tuple(zip(keys, values))))
    return specs


def fit_model(spec: ModelSpec, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray,
              categorical: list[str], seed: int, threads: int | None = None) -> Pipeline:
    """Fit one model; LightGBM stops early on the validation slice (log loss, 50 rounds' patience by
    default) and predicts, explains with its best iteration."""
    numeric = [c for c in X.columns if c not in categorical]
    pipe = spec.build(numeric, categorical, seed, threads)
    if spec.family == "lightgbm":
        encoder = pipe.named_steps["preprocess"].fit(X)
        rounds = int(dict(spec.params).get("early_stopping_rounds", EARLY_STOPPING_ROUNDS))
        pipe.named_steps["model"].fit(encoder.transform(X), y, eval_X=encoder.transform(X_val), eval_y=y_val,
                                      callbacks=[lgb.early_stopping(rounds, verbose=False)])
        return pipe
    pipe.fit(X, y)
    remember_linear_centre(pipe, X)
    return pipe
