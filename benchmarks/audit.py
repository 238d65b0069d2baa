"""The fairness audit on 500 k scored rows with 4 protected columns and 1,000 bootstrap resamples.

Goal (issue 5): <= 60 s on 2 cores. The bare baseline is one fairlearn MetricFrame per protected
column with the same decision metrics and no intervals, measured in the same run.
Usage: python benchmarks/audit.py [ROWS] [RESAMPLES]
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from _measure import now, peak_rss_gib
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate

from riskloop.models.fairness import AuditConfig, audit
from riskloop.models.metrics import capacity_k, top_k

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
resamples = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
rng = np.random.default_rng(0)
frame = pd.DataFrame(
    {
        "sex": rng.choice(["F", "M"], rows),
        "ethnicity": rng.choice(["White", "Asian", "Black", "Mixed", "Other"], rows, p=[0.9, 0.04, 0.02, 0.025, 0.015]),
        "age_band": rng.choice(["0-17", "18-24", "25-34", "35-49", "50-64", "65+"], rows),
        "deprivation_quintile": rng.integers(1, 6, rows).astype(str),
    }
)
risk = rng.beta(1, 20, rows)
y = (rng.random(rows) < risk).astype(int)
protected = list(frame.columns)

t0 = now()
selected = top_k(risk, capacity_k(rows, 0.05)).astype(int)
for column in protected:  # the bare cost: fairlearn's own per-group rates
    _ = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "false_positive_rate": false_positive_rate,
            "false_negative_rate": false_negative_rate,
        },
        y_true=y,
        y_pred=selected,
        sensitive_features=frame[column],
    ).by_group
bare_s = now() - t0

t0 = now()
result = audit(
    y, risk, frame, protected, AuditConfig(bootstrap=resamples, intersections=(("sex", "ethnicity"),)), capacity=0.05
)
audit_s = now() - t0
print(f"{rows:,} rows, {len(protected)} protected columns + 1 intersection, {resamples} bootstrap resamples")
print(f"bare MetricFrame per column (no intervals)  {bare_s:6.2f} s")
print(
    f"riskloop audit (MetricFrames, disparities, intervals) {audit_s:6.2f} s  (goal <= 60 s); "
    f"{rows / audit_s:,.0f} rows/s; ratio to bare {audit_s / bare_s:.2f}; peak RSS {peak_rss_gib():.2f} GiB"
)
print(
    f"{len(result.by_group)} groups, {len(result.disparities)} disparities "
    f"({(result.disparities['status'] == 'fail').sum()} fail, {(result.disparities['status'] == 'inconclusive').sum()} inconclusive)"
)
