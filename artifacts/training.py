"""The training output folder (`riskloop train --out`): the model card, the fairness report of training,
the model contract, metrics and the tables behind them. MLflow holds the model itself; this folder is
the local record of how it was made. `write_training` writes it (into a folder being assembled, which
the caller renames into place once the model is registered); `read_training` reads it back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from riskloop.features.io import DataError, write_text_atomic
from riskloop.models.contract import ContractError, ModelContract
from riskloop.models.evidence import GateEvidence, evidence_json

CONTRACT = "contract.json"
METRICS = "metrics.json"
SPLIT_METRICS = "split_metrics.csv"
MODEL_CARD = "model_card.html"
FAIRNESS_REPORT = "fairness_report.html"
#: The model card's figures (`reports.model_card.card_plots`): calibration, precision at k, AUC over splits, a GAM's
#: shape functions
PLOTS = ("calibration.png", "precision_at_k.png", "auc_over_time.png", "shape_functions.png")
EVIDENCE = "gate_evidence.json"  # the promotion gate's evidence: written once the model version is known
#: What a training folder holds (`features.io.check_replaceable`): `write_training`'s files and the evidence
TRAINING_WRITES = (
    *PLOTS,
    METRICS,
    SPLIT_METRICS,
    "importance_by_split.csv",
    "explanation_stability.json",
    CONTRACT,
    "feature_catalogue.csv",
    "rejected_rows.csv",
    "rejected_reasons.csv",
    "proxies.csv",
    FAIRNESS_REPORT,
    "fairness_by_group.csv",
    "fairness_disparities.csv",
    MODEL_CARD,
    EVIDENCE,
)


@dataclass(frozen=True)
class TrainingOutputs:
    """What training writes, in memory. `rejected` (raw rows of a person-level table) stays local; every
    other file may be logged to MLflow."""

    contract: ModelContract
    metrics: dict[str, float]  # the registered model's test metrics
    split_metrics: pd.DataFrame  # every model group on every temporal split
    importance_by_split: pd.DataFrame
    stability: dict[str, float]
    proxies: pd.DataFrame
    fairness_by_group: pd.DataFrame  # under the disclosure rule
    fairness_disparities: pd.DataFrame  # under the disclosure rule
    fairness_report_html: str
    model_card_html: str
    plots: dict[str, bytes]  # PNG files the model card embeds
    catalogue: pd.DataFrame | None = None
    rejected: pd.DataFrame | None = None
    rejected_reasons: pd.DataFrame | None = None


@dataclass(frozen=True)
class Trained:
    """A training output folder read back."""

    folder: Path
    contract: ModelContract
    metrics: dict[str, float]
    split_metrics: pd.DataFrame

    @property
    def model_card(self) -> Path:
        return self.folder / MODEL_CARD

    @property
    def fairness_report(self) -> Path:
        return self.folder / FAIRNESS_REPORT


def write_training(folder: Path, outputs: TrainingOutputs) -> list[Path]:
    """Write every file into `folder`; return those that may leave it (all but the rejected rows)."""
    shared = []

    def text(name: str, content: str) -> None:
        write_text_atomic(content, folder / name)
        shared.append(folder / name)

    def table(name: str, frame: pd.DataFrame, **options) -> None:
        frame.to_csv(folder / name, **{"index": False, **options})
        shared.append(folder / name)

    for name, png in outputs.plots.items():
        (folder / name).write_bytes(png)
        shared.append(folder / name)
    text(METRICS, json.dumps(outputs.metrics, indent=2, sort_keys=True))
    table(SPLIT_METRICS, outputs.split_metrics)
    table("importance_by_split.csv", outputs.importance_by_split, index=True, index_label="split")
    text("explanation_stability.json", json.dumps(outputs.stability, indent=2, sort_keys=True))
    text(CONTRACT, outputs.contract.to_json())
    if outputs.catalogue is not None:
        table("feature_catalogue.csv", outputs.catalogue)
    if outputs.rejected is not None:
        outputs.rejected.to_csv(folder / "rejected_rows.csv", index=False)
        table("rejected_reasons.csv", outputs.rejected_reasons)
    table("proxies.csv", outputs.proxies)
    text(FAIRNESS_REPORT, outputs.fairness_report_html)
    table("fairness_by_group.csv", outputs.fairness_by_group)
    table("fairness_disparities.csv", outputs.fairness_disparities)
    text(MODEL_CARD, outputs.model_card_html)
    return shared


def read_training(folder: Path) -> Trained:
    """A `riskloop train` output folder: its contract, test metrics and per-split metrics."""
    folder = Path(folder)
    if not (folder / CONTRACT).exists():
        raise DataError(f"{folder}: no {CONTRACT} (give a `riskloop train` output folder)")
    try:
        contract = ModelContract.from_json((folder / CONTRACT).read_text())
    except ContractError as exc:
        raise DataError(f"{folder / CONTRACT}: {exc}") from exc
    metrics = json.loads((folder / METRICS).read_text())
    return Trained(folder, contract, metrics, pd.read_csv(folder / SPLIT_METRICS))


def write_evidence(folder: Path, evidence: GateEvidence) -> tuple[Path, str]:
    """Write the gate's evidence into a training folder; return its path and the sha256 of its bytes."""
    text = evidence_json(evidence)
    path = Path(folder) / EVIDENCE
    write_text_atomic(text, path)
    return path, hashlib.sha256(text.encode()).hexdigest()
