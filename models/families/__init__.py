"""The model families riskloop trains, each one unit behind `base.ModelFamily`. `FAMILIES` is the
registry that config validation, the grid and explanations consult; its order is the grid's."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from riskloop.models.families.base import Hyperparameter, ModelFamily
from riskloop.models.families.gam import GAM
from riskloop.models.families.gbm import LightGBM
from riskloop.models.families.linear import PRIOR_HARM_FEATURE, Logistic, PriorHarm

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (Logistic(), LightGBM(), PriorHarm(), GAM())}


def family_of(pipeline: Pipeline) -> ModelFamily:
    """The family that fitted `pipeline` (`riskloop.models.estimators.fit_model` records it)."""
    return FAMILIES[pipeline.riskloop_family_]


__all__ = ["FAMILIES", "PRIOR_HARM_FEATURE", "Hyperparameter", "ModelFamily", "family_of"]
