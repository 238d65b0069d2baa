"""The governance record: every promotion attempt (refused, promoted, forced) as a run of the experiment
`<model>-governance` in the MLflow store, with who, when, the evidence digests, the decision and why."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import mlflow
import pandas as pd

from riskloop.experiments.orphans import process_tags
from riskloop.experiments.store import configure_tracking, experiment_id

Decision = Literal["promoted", "refused", "forced"]
RECORD = "promotion.json"
COLUMNS = ("when", "decision", "challenger", "champion", "by", "forced_reason", "reasons", "challenger_evidence")


@dataclass(frozen=True)
class PromotionAttempt:
    challenger: str
    champion: str | None  # the champion when it was attempted (None: there was none)
    decision: Decision
    reasons: tuple[str, ...]  # why the gates refused (also when forced over them)
    by: str
    forced_reason: str | None
    challenger_evidence: str | None  # sha256 of the verified evidence (None: none could be verified)
    champion_evidence: str | None


def governance_experiment(registered_model: str) -> str:
    return f"{registered_model}-governance"


def record_attempt(registered_model: str, attempt: PromotionAttempt) -> str:
    """Append an attempt to the model's governance record; returns the run id."""
    tags = {
        "riskloop.kind": "promotion",
        "decision": attempt.decision,
        "challenger_version": attempt.challenger,
        "champion_version": attempt.champion or "none",
        "by": attempt.by,
        "forced_reason": attempt.forced_reason or "",
        "reasons": "\n".join(attempt.reasons)[:4900] or "none",
        "challenger_evidence_sha256": attempt.challenger_evidence or "none",
        "champion_evidence_sha256": attempt.champion_evidence or "none",
    }
    with mlflow.start_run(
        experiment_id=experiment_id(governance_experiment(registered_model)),
        run_name=f"{attempt.decision} v{attempt.challenger}",
        tags={**tags, **process_tags()},
    ) as run:
        mlflow.log_text(json.dumps(asdict(attempt), indent=1), RECORD)
    return run.info.run_id


def history(registered_model: str) -> pd.DataFrame:
    """Every recorded promotion attempt of a model, oldest first (empty when there is none)."""
    configure_tracking()
    experiment = mlflow.get_experiment_by_name(governance_experiment(registered_model))
    if experiment is None:
        return pd.DataFrame(columns=list(COLUMNS))
    runs = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    if runs.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.DataFrame(
        {
            "when": pd.to_datetime(runs["start_time"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "decision": runs["tags.decision"],
            "challenger": runs["tags.challenger_version"],
            "champion": runs["tags.champion_version"],
            "by": runs["tags.by"],
            "forced_reason": runs["tags.forced_reason"].fillna(""),
            "reasons": runs["tags.reasons"],
            "challenger_evidence": runs["tags.challenger_evidence_sha256"],
        }
    )
