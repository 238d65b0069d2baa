"""The model grid: a scaled logistic baseline, LightGBM and a one-feature prior-harm baseline.

Every model is a scikit-learn Pipeline (`preprocess` then `model`), so they are interchangeable:
fit on a fitting slice, early-stop on a validation slice in time (LightGBM), predict_proba.
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

from models.explain import remember_linear_centre

UNSEEN_CATEGORY = "an unseen category is treated as missing"

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
        out = {}
        for c in self.columns_:
            if c in self.categories_:
                values = pd.Series(X[c], index=X.index).astype("string").astype(object)
                out[c] = pd.Categorical(values, categories=self.categories_[c])
            else:
                out[c] = pd.to_numeric(X[c], errors="coerce").astype(float)
        return pd.DataFrame(out, index=X.index)


@dataclass(frozen=True)
class ModelSpec:
    """One model group: a family and its hyper-parameters."""

    family: str
    params: tuple[tuple[str, float], ...]

    @property
    def name(self) -> str:
        return self.family + "".join(f"_{k}={v:g}" for k, v in self.params)

    def build(self, numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
        params = dict(self.params)
        encoder = CategoryEncoder(tuple(categorical))
        if self.family == "lightgbm":
            model = lgb.LGBMClassifier(
                n_estimators=int(params.get("n_estimators", 500)), learning_rate=params.get("learning_rate", 0.05),
                num_leaves=int(params.get("num_leaves", 31)), min_child_samples=int(params.get("min_child_samples", 50)),
                subsample=params.get("subsample", 0.8), subsample_freq=1, colsample_bytree=params.get("colsample_bytree", 0.8),
                reg_lambda=params.get("reg_lambda", 1.0), random_state=seed, n_jobs=2, verbose=-1, deterministic=True)
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
              categorical: list[str], seed: int) -> Pipeline:
    """Fit one model; LightGBM stops early on the validation slice (log loss, 50 rounds' patience)."""
    numeric = [c for c in X.columns if c not in categorical]
    pipe = spec.build(numeric, categorical, seed)
    if spec.family == "lightgbm":
        encoder = pipe.named_steps["preprocess"].fit(X)
        pipe.named_steps["model"].fit(
            encoder.transform(X), y, eval_set=[(encoder.transform(X_val), y_val)], eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(50, verbose=False)])
        return pipe
    pipe.fit(X, y)
    remember_linear_centre(pipe, X)
    return pipe
