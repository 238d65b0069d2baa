"""The fairness audit report: self-contained HTML for analysts and governance boards."""

from __future__ import annotations

import pandas as pd

from riskloop.models.fairness import WHY, FairnessAudit
from riskloop.models.mitigation import Mitigation
from riskloop.reports.disclosure import SUPPRESSED, disclose_text, protect, suppressed
from riskloop.reports.figures import disparity_plot
from riskloop.reports.render import render, table
from riskloop.reports.words import words

NOT_CHECKABLE = ("Whether recorded outcomes measure behaviour equally well in every group cannot be checked from "
                 "these records alone: heavier policing of some areas or groups inflates their recorded outcomes, "
                 "and a model trained on them inherits that. Checking it needs an independent measure of the "
                 "outcome (victim surveys, health or education records) for the same people.")


def findings(audit: FairnessAudit) -> list[str]:
    out = []
    d = audit.disparities
    for r in d[d["primary"] & (d["status"] == "fail")].itertuples():
        direction = "higher" if r.ratio > 1 else "lower"
        n = disclose_text(r.n, audit.config.disclosure_threshold)
        out.append(f"For {r.characteristic} = {r.group} (n = {n}), the {words(r.metric)} is "
                   f"{r.ratio:.2f} times that of {r.reference} ({direction}; 95% interval {r.ci_low:.2f} to "
                   f"{r.ci_high:.2f}), outside the accepted {audit.config.band[0]}-{audit.config.band[1]} band.")
    inconclusive = d[d["primary"] & (d["status"] == "inconclusive")]
    if len(inconclusive):
        out.append(f"{len(inconclusive)} primary disparities are inconclusive: their intervals cross the band's edge, "
                   "often because the group is small. They are neither cleared nor condemned; more data is needed.")
    for r in audit.calibration_failures().itertuples():
        out.append(f"Risk is mis-calibrated for {r.characteristic} = {r.group}: predicted {r.mean_predicted:.3f}, "
                   f"observed {r.observed:.3f}.")
    if not out:
        out.append("No primary disparity fails and calibration is within tolerance for every group large enough to judge.")
    small = audit.by_group[audit.by_group["small"]]
    if len(small):
        out.append(f"{len(small)} groups have fewer than {audit.config.min_group_size} people; they are shown, flagged, "
                   "and their figures should be read with care.")
    return out


def shown(audit: FairnessAudit, frame: pd.DataFrame) -> pd.DataFrame:
    """A per-group table as it may be published: group sizes under the disclosure rule, metric names as words."""
    frame = protect(frame, audit.config.disclosure_threshold)
    return frame.assign(metric=frame["metric"].map(words)) if "metric" in frame else frame


def _flag(audit: FairnessAudit, r) -> str:
    """A flagged group of the measurement-bias check, its over-statement suppressed with its size."""
    relative = SUPPRESSED if suppressed(r.n, audit.config.disclosure_threshold) else f"{r.relative:.2f}x"
    return f"{r.characteristic} = {r.group} ({relative})"


def card_summary(audit: FairnessAudit) -> str:
    failures = audit.gate_reasons()
    return ("The model passes the fairness gates: no primary disparity fails and calibration is within "
            f"{audit.config.calibration_tolerance} for every group large enough to judge."
            if not failures else f"The model FAILS the fairness gates ({len(failures)} reasons): " + "; ".join(failures))


def render_fairness_report(audit: FairnessAudit, model: str, scope: str, mitigation: Mitigation | None = None,
                           bias: pd.DataFrame | None = None, mitigation_note: str = "not run for this audit") -> str:
    primary = audit.disparities[audit.disparities["primary"]]
    op = audit.operating_point
    mitigation_view = None
    if mitigation is not None:
        mitigation_view = {"constraint": mitigation.constraint, "sensitive": mitigation.sensitive,
                           "comparison": table(mitigation.comparison.rename_axis("decision rule"), index=True),
                           "by_group": table(shown(audit, mitigation.by_group.rename_axis(mitigation.sensitive)
                                                   .reset_index()))}
    flagged = [] if bias is None else [_flag(audit, r) for r in bias[bias["flagged"]].itertuples()]
    return render(
        "fairness_report.html", title=f"Fairness audit: {model}", model=model, scope=scope,
        capacity=f"{audit.capacity:.0%}", k=f"{int(op['k']):,}", n=f"{int(op['n']):,}", threshold=f"{op['threshold']:.3f}",
        precision=f"{op['precision_at_k']:.3f}", recall=f"{op['recall_at_k']:.3f}", why=WHY[audit.config.use],
        findings=findings(audit), bootstrap=f"{audit.config.bootstrap:,}", band=f"{audit.config.band[0]}-{audit.config.band[1]}",
        plot=disparity_plot(primary, audit.primary_metrics, audit.config.band, audit.config.disclosure_threshold),
        primary=table(shown(audit, primary)), groups=table(shown(audit, audit.by_group)),
        bias=None if bias is None else table(shown(audit, bias)), flagged=flagged,
        not_checkable=NOT_CHECKABLE, mitigation=mitigation_view, mitigation_note=mitigation_note,
        card_summary=card_summary(audit), all=table(shown(audit, audit.disparities)))
