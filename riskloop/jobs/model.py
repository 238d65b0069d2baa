"""Model jobs: train (temporal validation, calibration, MLflow, the challenger), explain and audit a
registered model, audit an existing tool's scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from riskloop.artifacts.reports import write_audit, write_explainability
from riskloop.artifacts.training import TRAINING_WRITES
from riskloop.experiments.config import ConfigError, ExperimentConfig, load_config, with_data
from riskloop.experiments.registry import LoadedModel, load_model
from riskloop.experiments.tracking import TrainOutcome, log_report, log_training
from riskloop.features.io import DataError, check_replaceable, read_raw_table, sha256_file
from riskloop.features.snapshot import PreparedData
from riskloop.jobs.common import Progress, counted, model_label, no_progress, open_dataset
from riskloop.jobs.synthetic import synthetic_truth
from riskloop.models.fairness import DISPARITY_COUNTS, AuditConfig
from riskloop.pipelines.audit import AuditResult, ExistingScores, audit_cohort, audit_scores
from riskloop.pipelines.data import ModelData, from_dataset, from_table
from riskloop.pipelines.explain import explain_cohort
from riskloop.pipelines.score import ScoredCohort, prepare_for_scoring, require_data_set_model, score_cohort
from riskloop.pipelines.train import TrainResult
from riskloop.pipelines.train import train as train_models
from riskloop.reports.disclosure import protect
from riskloop.reports.explain_report import render_explain_report
from riskloop.reports.fairness_report import render_fairness_report


def model_data(config: ExperimentConfig) -> ModelData:
    """The experiment's model-ready data: snapshots of its data set, or its person-level table."""
    if config.data is not None:
        dataset = open_dataset(config.data)
        dataset.require_rows("areas", "people", "incidents")
        return from_dataset(config, PreparedData.from_dataset(dataset))
    table = config.table_source
    try:
        raw = read_raw_table(table.path)
    except DataError as exc:
        raise ConfigError(str(exc)) from exc
    return from_table(config, raw, sha256_file(table.path)[:16])


@dataclass(frozen=True)
class TrainJob:
    config: Path  # the experiment config (YAML)
    data: Path | None = None  # a data set folder instead of the config's
    out: Path | None = None  # the output folder (default riskloop-output/<name>)


@dataclass(frozen=True)
class Trained:
    config: ExperimentConfig
    data: ModelData
    result: TrainResult
    outcome: TrainOutcome


def train(job: TrainJob, progress: Progress = no_progress, warn: Callable[[str], None] = lambda _: None) -> Trained:
    """Temporal validation of the config's model grid, calibration, the fairness audit of training, MLflow
    tracking; the chosen model registered as challenger. `warn` hears the data's warnings (a protected
    characteristic used as a feature) before any fit; the training's are in `result.warnings`."""
    config = load_config(job.config)
    if job.data is not None:
        config = with_data(config, job.data)
    out = job.out or Path("riskloop-output") / config.name
    check_replaceable(out, TRAINING_WRITES, "riskloop train")  # before the work, not only at the write
    data = model_data(config)
    for warning in data.warnings:
        warn(warning)
    result = train_models(data, config, progress=counted(progress))
    outcome = log_training(config, data, result, out)
    return Trained(config, data, result, outcome)


def scored_cohort(model: str, data: Path, as_of: date) -> tuple[LoadedModel, ScoredCohort]:
    """A registered model and its scored cohort at `as_of` on a data set."""
    loaded = load_model(model)
    require_data_set_model(loaded.contract)
    prepared = prepare_for_scoring(loaded.contract, open_dataset(data), as_of)
    return loaded, score_cohort(loaded.scorer, prepared, as_of)


def _log_report(loaded: LoadedModel, kind: str, model: str, as_of: date, path: Path) -> None:
    """A report as its own run in the model's experiment, tagged with what it is, of which model, at when."""
    tags = {"riskloop.kind": kind, "riskloop.model": model, "riskloop.as_of": as_of.isoformat()}
    log_report(loaded.contract.name, f"{kind}-{as_of}", path, tags)


@dataclass(frozen=True)
class ExplainJob:
    model: str  # model URI, e.g. models:/riskloop-escalation@champion
    data: Path
    as_of: date
    out: Path  # the folder for explainability.html
    person: str | None = None  # a pseudonym: add their waterfall and reasons (stays local)
    sample: int = 20_000  # rows for the global plots (stratified by risk band)
    log_person_page: bool = False


@dataclass(frozen=True)
class Explained:
    path: Path
    logged: bool  # also logged to MLflow


def explain(job: ExplainJob) -> Explained:
    """The explainability report; logged to MLflow unless it holds a person's page (and that was not asked for)."""
    loaded, cohort = scored_cohort(job.model, job.data, job.as_of)
    explained = explain_cohort(loaded.scorer, cohort, sample_size=job.sample, person=job.person)
    html = render_explain_report(
        explained,
        model_label(loaded),
        job.as_of,
        loaded.scorer.importance_by_split,
        loaded.scorer.stability,
        disclosure_threshold=loaded.contract.audit.disclosure_threshold,
    )
    path = write_explainability(job.out, html)
    logged = job.person is None or job.log_person_page
    if logged:
        _log_report(loaded, "explain", job.model, job.as_of, path)
    return Explained(path, logged)


@dataclass(frozen=True)
class AuditJob:
    model: str
    data: Path
    as_of: date  # its label window must be closed
    out: Path


@dataclass(frozen=True)
class Audited:
    path: Path
    result: AuditResult
    rejected: int = 0  # rows of an audited table left out (in rejected_rows.csv)
    calibration: str | None = None  # an audited table: what the audit could say about calibration, in words


def _write_audit(result: AuditResult, model: str, scope: str, out: Path, rejected=None) -> Path:
    html = render_fairness_report(result.audit, model, scope, None, result.bias)
    disparities = protect(result.audit.disparities, result.audit.config.disclosure_threshold, others=DISPARITY_COUNTS)
    return write_audit(out, html, disparities, rejected)


def audit(job: AuditJob) -> Audited:
    """The fairness audit of a registered model on the labelled cohort at `as_of` (with the measurement-bias
    check against the truth on a synthetic world), logged to MLflow."""
    loaded, cohort = scored_cohort(job.model, job.data, job.as_of)
    result = audit_cohort(cohort, synthetic_truth(job.data, job.as_of, loaded.contract))
    scope = f"audit at {job.as_of} on {Path(job.data).as_posix()}" + (
        f". WARNING: {result.in_sample}" if result.in_sample else ""
    )
    path = _write_audit(result, model_label(loaded), scope, job.out)
    _log_report(loaded, "audit", job.model, job.as_of, path)
    return Audited(path, result)


@dataclass(frozen=True)
class TableAuditJob:
    table: Path  # an existing tool's scores with outcomes
    score_column: str
    label_column: str
    protected: tuple[str, ...]
    out: Path
    top_share: float | None = None  # the top share of scores is selected ...
    threshold: float | None = None  # ... or scores of at least this
    calibrate_before: date | None = None  # fit a monotone map on rows before this date ...
    date_column: str | None = None  # ... (dated by this column) and audit calibration on the rows after


def audit_table(job: TableAuditJob) -> Audited:
    """The fairness audit of any existing tool's scores in a table (rows without a numeric score and a 0/1
    outcome are left out, to `rejected_rows.csv`)."""
    if not job.protected:
        raise ValueError("--protected: name at least one column to audit by")
    spec = ExistingScores(
        job.score_column,
        job.label_column,
        job.protected,
        job.top_share,
        job.threshold,
        job.calibrate_before,
        job.date_column,
    )
    audited = audit_scores(read_raw_table(Path(job.table)), spec, AuditConfig(intersections=()))
    scope = (
        f"the scores in column '{job.score_column}' of {Path(job.table).name}; {audited.rule} selected; "
        f"outcome '{job.label_column}'; {audited.calibration}"
    )
    path = _write_audit(audited.result, f"existing score '{job.score_column}'", scope, job.out, audited.rejected)
    return Audited(path, audited.result, len(audited.rejected), audited.calibration)
