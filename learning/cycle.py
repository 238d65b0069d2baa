"""One turn of the learning loop (`riskloop learn`): outcomes of the people scored at T -> what worked
for whom -> a treatment-aware challenger fitted on every closed label -> judged against the champion in
shadow, or by a backtest of the retraining one cycle earlier (`learning.judging`) -> the gates -> drift.

The edge (CLI, simulator) passes in the synthetic truth when there is one; nothing here reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from riskloop.artifacts.learning import CHALLENGER_DIR
from riskloop.experiments.config import ExperimentConfig, ModelGrid
from riskloop.experiments.registry import LoadedModel, PromotionRefused, load_model, promote
from riskloop.experiments.tracking import RunRole, TrainOutcome, log_backtest, log_training
from riskloop.features.catalogue import FeatureSpec
from riskloop.features.snapshot import PreparedData, first_record, horizon_harm, short_history
from riskloop.features.validate import Dataset
from riskloop.learning.drift import coverage_note, drift_by_unit, drift_table
from riskloop.learning.effects import REPEATS
from riskloop.learning.judging import Comparison, ShadowScores, compared_on_outcomes, shadow_comparison
from riskloop.learning.linkage import (
    TREATMENT_WINDOW_DAYS,
    link_outcomes,
    monthly_cohorts,
    next_month,
    person_index,
    programme_starts,
)
from riskloop.learning.programmes import ProgrammeResult, TrueEffect, analyse_programmes
from riskloop.learning.retrain import INTERVENTION_FAMILIES, treatment_aware
from riskloop.models.scorer import RiskScorer
from riskloop.pipelines.data import SAMPLED, ModelData, cut_to_schedule, from_dataset
from riskloop.pipelines.score import ScoredCohort, cohort_snapshot, prepare_for_scoring, score_cohort, score_frame
from riskloop.pipelines.train import TrainResult, model_specs, procedure_model, refit_on_all_closed, train
from riskloop.serving.capacity import Capacity, select
from riskloop.serving.tiers import prevention_tier

Retrain = Literal["treatment-aware", "naive"]


@dataclass(frozen=True)
class LearnSettings:
    champion: str  # model URI, e.g. models:/riskloop-escalation@champion
    data: Path  # the data set, now reaching past T + horizon
    config: ExperimentConfig  # how to retrain (its `data` is replaced by `data`)
    as_of: date | None = None  # T; default: the latest first-of-month whose horizon has closed
    treatment_window_days: int = TREATMENT_WINDOW_DAYS
    retrain: Retrain = "treatment-aware"
    promote: bool = True
    listed: pd.Series | None = None  # person_id -> listed at T (from the lists the teams received)
    reviews: pd.DataFrame | None = None  # person_id, review_decision from returned lists
    seed: int = 0
    threads: int | None = None
    repeats: int = REPEATS  # random fold splits of the cross-fitting behind each effect
    shadow: ShadowScores | None = None  # an earlier challenger's scores of T beside the champion's
    retune: bool = False  # search the config's whole grid again; default: refit the champion's model group


@dataclass
class LearningResult:
    as_of: date
    horizon_days: int
    champion: LoadedModel
    outcomes: pd.DataFrame  # link_outcomes
    programmes: list[ProgrammeResult]
    new_records: dict[str, int]  # rows dated after what the champion could know
    drift: pd.DataFrame  # PSI per feature and for the score
    drift_by_area: pd.DataFrame  # score PSI per local authority
    drift_dates: tuple[date, date]
    retrain: Retrain
    challenger: TrainOutcome | None = None
    retrain_notes: list[str] = field(default_factory=list)
    backtest: Comparison | None = None  # the retraining one cycle earlier against the champion
    shadow: Comparison | None = None  # an earlier challenger scored in shadow at T, on T's outcomes
    promoted: bool = False
    promotion_reasons: list[str] = field(default_factory=list)
    learned: pd.DataFrame | None = None  # what the new model learned: importance of champion vs challenger
    drift_coverage: str = ""  # in words, when a drift cohort's lookback reaches before the data's first record
    sampled: list[str] = field(default_factory=list)  # in words, what the cycle sampled and how much

    @property
    def judgement(self) -> Comparison | None:
        """What promotion follows: the shadow comparison once a shadow cycle exists, else the backtest."""
        return self.shadow or self.backtest


def closed_as_of(end: date, horizon_days: int, window_days: int = 0) -> date:
    """The latest first of a month T with T + window + horizon <= the data's end."""
    last = end - timedelta(days=horizon_days + window_days)
    return date(last.year, last.month, 1)


def listed_at(cohort: ScoredCohort, capacity: float, seed: int) -> pd.Series:
    """Who the champion's lists at T held (the model's capacity per local authority), when the lists
    themselves are not given."""
    frame = cohort.frame
    _, listed, _, _ = select(
        Capacity.parse(None, capacity),
        frame["local_authority"].astype(str),
        frame["risk"].to_numpy(),
        frame["score"].to_numpy(),
        frame["person_id"],
        seed,
    )
    return pd.Series(listed, index=frame["person_id"].astype(str).to_numpy())


MAX_CONTROLS_PER_MONTH = 5_000
ADJUSTMENT_FEATURES = 60
#: Features that are one value per area or local authority: drift in them is a change of rates, not of
#: the people, and a few distinct values make PSI bins meaningless.
AREA_FAMILIES = ("area_rate", "area_trend", "local_authority_rate", "deprivation")


def adjustment_features(scorer: RiskScorer, catalogue: list[FeatureSpec]) -> list[str]:
    """What the propensity and outcome models adjust for: the model's ADJUSTMENT_FEATURES most important
    numeric features (mean |SHAP| on its latest split) and every intervention-history feature."""
    contract = scorer.contract
    numeric = [f for f in contract.features if f not in contract.categorical]
    history = {s.name for s in catalogue if s.family in INTERVENTION_FAMILIES}
    importance = scorer.importance_by_split
    top = (
        set(importance.iloc[-1].reindex(numeric).fillna(0).nlargest(ADJUSTMENT_FEATURES).index)
        if importance is not None and len(importance)
        else set(numeric)
    )
    return [f for f in numeric if f in top or f in history]


def trials(scorer: RiskScorer, prepared: PreparedData, as_of: date, window_days: int) -> pd.DataFrame:
    """The monthly cohorts of the window stacked: as-of features (numeric), `started_<programme>` within the
    month, `escalated`, `harm` (the recorded harm over the label's horizon, `features.snapshot.horizon_harm`),
    prevention tier, risk band, `risk`, `month`, and `weight`, the people of the month's cohort a row stands for.
    People who start nothing that month are sampled down to MAX_CONTROLS_PER_MONTH (the ATT's odds weights need
    no correction for that; a value per head of the cohort uses `weight`), by a draw keyed by the month, not the
    cycle's seed: the sample is part of the data the interval describes, and one cycle seed's draw against
    another's would move the estimate by the sampling error it already holds."""
    snapshot = scorer.contract.data_set_snapshot
    catalogue = prepared.catalogue(snapshot)
    features = adjustment_features(scorer, catalogue)
    frames = []
    for month in monthly_cohorts(as_of, window_days):
        rng = np.random.default_rng(month.toordinal())
        frame = cohort_snapshot(scorer.contract, prepared, month)
        frame = frame[frame["label"].notna()].reset_index(drop=True)
        starts = programme_starts(
            prepared, frame["person_id"], month - timedelta(days=1), (next_month(month) - month).days
        )
        started = starts.filter(like="started_").any(axis=1).to_numpy()
        controls = np.flatnonzero(~started)
        keep = np.sort(
            np.concatenate(
                [
                    np.flatnonzero(started),
                    controls
                    if len(controls) <= MAX_CONTROLS_PER_MONTH
                    else rng.choice(controls, MAX_CONTROLS_PER_MONTH, replace=False),
                ]
            )
        )
        frame = frame.loc[keep].reset_index(drop=True)  # only the kept rows are scored
        scores = score_frame(scorer, frame)
        frames.append(
            pd.concat(
                [
                    frame[["person_id", *features]],
                    starts.filter(like="started_").iloc[keep].reset_index(drop=True),
                    pd.DataFrame(
                        {
                            "escalated": frame["label"].to_numpy(),
                            "harm": horizon_harm(prepared, person_index(prepared, frame["person_id"]), month, snapshot),
                            "prevention tier": prevention_tier(frame, catalogue, snapshot),
                            "risk band": scores["band_label"].astype(str).to_numpy(),
                            "risk": scores["risk"].to_numpy(),
                            "month": month,
                            "weight": np.where(started[keep], 1.0, max(1.0, len(controls) / MAX_CONTROLS_PER_MONTH)),
                        }
                    ),
                ],
                axis=1,
            )
        )
    return pd.concat(frames, ignore_index=True)


def sampled_controls(stacked: pd.DataFrame) -> list[str]:
    """In words, how `trials` sampled the people who started nothing (nothing when it kept them all)."""
    untreated = ~stacked.filter(like="started_").any(axis=1).to_numpy()
    kept, months = int(untreated.sum()), round(float(stacked.loc[untreated, "weight"].sum()))
    if kept == months:
        return []
    return [
        f"What worked: the people who started no programme in a month were sampled, at random, to at most "
        f"{MAX_CONTROLS_PER_MONTH:,} a month ({kept:,} of {months:,} person-months, {kept / months:.0%}); everyone "
        "who started one was kept. The intervals of the estimates include that sampling; figures per head of the cohort "
        "weight each sampled person by the people they stand for."
    ]


def analyse(
    champion: LoadedModel,
    prepared: PreparedData,
    stacked: pd.DataFrame,
    seed: int,
    threads: int | None,
    truth: TrueEffect | None,
    repeats: int = REPEATS,
) -> list[ProgrammeResult]:
    """Every programme's effects and uplift on `stacked`, the monthly cohorts of a window (`trials`)."""
    X = stacked[adjustment_features(champion.scorer, prepared.catalogue(champion.contract.data_set_snapshot))]
    subgroups = {name: stacked[name].to_numpy() for name in ("prevention tier", "risk band")}
    return analyse_programmes(X, stacked, subgroups, threads, seed=seed, truth=truth, repeats=repeats)


def drift_since(
    champion: LoadedModel, prepared: PreparedData, reference: pd.DataFrame, newest: date, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PSI of each person-level numeric feature and of the risk, and of the risk per local authority, from the
    scored cohort `reference` to the cohort at `newest` (scored here and released on return)."""
    contract = champion.contract
    current = score_cohort(champion.scorer, prepared, newest).frame
    area_level = {s.name for s in prepared.catalogue(contract.data_set_snapshot) if s.family in AREA_FAMILIES}
    features = [f for f in contract.features if f not in contract.categorical and f not in area_level]
    return (
        drift_table(reference, current, [*features, "risk"], seed=seed),
        drift_by_unit(reference, current, "risk", "local_authority", seed=seed),
    )


def new_records(prepared: PreparedData, since: date) -> dict[str, int]:
    t = int(np.datetime64(since, "D").astype(np.int64))
    return {
        "incident involvements": int((prepared.inc_day > t).sum()),
        "programme starts": int((prepared.iv_start > t).sum()),
    }


def retrain_config(settings: LearnSettings, end: date) -> ExperimentConfig:
    """The experiment config on the new data, its as-of schedule ending at the latest label closed by `end`."""
    config = settings.config
    closed = end - timedelta(days=config.horizon_days)
    return dataclasses.replace(
        config, data=Path(settings.data), schedule=dataclasses.replace(config.data_schedule, end=closed)
    )


def champion_group(config: ExperimentConfig, group: str) -> ExperimentConfig | None:
    """The config with its grid cut to the champion's model group `group`, or None when the grid lacks it."""
    spec = next((s for s in model_specs(config) if s.name == group), None)
    if spec is None:
        return None
    return dataclasses.replace(config, models=ModelGrid(**{spec.family: {k: [v] for k, v in spec.params}}))


def retraining_settings(settings: LearnSettings, group: str) -> tuple[LearnSettings, str]:
    """The settings whose config the retraining and its backtest follow, and in words what they refit: the
    champion's model group (so champion and challenger differ by their data alone), or with `retune`, or when
    the config's grid lacks that group, the whole grid."""
    cut = None if settings.retune else champion_group(settings.config, group)
    if cut is not None:
        return dataclasses.replace(settings, config=cut), (
            f"The champion's model group ({group}) was refitted on the new labels; the config's grid was not searched "
            "again (`riskloop learn --retune` searches it)."
        )
    why = "--retune" if settings.retune else f"the champion's model group ({group}) is not in the config's grid"
    return settings, f"The config's whole grid was searched again ({why})."


def retrain_data(settings: LearnSettings, config: ExperimentConfig, prepared: PreparedData) -> ModelData:
    data = from_dataset(config, prepared)
    return treatment_aware(data) if settings.retrain == "treatment-aware" else data


def retrained(
    settings: LearnSettings, prepared: PreparedData, end: date, progress: Callable[[str], None], chose_from: str
) -> tuple[ExperimentConfig, ModelData, TrainResult]:
    """The retraining on the labels closed by `end`: `train` (temporal validation, selection, figures, audit),
    then the chosen model refitted on every closed label; `chose_from` (what it chose from, in words) leads the
    data's warnings, so the challenger's model card says it too."""
    config = retrain_config(settings, end)
    data = retrain_data(settings, config, prepared)
    data = dataclasses.replace(data, warnings=[chose_from, *data.warnings])
    return config, data, refit_on_all_closed(data, config, train(data, config, progress=progress), progress)


def cycle_before(end: date, config: ExperimentConfig) -> date:
    """The data's end one cycle (the schedule's step) earlier."""
    return (pd.Timestamp(end) - pd.DateOffset(months=config.data_schedule.every_months)).date()


def backtest(
    settings: LearnSettings,
    champion: LoadedModel,
    challenger: TrainResult,
    data: ModelData,
    prepared: PreparedData,
    end: date,
    progress: Callable[[str], None],
) -> tuple[Comparison, RiskScorer, date]:
    """The retraining as it would have run one cycle earlier, on the labels closed by then (its model only:
    the within-group map's method is the challenger's), against the champion on the latest cohort whose
    outcomes closed after that: outcomes the backtest never learned from. The earlier retraining's rows are
    the challenger's `data` up to then, and the splits the two share are measured once, by the challenger's
    training. Returns the comparison, the backtest's model and the earlier end."""
    earlier = cycle_before(end, settings.config)
    config = retrain_config(settings, earlier)
    within = challenger.scorer.within.method if challenger.scorer.within is not None else None
    scorer = procedure_model(cut_to_schedule(data, config), config, within, progress, challenger.split_metrics)
    as_of = closed_as_of(end, champion.contract.data_set_snapshot.horizon_days)
    frames = [
        score_cohort(model, prepared, as_of).frame[["person_id", "label", "risk"]]
        for model in (champion.scorer, scorer)
    ]
    both = frames[0].merge(frames[1].drop(columns="label"), on="person_id", suffixes=("", "_backtest"))
    comparison = compared_on_outcomes(
        "backtest", as_of, f"the retraining on the data to {earlier}", both, "risk_backtest", champion.contract.capacity
    )
    closed = champion.contract.labels_closed_by()
    if as_of <= closed:
        comparison = dataclasses.replace(
            comparison,
            caveat=f"The champion learned from outcomes up to {closed}, after this cohort's date: the comparison "
            "is not out of time for it, and flatters it. Learn again when the data reach further.",
        )
    return comparison, scorer, earlier


def learn(
    settings: LearnSettings,
    dataset: Dataset,
    out_dir: Path,
    truth: TrueEffect | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> LearningResult:
    """One learning cycle on `dataset` (the validated data set at `settings.data`); registers the retrained
    model as challenger and promotes it only through the gates."""
    champion = load_model(settings.champion)
    contract = champion.contract
    prepared = prepare_for_scoring(contract, dataset, settings.as_of or contract.test_window[1])
    snapshot = contract.data_set_snapshot  # prepare_for_scoring refused a model without one
    end = dataset.end
    as_of = settings.as_of or closed_as_of(end, snapshot.horizon_days, settings.treatment_window_days)
    progress(f"outcomes of the cohort scored at {as_of}")
    cohort = score_cohort(champion.scorer, prepared, as_of)
    if cohort.frame["label"].isna().all():
        raise ValueError(
            f"the outcomes of {as_of} are not known yet: the data ends {end}, the horizon is "
            f"{snapshot.horizon_days} days"
        )
    listed = settings.listed if settings.listed is not None else listed_at(cohort, contract.capacity, settings.seed)
    outcomes = link_outcomes(cohort.frame, prepared, as_of, settings.treatment_window_days, listed, settings.reviews)
    progress("what worked, for whom")
    stacked = trials(champion.scorer, prepared, as_of, settings.treatment_window_days)
    programmes = analyse(champion, prepared, stacked, settings.seed, settings.threads, truth, settings.repeats)
    newest = end + timedelta(days=1)
    drift, by_area = drift_since(champion, prepared, cohort.frame, newest, settings.seed)
    known = cohort.frame[["person_id", "label"]].copy()  # a copy of its own: no view keeps the features alive
    del cohort  # the whole cohort's features, no longer needed: the retraining's rows take their place
    result = LearningResult(
        as_of,
        snapshot.horizon_days,
        champion,
        outcomes,
        programmes,
        new_records(prepared, contract.labels_closed_by()),
        drift,
        by_area,
        (as_of, newest),
        settings.retrain,
    )
    short = short_history(prepared, [as_of, newest], snapshot.lookback_days)
    result.drift_coverage = coverage_note(short, first_record(prepared), snapshot.lookback_days)
    progress(f"{settings.retrain} retraining on every closed label")
    settings, refitted = retraining_settings(settings, contract.model_group)
    config, data, trained = retrained(settings, prepared, end, progress, refitted)
    result.retrain_notes = [w for w in data.warnings if not w.startswith(SAMPLED)]
    result.sampled = sampled_controls(stacked) + [w for w in data.warnings if w.startswith(SAMPLED)]
    result.challenger = log_training(
        config, data, trained, out_dir / CHALLENGER_DIR, RunRole("challenger", as_of, end, refitted)
    )
    result.learned = _learned(champion, trained)
    progress("backtest: the retraining one cycle earlier")
    result.backtest, tested, earlier = backtest(settings, champion, trained, data, prepared, end, progress)
    log_backtest(
        config, tested, result.backtest.metrics, result.backtest.as_of, RunRole("backtest", as_of, earlier, refitted)
    )
    if settings.shadow is not None:
        result.shadow = shadow_comparison(
            known, settings.shadow.scores, settings.shadow.model, contract.capacity, as_of
        )
    result.promotion_reasons = list(result.judgement.reasons) if result.judgement else []
    if settings.promote and not result.promotion_reasons:
        try:
            promote(settings.config.registered_model)
            result.promoted = True
        except PromotionRefused as refused:
            result.promotion_reasons = refused.reasons
    return result


def _learned(champion: LoadedModel, trained: TrainResult) -> pd.DataFrame:
    """Mean |SHAP| per feature of the champion and of the new model (latest split), top features first."""
    importance = champion.scorer.importance_by_split
    if importance is None:
        raise ValueError(
            f"the champion '{champion.uri}' has no per-split feature importance: retrain it with `riskloop train`"
        )
    new = trained.importance_by_split.iloc[-1].rename("challenger")
    old = importance.iloc[-1].rename("champion")
    table = pd.concat([old, new], axis=1).fillna(0.0)
    table["change"] = table["challenger"] - table["champion"]
    return table.sort_values("challenger", ascending=False).head(15)
