"""MLflow tracking at the edge: a training run with its child runs, lineage, artifacts and the
registered pyfunc (as challenger), and report runs. The store is set in `riskloop.experiments.store`.

Nothing that identifies a person is logged: no input example, no rejected rows (their counts by
reason instead), group sizes in fairness tables under the disclosure rule of `reports.disclosure`."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from riskloop.artifacts.learning import SHAREABLE, LearningSummary
from riskloop.artifacts.training import (
    METRICS,
    MODEL_CARD,
    TRAINING_WRITES,
    TrainingOutputs,
    write_evidence,
    write_training,
)
from riskloop.experiments.config import ExperimentConfig
from riskloop.experiments.orphans import mark_orphaned_runs, process_tags
from riskloop.experiments.pyfunc import MitigatedModel, RiskModel
from riskloop.experiments.registry import EVIDENCE_DIGEST
from riskloop.experiments.store import experiment_id
from riskloop.features.catalogue import catalogue_frame
from riskloop.features.io import atomic_folder
from riskloop.models.contract import riskloop_version
from riskloop.models.evidence import PROMOTION_METRICS, GateEvidence, ModelIdentity, gate_evidence, own_gate
from riskloop.models.fairness import CELLS, DISPARITY_COUNTS
from riskloop.models.scorer import RiskScorer
from riskloop.pipelines.data import ModelData
from riskloop.pipelines.train import TrainResult
from riskloop.reports.disclosure import protect
from riskloop.reports.fairness_report import render_fairness_report
from riskloop.reports.model_card import card_plots, render_model_card


def pyfunc_requirements() -> list[str]:
    """Stated, not inferred (inference re-imports the model in a subprocess and costs seconds): riskloop,
    at this version, brings every library the model needs."""
    return [f"riskloop=={riskloop_version()}"]


def _flat_params(config: ExperimentConfig) -> dict[str, str]:
    params = {
        "label": config.label,
        "horizon_days": config.horizon_days,
        "capacity": config.capacity,
        "harm_threshold": config.harm_threshold,
        "seed": config.seed,
        "selection": f"{config.selection.metric} within {config.selection.auc_tolerance} AUC of best",
        "calibration_methods": ",".join(config.calibration),
        "calibrated_within": ",".join(config.calibrate_within) or "none",
    }
    if config.schedule:
        params.update(
            schedule=f"{config.schedule.start}..{config.schedule.end} every {config.schedule.every_months}m",
            n_test_splits=config.schedule.n_test,
        )
    return {k: str(v) for k, v in params.items()}


@dataclass
class TrainOutcome:
    run_id: str
    model_version: str
    registered_model: str
    metrics_path: Path
    model_card_path: Path
    previous_challenger: str | None  # the version the challenger alias moved away from (None: it is new)


@dataclass(frozen=True)
class RunRole:
    """What a training run is for, in its MLflow name and tags: its role (a challenger from `riskloop train`
    or a learning cycle's retrain), the learning cycle it belongs to and the end of the data it saw."""

    role: str = "challenger"
    cycle: date | None = None  # the learning cycle's as-of date
    data_end: date | None = None
    retraining: str | None = None  # in words, what a retrain chose from (the champion's model group, or the grid)

    def run_name(self, config_name: str) -> str:
        if self.cycle is None:
            return f"train-{config_name}"
        end = f", data to {self.data_end}" if self.data_end else ""
        return f"{self.role}-{config_name} (cycle {self.cycle}{end})"

    def tags(self, labels_closed_by: date) -> dict[str, str]:
        found = {"riskloop.role": self.role, "riskloop.labels_closed_by": str(labels_closed_by)}
        if self.cycle is not None:
            found["riskloop.cycle"] = str(self.cycle)
        if self.data_end is not None:
            found["riskloop.data_end"] = str(self.data_end)
        if self.retraining is not None:
            found["riskloop.retraining"] = self.retraining
        return found


def log_training(
    config: ExperimentConfig, data: ModelData, result: TrainResult, out_dir: Path, role: RunRole = RunRole()
) -> TrainOutcome:
    """Parent run with child runs per model group x split; artifacts; registered pyfunc as challenger.

    In an order that survives a kill at any point: runs that a killed earlier run left RUNNING are
    marked KILLED; the artifacts are written into a temporary folder beside `out_dir` that replaces it
    as a whole once the run has finished and the model version is tagged; the `challenger` alias
    moves last, so it never names a model whose output folder is missing.
    """
    experiment = experiment_id(config.name)
    mark_orphaned_runs(experiment)
    out_dir = Path(out_dir)
    with atomic_folder(out_dir, TRAINING_WRITES, "riskloop train") as folder:
        run_id, version, evidence = _log_run(config, data, result, folder, experiment, role)
        _tag_version(config, data, result, evidence, version)
    client = MlflowClient()
    try:
        previous = str(client.get_model_version_by_alias(config.registered_model, "challenger").version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(config.registered_model, "challenger", version)
    return TrainOutcome(run_id, version, config.registered_model, out_dir / METRICS, out_dir / MODEL_CARD, previous)


def log_backtest(
    config: ExperimentConfig, scorer: RiskScorer, metrics: pd.DataFrame, as_of: date, role: RunRole
) -> str:
    """A learning cycle's backtest in the config's experiment (not registered): the retraining as it would
    have run at `role.data_end`, its windows, and `metrics` (rows champion, challenger) on the cohort at `as_of`
    whose outcomes it never learned from. Returns the run id."""
    contract = scorer.contract
    tags = {"riskloop.kind": "backtest", **role.tags(contract.labels_closed_by()), **process_tags()}
    with mlflow.start_run(
        experiment_id=experiment_id(config.name), run_name=role.run_name(config.name), tags=tags
    ) as run:
        mlflow.log_params(
            {
                "selected_model": contract.model_group,
                "training_window": f"{contract.training_window[0]}..{contract.training_window[1]}",
                "calibration_window": str(contract.calibration_window[1]),
                "judged_on": as_of.isoformat(),
            }
        )
        mlflow.log_metrics(
            {
                f"{'backtest' if row == 'challenger' else row}_{m}": float(v)
                for row, values in metrics.iterrows()
                for m, v in values.items()
            }
        )
    return run.info.run_id


def frame_digest(frame: pd.DataFrame) -> str:
    """An 8-character digest of every row and column, vectorised (MLflow's own digest types each cell of the
    frame in Python, about a minute on two million rows, to hash only its first 10,000)."""
    return hashlib.md5(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:8]


def dataset_schema_rows(frame: pd.DataFrame, head: int = 1_000) -> pd.DataFrame:
    """The first rows and each column's first missing value: the rows from which MLflow infers the same
    dataset schema as from the whole frame (the dtypes and which columns can be missing decide it), in
    milliseconds where the whole frame takes minutes (MLflow tests every value for missing in Python)."""
    missing = frame.isna().to_numpy()
    first_missing = missing.argmax(axis=0)[missing.any(axis=0)]
    return frame.iloc[sorted({*range(min(head, len(frame))), *first_missing.tolist()})]


#: MLflow's warning, at every Python model it logs, that loading one runs code: said once in the README ("Experiments").
PICKLE_WARNING = "Passing a Python object as `python_model`"


@contextmanager
def _unwarned_pickle() -> Iterator[None]:
    """MLflow's pyfunc logger without `PICKLE_WARNING` (its other messages pass)."""

    def other(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(PICKLE_WARNING)

    logger = logging.getLogger("mlflow.pyfunc")
    logger.addFilter(other)
    try:
        yield
    finally:
        logger.removeFilter(other)


def _log_run(
    config: ExperimentConfig, data: ModelData, result: TrainResult, folder: Path, experiment: str, role: RunRole
) -> tuple[str, str, Evidence]:
    """The training run with its child runs, artifacts, registered model and the gate's evidence
    (written once the version is known, its sha256 an immutable run parameter): (run id, version, evidence)."""
    contract = result.scorer.contract
    protected_features = ",".join(contract.protected_as_features) or "none"
    tags = {
        "riskloop.kind": "train",
        "riskloop.data_fingerprint": data.fingerprint,
        "riskloop.selected": result.selected.name,
        "riskloop.protected_as_features": protected_features,
        **role.tags(contract.labels_closed_by()),
        **process_tags(),
    }
    with mlflow.start_run(experiment_id=experiment, run_name=role.run_name(config.name), tags=tags) as parent:
        mlflow.log_params(
            {
                **_flat_params(config),
                "selected_model": result.selected.name,
                "n_features": len(data.features),
                "calibrated_within_method": result.within[0].method if result.within else "none",
            }
        )
        labelled = data.frame[data.features + ["label"]]
        with warnings.catch_warnings():  # MLflow registers the local source type twice and warns about it
            warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
            warnings.filterwarnings("ignore", message=".*integer column.*")  # the label: never missing
            dataset = from_pandas(
                labelled,
                source=Path(data.source).resolve().as_uri(),
                name=f"{config.name}-snapshots",
                targets="label",
                digest=frame_digest(labelled),
            )
            # `schema` is a cached property: set from a few rows, it is not inferred from every row
            dataset.schema = infer_signature(dataset_schema_rows(labelled)).inputs
        mlflow.log_input(dataset, context="training")
        for row in result.split_metrics.to_dict("records"):
            with mlflow.start_run(experiment_id=experiment, run_name=f"{row['group']} | {row['split']}", nested=True):
                mlflow.log_params(
                    {
                        "group": row["group"],
                        "family": row["family"],
                        "split": row["split"],
                        "calibration": row["calibration"],
                    }
                )
                mlflow.log_metrics(
                    {
                        k: float(v)
                        for k, v in row.items()
                        if isinstance(v, (int, float)) and k not in ("best_iteration",) and pd.notna(v)
                    }
                )
        for column in result.summary.columns.drop("family"):
            value = result.summary.loc[result.selected.name, column]
            if pd.notna(value):
                mlflow.log_metric(f"selected_{column}", float(value))
        mlflow.log_metrics(result.final_metrics)
        mlflow.log_metrics({f"proxy_{k}": v for k, v in result.proxy_cost.items() if isinstance(v, float)})
        mlflow.log_metrics({f"explanation_{k}": v for k, v in result.stability.items() if pd.notna(v)})
        for path in _write_artifacts(config, data, result, folder):
            mlflow.log_artifact(str(path))
        rows = signature_rows(data, result.scorer.input_columns)
        with warnings.catch_warnings(), _unwarned_pickle():  # `band` is never missing; no input example on purpose
            warnings.filterwarnings("ignore", message=".*integer column.*")
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
            signature = infer_signature(rows, result.scorer.score(rows, reasons=3), params={"reasons": 0})
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RiskModel(result.scorer),
                signature=signature,
                registered_model_name=config.registered_model,
                pip_requirements=pyfunc_requirements(),
            )
            if result.mitigation is not None:
                inputs = list(dict.fromkeys([*result.scorer.input_columns, result.mitigation.sensitive]))
                mitigated_input = data.frame.loc[data.final.validation, inputs]
                mlflow.pyfunc.log_model(
                    name="mitigated_model",
                    pip_requirements=pyfunc_requirements(),
                    python_model=MitigatedModel(result.scorer, result.mitigation),
                    signature=infer_signature(
                        mitigated_input.head(20).astype({c: float for c in data.features if c not in data.categorical})
                    ),
                )
        mlflow.log_metric("fairness_gate_failures", len(result.fairness.gate_reasons()))
        version = str(info.registered_model_version)
        evidence = training_evidence(
            data,
            result,
            ModelIdentity(
                registered_model=config.registered_model,
                version=version,
                run_id=parent.info.run_id,
                model_group=result.selected.name,
                data_fingerprint=data.fingerprint,
                config_hash=result.scorer.contract.config_hash,
                riskloop_version=result.scorer.contract.riskloop_version,
            ),
        )
        path, digest = write_evidence(folder, evidence)
        mlflow.log_artifact(str(path))
        mlflow.log_param(EVIDENCE_DIGEST, digest)
    return parent.info.run_id, version, Evidence(evidence, digest)


@dataclass(frozen=True)
class Evidence:
    """The gate's evidence of a training run and the sha256 of its logged bytes."""

    content: GateEvidence
    sha256: str


def latest_split_metrics(data: ModelData, result: TrainResult) -> dict[str, float]:
    """The selected model group's test metrics on the latest temporal split (what promotion compares)."""
    latest = result.split_metrics[
        (result.split_metrics["group"] == result.selected.name)
        & (result.split_metrics["split"] == data.splits[-1].name)
    ].iloc[0]
    return {m: float(latest[m]) for m in PROMOTION_METRICS}


def training_evidence(data: ModelData, result: TrainResult, model: ModelIdentity) -> GateEvidence:
    return gate_evidence(
        result.fairness,
        model,
        result.scorer.contract.test_window,
        data.splits[-1].name,
        latest_split_metrics(data, result),
        result.final_metrics,
        result.scorer.contract.calibrated_within,
    )


def _tag_version(
    config: ExperimentConfig, data: ModelData, result: TrainResult, evidence: Evidence, version: str
) -> None:
    """A human-readable summary on the registered version, and the evidence's digest. Promotion reads the
    evidence itself (`riskloop.experiments.registry`), never these tags' verdicts."""
    content = evidence.content
    reasons = own_gate(content)
    client = MlflowClient()
    for key, value in {
        EVIDENCE_DIGEST: evidence.sha256,
        "data_fingerprint": data.fingerprint,
        "model_group": result.selected.name,
        "fairness_gate": "fail" if reasons else "pass",
        "fairness_reasons": "\n".join(reasons)[:4900] or "none",
        "latest_split": content.latest_split,
        **{f"latest_{m}": f"{v:.6f}" for m, v in content.latest_metrics.items()},
        "protected_as_features": ",".join(result.scorer.contract.protected_as_features) or "none",
        "calibrated_within": ",".join(content.calibrated_within) or "none",
        "run_id": content.model.run_id,
    }.items():
        client.set_model_version_tag(config.registered_model, version, key, str(value))


def signature_rows(data: ModelData, columns: list[str]) -> pd.DataFrame:
    """Rows of the scorer's input `columns` as the model receives them (numbers as float, so a missing value
    fits; categorical columns, and the protected columns a model is calibrated within, as strings), used only
    to infer the signature: no input example is logged, because any row of real data is a person (and `age`
    to the day gives away a birth date)."""
    sample = data.frame.loc[data.final.validation, columns].head(50).copy()
    for column in columns:
        text = column in data.categorical or column not in data.features
        sample[column] = sample[column].astype(str) if text else sample[column].astype(float)
    return sample


def rejected_reasons(rejected: pd.DataFrame) -> pd.DataFrame:
    """How many rejected rows broke each rule (a row with several problems counts under each)."""
    reasons = rejected["reason"].str.split("; ").explode()
    return reasons.value_counts().rename_axis("reason").reset_index(name="rows")


def _write_artifacts(config: ExperimentConfig, data: ModelData, result: TrainResult, out_dir: Path) -> list[Path]:
    """Write the training output folder; return the files to log to MLflow (not the rejected rows, which
    hold raw personal data and stay local)."""
    plots = card_plots(config, data, result)
    window = result.scorer.contract.test_window
    threshold = result.fairness.config.disclosure_threshold
    outputs = TrainingOutputs(
        contract=result.scorer.contract,
        metrics=result.final_metrics,
        split_metrics=result.split_metrics,
        importance_by_split=result.importance_by_split,
        stability=result.stability,
        proxies=result.proxies,
        fairness_by_group=protect(result.fairness.by_group, threshold, others=CELLS),
        fairness_disparities=protect(result.fairness.disparities, threshold, others=DISPARITY_COUNTS),
        fairness_report_html=render_fairness_report(
            result.fairness,
            f"{config.registered_model} ({result.selected.name})",
            f"out-of-time audit on its test window {window[0]} to {window[1]}",
            result.mitigation,
            mitigation_note=result.mitigation_note,
        ),
        model_card_html=render_model_card(config, data, result, plots),
        plots=plots,
        catalogue=catalogue_frame(data.catalogue) if data.catalogue is not None else None,
        rejected=data.rejected,
        rejected_reasons=rejected_reasons(data.rejected) if data.rejected is not None else None,
    )
    shared = write_training(out_dir, outputs)
    return shared + ([config.source_file] if config.source_file else [])


def log_learning(
    experiment: str, summary: LearningSummary, champion: str, effects: dict[str, float], folder: Path
) -> str:
    """A learning cycle's run in `<experiment>-learning`: its settings, the doubly robust effect of each
    programme, the promotion, and the shareable files of its folder. Returns the run id."""
    with mlflow.start_run(
        experiment_id=experiment_id(f"{experiment}-learning"), run_name=f"learning {summary.as_of}", tags=process_tags()
    ) as run:
        mlflow.log_params({"as_of": summary.as_of.isoformat(), "retrain": summary.retrain, "champion": champion})
        mlflow.log_metrics({f"dr_{programme}": value for programme, value in effects.items()})
        mlflow.set_tags({"promoted": str(summary.promoted), "challenger_version": summary.challenger_version or ""})
        for name in SHAREABLE:
            mlflow.log_artifact(str(folder / name))
    return run.info.run_id


def log_report(experiment: str, run_name: str, path: Path, tags: dict[str, str]) -> str:
    """Log a report as an artifact of its own run in the model's experiment; return the run id."""
    with mlflow.start_run(
        experiment_id=experiment_id(experiment), run_name=run_name, tags={**tags, **process_tags()}
    ) as run:
        mlflow.log_artifact(str(path))
    return run.info.run_id


def log_simulation(settings: dict, cycles: pd.DataFrame, metrics: tuple[str, ...], files: list[Path]) -> str:
    """A closed-loop simulation's run in `riskloop-simulate`: its settings, `metrics` per cycle (as steps)
    and its files. Returns the run id."""
    with mlflow.start_run(
        experiment_id=experiment_id("riskloop-simulate"),
        run_name=f"{settings['policy']} {settings['retrain']} seed {settings['seed']}",
        tags=process_tags(),
    ) as run:
        mlflow.log_params(settings)
        for row in cycles.itertuples():
            values = {k: float(getattr(row, k)) for k in metrics}
            mlflow.log_metrics({k: v for k, v in values.items() if np.isfinite(v)}, step=int(row.cycle))
        for path in files:
            mlflow.log_artifact(str(path))
    return run.info.run_id
