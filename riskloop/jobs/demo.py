"""The demo: the whole chain on the embedded default, as a plan of the library's jobs. World, validation,
snapshot and area profiles, training, promotion and its transparency record, explanations, the fairness audit, prioritisation lists,
one learning cycle and the dashboard."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from riskloop.artifacts.dataset import read_dataset
from riskloop.experiments.registry import PromotionRefused, promote
from riskloop.features.area_profile import area_profile
from riskloop.features.catalogue import catalogue_frame
from riskloop.features.io import DataError, write_csv_atomic
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot
from riskloop.features.validate import ValidationReport
from riskloop.jobs.common import Progress, default_config, no_progress
from riskloop.jobs.dashboard import DashboardJob, dashboard
from riskloop.jobs.data import GenerateJob, generate
from riskloop.jobs.learn import LearnJob, learn
from riskloop.jobs.model import AuditJob, ExplainJob, TrainJob, audit, explain, train
from riskloop.jobs.score import ScoreJob, score
from riskloop.jobs.transparency import TransparencyJob, transparency
from riskloop.models.fairness import BIAS_FLAG

WORLD_START, WORLD_END = date(2017, 1, 1), date(2025, 12, 31)
LATEST = date(2025, 7, 1)  # the lists' date: the world's last half-year
AUDITED = date(2024, 7, 1)  # the audit's date: its labels have closed


@dataclass(frozen=True)
class DemoJob:
    dir: Path = Path("riskloop-demo")
    people: int = 60_000
    seed: int = 42


@dataclass(frozen=True)
class DemoStep:
    number: int
    title: str
    detail: str
    validation: ValidationReport | None = None


@dataclass
class DemoResult:
    seconds: float = 0.0
    where: dict[str, Path] = field(default_factory=dict)  # what -> where it is
    learning_failed: str | None = None  # why the learning cycle could not run


def demo(
    job: DemoJob, step: Callable[[DemoStep], None] = lambda _: None, progress: Progress = no_progress
) -> DemoResult:
    started, result, work = time.perf_counter(), DemoResult(), Path(job.dir)
    data = work / "data"
    counts = generate(GenerateJob(data, job.people, job.seed, WORLD_START, WORLD_END), progress)
    step(DemoStep(1, "world", f"{data}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())))
    dataset = read_dataset(data)
    step(DemoStep(2, "validation", f"fingerprint {dataset.fingerprint}", dataset.report))
    prepared, config = PreparedData.from_dataset(dataset), SnapshotConfig()
    snapshot, catalogue = build_snapshot(prepared, LATEST, config), prepared.catalogue(config)
    write_csv_atomic(area_profile(snapshot, dataset.areas, catalogue), work / "area_profile.csv")
    write_csv_atomic(
        area_profile(snapshot, dataset.areas, catalogue, "local_authority"), work / "local_authority_profile.csv"
    )
    write_csv_atomic(catalogue_frame(catalogue), work / "feature_catalogue.csv")
    del prepared, dataset
    step(DemoStep(3, "snapshot", f"{LATEST}: cohort {len(snapshot):,}; area profiles in {work}/"))

    trained = train(TrainJob(default_config(), data, work / "escalation"), progress)
    card = trained.outcome.model_card_path
    step(
        DemoStep(
            4,
            "train",
            f"temporal validation, calibration, MLflow tracking and registry: "
            f"{trained.config.registered_model} v{trained.outcome.model_version} is challenger",
        )
    )
    version = f"models:/{trained.config.registered_model}/{trained.outcome.model_version}"  # aliases move on
    promoted, said = _promote(trained.config.registered_model, card.parent / "fairness_report.html")
    champion = f"models:/{trained.config.registered_model}@champion" if promoted else version
    record = transparency(TransparencyJob(version, work / "transparency"))
    step(DemoStep(5, "promote", f"{said}; transparency record (ATRS): {record.path}"))
    explained = explain(ExplainJob(version, data, LATEST, work))
    step(DemoStep(6, "explain", str(explained.path)))
    audited = audit(AuditJob(version, data, AUDITED, work))
    step(
        DemoStep(
            7,
            "audit",
            f"{audited.path}: {len(audited.result.audit.gate_reasons())} gate failures; measurement "
            f"bias against the world's truth: most over-recorded "
            f"{audited.result.most_over_recorded()}; flagged (records and model both over "
            f"{BIAS_FLAG}x): {', '.join(audited.result.detected_bias()) or 'none'}",
        )
    )
    scored = score(ScoreJob(champion, str(data), LATEST, work / "scores"), progress)
    step(
        DemoStep(
            8,
            "score",
            f"lists by {'the champion' if promoted else 'the unpromoted challenger'} at {LATEST} in {scored.out_dir}/lists/ "
            f"({scored.manifest.counts.listed:,} people listed)",
        )
    )

    learning_dir = work / "learning-cycle"
    step(
        DemoStep(
            9,
            "learn",
            "one learning cycle of the champion at the latest date whose outcomes are known "
            "(outcomes, what worked for whom, a treatment-aware challenger; not promoted in the demo)",
        )
    )
    try:
        learned = learn(
            LearnJob(
                champion,
                data,
                default_config(),
                learning_dir,
                promote=False,
                seed=job.seed,
                threads=trained.config.threads,
            ),
            progress,
        ).report
    except (DataError, ValueError) as exc:  # too few outcomes to learn from: the dashboard goes on without them
        learned, result.learning_failed = None, f"{type(exc).__name__}: {exc}"
    reports = (card, card.parent / "fairness_report.html", explained.path, audited.path, record.path)
    site = dashboard(
        DashboardJob(
            data,
            work / "dashboard",
            scores=scored.out_dir,
            learning=learning_dir if learned else None,
            reports=reports,
            disclosure_threshold=max(1, trained.config.fairness.disclosure_threshold),
        )
    ).out
    step(
        DemoStep(
            10,
            "dashboard",
            f"{site}/: a page per local authority, data quality, programme outcomes and the "
            "report index; counts under disclosure control",
        )
    )
    result.seconds = time.perf_counter() - started
    result.where = {
        "dashboard (open in a browser)": site / "index.html",
        "report index": site / "reports.html",
        "model card": card,
        "fairness report (training)": card.parent / "fairness_report.html",
        "fairness audit": audited.path,
        "transparency record": record.path,
        "explainability": explained.path,
        "prioritisation lists": scored.out_dir / "lists",
        "data set": data,
    }
    if learned:
        result.where["learning report"] = learned
    return result


def _promote(model: str, fairness_report: Path) -> tuple[bool, str]:
    """Promote the challenger through the gates, honestly: (promoted, what to say). The experiment calibrates
    within sex, so on the demo's world the model passes. Where the gates refuse (a world of another seed,
    say), the demo says why and goes on with the challenger by its version, which a partnership would not
    do; overriding the gates is a governance action (`riskloop promote --force --reason`), never the demo's."""
    try:
        promotion = promote(model, by="riskloop demo")
    except PromotionRefused as refused:
        return False, (
            f"REFUSED by the gates ({len(refused.reasons)} reasons, e.g. {refused.reasons[0]}; see {fairness_report}): "
            "the demo goes on with the challenger by its version, not as champion; a partnership would stop here"
        )
    return True, f"{model} v{promotion.version} is champion, promoted by the gates; evidence: {promotion.evidence}"
