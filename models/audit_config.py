"""The fairness settings (an experiment config's `fairness` block), apart from the audit that reads them so
that reading them is cheap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AuditConfig:
    """The fairness settings: an experiment config's `fairness` block, the audit and the gate."""

    use: Literal["assistive", "punitive"] = "assistive"
    reference: str = "majority"  # 'majority', 'min_metric' or a group's name
    band: tuple[float, float] = (0.8, 1.25)  # descriptive ratios; its upper end bounds the gate's error excess
    min_group_size: int = 50
    min_events: int = 10  # fewer events behind a rate: inconclusive
    bootstrap: int = 1000
    calibration_tolerance: float = 0.25  # relative: observed / expected within [1/(1+t), 1+t] for every group
    auc_tolerance: float = 0.02  # promotion: no group's AUC below the champion's for it by more than this
    intersections: tuple[tuple[str, str], ...] = (("sex", "ethnicity"),)
    mitigate_on: str | None = "ethnicity"  # the column ThresholdOptimizer post-processes on (None: no mitigation)
    disclosure_threshold: int = 7  # group sizes 1..this are shown as "*" in reports and artifacts
