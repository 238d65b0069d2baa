"""Make tests/data/existing_scores.csv: the scores of a tool a partnership already uses, to audit.

Run once (python tests/data/make_existing_scores.py); the CSV is committed. The tool's `risk_score`
is a calibrated probability for group A, but over-states group B's risk by half (a planted bias);
`reoffended` is the outcome. Two rows are deliberately broken (a score that is not a number, an
outcome of 2).
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
n = 3000
group = rng.choice(["A", "B"], n, p=[0.7, 0.3])
truth = 1 / (1 + np.exp(-(-2.2 + 1.2 * rng.normal(size=n))))
outcome = (rng.random(n) < truth).astype(int)
score = np.where(group == "B", np.minimum(truth * 1.5, 0.99), truth)
table = pd.DataFrame(
    {
        "ref": [f"x{k:05d}" for k in range(n)],
        "risk_score": score.round(4),
        "reoffended": outcome,
        "group": group,
        "sex": rng.choice(["F", "M"], n, p=[0.4, 0.6]),
    }
)
table["risk_score"] = table["risk_score"].astype(object)
table.loc[11, "risk_score"] = "high"
table.loc[12, "reoffended"] = 2
table.to_csv(Path(__file__).with_name("existing_scores.csv"), index=False)
