"""`riskloop train | promote | explain | audit`: a model made, governed, explained and audited."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from riskloop.cli._console import DATE, EXPECTED, console, fatal, out, progress, warn
from riskloop.jobs.common import default_config

if TYPE_CHECKING:
    from riskloop.jobs.model import Trained, TrainJob


def run_train(job: TrainJob) -> Trained:
    """Train and print the model groups' summary."""
    from riskloop.jobs import model as jobs

    try:
        with progress("training") as report:
            trained = jobs.train(job, report, warn=lambda message: warn(message, loud=True))
    except EXPECTED as exc:
        fatal(str(exc))
    result, outcome = trained.result, trained.outcome
    for warning in result.warnings:
        warn(warning)
    summary = Table(title=f"{trained.config.name}: model groups across {len(trained.data.splits)} temporal splits")
    for col in ("group", "ROC AUC", "avg precision", "precision@k", "Brier", "ECE"):
        summary.add_column(col, overflow="fold", no_wrap=col != "group")
    for group, row in result.summary.iterrows():
        mark = " *" if group == result.selected.name else ""
        summary.add_row(
            group + mark,
            *(
                f"{row[m + '_mean']:.3f} ± {row[m + '_std']:.3f}"
                for m in ("roc_auc", "average_precision", "precision_at_k", "brier", "ece")
            ),
        )
    out.print(summary)
    out.print(
        f"selected (*) {result.selected.name}; registered {outcome.registered_model} v{outcome.model_version} "
        f"as challenger; run {outcome.run_id}; metrics {outcome.metrics_path}; model card {outcome.model_card_path}"
    )
    if outcome.previous_challenger not in (None, outcome.model_version):
        out.print(f"challenger alias moved from v{outcome.previous_challenger} to v{outcome.model_version}")
    return trained


def train(
    config: Annotated[Path, typer.Option(help="experiment config (YAML)")] = default_config(),
    data: Annotated[Path | None, typer.Option(help="riskloop data set folder (overrides the config's)")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="output folder (default riskloop-output/NAME)")] = None,
) -> None:
    """Temporal validation of the model grid, calibration, MLflow tracking; registers the challenger."""
    from riskloop.jobs.model import TrainJob

    run_train(TrainJob(config, data, out_dir))


def promote(
    model: Annotated[str, typer.Option(help="registered model name, e.g. riskloop-escalation")] = "riskloop-escalation",
    force: Annotated[bool, typer.Option(help="override the gates (needs --reason)")] = False,
    reason: Annotated[str | None, typer.Option(help="why the gates are overridden (logged to the registry)")] = None,
    by: Annotated[str | None, typer.Option(help="who decides (recorded; default: $USER)")] = None,
) -> None:
    """Make the challenger the champion if the gates, recomputed from the verified evidence of challenger and
    champion, pass. Every attempt is recorded (`riskloop governance`)."""
    from riskloop.experiments.registry import PromotionRefused
    from riskloop.experiments.registry import promote as promote_model

    try:
        promotion = promote_model(model, force=force, reason=reason, by=by)
    except PromotionRefused as refused:
        table = Table(title=f"promotion of {model} refused")
        table.add_column("reason")
        for r in refused.reasons:
            table.add_row(r)
        out.print(table)
        raise typer.Exit(1) from None
    except ValueError as exc:
        fatal(str(exc))
    out.print(f"evidence: {promotion.evidence}")
    forced = " (GOVERNANCE OVERRIDE, recorded)" if promotion.forced else ""
    out.print(f"{model} v{promotion.version} is now champion{forced}")


def governance(
    model: Annotated[str, typer.Option(help="registered model name, e.g. riskloop-escalation")] = "riskloop-escalation",
) -> None:
    """Every promotion attempt of a model: when, by whom, the decision and why (from `<model>-governance`)."""
    from riskloop.experiments.governance import history

    attempts = history(model)
    if attempts.empty:
        out.print(f"no promotion attempt of {model} is recorded")
        return
    table = Table(title=f"promotion attempts of {model} (UTC)")
    for column in ("when", "decision", "challenger", "champion", "by", "why"):
        table.add_column(column, overflow="fold")
    for row in attempts.itertuples():
        why = (
            row.forced_reason
            + (" over: " if row.forced_reason else "")
            + (row.reasons if row.reasons != "none" else "")
        )
        champion = f"v{row.champion}" if row.champion != "none" else "none"
        table.add_row(row.when, row.decision, f"v{row.challenger}", champion, row.by, why or "gates passed")
    out.print(table)


def transparency(
    model: Annotated[str, typer.Option(help="model URI, e.g. models:/riskloop-escalation@champion")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for transparency_record.html, .csv and .json")],
) -> None:
    """An Algorithmic Transparency Recording Standard (ATRS v3.0) record of a registered model, filled from what
    riskloop knows; the fields only the partnership can fill are marked."""
    from riskloop.jobs.transparency import TransparencyJob
    from riskloop.jobs.transparency import transparency as record

    try:
        recorded = record(TransparencyJob(model, out_dir))
    except EXPECTED as exc:
        fatal(str(exc))
    if not recorded.verified:
        warn("the gate's evidence could not be verified: the record makes no fairness claim")
    out.print(
        f"transparency record: {recorded.path} (and .csv, .json); {recorded.to_complete} fields for the partnership"
    )


def explain(
    model: Annotated[str, typer.Option(help="model URI, e.g. models:/riskloop-escalation@champion")],
    data: Annotated[Path, typer.Option(help="riskloop data set folder")],
    as_of: Annotated[datetime, typer.Option("--as-of", formats=DATE, help="as-of date T")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for explainability.html")],
    person: Annotated[
        str | None,
        typer.Option(
            help="a person's pseudonym: add their waterfall and reasons "
            "(the report then stays local, not logged to MLflow)"
        ),
    ] = None,
    sample: Annotated[int, typer.Option(help="rows for the global plots (stratified by risk band)")] = 20_000,
    log_person_page: Annotated[bool, typer.Option(help="log the report to MLflow even with --person")] = False,
) -> None:
    """Explainability report: global importance, beeswarm, dependence, stability, a person's reasons.
    Logged to MLflow, except a report with a person's page, which stays local unless --log-person-page."""
    from riskloop.jobs import model as jobs

    try:
        explained = jobs.explain(jobs.ExplainJob(model, data, as_of.date(), out_dir, person, sample, log_person_page))
    except EXPECTED as exc:
        fatal(str(exc))
    where = "also logged to MLflow" if explained.logged else "local only: not logged to MLflow"
    out.print(f"wrote {explained.path} ({where})")


def audit(
    model: Annotated[str | None, typer.Option(help="model URI, e.g. models:/riskloop-escalation@challenger")] = None,
    data: Annotated[Path | None, typer.Option(help="riskloop data set folder")] = None,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=DATE, help="as-of date T (its label window must be closed)")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for fairness_audit.html")] = Path("riskloop-audit"),
    table: Annotated[Path | None, typer.Option(help="instead of a model: a table of an existing tool's scores")] = None,
    score_column: Annotated[str | None, typer.Option(help="with --table: the score column")] = None,
    label_column: Annotated[str | None, typer.Option(help="with --table: the 0/1 outcome column")] = None,
    protected: Annotated[str, typer.Option(help="with --table: protected columns to audit by, comma-separated")] = "",
    top_share: Annotated[float | None, typer.Option(help="with --table: the top share of scores is selected")] = None,
    threshold: Annotated[float | None, typer.Option(help="with --table: scores at least this are selected")] = None,
    calibrate_before: Annotated[
        datetime | None,
        typer.Option(
            "--calibrate-before",
            formats=DATE,
            help="with --table and --date-column: map the score to a probability on rows before this date and "
            "audit calibration on the rows from it, out of time",
        ),
    ] = None,
    date_column: Annotated[str | None, typer.Option(help="with --calibrate-before: the column dating each row")] = None,
) -> None:
    """Fairness audit of a registered model on a data set (with measurement bias on synthetic worlds), or of
    any existing tool's scores in a table (--table)."""
    from riskloop.jobs import model as jobs

    try:
        if table is not None:
            if not (score_column and label_column):
                fatal("--table needs --score-column and --label-column")
            columns = tuple(c.strip() for c in protected.split(",") if c.strip())
            audited = jobs.audit_table(
                jobs.TableAuditJob(
                    table,
                    score_column,
                    label_column,
                    columns,
                    out_dir,
                    top_share,
                    threshold,
                    calibrate_before.date() if calibrate_before else None,
                    date_column,
                )
            )
            if audited.rejected:
                warn(
                    f"{audited.rejected:,} rows without a numeric score and a 0/1 outcome were left out; they are "
                    f"in {out_dir / 'rejected_rows.csv'}"
                )
        else:
            if calibrate_before or date_column:
                fatal("--calibrate-before and --date-column audit a --table of an existing tool's scores")
            if not (model and data and as_of):
                fatal("give --model, --data and --as-of (a registered model), or --table (an existing tool's scores)")
            audited = jobs.audit(jobs.AuditJob(model, data, as_of.date(), out_dir))
    except EXPECTED as exc:
        fatal(str(exc))
    result = audited.result
    out.print(f"wrote {audited.path}" + ("" if table is not None else " (also logged to MLflow)"))
    if audited.calibration:
        out.print(audited.calibration, highlight=False)
    if result.in_sample:
        console.print(f"[bold yellow]warning:[/] {result.in_sample}", highlight=False)
    for r in result.audit.gate_reasons():
        out.print(f"[red]gate:[/] {r}", highlight=False)
    if result.detected_bias():
        out.print(f"[yellow]measurement bias detected:[/] {', '.join(result.detected_bias())}", highlight=False)
