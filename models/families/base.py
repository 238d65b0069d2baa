"""The model-family protocol: what a family of models declares (its name, hyper-parameters with their
ranges, how its attributions are computed) and does (build a scikit-learn Pipeline, fit it, explain it)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class Hyperparameter:
    """A hyper-parameter's kind (int or float) and valid range (`high` None: unbounded)."""

    kind: type
    low: float
    high: float | None = None

    def problem(self, value) -> str | None:
        """Why `value` is not valid, or None."""
        if (
            value != value
            or value < self.low
            or (self.high is not None and value > self.high)
            or (self.kind is int and value % 1)
        ):
            bounds = f">= {self.low:g}" if self.high is None else f"between {self.low:g} and {self.high:g}"
            return f"{value!r} is not {'a whole number ' if self.kind is int else 'a number '}{bounds}"
        return None


class ModelFamily(ABC):
    """One family of models. `build` makes an unfitted Pipeline whose first step is `preprocess` (the
    `CategoryEncoder`) and last `model` (it predicts log-odds through `predict_proba`); `fit` fits it,
    given the validation slice for families that stop early; `explain` gives each feature's
    contribution to the log-odds and the base value, which add up to the model's raw score."""

    name: ClassVar[str]
    hyperparameters: ClassVar[dict[str, Hyperparameter]]
    method: ClassVar[str]  # how `explain` attributes, in words for reports
    #: whether `predict_proba` reads a column-major float64 matrix where it lies (without a copy of it)
    reads_in_place: ClassVar[bool] = False

    def check(self, grid: dict[str, list[float]]) -> str | None:
        """Why this family's grid cannot be used (unknown name, empty list, value out of range), or None."""
        for name, values in grid.items():
            if name not in self.hyperparameters:
                known = ", ".join(sorted(self.hyperparameters)) or "none"
                return f"unknown hyper-parameter '{name}' (known: {known})"
            if not values:
                return f"{name}: the list is empty"
            why = next(filter(None, map(self.hyperparameters[name].problem, values)), None)
            if why:
                return f"{name}: {why}"
        return None

    @abstractmethod
    def build(
        self, params: dict[str, float], features: list[str], categorical: list[str], seed: int, threads: int | None
    ) -> Pipeline:
        """The unfitted pipeline of one model group."""

    def fit(
        self,
        pipeline: Pipeline,
        params: dict[str, float],
        X: pd.DataFrame,
        y: np.ndarray,
        X_val: pd.DataFrame,
        y_val: np.ndarray,
    ) -> Pipeline:
        """Fit on (X, y); the validation slice is for families that use it (early stopping)."""
        return pipeline.fit(X, y)

    def predict_with(self, pipeline: Pipeline, threads: int | None) -> None:
        """Make a fitted pipeline predict and explain on `threads` threads (None: every CPU this process may
        use), whatever it was fitted on; a family without threads has nothing to set."""
        return None

    @abstractmethod
    def explain(self, pipeline: Pipeline, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """(contributions in log-odds, one column per feature of X; base value per row)."""
