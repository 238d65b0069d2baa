"""MLflow pyfunc wrappers of riskloop's pure models (registered, loaded anywhere riskloop is installed)."""

from __future__ import annotations

import pandas as pd
from mlflow.pyfunc import PythonModel

from riskloop.models.mitigation import Mitigation
from riskloop.models.scorer import RiskScorer


class RiskModel(PythonModel):
    """predict(features) -> risk (calibrated probability), band (1-20), band_label;
    with params={"reasons": 3} also reason_1..reason_3 (plain-language, from SHAP attributions)."""

    def __init__(self, scorer: RiskScorer):
        self.scorer = scorer

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        reasons = int((params or {}).get("reasons", 0))
        return self.scorer.score(model_input, reasons=reasons).reset_index(drop=True)


class MitigatedModel(PythonModel):
    """A candidate, never registered: features plus the sensitive column -> 0/1 prioritisation decision."""

    def __init__(self, scorer: RiskScorer, mitigation: Mitigation):
        self.scorer = scorer
        self.mitigation = mitigation

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        sensitive = model_input[self.mitigation.sensitive].astype(str).to_numpy()
        decision = self.mitigation.optimizer.predict(model_input, sensitive_features=sensitive, random_state=0)
        risk = self.scorer.risk(model_input)
        return pd.DataFrame({"risk": risk, "prioritise": decision.astype(int)})
