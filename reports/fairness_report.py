"""The fairness audit report: self-contained HTML for analysts and governance boards."""

from __future__ import annotations

import pandas as pd

from riskloop.models.fairness import BIAS_FLAG, WHY, FairnessAudit
from riskloop.models.mitigation import Mitigation
from riskloop.reports import published
from riskloop.reports.disclosure import SUPPRESSED, disclose_text, protect, suppressed
from riskloop.reports.figures import disparity_plot
from riskloop.reports.render import format_value, render, table
from riskloop.reports.words import words

#: Counts within a group (the gate's tables), disclosed like its size: a rate or ratio from a suppressed one is "*".
EVENT_COUNTS = ("observed_events", "events", "errors")

NOT_CHECKABLE = (
    "Whether recorded outcomes measure behaviour equally well in every group cannot be checked from "
    "these records alone: heavier policing of some areas or groups inflates their recorded outcomes, "
    "and a model trained on them inherits that. Checking it needs an independent measure of the "
    "outcome (victim surveys, health or education records) for the same people."
)


NOT_A_PROBABILITY = (
    "Calibration is not assessed because the score is not a probability: neither calibration within groups nor "
    "error rates net of what the score implies can be judged; ranks and error rates at the decision rule can."
)


def _failed(frame: pd.DataFrame, exact: pd.DataFrame) -> list[tuple]:
    """(published row, exact row) of each check that failed (on the exact counts)."""
    failed = (exact["status"] == "fail").to_numpy()
    return list(zip(frame[failed].itertuples(), exact[failed].itertuples()))


def gate_findings(audit: FairnessAudit) -> list[str]:
    """The gate's failures in words, with the figures as the tables publish them."""
    out = []
    low, high = 1 / (1 + audit.config.calibration_tolerance), 1 + audit.config.calibration_tolerance
    for r, _ in _failed(published.calibration(audit), audit.calibration):
        figures = (
            "its counts, ratio and interval are suppressed: fewer than "
            f"{audit.config.disclosure_threshold + 1} events were observed"
            if r.observed_events == SUPPRESSED
            else f"{format_value(r.observed_events)} events observed against {r.expected_events:,.3f} expected, ratio "
            f"{r.ratio:.2f}, 95% interval {r.ci.replace('-', ' to ')}"
        )
        out.append(
            f"Risk is mis-calibrated for {r.characteristic} = {r.group} {r.scope} ({figures}; accepted "
            f"{low:.2f}-{high:.2f})."
        )
    for r, exact in _failed(published.errors(audit), audit.errors):
        figures = (
            "its counts and rates are suppressed: too few to show"
            if r.errors == SUPPRESSED or r.events == SUPPRESSED
            else f"{format_value(r.errors)} errors out of {format_value(r.events)} events (rate {format_value(r.rate)}), "
            f"{format_value(r.excess, 2)} times what the group's own risks imply ({format_value(r.implied_rate)}) "
            f"relative to {exact.reference}, 95% interval {r.excess_ci.replace('-', ' to ')}"
        )
        out.append(
            f"For {r.characteristic} = {r.group} (n = {format_value(r.n)}), the {exact.metric} is beyond what its base "
            f"rate explains ({figures}): the model misses or wrongly selects this group more than its risks imply."
        )
    return out


def findings(audit: FairnessAudit) -> list[str]:
    """The gate's verdicts first, in words, then what the descriptive view shows."""
    out = gate_findings(audit) if audit.probability else [NOT_A_PROBABILITY]
    if audit.probability and len(out) == 0:
        out.append(
            "The model passes the fairness gate: calibration holds within every group large enough to judge, "
            "and no group's harmful error rate exceeds what its own risks imply beyond the tolerance."
        )
    d = audit.disparities
    raw = d[d["primary"] & (d["status"] == "fail")]
    if len(raw):
        out.append(
            f"{len(raw)} raw error-rate ratios lie outside the {audit.config.band[0]}-{audit.config.band[1]} band "
            "(descriptive view). At one threshold a group with a lower base rate always has a higher false "
            "negative rate, so these ratios include what base rates alone cause"
            + ("; the gate above judges the model." if audit.probability else ".")
        )
    checks = pd.concat([audit.errors, audit.calibration])
    inconclusive = checks[checks["status"] == "inconclusive"]
    if len(inconclusive):
        few = int(inconclusive["too_few"].sum())
        out.append(
            f"{len(inconclusive)} gate checks are inconclusive: {few} with too few people or events to judge "
            f"(fewer than {audit.config.min_group_size} people or {audit.config.min_events} events, or none), "
            f"{len(inconclusive) - few} because the 95% interval straddles an edge of the accepted band. They are "
            "neither cleared nor condemned."
        )
    return out


def shown(audit: FairnessAudit, frame: pd.DataFrame) -> pd.DataFrame:
    """A per-group table as it may be published: group sizes and the counts of events or errors within
    them under the disclosure rule, metric names as words."""
    frame = protect(frame, audit.config.disclosure_threshold, others=tuple(c for c in EVENT_COUNTS if c in frame))
    return frame.assign(metric=frame["metric"].map(words)) if "metric" in frame else frame


def worded(frame: pd.DataFrame) -> pd.DataFrame:
    """Metric names as words."""
    return frame.assign(metric=frame["metric"].map(words))


def _flag(audit: FairnessAudit, r) -> str:
    """A flagged group of the measurement-bias check, its over-statement suppressed with its size."""
    relative = SUPPRESSED if suppressed(r.n, audit.config.disclosure_threshold) else f"{r.relative:.2f}x"
    return f"{r.characteristic} = {r.group} ({relative})"


def card_summary(audit: FairnessAudit) -> str:
    failures = gate_findings(audit)
    if not audit.probability:
        return NOT_A_PROBABILITY
    return (
        "The model passes the fairness gate: calibration holds within every group large enough to judge, and no "
        "group's harmful error rate exceeds what its own risks imply beyond the tolerance."
        if not failures
        else f"The model FAILS the fairness gate ({len(failures)} reasons): " + " ".join(failures)
    )


def render_fairness_report(
    audit: FairnessAudit,
    model: str,
    scope: str,
    mitigation: Mitigation | None = None,
    bias: pd.DataFrame | None = None,
    mitigation_note: str = "not run for this audit",
) -> str:
    primary = audit.disparities[audit.disparities["primary"]]
    op, t = audit.operating_point, audit.config.disclosure_threshold
    mitigation_view = None
    if mitigation is not None:
        groups = published.mitigation_groups(mitigation.by_group, mitigation.sensitive, t)
        mitigation_view = {
            "constraint": mitigation.constraint,
            "sensitive": mitigation.sensitive,
            "comparison": table(
                published.mitigation_comparison(mitigation.comparison, groups, t).rename_axis("decision rule"),
                index=True,
            ),
            "by_group": table(groups),
        }
    flagged = [] if bias is None else [_flag(audit, r) for r in bias[bias["flagged"]].itertuples()]
    return render(
        "fairness_report.html",
        title=f"Fairness audit: {model}",
        model=model,
        scope=scope,
        capacity=f"{audit.capacity:.0%}",
        k=disclose_text(op["k"], t),
        n=disclose_text(op["n"], t),
        disclosure=t,
        threshold=f"{op['threshold']:.3g}",
        precision=f"{op['precision_at_k']:.3f}",
        recall=f"{op['recall_at_k']:.3f}",
        why=WHY[audit.config.use],
        findings=findings(audit),
        bootstrap=f"{audit.config.bootstrap:,}",
        band=f"{audit.config.band[0]}-{audit.config.band[1]}",
        plot=disparity_plot(primary, audit.primary_metrics, audit.config.band, t),
        primary=table(worded(published.disparities(audit, primary))),
        groups=table(published.groups(audit)),
        bias=None if bias is None else table(shown(audit, bias)),
        flagged=flagged,
        bias_flag=BIAS_FLAG,
        not_checkable=NOT_CHECKABLE,
        mitigation=mitigation_view,
        mitigation_note=mitigation_note,
        card_summary=card_summary(audit),
        all=table(worded(published.disparities(audit, audit.disparities))),
        probability=audit.probability,
        not_a_probability=NOT_A_PROBABILITY,
        footnote=published.FOOTNOTE.format(threshold=t),
        calibration=table(published.calibration(audit)),
        ranking=table(published.ranking(audit)),
        errors=table(published.errors(audit)),
        tolerance=f"{1 / (1 + audit.config.calibration_tolerance):.2f}-{1 + audit.config.calibration_tolerance:.2f}",
        excess=f"{audit.config.band[1]}",
        harmful=audit.errors["metric"].iloc[0] if len(audit.errors) else "error rate",
        reference=", ".join(sorted(set(audit.errors["reference"]))) if len(audit.errors) else "-",
    )
