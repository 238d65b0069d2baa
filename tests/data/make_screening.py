"""Make tests/data/screening.csv: a small hand-made person-level table for bring-your-own-table tests.

Run once (python tests/data/make_screening.py); the CSV is committed. The outcome depends on priors,
age and charge degree (plus noise); a few rows are deliberately broken (bad date, label 2, no id).
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(2024)
n = 900
age = rng.integers(18, 70, n)
priors = rng.poisson(1.5, n)
degree = rng.choice(["F", "M"], n, p=[0.6, 0.4])
logit = -2.2 + 0.45 * priors - 0.04 * (age - 35) + 0.6 * (degree == "F")
outcome = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 3 * 365, n)), unit="D")
table = pd.DataFrame(
    {
        "id": [f"c{k:04d}" for k in range(n)],
        "screening_date": dates.strftime("%Y-%m-%d"),
        "outcome": outcome,
        "age": age,
        "priors": priors,
        "charge_degree": degree,
        "ethnicity": rng.choice(["A", "B", "C"], n, p=[0.6, 0.3, 0.1]),
        "sex": rng.choice(["F", "M"], n, p=[0.3, 0.7]),
    }
)
table.loc[5, "screening_date"] = "not a date"
table.loc[17, "outcome"] = 2
table.loc[40, "id"] = None
table.to_csv(Path(__file__).with_name("screening.csv"), index=False)
