"""The learning job: one turn of the loop on the outcomes that came back (`riskloop.learning.cycle`),
its folder written and logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from riskloop.artifacts.learning import CHALLENGER_DIR, LEARNING_DIR, LEARNING_WRITES, REPORT, write_learning
from riskloop.artifacts.scores import Scores, read_scores
from riskloop.artifacts.training import TRAINING_WRITES
from riskloop.experiments.config import ExperimentConfig, load_config
from riskloop.experiments.tracking import log_learning
from riskloop.features.io import check_replaceable
from riskloop.jobs.common import Progress, counted, no_progress, open_dataset
from riskloop.jobs.synthetic import synthetic_effects
from riskloop.learning.cycle import LearningResult, LearnSettings, Retrain
from riskloop.learning.cycle import learn as learning_cycle
from riskloop.learning.effects import REPEATS
from riskloop.learning.judging import ShadowScores
from riskloop.learning.linkage import TREATMENT_WINDOW_DAYS
from riskloop.learning.report import learning_outputs


@dataclass(frozen=True)
class LearnJob:
    champion: str  # the model whose lists are being learned from
    data: Path  # the data set, now reaching past T + horizon
    config: Path | ExperimentConfig  # the experiment config for the retrain (its file, or itself)
    out: Path
    as_of: date | None = None  # T (default: from `scores`, else the latest date whose outcomes are known)
    scores: Path | None = None  # the `riskloop score` folder of T, its lists filled in by the teams
    retrain: Retrain = "treatment-aware"
    promote: bool = True
    window: int = TREATMENT_WINDOW_DAYS
    seed: int = 0
    threads: int | None = None
    repeats: int = REPEATS  # random fold splits of the cross-fitting behind each effect
    retune: bool = False  # search the config's grid again instead of refitting the champion's model group


@dataclass(frozen=True)
class Learned:
    result: LearningResult
    report: Path  # learning_report.html


def shadow_scores(scores: Scores) -> ShadowScores | None:
    """The shadow model's scores of T beside the champion's risk as listed, if `riskloop score --shadow` ran."""
    shadowed, ref = scores.shadow, scores.manifest.shadow
    if shadowed is None or ref is None:
        return None
    frame = scores.prioritisation[["person_id", "risk"]].merge(
        shadowed[["person_id", "risk"]].rename(columns={"risk": "shadow_risk"}), on="person_id", how="inner"
    )
    return ShadowScores(f"{ref.name} v{ref.version}" if ref.name else ref.uri, frame)


def learn(job: LearnJob, progress: Progress = no_progress) -> Learned:
    """Outcomes -> what worked for whom -> a challenger retrained -> champion vs challenger -> gates -> report."""
    out = Path(job.out)
    check_replaceable(out / CHALLENGER_DIR, TRAINING_WRITES, "riskloop train")  # before the work and the promotion
    check_replaceable(out / LEARNING_DIR, LEARNING_WRITES, "riskloop learn")
    as_of, listed, reviews, shadow = job.as_of, None, None, None
    if job.scores is not None:
        scores = read_scores(job.scores, ["person_id", "listed", "as_of", "risk"])
        if as_of is not None and as_of != scores.manifest.as_of:
            raise ValueError(
                f"--as-of {as_of} differs from the date the lists in {job.scores} were scored at "
                f"({scores.manifest.as_of})"
            )
        as_of, listed, reviews = scores.manifest.as_of, scores.listed, scores.reviews
        shadow = shadow_scores(scores)
    config = job.config if isinstance(job.config, ExperimentConfig) else load_config(job.config)
    settings = LearnSettings(
        job.champion,
        job.data,
        config,
        as_of,
        job.window,
        job.retrain,
        job.promote,
        listed,
        reviews,
        job.seed,
        job.threads,
        job.repeats,
        shadow,
        job.retune,
    )
    result = learning_cycle(
        settings, open_dataset(job.data), job.out, synthetic_effects(job.data), progress=counted(progress)
    )
    outputs = learning_outputs(result)
    folder = write_learning(job.out, outputs)
    log_learning(
        result.champion.contract.name,
        outputs.summary,
        f"{result.champion.name} v{result.champion.version}",
        {p.programme: float(o["dr"]) for p in result.programmes if (o := p.overall) is not None},
        folder,
    )
    return Learned(result, folder / REPORT)
