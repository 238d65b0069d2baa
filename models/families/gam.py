"""A spline generalised additive model: each numeric feature through a B-spline basis (after median
imputation and the signed log), categoricals one-hot, into an L2 logistic regression. The log-odds are a
sum of one shape function per feature, so its explanation is exact: a feature's contribution is its
spline terms times their coefficients, centred on the training mean (the linear decomposition)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer

from riskloop.models.families.base import Hyperparameter
from riskloop.models.families.linear import LinearFamily, logistic_pipeline


class GAM(LinearFamily):
    """`n_knots` knots spread evenly over each feature's (signed-log) training range, splines of `degree`,
    constant beyond the range; L2 penalty 1 / `C` on every spline coefficient."""

    name = "gam"
    hyperparameters = {
        "n_knots": Hyperparameter(int, 2, 50),
        "degree": Hyperparameter(int, 1, 5),
        "C": Hyperparameter(float, 1e-12),
    }
    method = "exact additive decomposition (spline shape functions)"

    def build(self, params, features, categorical, seed, threads):
        splines = SplineTransformer(
            n_knots=int(params.get("n_knots", 5)), degree=int(params.get("degree", 3)), include_bias=False
        )
        return logistic_pipeline("splines", ("spline", splines), features, categorical, params.get("C", 1.0))

    def shapes(self, pipeline: Pipeline, points: int = 60) -> dict[str, pd.Series]:
        """Each numeric feature's shape function over its training range: its contribution to the log-odds
        (centred on the training mean) by value, a Series indexed by the feature's value."""
        numeric = pipeline.named_steps["columns"].named_transformers_["splines"]
        names = list(numeric.feature_names_in_)
        ends = [(spline.t[spline.k], spline.t[-spline.k - 1]) for spline in numeric.named_steps["spline"].bsplines_]
        grid = np.column_stack([np.linspace(low, high, points) for low, high in ends])
        values = pd.DataFrame(np.sign(grid) * np.expm1(np.abs(grid)), columns=names)  # back from the signed log
        encoder = pipeline.named_steps["preprocess"]
        X = values.reindex(columns=encoder.columns_)  # categoricals missing: their one-hot columns are all zero
        contributions, _ = self.explain(pipeline, X)
        return {
            name: pd.Series(contributions[name].to_numpy(), index=values[name].to_numpy(), name=name) for name in names
        }
