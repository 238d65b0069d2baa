"""The model grid: model groups (a family and its hyper-parameters), every combination of a config's
lists, and fitting one group. The families themselves are in `riskloop.models.families`.

Every model is a scikit-learn Pipeline (`preprocess` then `model`), so they are interchangeable:
fit on a fitting slice, early-stop on a validation slice in time (LightGBM), predict_proba.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.pipeline import Pipeline

from riskloop.models.families import FAMILIES


@dataclass(frozen=True)
class ModelSpec:
    """One model group: a family and its hyper-parameters."""

    family: str
    params: tuple[tuple[str, float], ...]

    @property
    def name(self) -> str:
        return self.family + "".join(f"_{k}={v:g}" for k, v in self.params)


def expand_grid(grid: dict[str, dict[str, list[float]]]) -> list[ModelSpec]:
    """Every combination of each family's hyper-parameter lists."""
    specs = []
    for family, params in grid.items():
        keys = sorted(params)
        for values in itertools.product(*(params[k] for k in keys)) if keys else [()]:
            specs.append(ModelSpec(family, tuple(zip(keys, values))))
    return specs


def fit_model(
    spec: ModelSpec,
    X: pd.DataFrame,
    y: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    categorical: list[str],
    seed: int,
    threads: int | None = None,
) -> Pipeline:
    """Fit one model group with its family (LightGBM stops early on the validation slice: log loss, 50
    rounds' patience by default); the pipeline remembers its family, which explains it."""
    family = FAMILIES[spec.family]
    params = dict(spec.params)
    pipeline = family.fit(family.build(params, list(X.columns), categorical, seed, threads), params, X, y, X_val, y_val)
    pipeline.riskloop_family_ = family.name
    return pipeline


def predict_with(spec: ModelSpec, pipeline: Pipeline, threads: int | None) -> None:
    """A fitted model group's pipeline set to predict and explain on `threads` threads (None: every CPU this
    process may use): a model fitted on one thread beside others is not served on one."""
    FAMILIES[spec.family].predict_with(pipeline, threads)


T = TypeVar("T")


def side_by_side(calls: Sequence[Callable[[], T]], threads: int | None) -> list[T]:
    """Independent fits on `threads` threads (default: the CPUs this process may use), their results in order.

    Each fit runs on one thread: LightGBM's threads meet at every tree, and fits with two threads each on a
    shared machine spent their time waiting for descheduled threads (two demos started together: "what worked,
    for whom" 49 s alone, 7 min each together). LightGBM releases the GIL, so fits side by side use the cores
    without meeting, a one-threaded family (logistic) beside LightGBM included, and the results do not depend
    on the thread count (LightGBM is `deterministic`)."""
    return Parallel(n_jobs=threads or -1, backend="threading")(delayed(call)() for call in calls)
