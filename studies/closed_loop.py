"""The closed loop (`riskloop simulate`): each cycle scores the population, fills a programme's places by a
policy, lets the world run a year on its true effects, then learns and retrains, with the truth kept
beside every estimate.

Policies: `none` (no places), `random` (places drawn at random from the cohort), `risk` (the highest
risk), `uplift` (among the 3 x places highest risk, the highest predicted benefit from an X-learner
fitted on the latest window whose outcomes are known; by risk while there is none), each among the
cohort members who can start the programme (not still in its effect window from an earlier start; a
place offered to them would be wasted). Retraining is `naive` or `treatment-aware` (learning/retrain.py).
With a surveillance effect above 1, the listed people are under that much more attention for the cycle:
their offences the police find proactively (drugs, public order) are recorded more often, reported ones
and true incidents unchanged (simulation/world.py, `Surveillance`), so a runaway-feedback loop would show
in the recorded/true ratio of the listed's offending and in the share of them listed again.

Worlds on one seed share their random numbers (simulation/streams.py), so two policies differ only
where the policy made them differ: escalations prevented are counted against the `none` policy
with the same seed, and the true effect of a cycle's places comes from re-running its year without
them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from riskloop.artifacts.dataset import read_dataset
from riskloop.experiments.config import ExperimentConfig, Schedule
from riskloop.features.io import atomic_path, write_text_atomic
from riskloop.features.snapshot import PreparedData
from riskloop.learning.cycle import adjustment_features, closed_as_of, trials
from riskloop.learning.effects import Binned, att, cross_fit, naive
from riskloop.learning.linkage import TREATMENT_WINDOW_DAYS
from riskloop.learning.retrain import treatment_aware
from riskloop.learning.uplift import fit_x_learner
from riskloop.pipelines.data import ModelData, from_dataset
from riskloop.pipelines.score import score_cohort, score_frame
from riskloop.pipelines.train import train
from riskloop.reports.figures import loop_plot
from riskloop.simulation.parameters import Dynamics, WorldConfig
from riskloop.simulation.truth import escalation_probability_from, offending_counts
from riskloop.simulation.world import Enrolment, Simulation, Surveillance, extend, simulate, write_world
from riskloop.studies.settings import LoopSettings, Policy

CYCLE_MONTHS = 12
BURN_IN_END = date(2023, 12, 31)


def model_config(base: ExperimentConfig, data: Path, end: date, threads: int | None) -> ExperimentConfig:
    """The experiment config, light enough for a loop: one LightGBM, half-yearly as-of dates over at most
    four years, one test split."""
    latest = end - timedelta(days=base.horizon_days)
    first = max(date(2020, 1, 1), date(latest.year - 4, 1, 1))
    return dataclasses.replace(
        base,
        data=data,
        threads=threads,
        schedule=Schedule(first, latest, 6, 1),
        models=dataclasses.replace(
            base.models,
            logistic=None,
            prior_harm=None,
            lightgbm={"num_leaves": [15], "n_estimators": [300], "learning_rate": [0.05], "min_child_samples": [50]},
        ),
        calibration=("isotonic",),
    )


def present_index(sim: Simulation, person_id: pd.Series) -> np.ndarray:
    return pd.Index(sim.people.person_id).get_indexer(person_id.astype(str))


def choose(
    policy: Policy,
    cohort: pd.DataFrame,
    capacity: int,
    rng: np.random.Generator,
    benefit: Callable[[pd.DataFrame], np.ndarray] | None,
    features: list[str],
) -> np.ndarray:
    """Row positions of the cohort given a place."""
    k = min(capacity, len(cohort))
    if policy == "none" or k == 0:
        return np.empty(0, dtype=int)
    if policy == "random":
        return np.sort(rng.choice(len(cohort), k, replace=False))
    by_risk = np.argsort(-cohort["risk"].to_numpy(), kind="stable")
    if policy == "risk" or benefit is None:
        return np.sort(by_risk[:k])
    shortlist = by_risk[: 3 * k]
    predicted = -benefit(cohort.iloc[shortlist][features].reset_index(drop=True))
    return np.sort(shortlist[np.argsort(-predicted, kind="stable")[:k]])


def uplift_model(scorer, prepared: PreparedData, programme: str, seed: int):
    """An X-learner for `programme` on the monthly cohorts of the latest six months whose outcomes are
    known (None if fewer than 20 started it), and the features it reads."""
    first = closed_as_of(
        np.datetime64(prepared.end_day, "D").astype(date), scorer.contract.snapshot.horizon_days, TREATMENT_WINDOW_DAYS
    )
    stacked = trials(scorer, prepared, first, TREATMENT_WINDOW_DAYS)
    features = adjustment_features(scorer, prepared.catalogue(scorer.contract.snapshot))
    treated = stacked[f"started_{programme}"].to_numpy().astype(int)
    if treated.sum() < 20:
        return None, features
    escalated = stacked["escalated"].to_numpy().astype(int)
    return fit_x_learner(Binned(stacked[features]), treated, escalated, seed), features


def training_data(
    base: ExperimentConfig, data_dir: Path, prepared: PreparedData, end: date, threads: int | None
) -> tuple[ExperimentConfig, ModelData]:
    """The loop's config and its model data on the world written to `data_dir`, which ends on `end`."""
    config = model_config(base, data_dir, end, threads)
    return config, from_dataset(config, prepared)


def retrained(config: ExperimentConfig, data: ModelData, settings: LoopSettings):
    """The model retrained on `data`, naively or treatment-aware as `settings.retrain` says."""
    return train(treatment_aware(data) if settings.retrain == "treatment-aware" else data, config).scorer


def ceilings(
    base: ExperimentConfig, untreated: Simulation, out: Path, end: date, positives: int, settings: LoopSettings
):
    """The ceiling and the thinned ceiling: retrained naively on the world with no programme effect (written
    to `out`), on all its rows and on its rows with positives left out down to the recorded world's `positives`."""
    config, data = training_data(base, out, _written(untreated, out, end), end, settings.threads)
    return train(data, config).scorer, train(_thinned(data, positives, settings.seed), config).scorer


def _ranking(
    score: np.ndarray, ranked: np.ndarray, ranked_unhelped: np.ndarray, helped: np.ndarray
) -> dict[str, float]:
    """How well `score` ranks the true risk, with no new places and with no programme, and the helped's shift."""
    return {
        "model_auc_vs_true_risk": _expected_auc(score, ranked),
        "model_auc_vs_true_risk_unhelped": _expected_auc(score, ranked_unhelped),
        "helped_rank_shift": _rank_shift(score, ranked_unhelped, helped),
    }


def _ratio(recorded: np.ndarray, true: np.ndarray, rows: np.ndarray) -> float:
    return float(recorded[rows].sum() / true[rows].sum()) if true[rows].sum() else float("nan")


def run_loop(
    settings: LoopSettings, base: ExperimentConfig, out: Path, progress: Callable[[str], None] = lambda _: None
) -> pd.DataFrame:
    """One row per cycle: places, true and recorded escalations and true offending harm in the population,
    the true effect of the places (the year re-run without them, in escalations and harm), the recorded/true ratio
    of the listed's escalations and of everyone else's, and the same of all their offending (`_offending_`), how well the model ranks true risk with no new places (the programmes already started
    still working) and with no programme at all (`_unhelped`), and how far below that risk it ranks the
    people a programme is helping (`helped_rank_shift`). With `compare_retraining`, the same three for the
    model retrained the other way on the same data each cycle (`other_retrain_...`): a comparison of the
    two retrainings that the world's path, shaped by the loop's own model, does not blur. With `ceiling`,
    the same for a model retrained naively each cycle on the same world run with every programme's effect
    at zero (the same seed, so the same people and random numbers, and the same places; `ceiling_...`):
    it learns from untreated outcomes only, as a treatment-aware retraining aims to, so it bounds what
    that could reach. Its world also keeps the escalations that programmes prevented, which no reweighting
    of the recorded ones can bring back; `thinned_ceiling_...` is the same model with its positive rows left
    out at random down to the recorded world's count, which parts information from bias. Every model, the
    burn-in's too, is trained on the incidents `settings.incidents` names (all, or the reported only)."""
    out = Path(out)
    data_dir = out / "world"
    base = dataclasses.replace(base, incidents=settings.incidents)
    rng = np.random.default_rng([settings.seed, 7])
    progress("burn-in world")
    sim = simulate(
        WorldConfig(
            people=settings.people,
            seed=settings.seed,
            end=BURN_IN_END,
            dynamics=Dynamics(programme_effect_scale=settings.effect_scale, effect_modifier=settings.effect_modifier),
        )
    )
    end = BURN_IN_END
    prepared = _written(sim, data_dir, end)
    config, data = training_data(base, data_dir, prepared, end, settings.threads)
    scorer = retrained(config, data, dataclasses.replace(settings, retrain="naive"))
    other = scorer if settings.compare_retraining else None
    untreated = (
        simulate(
            dataclasses.replace(
                sim.config, dynamics=dataclasses.replace(sim.config.dynamics, programme_effect_scale=0.0)
            )
        )
        if settings.ceiling
        else None
    )
    untreated_dir = out / "untreated-world"
    bounds = (
        ceilings(base, untreated, untreated_dir, end, int(data.frame["label"].sum()), settings)
        if untreated is not None
        else ()
    )
    rows, previous = [], np.empty(0, dtype=np.int64)
    for cycle in range(1, settings.cycles + 1):
        as_of = end + timedelta(days=1)
        progress(f"cycle {cycle}: scoring at {as_of}")
        cohort = score_cohort(scorer, prepared, as_of).frame
        index = present_index(sim, cohort["person_id"])
        cohort, index = cohort[sim.people.present[index]].reset_index(drop=True), index[sim.people.present[index]]
        benefit, features = (
            uplift_model(scorer, prepared, settings.programme, settings.seed)
            if settings.policy == "uplift"
            else (None, [])
        )
        free = np.flatnonzero(sim.state.can_start(settings.programme, sim.months)[index])  # as the world's `eligible`
        chosen = index[
            free[
                choose(
                    settings.policy, cohort.iloc[free].reset_index(drop=True), settings.capacity, rng, benefit, features
                )
            ]
        ]
        threshold = scorer.contract.snapshot.harm_threshold
        truth_risk, risk_unhelped = (
            escalation_probability_from(sim, 365, threshold, programme_effects=effects) for effects in (True, False)
        )
        first = sim.months
        without = copy.deepcopy(sim)
        enrol = partial(_enrolment, Enrolment(chosen, settings.programme), first)
        watched = (
            Surveillance(chosen, settings.surveillance_effect, first + CYCLE_MONTHS)
            if settings.surveillance_effect != 1.0 and len(chosen)
            else None
        )
        progress(f"cycle {cycle}: the world's year with {len(chosen)} places")
        extend(sim, CYCLE_MONTHS, enrol, watched)
        extend(without, CYCLE_MONTHS, None, watched)
        if untreated is not None:
            extend(untreated, CYCLE_MONTHS, enrol, watched)
        window = (first, first + CYCLE_MONTHS)
        true = offending_counts(sim, *window)
        recorded = offending_counts(sim, *window, recorded_only=True)
        true_offending, recorded_offending = (
            offending_counts(sim, *window, None, recorded_only=only) for only in (False, True)
        )
        true_without = offending_counts(without, *window)
        harm, harm_without = (offending_counts(world, *window, None, harm_weighted=True) for world in (sim, without))
        label_without = offending_counts(without, *window, recorded_only=True) > 0
        listed = np.zeros(len(sim.people.person_id), bool)
        listed[chosen] = True
        in_cohort = np.zeros(len(listed), bool)
        in_cohort[index] = True
        ranked, ranked_unhelped = (
            risk.set_index("person_id")["probability"].reindex(cohort["person_id"].astype(str)).to_numpy()
            for risk in (truth_risk, risk_unhelped)
        )
        helped = _in_programme(sim, index, first)
        rows.append(
            {
                "cycle": cycle,
                "as_of": as_of,
                "policy": settings.policy,
                "retrain": settings.retrain,
                "places": int((sim.state.effect_from[settings.programme][chosen] == first + 1).sum()),  # taken up
                "true_escalations": int(true.sum()),
                "recorded_escalations": int(recorded.sum()),
                "true_escalations_of_the_listed": int(true[listed].sum()),
                "true_effect_on_the_listed": float((true[listed] - true_without[listed]).mean())
                if listed.any()
                else float("nan"),
                "escalations_prevented_by_the_places": int(true_without[listed].sum() - true[listed].sum()),
                "true_offending_harm": float(harm.sum()),
                "harm_prevented_by_the_places": float(harm_without[listed].sum() - harm[listed].sum()),
                "true_effect_on_label": float(((recorded[listed] > 0).astype(float) - label_without[listed]).mean())
                if listed.any()
                else float("nan"),
                "recorded_true_ratio_listed": _ratio(recorded, true, listed),
                "recorded_true_ratio_others": _ratio(recorded, true, in_cohort & ~listed),
                "recorded_true_offending_ratio_listed": _ratio(recorded_offending, true_offending, listed),
                "recorded_true_offending_ratio_others": _ratio(recorded_offending, true_offending, in_cohort & ~listed),
                **_ranking(cohort["risk"].to_numpy(), ranked, ranked_unhelped, helped),
                "last_cycles_places_top_ranked_again": float(np.isin(previous, _top(cohort, index, len(chosen))).mean())
                if len(previous) and len(chosen)
                else float("nan"),
            }
        )
        if other is not None:
            other_score = score_frame(other, cohort)["risk"].to_numpy()  # the cohort's snapshot, scored again
            rows[-1].update(
                {f"other_retrain_{k}": v for k, v in _ranking(other_score, ranked, ranked_unhelped, helped).items()}
            )
        for name, model in zip(("ceiling", "thinned_ceiling"), bounds):
            rows[-1].update(
                {
                    f"{name}_{k}": v
                    for k, v in _ranking(
                        score_frame(model, cohort)["risk"].to_numpy(), ranked, ranked_unhelped, helped
                    ).items()
                }
            )
        previous = chosen
        progress(f"cycle {cycle}: learning and {settings.retrain} retraining")
        rows[-1].update(
            _estimate(
                cohort,
                index,
                chosen,
                recorded > 0,
                adjustment_features(scorer, prepared.catalogue(scorer.contract.snapshot)),
                settings,
            )
        )
        end = sim.end.astype(date)
        prepared = _written(sim, data_dir, end)
        config, data = training_data(base, data_dir, prepared, end, settings.threads)
        scorer = retrained(config, data, settings)
        if settings.compare_retraining:
            other = retrained(config, data, dataclasses.replace(settings, retrain=settings.other_retrain))
        if untreated is not None:
            bounds = ceilings(base, untreated, untreated_dir, end, int(data.frame["label"].sum()), settings)
    return pd.DataFrame(rows)


def _written(sim: Simulation, out: Path, end: date) -> PreparedData:
    """Write the world's contract tables to `out` and prepare them as the loop reads them on `end`'s next day."""
    write_world(sim, out)
    return PreparedData.from_dataset(read_dataset(out, today=end + timedelta(days=1)))


def _enrolment(places: Enrolment, month_given: int, sim: Simulation, month: int) -> Enrolment | None:
    """The cycle's places, given in its first month (none if there are no places)."""
    return places if month == month_given and len(places.person) else None


def _thinned(data: ModelData, positives: int, seed: int) -> ModelData:
    """`data` with positive rows left out at random until `positives` remain."""
    rows = np.flatnonzero(data.frame["label"].to_numpy() == 1)
    keep = np.ones(len(data.frame), bool)
    keep[np.random.default_rng(seed).choice(rows, max(len(rows) - positives, 0), replace=False)] = False
    return data.rows(keep)


def _top(cohort: pd.DataFrame, index: np.ndarray, k: int) -> np.ndarray:
    """Population indexes of the k highest-risk people of the cohort."""
    return index[np.argsort(-cohort["risk"].to_numpy(), kind="stable")[:k]]


def _in_programme(sim: Simulation, index: np.ndarray, month: int) -> np.ndarray:
    """Per cohort member (population `index`): is a programme's effect on them running in `month`?"""
    return np.logical_or.reduce([sim.state.in_effect(p, month)[index] for p in sim.state.effect_from])


def _rank_shift(score: np.ndarray, probability: np.ndarray, rows: np.ndarray) -> float:
    """Mean of the model's percentile rank minus the true risk's, over `rows`: below 0, the model ranks
    them lower than their risk would."""
    ok = np.isfinite(probability)
    shift = pd.Series(score[ok]).rank(pct=True).to_numpy() - pd.Series(probability[ok]).rank(pct=True).to_numpy()
    return float(shift[rows[ok]].mean()) if rows[ok].any() else float("nan")


def _expected_auc(score: np.ndarray, probability: np.ndarray) -> float:
    """ROC AUC of `score` against outcomes drawn from the true probabilities (in expectation)."""
    ok = np.isfinite(probability)
    s, p = score[ok], probability[ok]
    return float(roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(p))], np.r_[s, s], sample_weight=np.r_[p, 1 - p]))


def _estimate(
    cohort: pd.DataFrame,
    index: np.ndarray,
    chosen: np.ndarray,
    escalated: np.ndarray,
    features: list[str],
    settings: LoopSettings,
) -> dict[str, float]:
    """The cycle's places as the learning loop sees them a year on: naive and doubly robust effect on
    the recorded escalation in the cycle's year (`escalated`, per person) of the people given a place,
    among the cohort scored at T (rows of `cohort`; `index`: their places in the population)."""
    t = np.isin(index, chosen).astype(int)
    if t.sum() < 20 or t.sum() == len(t):
        return {
            "naive_estimate": float("nan"),
            "dr_estimate": float("nan"),
            "dr_ci_low": float("nan"),
            "dr_ci_high": float("nan"),
        }
    y = escalated[index].astype(int)
    dr = att(t, y, cross_fit(Binned(cohort[features]), t, y, 3, settings.seed, settings.threads))
    return {
        "naive_estimate": naive(t, y).value,
        "dr_estimate": dr.value,
        "dr_ci_low": dr.ci_low,
        "dr_ci_high": dr.ci_high,
    }


METRICS_BY_CYCLE = (
    "true_escalations",
    "recorded_escalations",
    "recorded_true_ratio_listed",
    "escalations_prevented_by_the_places",
    "true_offending_harm",
    "harm_prevented_by_the_places",
    "model_auc_vs_true_risk",
    "model_auc_vs_true_risk_unhelped",
    "helped_rank_shift",
)


def write_loop(cycles: pd.DataFrame, settings: LoopSettings, out: Path) -> list[Path]:
    """cycles.csv, simulate.json (the settings and totals) and simulate.png in `out`; returns them."""
    out = Path(out)
    with atomic_path(out / "cycles.csv") as tmp:
        cycles.to_csv(tmp, index=False)
    with atomic_path(out / "simulate.png") as tmp:
        Path(tmp).write_bytes(loop_plot(cycles))
    totals = {
        "true_escalations": int(cycles["true_escalations"].sum()),
        "escalations_prevented_by_the_places": int(cycles["escalations_prevented_by_the_places"].sum()),
        "true_offending_harm": round(float(cycles["true_offending_harm"].sum()), 1),
        "harm_prevented_by_the_places": round(float(cycles["harm_prevented_by_the_places"].sum()), 1),
    }
    write_text_atomic(
        json.dumps({"settings": dataclasses.asdict(settings), "totals": totals}, indent=2, default=str) + "\n",
        out / "simulate.json",
    )
    return [out / "cycles.csv", out / "simulate.json", out / "simulate.png"]
