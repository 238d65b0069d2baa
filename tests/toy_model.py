"""A tiny risk pyfunc for the API tests, logged as MLflow "model from code" (this file is the model).

risk = logistic(0.04 age + 0.5 priors - 3); band = ventile of risk; reasons name the features.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd


class ToyRiskModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        reasons = int((params or {}).get("reasons", 0))
        risk = 1 / (1 + np.exp(-(0.04 * model_input["age"].fillna(0) + 0.5 * model_input["priors"].fillna(0) - 3)))
        band = np.minimum(20, 1 + (risk * 20).astype(np.int64))
        scored = pd.DataFrame(
            {
                "risk": risk,
                "band": band,
                "band_label": np.where(band >= 18, "high", np.where(band >= 13, "medium", "low")),
            }
        )
        texts = [[f"priors = {p:g}", f"age = {a:g}", ""] for a, p in zip(model_input["age"], model_input["priors"])]
        for i in range(reasons):
            scored[f"reason_{i + 1}"] = [t[i] for t in texts]
        return scored.reset_index(drop=True)


mlflow.models.set_model(ToyRiskModel())
