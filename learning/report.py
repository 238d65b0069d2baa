"""The learning report (HTML, for a partnership board) and the cycle's files, in memory (written by
`riskloop.artifacts.learning`, logged to MLflow by `riskloop.experiments.tracking`).

Counts of people go through the disclosure rule of `reports.disclosure`; no person-level row leaves
the output folder (outcomes.parquet, keyed on pseudonyms, stays there and is not logged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskloop.artifacts.learning import LearningOutputs, LearningSummary
from riskloop.learning.cycle import LearningResult
from riskloop.learning.judging import Comparison
from riskloop.learning.policy import ESCALATIONS, HARM, USED
from riskloop.learning.programmes import ProgrammeResult
from riskloop.reports.disclosure import SUPPRESSED, disclose, disclose_text, from_published, protect, share, suppressed
from riskloop.reports.figures import UNSTABLE, effect_plot, points, psi_plot, qini_plot, unstable
from riskloop.reports.render import render, table
from riskloop.reports.words import words

WEAK_OVERLAP_SHARE = 0.1  # warn when this share of the starters was kept just under the trim
NOT_REVEALED = (
    "What these records cannot reveal: the estimates assume that referral depended only on what is "
    "recorded before the scoring date (offending, victimisation, harm, age, area, earlier programmes). "
    "If something unrecorded drove both referral and outcome, the estimates are biased by it. And who "
    "benefits most may depend on things partners rarely record, adverse childhood experiences above "
    "all: uplift models can only target on what is recorded, so part of the variation in benefit stays "
    "invisible to them."
)


def verdict(result: ProgrammeResult) -> str:
    """What a board should take from one programme's figures, in one sentence."""
    if result.effects is None:
        return result.note
    overall = result.effects.iloc[0]
    value, low, high = points(overall[["dr", "dr_ci_low", "dr_ci_high"]])
    said = f"{value:+.1f} points (95% interval {low:+.1f} to {high:+.1f})"
    if unstable(overall["dr_ci_low"], overall["dr_ci_high"]):
        return f"No conclusion, the estimate is unstable: {said}; {UNSTABLE}."
    if overall["dr_ci_high"] < 0 and result.targeting is not None:
        recommended = result.targeting.recommended
        how = (
            "no evidence to change how its places are filled"
            if recommended is None
            else f"fill its places by {words(recommended)}: at the same number of places it would have prevented "
            "more escalations than the rule used, with evidence"
        )
        return f"It worked: escalation changed by {said} for the people who started it; {how}."
    if overall["dr_ci_high"] < 0:
        assert result.who_benefits is not None  # analyse_programme estimates who benefits with the effects
        best = result.who_benefits.sort_values("qini_coefficient", ascending=False).iloc[0]
        levels = result.effects.iloc[1:]
        spread = (levels["dr_ci_high"].min() < levels["dr_ci_low"].max()) if len(levels) > 1 else False
        how = (
            "target it by predicted benefit (uplift): its effect differs between groups"
            if best["qini_coefficient"] > 0 and spread
            else "target it by risk: no reliable difference in who benefits was found"
        )
        return f"It worked: escalation changed by {said} for the people who started it; {how}."
    if overall["dr_ci_low"] > 0:
        return f"Escalation rose by {said} for the people who started it: review how it is delivered."
    return f"No effect was detected: {said}; the interval includes no change."


def disclosed_effects(effects: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """An effect table as it may be shown: the people who started, the untreated and the starters who
    escalated under the disclosure rule, every figure of a row whose starters are suppressed replaced by
    "*", and the starters' escalation rate computed from the counts as published."""
    controls, escalated = (effects[c].map(lambda n: disclose(n, threshold)) for c in ("n_control", "treated_escalated"))
    shown = protect(effects.rename(columns={"n_treated": "n"}), threshold, "n").rename(columns={"n": "n_treated"})
    rate = lambda part, whole: share(part, whole) / 100  # noqa: E731
    return shown.assign(
        n_control=controls,
        treated_escalated=escalated,
        treated_rate=[from_published(rate, e, n) for e, n in zip(escalated, shown["n_treated"])],
    )


def shown_in_plot(effects: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """The rows of an effect table a figure may draw: those whose starters are not suppressed (their
    figures are "*" in the table, so the plot leaves them out too)."""
    return effects[~effects["n_treated"].map(lambda n: suppressed(n, threshold)).to_numpy(bool)]


def _effects_view(result: ProgrammeResult, threshold: int) -> pd.DataFrame:
    """The effect table as shown: points clipped to ±100, an estimate whose interval reaches past them "unstable"."""
    shown = disclosed_effects(result.effects, threshold).rename(
        columns={"n_treated": "started", "n_control": "untreated (person-months)"}
    )
    ends = shown[["naive_ci_low", "naive_ci_high", "dr_ci_low", "dr_ci_high"]].apply(pd.to_numeric, errors="coerce")
    shaky = unstable(ends["naive_ci_low"], ends["naive_ci_high"]) | unstable(ends["dr_ci_low"], ends["dr_ci_high"])
    for column in ("treated_rate", "naive", "naive_ci_low", "naive_ci_high", "dr", "dr_ci_low", "dr_ci_high"):
        shown[column] = [
            v
            if isinstance(v, str)
            else "-"
            if not np.isfinite(v)
            else f"{points(v):+.1f}"
            if column != "treated_rate"
            else f"{v:.1%}"
            for v in shown[column]
        ]
    shown["note"] = ["unstable" if s else "" for s in shaky]
    return shown[
        [
            "subgroup",
            "level",
            "started",
            "untreated (person-months)",
            "treated_rate",
            "naive",
            "naive_ci_low",
            "naive_ci_high",
            "dr",
            "dr_ci_low",
            "dr_ci_high",
            "note",
        ]
    ].rename(
        columns={
            "treated_rate": "escalated (started)",
            "naive": "naive difference (points)",
            "naive_ci_low": "naive 95% low (points)",
            "naive_ci_high": "naive 95% high (points)",
            "dr": "doubly robust (points)",
            "dr_ci_low": "DR 95% low (points)",
            "dr_ci_high": "DR 95% high (points)",
        }
    )


#: The who-benefits table's columns as shown, each with its unit; true effects (synthetic worlds only) are in
#: points like the estimates.
WHO_COLUMNS = {
    "learner": "learner",
    "qini_coefficient": "Qini coefficient (escalations prevented beyond random targeting, mean over shares)",
    "spearman_with_true_effect": "rank correlation of predicted and true benefit",
    "true_effect_top_decile": "true effect in the tenth with the highest predicted benefit (points)",
    "true_effect_everyone": "true effect, everyone analysed (points)",
}


def who_view(who: pd.DataFrame) -> pd.DataFrame:
    shown = who.assign(learner=who["learner"].map(words))
    for column in ("true_effect_top_decile", "true_effect_everyone"):
        if column in shown:
            shown[column] = [f"{v:+.1f}" for v in points(shown[column])]
    return shown.rename(columns=WHO_COLUMNS)


#: The targeting table's figures as shown, after the places: per outcome (learning.policy's Columns) its value and
#: its difference from the rule used, each with its interval in one cell, the unit in the column's name.
TARGETING_COLUMNS = {
    "escalations (per 1,000 people, 95% interval)": (ESCALATIONS, False),
    "escalations: difference from the rule used (per 1,000 people, simultaneous 95% interval)": (ESCALATIONS, True),
    "recorded harm (harm weight per 1,000 people, 95% interval)": (HARM, False),
    "recorded harm: difference from the rule used (harm weight per 1,000 people, simultaneous 95% interval)": (
        HARM,
        True,
    ),
}


def targeting_view(evaluation: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """The targeting table as shown: places under the disclosure rule, then escalations and recorded harm per
    1,000 people of the cohort, each as "value (low to high)" to one decimal (differences signed), each column
    with its unit; the rule used has no difference from itself."""
    shown = pd.DataFrame(index=pd.Index([words(r) for r in evaluation.index], name="rule"))
    shown["places (starts)"] = [disclose_text(round(n), threshold) for n in evaluation["places"]]
    for column, (outcome, difference) in TARGETING_COLUMNS.items():
        names = outcome.names[3:] if difference else outcome.names[:3]  # (figure, low, high)
        form = "{:+,.1f}" if difference else "{:,.1f}"
        shown[column] = [
            f"{form.format(v)} ({form.format(low)} to {form.format(high)})"
            for v, low, high in evaluation[list(names)].itertuples(index=False)
        ]
        if difference:
            shown.loc[words(USED), column] = "-"
    return shown


def render_learning_report(result: LearningResult) -> str:
    threshold = result.champion.contract.audit.disclosure_threshold
    programmes = []
    for p in result.programmes:
        name = words(p.programme)
        view: dict[str, object] = {"name": name, "verdict": verdict(p), "effects": None, "targeting": None}
        if p.effects is not None:
            # analyse_programme estimates the overlap, Qini curves and who benefits with the effects
            assert p.overlap is not None and p.qini is not None and p.who_benefits is not None
            effects = _effects_view(p, threshold)
            view.update(
                effects=table(effects),
                unstable=UNSTABLE if (effects["note"] == "unstable").any() else "",
                effect_plot=effect_plot(shown_in_plot(p.effects, threshold), f"{name}: effect on escalation"),
                overlap=p.overlap,
                qini_plot=qini_plot(p.qini, f"{name}: who benefits"),
                who=table(who_view(p.who_benefits)),
                trimmed=disclose_text(p.overlap["trimmed_treated"], threshold),
                effective_controls=disclose_text(p.overlap["effective_controls"], threshold),
                near_trim=disclose_text(p.overlap["treated_near_trim"], threshold),
                weak_overlap=p.overlap["treated_near_trim"] >= max(1, WEAK_OVERLAP_SHARE * p.n_treated),
            )
            if p.targeting is not None:
                view.update(
                    targeting=table(targeting_view(p.targeting.table, threshold), index=True),
                    targeting_words=p.targeting.words,
                    places=disclose_text(p.targeting.table.loc[USED, "places"], threshold),
                )
        programmes.append(view)
    outcomes = result.outcomes
    labelled = outcomes["escalated"].dropna()
    escalated = from_published(share, disclose(labelled.sum(), threshold), disclose(len(labelled), threshold))
    return render(
        "learning_report.html",
        title="Learning report",
        model=f"{result.champion.name} v{result.champion.version}",
        threshold=threshold,
        as_of=result.as_of,
        horizon=result.horizon_days,
        cohort=disclose_text(len(outcomes), threshold),
        listed=disclose_text(int(outcomes["listed"].sum()), threshold),
        started=disclose_text(int(outcomes["any_programme"].sum()), threshold),
        escalated=escalated if escalated == SUPPRESSED else f"{escalated:.1f}%",
        new_records={name: disclose_text(n, threshold) for name, n in result.new_records.items()},
        programmes=programmes,
        not_revealed=NOT_REVEALED,
        retrain=result.retrain,
        retrain_notes=result.retrain_notes,
        challenger=(f"v{result.challenger.model_version}" if result.challenger else None),
        **judged("shadow", result.shadow, threshold),
        **judged("backtest", result.backtest, threshold),
        promoted=result.promoted,
        reasons=result.promotion_reasons,
        learned=table(result.learned.rename_axis("feature"), index=True) if result.learned is not None else None,
        learned_unchanged=result.learned is not None and bool((result.learned["change"].abs() < 0.0005).all()),
        drift=table(result.drift.head(15)),
        drift_plot=psi_plot(result.drift),
        drift_dates=result.drift_dates,
        drift_coverage=result.drift_coverage,
        sampled=result.sampled,
        drift_by_area=table(result.drift_by_area.drop(columns="n")),
        recommendation=recommendation(result),
    )


def judged(name: str, comparison: Comparison | None, threshold: int) -> dict[str, object]:
    """A comparison for the report: itself, its table and its people under the disclosure rule."""
    return {
        name: comparison,
        f"{name}_table": table(comparison.metrics.rename_axis("model"), index=True) if comparison else None,
        f"{name}_people": disclose_text(comparison.people, threshold) if comparison else None,
    }


def recommendation(result: LearningResult) -> str:
    evaluated = [p for p in result.programmes if p.targeting is not None]
    if evaluated:  # the targeting rules checked against each other on this cycle's records (learning.policy)
        change = [p for p in evaluated if p.targeting is not None and p.targeting.recommended is not None]
        keep = [words(p.programme) for p in evaluated if p not in change]
        said = " ".join(f"{words(p.programme)}: {p.targeting.words}" for p in change if p.targeting is not None)
        if not change:
            return (
                "No evidence to change how places are filled: for no programme did another targeting rule "
                "(risk, predicted benefit, random) prevent more escalations than the rule used, at the same number "
                "of places, with a simultaneous 95% interval of the difference wholly below zero."
            )
        rest = f" {', '.join(keep)}: no evidence to change how places are filled." if keep else ""
        return f"Next cycle, change how places are filled where the evidence says so. {said}{rest}"
    uplift = [words(p.programme) for p in result.programmes if "predicted benefit" in verdict(p)]
    worked = [words(p.programme) for p in result.programmes if verdict(p).startswith("It worked")]
    if uplift:
        return (
            f"Next cycle, fill {', '.join(uplift)} by predicted benefit (uplift) among the people the risk model "
            "lists, so places go to those the programme helps most; fill the others by risk."
        )
    if worked:
        return (
            f"{', '.join(worked)} reduced escalation; keep filling places by risk: the data show no reliable "
            "difference in who benefits."
        )
    return "No programme showed a reliable effect this cycle: keep filling places by risk and collect another cycle."


def learning_outputs(result: LearningResult) -> LearningOutputs:
    """The cycle's files in memory: effects under the disclosure rule, the summary, the report."""
    threshold = result.champion.contract.audit.disclosure_threshold
    effects = [p.effects.assign(programme=p.programme) for p in result.programmes if p.effects is not None]
    frame = pd.concat(effects, ignore_index=True) if effects else pd.DataFrame()
    who = [p.who_benefits.assign(programme=p.programme) for p in result.programmes if p.who_benefits is not None]
    summary = LearningSummary(
        as_of=result.as_of,
        retrain=result.retrain,
        promoted=result.promoted,
        promotion_reasons=list(result.promotion_reasons),
        challenger_version=result.challenger.model_version if result.challenger else None,
        programmes={p.programme: verdict(p) for p in result.programmes},
        recommendation=recommendation(result),
        judged_by=result.judgement.judge if result.judgement else None,
        judgement=result.judgement.metrics.to_dict(orient="index") if result.judgement else None,
        sampled=list(result.sampled),
    )
    return LearningOutputs(
        summary,
        result.outcomes,
        disclosed_effects(frame, threshold) if len(frame) else frame,
        pd.concat(who, ignore_index=True) if who else pd.DataFrame(),
        result.drift,
        render_learning_report(result),
    )
