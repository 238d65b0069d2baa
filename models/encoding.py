"""What every model family's pipeline starts with: the `CategoryEncoder`, and the signed log used to
tame heavy-tailed counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


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


def signed_log1p(x):
    """sign(x) log(1 + |x|), in one new array (no temporaries the size of `x`: a logistic fit on 300,000 rows
    holds several copies of its matrix already)."""
    out = np.log1p(np.abs(x))
    return np.copysign(out, x, out=out)
