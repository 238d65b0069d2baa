"""The `riskloop` command line: one subcommand per job. It parses arguments, calls one pipeline (or,
for `demo`, composes them), does the file and MLflow I/O through `experiments/` and `reports/`, and
prints with Rich. The synthetic world's truth enters here, at the edge, never inside a pipeline."""

from __future__ import annotations

from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from riskloop.features.io import DataError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="riskloop: predictive risk modelling with a learning loop, for community safety partnerships.")
console = Console(stderr=True)
out = Console()
if not out.is_terminal:  # Rich assumes 80 columns off a terminal and truncates; logs and pipes get whole lines
    out = Console(width=200)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)") from exc


def fatal(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def progress_bar(description: str) -> Progress:
    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def run_generate(out_dir: Path, people: int, seed: int, start: date, end: date) -> dict[str, int]:
    from riskloop.simulation.parameters import WorldConfig
    from riskloop.simulation.world import simulate, write_world

    config = WorldConfig(people=people, seed=seed, start=start, end=end)
    with progress_bar(f"generating {people:,} people") as bar:
        task = bar.add_task("months", total=None)
        sim = simulate(config, progress=lambda done, total: bar.update(task, completed=done, total=total))
    return write_world(sim, out_dir)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the data set to")],
    people: Annotated[int, typer.Option(help="number of people (3,100,000 is full Wales)")] = 100_000,
    seed: Annotated[int, typer.Option(help="random seed: same seed, byte-identical tables")] = 42,
    start: Annotated[str, typer.Option(help="first day of the world")] = "2019-01-01",
    end: Annotated[str, typer.Option(help="last day of the world")] = "2025-12-31",
) -> None:
    """Generate the synthetic Wales-like world (contract tables + truth/ apart)."""
    try:
        counts = run_generate(out_dir, people, seed, _date(start), _date(end))
    except ValueError as exc:
        fatal(str(exc))
    out.print(f"wrote {out_dir}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
              + f"; truth in {out_dir / 'truth'}")


def print_validation(report) -> None:
    table = Table(title="validation: rows read = valid + quarantined")
    for col in ("table", "read", "valid", "quarantined", "rules broken"):
        table.add_column(col, justify="right" if col in ("read", "valid", "quarantined") else "left")
    for t in report.tables.values():
        rules = ", ".join(f"{k} ({v})" for k, v in sorted(t.reasons.items()))
        table.add_row(t.table, f"{t.read:,}", f"{t.valid:,}", f"{t.quarantined:,}", rules or "-")
    out.print(table)


@app.command()
def validate(
    data_dir: Annotated[Path, typer.Argument(help="data set folder (Parquet or CSV tables)")],
    strict: Annotated[bool, typer.Option(help="exit 1 if any row is quarantined")] = False,
    today: Annotated[Optional[str], typer.Option(help="reference date for 'in the future' (default: today)")] = None,
) -> None:
    """Check a data set against the contract; quarantine bad rows with their reason."""
    from riskloop.features.validate import QUARANTINE_DIR, load_dataset

    try:
        dataset = load_dataset(data_dir, today=_date(today) if today else None)
    except DataError as exc:
        fatal(str(exc))
    print_validation(dataset.report)
    unreconciled = [t.table for t in dataset.report.tables.values() if not t.reconciles]
    if unreconciled:
        fatal(f"rows read != valid + quarantined in {', '.join(unreconciled)}: please report this as a bug")
    if dataset.report.quarantined:
        console.print(f"[yellow]warning:[/] {dataset.report.quarantined:,} rows quarantined; "
                      f"reasons in {data_dir / QUARANTINE_DIR}/", highlight=False)
        if strict:
            raise typer.Exit(1)


@app.command()
def features(
    data: Annotated[str, typer.Option("--data", help="data set folder (with --engine spark, any URI Spark reads)")],
    as_of: Annotated[list[str], typer.Option("--as-of", help="as-of date T (repeatable)")],
    out_file: Annotated[Path, typer.Option("--out", help="snapshot Parquet file to write")],
    horizon_days: Annotated[int, typer.Option(help="label horizon H: the label looks at (T, T+H]")] = 365,
    label: Annotated[str, typer.Option(help="escalation or repeat_victimisation")] = "escalation",
    harm_threshold: Annotated[float, typer.Option(help="harm above this makes an incident high-harm")] = 6.0,
    catalogue: Annotated[Optional[Path], typer.Option(help="also write the feature catalogue (CSV)")] = None,
    engine: Annotated[str, typer.Option(help="local (one machine) or spark")] = "local",
    spark_master: Annotated[Optional[str], typer.Option(help="Spark master URL (default: spark-submit's or local[*])")] = None,
) -> None:
    """Build point-in-time snapshots (cohort, features, label, protected columns) for as-of dates."""
    from riskloop.features.catalogue import catalogue_frame
    from riskloop.features.io import write_csv_atomic
    from riskloop.features.snapshot import (
        PreparedData, SnapshotConfig, build_snapshots, check_coverage, write_snapshot_file,
    )
    from riskloop.features.validate import load_dataset

    dates = [_date(t) for t in as_of]
    if engine not in ("local", "spark"):
        fatal(f"--engine: expected local or spark, got '{engine}'")
    try:
        config = SnapshotConfig(label=label, horizon_days=horizon_days, harm_threshold=harm_threshold)
        if engine == "spark":
            from riskloop.spark import spark_session, spark_snapshots

            meta, specs, per_date = spark_snapshots(spark_session(spark_master), data, dates, config, out_file)
            if catalogue:
                write_csv_atomic(catalogue_frame(specs), catalogue)
            out.print(f"snapshots -> {out_file}: " + "; ".join(
                f"{r.as_of.date()}: cohort {r.cohort:,}, labelled {r.labelled:,}" for r in per_date.itertuples()))
            out.print(f"{len(meta.features)} features, protected (audit only): {', '.join(meta.protected)}")
            return
        dataset = load_dataset(Path(data))
        dataset.require_rows("areas", "people")
        check_coverage(dataset, dates)
    except (DataError, ValueError) as exc:
        fatal(str(exc))
    prepared = PreparedData.from_dataset(dataset)
    frame, meta = build_snapshots(prepared, dates, config)
    write_snapshot_file(frame, meta, out_file)
    if catalogue:
        write_csv_atomic(catalogue_frame(prepared.catalogue(config)), catalogue)
    table = Table(title=f"snapshots -> {out_file}")
    for col in ("as-of", "cohort", "labelled", "positive rate", "unlabelled (horizon past data end)"):
        table.add_column(col, justify="right")
    for t, rows in frame.groupby("as_of"):
        labelled = rows["label"].notna()
        rate = f"{rows.loc[labelled, 'label'].mean():.3f}" if labelled.any() else "-"
        table.add_row(str(t.date()), f"{len(rows):,}", f"{labelled.sum():,}", rate, f"{(~labelled).sum():,}")
    out.print(table)
    out.print(f"{len(meta.features)} features, protected (audit only): {', '.join(meta.protected)}")


@app.command()
def splits(
    config: Annotated[Optional[Path], typer.Option(help="experiment config (YAML); its schedule wins")] = None,
    start: Annotated[str, typer.Option(help="first as-of date")] = "2020-01-01",
    end: Annotated[str, typer.Option(help="last as-of date")] = "2024-12-31",
    every_months: Annotated[int, typer.Option(help="update frequency")] = 6,
    horizon_days: Annotated[int, typer.Option()] = 365,
) -> None:
    """Print the temporal train/validation/test splits of an as-of schedule."""
    from riskloop.features.splits import as_of_schedule, splits_frame, temporal_splits

    n_test = None
    if config is not None:
        from riskloop.experiments.config import ConfigError, load_config

        try:
            cfg = load_config(config)
        except ConfigError as exc:
            fatal(str(exc))
        dates, horizon_days, n_test = cfg.schedule.dates(), cfg.horizon_days, cfg.schedule.n_test
    else:
        dates = as_of_schedule(_date(start), _date(end), every_months)
    frame = splits_frame(temporal_splits(dates, horizon_days, n_test))
    if frame.empty:
        fatal("no feasible split: the schedule is too short for the horizon")
    table = Table(title=f"temporal splits (label closed before the next date, horizon {horizon_days} days)")
    for col in frame.columns:
        table.add_column(col)
    for row in frame.itertuples(index=False):
        table.add_row(*map(str, row))
    out.print(table)


def run_train(config_path: Path, data: Optional[Path], out_dir: Optional[Path]):
    from riskloop.experiments.config import ConfigError, load_config, with_data
    from riskloop.experiments.tracking import log_training
    from riskloop.pipelines.data import load_model_data
    from riskloop.pipelines.train import train as train_models

    try:
        config = load_config(config_path)
        if data is not None:
            config = with_data(config, data)
        model_data = load_model_data(config)
    except (ConfigError, DataError) as exc:
        fatal(str(exc))
    for warning in model_data.warnings:
        console.print(f"[bold red]WARNING:[/] {warning}", highlight=False)
    with progress_bar("training") as bar:
        task = bar.add_task("fits", total=None)
        result = train_models(model_data, config, progress=lambda what: bar.update(task, advance=1, description=what))
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    outcome = log_training(config, model_data, result, out_dir or Path("riskloop-output") / config.name)
    summary = Table(title=f"{config.name}: model groups across {len(model_data.splits)} temporal splits")
    for col in ("group", "ROC AUC", "avg precision", "precision@k", "Brier", "ECE"):
        summary.add_column(col, overflow="fold", no_wrap=col != "group")
    for group, row in result.summary.iterrows():
        mark = " *" if group == result.selected.name else ""
        summary.add_row(group + mark, *(f"{row[m + '_mean']:.3f} ± {row[m + '_std']:.3f}" for m in
                                        ("roc_auc", "average_precision", "precision_at_k", "brier", "ece")))
    out.print(summary)
    out.print(f"selected (*) {result.selected.name}; registered {outcome.registered_model} v{outcome.model_version} "
              f"as challenger; run {outcome.run_id}; metrics {outcome.metrics_path}; model card {outcome.model_card_path}")
    if outcome.previous_challenger not in (None, outcome.model_version):
        out.print(f"challenger alias moved from v{outcome.previous_challenger} to v{outcome.model_version}")
    return config, model_data, result, outcome


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="experiment config (YAML)")] = Path("experiments/escalation.yaml"),
    data: Annotated[Optional[Path], typer.Option(help="riskloop data set folder (overrides the config's)")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="output folder (default riskloop-output/NAME)")] = None,
) -> None:
    """Temporal validation of the model grid, calibration, MLflow tracking; registers the challenger."""
    run_train(config, data, out_dir)


@app.command()
def promote(
    model: Annotated[str, typer.Option(help="registered model name, e.g. riskloop-escalation")] = "riskloop-escalation",
    force: Annotated[bool, typer.Option(help="override the gates (needs --reason)")] = False,
    reason: Annotated[Optional[str], typer.Option(help="why the gates are overridden (logged to the registry)")] = None,
) -> None:
    """Make the challenger the champion, if it passes the promotion gates."""
    from riskloop.experiments.registry import PromotionRefused, promote as promote_model

    try:
        version = promote_model(model, force=force, reason=reason)
    except PromotionRefused as refused:
        table = Table(title=f"promotion of {model} refused")
        table.add_column("reason")
        for r in refused.reasons:
            table.add_row(r)
        out.print(table)
        raise typer.Exit(1)
    except ValueError as exc:
        fatal(str(exc))
    out.print(f"{model} v{version} is now champion")


def load_cohort(model: str, data: Path, as_of: date):
    """The registered model and its scored cohort at `as_of` (the score pipeline)."""
    from riskloop.experiments.registry import load_model
    from riskloop.pipelines.score import load_for_scoring, score_cohort

    loaded = load_model(model)
    prepared, _, _ = load_for_scoring(loaded.contract, data, as_of)
    return loaded, score_cohort(loaded.scorer, prepared, as_of)


def model_label(loaded) -> str:
    """How reports name a registered model: its name and version (an alias moves on; the version stays)."""
    return f"{loaded.name} v{loaded.version}" if loaded.name and loaded.version else loaded.uri


def run_explain(model: str, data: Path, as_of: date, out_dir: Path, person: Optional[str], sample: int,
                log_person_page: bool = False) -> tuple[Path, bool]:
    """Write the explainability report; log it to MLflow unless it holds a person's page (and that was
    not asked for). Returns (path, logged)."""
    from riskloop.experiments.tracking import log_report
    from riskloop.features.io import write_text_atomic
    from riskloop.pipelines.explain import explain_cohort
    from riskloop.reports.explain_report import render_explain_report

    loaded, cohort = load_cohort(model, data, as_of)
    explained = explain_cohort(loaded.scorer, cohort, sample_size=sample, person=person)
    html = render_explain_report(explained, model_label(loaded), as_of, loaded.scorer.importance_by_split,
                                 loaded.scorer.stability)
    path = out_dir / "explainability.html"
    write_text_atomic(html, path)
    logged = person is None or log_person_page
    if logged:
        log_report(loaded.contract.name, f"explain-{as_of}", path,
                   {"riskloop.kind": "explain", "riskloop.model": model, "riskloop.as_of": as_of.isoformat()})
    return path, logged


@app.command()
def explain(
    model: Annotated[str, typer.Option(help="model URI, e.g. models:/riskloop-escalation@champion")],
    data: Annotated[Path, typer.Option(help="riskloop data set folder")],
    as_of: Annotated[str, typer.Option("--as-of", help="as-of date T")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for explainability.html")],
    person: Annotated[Optional[str], typer.Option(help="a person's pseudonym: add their waterfall and reasons "
                                                       "(the report then stays local, not logged to MLflow)")] = None,
    sample: Annotated[int, typer.Option(help="rows for the global plots (stratified by risk band)")] = 20_000,
    log_person_page: Annotated[bool, typer.Option(help="log the report to MLflow even with --person")] = False,
) -> None:
    """Explainability report: global importance, beeswarm, dependence, stability, a person's reasons.
    Logged to MLflow, except a report with a person's page, which stays local unless --log-person-page."""
    try:
        path, logged = run_explain(model, data, _date(as_of), out_dir, person, sample, log_person_page)
    except (DataError, ValueError) as exc:
        fatal(str(exc))
    out.print(f"wrote {path} ({'also logged to MLflow' if logged else 'local only: not logged to MLflow'})")


def synthetic_truth(data: Path, as_of: date, contract):
    """For a synthetic world (a `truth/` folder), each person's true probability of the label; else None."""
    if not (Path(data) / "truth").is_dir():
        return None
    from riskloop.simulation.truth import escalation_probability

    def true_probability(person_id, equal_recording: bool):
        truth = escalation_probability(data, as_of, contract.snapshot.horizon_days, contract.snapshot.harm_threshold,
                                       equal_recording=equal_recording)
        return person_id.to_frame().merge(truth, on="person_id", how="left")["probability"].to_numpy()

    return true_probability


def write_audit(result, model: str, scope: str, out_dir: Path) -> Path:
    """fairness_audit.html and fairness_disparities.csv (group sizes under disclosure control) in `out_dir`."""
    from riskloop.features.io import write_csv_atomic, write_text_atomic
    from riskloop.reports.disclosure import protect
    from riskloop.reports.fairness_report import render_fairness_report

    path = out_dir / "fairness_audit.html"
    write_text_atomic(render_fairness_report(result.audit, model, scope, None, result.bias), path)
    write_csv_atomic(protect(result.audit.disparities, result.audit.config.disclosure_threshold),
                     out_dir / "fairness_disparities.csv")
    return path


def run_audit(model: str, data: Path, as_of: date, out_dir: Path):
    """Audit a registered model on the labelled cohort at `as_of`; returns (report path, the audit result)."""
    from riskloop.experiments.tracking import log_report
    from riskloop.pipelines.audit import audit_cohort

    loaded, cohort = load_cohort(model, data, as_of)
    result = audit_cohort(cohort, synthetic_truth(data, as_of, loaded.contract))
    scope = f"audit at {as_of} on {Path(data).as_posix()}" + (f". WARNING: {result.in_sample}" if result.in_sample else "")
    path = write_audit(result, model_label(loaded), scope, out_dir)
    log_report(loaded.contract.name, f"audit-{as_of}", path,
               {"riskloop.kind": "audit", "riskloop.model": model, "riskloop.as_of": as_of.isoformat()})
    return path, result


def run_table_audit(table: Path, score_column: str, label_column: str, protected: str, top_share: Optional[float],
                    threshold: Optional[float], out_dir: Path):
    """Audit an existing tool's scores in a table; returns (report path, the audit result, rows rejected)."""
    from riskloop.features.io import read_raw_table, write_csv_atomic
    from riskloop.models.fairness import AuditConfig
    from riskloop.pipelines.audit import ExistingScores, audit_scores

    spec = ExistingScores(score_column, label_column, tuple(c.strip() for c in protected.split(",") if c.strip()),
                          top_share, threshold)
    if not spec.protected:
        raise ValueError("--protected: name at least one column to audit by")
    result, rejected, rule = audit_scores(read_raw_table(Path(table)), spec, AuditConfig(intersections=()))
    scope = f"the scores in column '{score_column}' of {Path(table).name}; {rule} selected; outcome '{label_column}'"
    path = write_audit(result, f"existing score '{score_column}'", scope, out_dir)
    if len(rejected):
        write_csv_atomic(rejected, out_dir / "rejected_rows.csv")
    return path, result, len(rejected)


@app.command()
def audit(
    model: Annotated[Optional[str], typer.Option(help="model URI, e.g. models:/riskloop-escalation@challenger")] = None,
    data: Annotated[Optional[Path], typer.Option(help="riskloop data set folder")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="as-of date T (its label window must be closed)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for fairness_audit.html")] = Path("riskloop-audit"),
    table: Annotated[Optional[Path], typer.Option(help="instead of a model: a table of an existing tool's scores")] = None,
    score_column: Annotated[Optional[str], typer.Option(help="with --table: the score column")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="with --table: the 0/1 outcome column")] = None,
    protected: Annotated[str, typer.Option(help="with --table: protected columns to audit by, comma-separated")] = "",
    top_share: Annotated[Optional[float], typer.Option(help="with --table: the top share of scores is selected")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="with --table: scores at least this are selected")] = None,
) -> None:
    """Fairness audit of a registered model on a data set (with measurement bias on synthetic worlds), or of
    any existing tool's scores in a table (--table)."""
    try:
        if table is not None:
            if not (score_column and label_column):
                fatal("--table needs --score-column and --label-column")
            path, result, rejected = run_table_audit(table, score_column, label_column, protected, top_share,
                                                     threshold, out_dir)
            if rejected:
                console.print(f"[yellow]warning:[/] {rejected:,} rows without a numeric score and a 0/1 outcome "
                              f"were left out; they are in {out_dir / 'rejected_rows.csv'}", highlight=False)
        else:
            if not (model and data and as_of):
                fatal("give --model, --data and --as-of (a registered model), or --table (an existing tool's scores)")
            path, result = run_audit(model, data, _date(as_of), out_dir)
    except (DataError, ValueError) as exc:
        fatal(str(exc))
    out.print(f"wrote {path}" + ("" if table is not None else " (also logged to MLflow)"))
    if result.in_sample:
        console.print(f"[bold yellow]warning:[/] {result.in_sample}", highlight=False)
    for r in result.audit.gate_reasons():
        out.print(f"[red]gate:[/] {r}", highlight=False)
    if result.detected_bias():
        out.print(f"[yellow]measurement bias detected:[/] {', '.join(result.detected_bias())}", highlight=False)


def run_score(model: str, data: Path | str, as_of: date, out_dir: Path, capacity: Optional[str], per: str, seed: int,
              engine: str = "local", spark_master: Optional[str] = None):
    from riskloop.experiments.registry import load_model
    from riskloop.serving.capacity import Capacity

    loaded = load_model(model)
    places = Capacity.parse(capacity, loaded.contract.capacity)
    if engine == "spark":
        from riskloop.spark import spark_score_to_lists, spark_session

        with console.status(f"scoring the cohort at {as_of} on Spark"):
            outcome = spark_score_to_lists(spark_session(spark_master), loaded, str(data), as_of, out_dir, places,
                                           per, seed)
    else:
        outcome = _score_locally(loaded, Path(data), as_of, out_dir, places, per, seed)
    _print_outcome(outcome, loaded, model, as_of, out_dir)
    return outcome


def _score_locally(loaded, data: Path, as_of: date, out_dir: Path, places, per: str, seed: int):
    from riskloop.serving.batch import score_to_lists

    with progress_bar(f"scoring the cohort at {as_of}") as bar:
        task = bar.add_task("rows", total=None)
        return score_to_lists(loaded, data, as_of, out_dir, places, per, seed,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))


def _print_outcome(outcome, loaded, model: str, as_of: date, out_dir: Path) -> None:
    counts = outcome.manifest["counts"]
    table = Table(title=f"prioritisation lists at {as_of}: {loaded.name or model} v{loaded.version or '-'}")
    for col in ("unit", "cohort", "places", "listed"):
        table.add_column(col, justify="left" if col == "unit" else "right", no_wrap=col == "unit")
    for unit, row in counts["units"].items():
        table.add_row(unit, f"{row['cohort']:,}", f"{row['places']:,}", f"{row['listed']:,}")
    out.print(table)
    quarantined = sum(t["quarantined"] for t in counts["tables"].values())
    out.print(f"scored {counts['scored']:,} people, listed {counts['listed']:,}; {quarantined:,} input rows quarantined; "
              f"counts reconcile: {'yes' if counts['reconciles'] else 'NO'}; wrote {out_dir}/ (prioritisation.parquet, "
              "lists/, manifest.json). Scores are advisory: a practitioner decides.")


@app.command()
def score(
    model: Annotated[str, typer.Option(help="model URI")] = "models:/riskloop-escalation@champion",
    data: Annotated[str, typer.Option(help="riskloop data set folder (with --engine spark, any URI Spark reads)")
                    ] = "riskloop-demo/data",
    as_of: Annotated[str, typer.Option("--as-of", help="as-of date T: features use records before T")] = "",
    out_dir: Annotated[Path, typer.Option("--out", help="output folder (replaced as a whole)")] = Path("riskloop-scores"),
    capacity: Annotated[Optional[str], typer.Option(help="places: a CSV (unit,places), a number per unit, or a share "
                                                         "of each unit's cohort (default: the model's capacity)")] = None,
    per: Annotated[str, typer.Option(help="rank within each local_authority or area")] = "local_authority",
    seed: Annotated[int, typer.Option(help="seed of the tie-break hash (equal risks)")] = 0,
    engine: Annotated[str, typer.Option(help="local (one machine) or spark")] = "local",
    spark_master: Annotated[Optional[str], typer.Option(help="Spark master URL (default: spark-submit's or local[*])")] = None,
) -> None:
    """Score everyone in the cohort at T into prioritisation lists (advisory), atomically."""
    from riskloop.serving.capacity import CapacityError

    if per not in ("local_authority", "area"):
        fatal(f"--per: expected local_authority or area, got '{per}'")
    if engine not in ("local", "spark"):
        fatal(f"--engine: expected local or spark, got '{engine}'")
    if not as_of:
        fatal("--as-of is required (YYYY-MM-DD)")
    try:
        run_score(model, data, _date(as_of), out_dir, capacity, per, seed, engine, spark_master)
    except (DataError, CapacityError, ValueError) as exc:
        fatal(str(exc))


def synthetic_effects(data: Path):
    """For a synthetic world, each person's true effect of a programme (a proportional reduction of their
    offending hazard, expected over completion); else None."""
    if not (Path(data) / "truth").is_dir():
        return None
    import pandas as pd

    from riskloop.simulation.parameters import PARTIAL_EFFECT
    from riskloop.simulation.truth import programme_effects

    effects = programme_effects(data)
    expected = effects["effect"] * (effects["completion_probability"] + (1 - effects["completion_probability"]) * PARTIAL_EFFECT)
    table = pd.Series(expected.to_numpy(), index=pd.MultiIndex.from_frame(effects[["programme", "person_id"]]))

    def true_effect(person_id, programme: str):
        return table.loc[programme].reindex(person_id.astype(str)).to_numpy()

    return true_effect


def run_learn(champion: str, data: Path, config_path: Path, as_of: Optional[date], scores: Optional[Path],
              retrain: str, promote_challenger: bool, window: int, out_dir: Path, seed: int, threads: Optional[int]):
    from riskloop.experiments.config import load_config
    from riskloop.learning.cycle import LearnSettings, learn
    from riskloop.learning.linkage import read_scores
    from riskloop.learning.report import write_learning

    listed = reviews = None
    if scores is not None:
        scored_at, listed, reviews = read_scores(scores)
        if as_of is not None and as_of != scored_at:
            fatal(f"--as-of {as_of} differs from the date the lists in {scores} were scored at ({scored_at})")
        as_of = scored_at
    settings = LearnSettings(champion, data, load_config(config_path), as_of, window, retrain, promote_challenger,
                             listed, reviews, seed, threads)
    with progress_bar("learning cycle") as bar:
        task = bar.add_task("steps", total=None)
        result = learn(settings, out_dir, synthetic_effects(data),
                       progress=lambda what: bar.update(task, advance=1, description=what))
    report = write_learning(result, out_dir)
    summary = Table(title=f"what worked: people scored at {result.as_of}, escalation within {result.horizon_days} days")
    for col in ("programme", "started", "naive (points)", "doubly robust (points, 95% CI)"):
        summary.add_column(col, justify="left" if col == "programme" else "right")
    for p in result.programmes:
        if p.effects is None:
            summary.add_row(p.programme, str(p.n_treated), "-", "too few to estimate")
            continue
        o = p.overall
        summary.add_row(p.programme, f"{p.n_treated:,}", f"{o['naive'] * 100:+.1f}",
                        f"{o['dr'] * 100:+.1f} ({o['dr_ci_low'] * 100:+.1f} to {o['dr_ci_high'] * 100:+.1f})")
    out.print(summary)
    verdict = ("promoted to champion" if result.promoted else
               "not promoted: " + ("; ".join(result.promotion_reasons) or "promotion not asked for"))
    out.print(f"{retrain} challenger v{result.challenger.model_version}: {verdict}")
    out.print(f"learning report {report}; outcomes, effects, drift in {report.parent}/")
    return result, report


@app.command()
def learn(
    champion: Annotated[str, typer.Option(help="the model whose lists are being learned from")] = "models:/riskloop-escalation@champion",
    data: Annotated[Path, typer.Option(help="the data set, now reaching past T + horizon")] = Path("riskloop-demo/data"),
    config: Annotated[Path, typer.Option(help="experiment config for the retrain")] = Path("experiments/escalation.yaml"),
    as_of: Annotated[str, typer.Option("--as-of", help="T, the date the lists were scored at (default: from --scores, "
                                                       "else the latest date whose outcomes are known)")] = "",
    scores: Annotated[Optional[Path], typer.Option(help="the `riskloop score` folder of T, lists filled in by the teams")] = None,
    retrain: Annotated[str, typer.Option(help="treatment-aware or naive")] = "treatment-aware",
    promote_challenger: Annotated[bool, typer.Option("--promote/--no-promote", help="promote through the gates")] = True,
    window: Annotated[int, typer.Option(help="days after T in which a programme start counts as treatment")] = 180,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("riskloop-learning"),
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[Optional[int], typer.Option(help="LightGBM threads (default: all cores)")] = None,
) -> None:
    """One learning cycle: outcomes -> what worked for whom -> treatment-aware challenger -> gates -> report."""
    from riskloop.experiments.config import ConfigError

    if retrain not in ("treatment-aware", "naive"):
        fatal(f"--retrain: expected treatment-aware or naive, got '{retrain}'")
    try:
        run_learn(champion, data, config, _date(as_of) if as_of else None, scores, retrain, promote_challenger,
                  window, out_dir, seed, threads)
    except (ConfigError, DataError, ValueError) as exc:
        fatal(str(exc))


REPORT_TITLES = {"model_card.html": "Model card", "fairness_report.html": "Fairness report of training (out of time)",
                 "fairness_audit.html": "Fairness audit", "explainability.html": "Explainability report",
                 "learning_report.html": "Learning report"}


def run_dashboard(data: Path, as_of: Optional[date], scores: Optional[Path], learning: Optional[Path], out_dir: Path,
                  threshold: int = 7, reports: list[Path] | None = None) -> dict[str, int]:
    """Write the area profile dashboard (a static site) to `out_dir`, replaced as a whole; returns pages per kind."""
    import shutil

    import pandas as pd

    from riskloop.features.area_profile import community_audit
    from riskloop.features.io import atomic_folder
    from riskloop.features.validate import load_dataset
    from riskloop.reports.dashboard import Learning, render_dashboard

    prioritisation = None
    if scores is not None:
        path = Path(scores) / "prioritisation.parquet"
        if not path.exists():
            raise DataError(f"{scores}: no prioritisation.parquet (give a `riskloop score` output folder)")
        prioritisation = pd.read_parquet(path)
        scored_at = pd.Timestamp(prioritisation["as_of"].iloc[0]).date() if len(prioritisation) else None
        if as_of is None:
            as_of = scored_at
        elif scored_at is not None and scored_at != as_of:
            console.print(f"[yellow]warning:[/] the lists in {scores} were scored at {scored_at}, not {as_of}",
                          highlight=False)
    if as_of is None:
        raise ValueError("--as-of is required (or --scores, whose date is used)")
    if threshold < 1:
        raise ValueError(f"--disclosure-threshold must be at least 1 (got {threshold})")
    dataset = load_dataset(Path(data))
    dataset.require_rows("areas", "people")
    if as_of > dataset.end:
        raise ValueError(f"as-of {as_of} is after the data's end ({dataset.end})")
    learned = None
    files = [Path(r) for r in reports or []]
    if learning is not None:
        folder = Path(learning) / "learning" if (Path(learning) / "learning").is_dir() else Path(learning)
        if not (folder / "effects.csv").exists():
            raise DataError(f"{learning}: no effects.csv (give a `riskloop learn` output folder)")
        learned = Learning.read(folder)
        if (folder / "learning_report.html").exists() and all(f.name != "learning_report.html" for f in files):
            files.append(folder / "learning_report.html")
    audit = community_audit(dataset, as_of, prioritisation)
    links: dict[str, str | None] = {}
    for f in files:
        title = REPORT_TITLES.get(f.name, f.stem.replace("_", " "))
        links[title] = f"reports/{f.name}" if f.exists() else None
    pages = render_dashboard(audit, threshold, learned, links if files else None)
    with atomic_folder(Path(out_dir)) as folder:
        for name, page in pages.items():
            (folder / name).write_text(page, encoding="utf-8")
        if any(f.exists() for f in files):
            (folder / "reports").mkdir()
            for f in files:
                if f.exists():
                    shutil.copyfile(f, folder / "reports" / f.name)
    return {"pages": len(pages), "local authorities": len(audit.local_authorities),
            "reports": sum(f.exists() for f in files)}


@app.command()
def dashboard(
    data: Annotated[Path, typer.Option(help="riskloop data set folder")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the static site (replaced as a whole)")],
    as_of: Annotated[str, typer.Option("--as-of", help="as-of date T (default: the date of --scores)")] = "",
    scores: Annotated[Optional[Path], typer.Option(help="a `riskloop score` output folder: the current lists")] = None,
    learning: Annotated[Optional[Path], typer.Option(help="a `riskloop learn` output folder: programme outcomes")] = None,
    report: Annotated[Optional[list[Path]], typer.Option(help="a report to link from reports.html (repeatable; "
                                                               "copied into the site)")] = None,
    disclosure_threshold: Annotated[int, typer.Option(help="counts of 1 to this are shown as '*'")] = 7,
) -> None:
    """The area profile dashboard: a static site (opens from a file, works offline) with an index of local
    authorities, a page per local authority, data quality and a report index, under disclosure control."""
    try:
        written = run_dashboard(data, _date(as_of) if as_of else None, scores, learning, out_dir,
                                disclosure_threshold, report)
    except (DataError, ValueError) as exc:
        fatal(str(exc))
    out.print(f"wrote {out_dir}/: {written['pages']} pages ({written['local authorities']} local authorities), "
              f"{written['reports']} reports linked; open {out_dir / 'index.html'}")


@app.command()
def simulate(
    people: Annotated[int, typer.Option(help="size of the synthetic world")] = 20_000,
    seed: Annotated[int, typer.Option()] = 0,
    cycles: Annotated[int, typer.Option(help="yearly cycles after a 5-year burn-in")] = 4,
    capacity: Annotated[int, typer.Option(help="places on the programme per cycle")] = 200,
    policy: Annotated[str, typer.Option(help="none, random, risk or uplift")] = "risk",
    retrain: Annotated[str, typer.Option(help="naive or treatment-aware")] = "treatment-aware",
    surveillance_effect: Annotated[float, typer.Option(help="recording multiplier for the listed (1 = none)")] = 1.0,
    programme: Annotated[str, typer.Option(help="the programme the places are on")] = "drive",
    effect_scale: Annotated[float, typer.Option(help="the world's programmes work this many times as well "
                                                     "(each true effect at most 0.95)")] = 1.0,
    threads: Annotated[Optional[int], typer.Option(help="LightGBM threads (default: all cores)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("riskloop-simulate"),
) -> None:
    """Closed-loop simulation: score, fill places by a policy, let the world run a year, learn, retrain."""
    from riskloop.experiments.config import load_config
    from riskloop.simulation.closed_loop import POLICIES, LoopSettings, run_loop, write_loop
    from riskloop.simulation.parameters import PROGRAMMES

    if policy not in POLICIES:
        fatal(f"--policy: expected one of {', '.join(POLICIES)}, got '{policy}'")
    if retrain not in ("naive", "treatment-aware"):
        fatal(f"--retrain: expected naive or treatment-aware, got '{retrain}'")
    if programme not in PROGRAMMES:
        fatal(f"--programme: expected one of {', '.join(PROGRAMMES)}, got '{programme}'")
    if not (1 <= surveillance_effect < float("inf") and 0 <= effect_scale < float("inf")) or cycles < 1 or capacity < 0 \
            or people < 1000:
        fatal("--surveillance-effect must be finite and >= 1, --effect-scale finite and >= 0, --cycles >= 1, "
              "--capacity >= 0 and --people >= 1000")
    settings = LoopSettings(people, seed, cycles, capacity, policy, retrain, surveillance_effect, programme, threads,
                            effect_scale)
    base = load_config(Path(str(resources.files("riskloop.experiments") / "escalation.yaml")))
    out_dir.mkdir(parents=True, exist_ok=True)
    with progress_bar("closed loop") as bar:
        task = bar.add_task("steps", total=None)
        frame = run_loop(settings, base, out_dir, progress=lambda what: bar.update(task, advance=1, description=what))
    path = write_loop(frame, settings, out_dir)
    scaled = f" (its effects x {effect_scale:g})" if effect_scale != 1 else ""
    table = Table(title=f"closed loop: policy {policy}, {retrain} retraining, {capacity} places a year on {programme}"
                        + scaled)
    for col in ("cycle", "true escalations", "prevented by the places", "harm prevented", "recorded/true listed",
                "recorded/true others", "true effect (label)", "DR estimate (95% CI)"):
        table.add_column(col, justify="right")
    for r in frame.itertuples():
        table.add_row(str(r.cycle), f"{r.true_escalations:,}", f"{r.escalations_prevented_by_the_places:,}",
                      f"{r.harm_prevented_by_the_places:,.0f}",
                      f"{r.recorded_true_ratio_listed:.2f}", f"{r.recorded_true_ratio_others:.2f}",
                      f"{r.true_effect_on_label:+.3f}",
                      f"{r.dr_estimate:+.3f} ({r.dr_ci_low:+.3f} to {r.dr_ci_high:+.3f})")
    out.print(table)
    out.print(f"wrote {path}, {out_dir / 'simulate.png'}, {out_dir / 'simulate.json'}")


@app.command()
def demo(
    work_dir: Annotated[Path, typer.Option("--dir", help="working folder for the demo")] = Path("riskloop-demo"),
    people: Annotated[int, typer.Option(help="size of the synthetic world")] = 60_000,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Run the whole job on the embedded default: world, validation, snapshots, training, promotion,
    explanations, the fairness audit, prioritisation lists, one learning cycle and the dashboard."""
    from riskloop.features.area_profile import area_profile
    from riskloop.features.catalogue import catalogue_frame
    from riskloop.features.io import write_csv_atomic
    from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot
    from riskloop.features.validate import load_dataset
    from riskloop.models.fairness import BIAS_FLAG

    data_dir = work_dir / "data"
    started = datetime.now()
    counts = run_generate(data_dir, people, seed, date(2019, 1, 1), date(2025, 12, 31))
    out.print(f"[bold]1. world[/] {data_dir}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    dataset = load_dataset(data_dir)
    out.print(f"[bold]2. validation[/] fingerprint {dataset.fingerprint}")
    print_validation(dataset.report)
    prepared = PreparedData.from_dataset(dataset)
    latest = date(2025, 7, 1)
    snapshot = build_snapshot(prepared, latest, SnapshotConfig())
    catalogue = prepared.catalogue(SnapshotConfig())
    write_csv_atomic(area_profile(snapshot, dataset.areas, catalogue), work_dir / "area_profile.csv")
    write_csv_atomic(area_profile(snapshot, dataset.areas, catalogue, "local_authority"),
                     work_dir / "local_authority_profile.csv")
    write_csv_atomic(catalogue_frame(prepared.catalogue(SnapshotConfig())), work_dir / "feature_catalogue.csv")
    out.print(f"[bold]3. snapshot[/] {latest}: cohort {len(snapshot):,}; area profiles in {work_dir}/")
    config_path = Path(str(resources.files("riskloop.experiments") / "escalation.yaml"))
    out.print("[bold]4. train[/] temporal validation, calibration, MLflow tracking and registry")
    config, _, _, outcome = run_train(config_path, data_dir, work_dir / "escalation")
    from riskloop.experiments.registry import PromotionRefused, promote as promote_model

    try:
        version = promote_model(config.registered_model)
        out.print(f"[bold]5. promote[/] {config.registered_model} v{version} is champion")
    except PromotionRefused as refused:
        reason = ("riskloop demo: governance override on a synthetic world, so that the whole chain (lists, "
                  "learning cycle, dashboard) runs from a champion; the gates refused: " + "; ".join(refused.reasons))
        version = promote_model(config.registered_model, force=True, reason=reason)
        out.print(f"[bold]5. promote[/] refused by the gates ({len(refused.reasons)} reasons, e.g. "
                  f"{refused.reasons[0]}; see {outcome.model_card_path.parent / 'fairness_report.html'}). "
                  f"[bold red]GOVERNANCE OVERRIDE[/]: the demo promotes v{version} anyway and logs why on the "
                  "registry version (tags promotion_forced_reason, promotion_overrode); a partnership would not")
    trained = f"models:/{config.registered_model}/{outcome.model_version}"   # a version: the aliases move on
    explained, _ = run_explain(trained, data_dir, latest, work_dir, None, 20_000)
    out.print(f"[bold]6. explain[/] {explained}")
    audited, result = run_audit(trained, data_dir, date(2024, 7, 1), work_dir)
    out.print(f"[bold]7. audit[/] {audited}: {len(result.audit.gate_reasons())} gate failures; measurement bias against "
              f"the world's truth: most over-recorded {result.most_over_recorded()}; flagged (records and model both "
              f"over {BIAS_FLAG}x): {', '.join(result.detected_bias()) or 'none'}")
    alias = "champion"
    scored = run_score(f"models:/{config.registered_model}@{alias}", data_dir, latest, work_dir / "scores", None,
                       "local_authority", 0)
    out.print(f"[bold]8. score[/] lists by the {alias} at {latest} in {scored.out_dir}/lists/ "
              f"({scored.manifest['counts']['listed']:,} people listed)")
    learning_dir = work_dir / "learning-cycle"
    out.print(f"[bold]9. learn[/] one learning cycle of the {alias} at the latest date whose outcomes are known "
              "(outcomes, what worked for whom, a treatment-aware challenger; not promoted in the demo)")
    learned = None
    try:
        _, learned = run_learn(f"models:/{config.registered_model}@{alias}", data_dir, config_path, None, None,
                               "treatment-aware", False, 180, learning_dir, seed, config.threads)
    except Exception as exc:  # the demo goes on to the dashboard without programme outcomes, and says so
        import traceback

        console.print(f"[bold red]learning cycle failed:[/] {type(exc).__name__}: {exc}", highlight=False)
        console.print(traceback.format_exc(), highlight=False, markup=False)
    reports = [outcome.model_card_path, outcome.model_card_path.parent / "fairness_report.html", explained, audited]
    site = work_dir / "dashboard"
    run_dashboard(data_dir, latest, scored.out_dir, learning_dir if learned else None, site,
                  max(1, config.fairness.disclosure_threshold), reports)
    out.print(f"[bold]10. dashboard[/] {site}/: a page per local authority, data quality, programme outcomes and the "
              "report index; counts under disclosure control")
    out.print(f"demo finished in {(datetime.now() - started).total_seconds():.0f} s. Where everything is:")
    where = Table(show_header=False, box=None)
    for what, path in (("dashboard (open in a browser)", site / "index.html"),
                       ("report index", site / "reports.html"),
                       ("model card", outcome.model_card_path),
                       ("fairness report (training)", outcome.model_card_path.parent / "fairness_report.html"),
                       ("fairness audit", audited), ("explainability", explained),
                       ("learning report", learned if learned else "(learning cycle failed: see above)"),
                       ("prioritisation lists", scored.out_dir / "lists"), ("data set", data_dir)):
        where.add_row(what, str(path))
    out.print(where)
    out.print(f"open {site / 'index.html'}    (or xdg-open / start on Linux / Windows)")
    out.print("browse the runs and the registered model: mlflow ui --backend-store-uri sqlite:///mlflow.db")


# --- serving: the scoring API and its tokens (logic in serving/) ---------------------------------

token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for `riskloop serve` (the file keeps only hashes).")
app.add_typer(token_app, name="token")
TokensFile = Annotated[Optional[Path], typer.Option(
    "--tokens", help="tokens file (default: $RISKLOOP_TOKENS, else riskloop-tokens.jsonl)")]


def _tokens_path(tokens: Optional[Path]) -> Path:
    from riskloop.serving.settings import default_tokens_path

    return tokens or default_tokens_path()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="who or what uses the token (unique; shown in the audit log)")],
    scope: Annotated[str, typer.Option(help="local authorities it may read (comma-separated), or 'all'")],
    tokens: TokensFile = None,
) -> None:
    """Create a token and print it once; only its sha256 is stored."""
    from riskloop.serving.tokens import TokenError, create_token, parse_scopes

    path = _tokens_path(tokens)
    try:
        token = create_token(path, name, parse_scopes(scope))
    except TokenError as exc:
        fatal(str(exc))
    typer.echo(token)
    console.print(f"token '{name}' added to {path}; copy it now: it cannot be shown again", highlight=False)


@token_app.command("list")
def token_list(tokens: TokensFile = None) -> None:
    """The tokens' names, scopes and creation times (never their hashes)."""
    from riskloop.serving.tokens import TokenError, load_tokens

    path = _tokens_path(tokens)
    try:
        records = load_tokens(path)
    except TokenError as exc:
        fatal(str(exc))
    table = Table(title=f"tokens in {path}")
    for col in ("name", "scopes", "created (UTC)"):
        table.add_column(col)
    for t in records:
        table.add_row(t.name, ", ".join(t.scopes), t.created_at)
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Option(help="the token to remove")],
    tokens: TokensFile = None,
) -> None:
    """Remove a token (a running server keeps accepting it until restarted)."""
    from riskloop.serving.tokens import TokenError, revoke_token

    path = _tokens_path(tokens)
    try:
        revoke_token(path, name)
    except TokenError as exc:
        fatal(str(exc))
    out.print(f"revoked '{name}' in {path}; restart running servers to drop it")


@app.command()
def serve(
    scores: Annotated[Optional[Path], typer.Option(help="a `riskloop score` output folder")] = None,
    model: Annotated[Optional[str], typer.Option(help="model URI for /invocations, e.g. models:/NAME@champion")] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
    tokens: TokensFile = None,
    audit_log: Annotated[Path, typer.Option(help="append-only JSON-lines audit log")] = Path("riskloop-audit.jsonl"),
    insecure_local: Annotated[bool, typer.Option(help="no tokens: loopback only, for local trials")] = False,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body")] = 1 << 20,
    max_rows: Annotated[int, typer.Option(help="most rows per POST /invocations")] = 1000,
    rate: Annotated[float, typer.Option(help="requests per second per token")] = 20.0,
    burst: Annotated[int, typer.Option(help="burst allowance per token")] = 40,
    export_openapi: Annotated[Optional[Path], typer.Option(help="write the OpenAPI schema to FILE and exit")] = None,
) -> None:
    """Serve the batch scores and the model over HTTP, behind bearer tokens, with an audit log."""
    from mlflow.exceptions import MlflowException

    from riskloop.serving.server import export_openapi as write_openapi, serve as run_server
    from riskloop.serving.settings import ServeSettings

    if export_openapi is not None:
        write_openapi(export_openapi)
        out.print(f"wrote {export_openapi}")
        return
    if scores is None and model is None:
        fatal("nothing to serve: give --scores, --model or both")
    settings = ServeSettings(scores=scores, model_uri=model, tokens=_tokens_path(tokens), audit_log=audit_log,
                             insecure_local=insecure_local, host=host, port=port, max_body_bytes=max_body_bytes,
                             max_rows=max_rows, rate=rate, burst=burst)
    if insecure_local:
        console.print("[bold red]WARNING: --insecure-local: NO AUTHENTICATION. Anyone on this machine can read "
                      "every score. Loopback only; never with real data.[/]", highlight=False)
    try:
        run_server(settings)
    except (ValueError, MlflowException) as exc:  # ServeError, ScoreError, TokenError: one line each
        fatal(str(exc).splitlines()[0])


if __name__ == "__main__":
    app()
