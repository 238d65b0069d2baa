"""The fairness audit report: self-contained HTML for analysts and governance boards."""

from __future__ import annotations

import base64
import io
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment, select_autoescape  # noqa: E402
from markupsafe import Markup  # noqa: E402

from riskloop.models.fairness import WHY, FairnessAudit  # noqa: E402
from riskloop.models.mitigation import Mitigation  # noqa: E402

NOT_CHECKABLE = ("Whether recorded outcomes measure behaviour equally well in every group cannot be checked from "
                 "these records alone: heavier policing of some areas or groups inflates their recorded outcomes, "
                 "and a model trained on them inherits that. Checking it needs an independent measure of the "
                 "outcome (victim surveys, health or education records) for the same people.")


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def disparity_plot(audit: FairnessAudit) -> str:
    d = audit.disparities[audit.disparities["primary"]]
    low, high = 0.1, 10.0  # ratios beyond are drawn at the edge (an empty cell gives 0 or infinity)
    fig, axes = plt.subplots(1, len(audit.primary_metrics), figsize=(11, 0.3 * max(
        (d["metric"] == m).sum() for m in audit.primary_metrics) + 1.5), squeeze=False, sharey=True)
    colours = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#9e9e9e"}
    for ax, metric in zip(axes[0], audit.primary_metrics):
        rows = d[d["metric"] == metric].reset_index(drop=True)
        y = np.arange(len(rows))
        ax.axvspan(*audit.config.band, color="#e8f5e9")
        ax.axvline(1, color="black", lw=0.8)
        for i, r in rows.iterrows():
            point, lo_ci, hi_ci = (float(np.clip(np.nan_to_num(v, nan=1.0, posinf=high), low, high))
                                   for v in (r["ratio"], r["ci_low"], r["ci_high"]))
            ax.errorbar(point, i, xerr=[[max(point - lo_ci, 0)], [max(hi_ci - point, 0)]], fmt="o",
                        color=colours[r["status"]])
        if ax is axes[0][0]:
            ax.set_yticks(y, [f"{c}: {g} (n={n:,})" for c, g, n in zip(rows["characteristic"], rows["group"], rows["n"])],
                          fontsize=7)
        ax.set_xscale("log")
        ax.set_xlim(low * 0.9, high * 1.1)
        ax.set_xticks([0.1, 0.25, 0.5, 0.8, 1, 1.25, 2, 4, 10], ["0.1", "0.25", "0.5", "0.8", "1", "1.25", "2", "4", "10"])
        ax.minorticks_off()
        ax.set(title=f"{metric.replace('_', ' ')} ratio to reference", xlabel="ratio (log scale), 95% bootstrap CI")
    return _png(fig)


def findings(audit: FairnessAudit) -> list[str]:
    out = []
    d = audit.disparities
    for r in d[d["primary"] & (d["status"] == "fail")].itertuples():
        direction = "higher" if r.ratio > 1 else "lower"
        out.append(f"For {r.characteristic} = {r.group} (n = {r.n:,}), the {r.metric.replace('_', ' ')} is "
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


TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fairness audit: {{ model }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}
table{border-collapse:collapse;font-size:0.82em;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f2f2f2}.note{background:#eef5ff;padding:0.6em;border-left:4px solid #4a7bd0}
.warn{background:#fff3cd;padding:0.6em;border-left:4px solid #e0a800}img{max-width:100%}</style></head><body>
<h1>Fairness audit</h1>
<p>Model <code>{{ model }}</code>; {{ scope }}; generated {{ today }}.</p>
<h2>Operating point</h2>
<p>The partnership can work with {{ capacity }} of the cohort: the top {{ k }} of {{ n }} people by risk
(risk at least {{ threshold }}). At that point precision is {{ precision }} and recall {{ recall }}.
All rates below are at this operating point.</p>
<p class="note">{{ why }}</p>
<h2>Findings in plain language</h2><ul>{% for f in findings %}<li>{{ f }}</li>{% endfor %}</ul>
<h2>Disparities in the primary metrics</h2>
<p>Ratio of each group's rate to the reference group's, with 95% bootstrap intervals ({{ bootstrap }} resamples).
Green: inside the {{ band }} band (pass); red: the whole interval outside it (fail); grey: inconclusive.</p>
<img src="data:image/png;base64,{{ plot }}" alt="disparities">
{{ primary_table }}
<h2>Group metrics (sizes always shown)</h2>{{ group_table }}
<h2>Measurement bias</h2>{{ bias }}
<h2>Mitigation</h2>{{ mitigation }}
<h2>Fairness section of the model card</h2>
<p>{{ card_summary }}</p>
<h3>All disparities</h3>{{ all_table }}
</body></html>"""


def _html(frame: pd.DataFrame) -> Markup:
    return Markup(frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, na_rep="-"))


def card_summary(audit: FairnessAudit) -> str:
    failures = audit.gate_reasons()
    return ("The model passes the fairness gates: no primary disparity fails and calibration is within "
            f"{audit.config.calibration_tolerance} for every group large enough to judge."
            if not failures else f"The model FAILS the fairness gates ({len(failures)} reasons): " + "; ".join(failures))


def render_fairness_report(audit: FairnessAudit, model: str, scope: str, mitigation: Mitigation | None = None,
                           bias: pd.DataFrame | None = None, mitigation_note: str = "not run for this audit") -> str:
    primary = audit.disparities[audit.disparities["primary"]]
    if bias is not None:
        flagged = bias[bias["flagged"]]
        bias_html = Markup(
            "<p>Against the synthetic world's truth: <code>mean_true</code> is the probability of escalation if "
            "everyone's incidents were recorded alike, <code>mean_recorded</code> the same with the world's real "
            "recording. <code>recording_relative</code> is how much each group's records over-state its behaviour "
            "compared with the <code>reference</code> group, whose records over-state it least (the planted bias); "
            "<code>relative</code> is how much the model's scores over-state it. Flagged groups are inflated in "
            "both: the model has inherited heavier recording. "
            "Other gaps in <code>relative</code> come from interventions changing recorded outcomes, which the "
            "untreated truth leaves out.</p>"
            + (f"<p class='warn'>Detected: {', '.join(f'{r.characteristic} = {r.group} ({r.relative:.2f}x)' for r in flagged.itertuples())}.</p>"
               if len(flagged) else "<p>No group is over- or under-estimated beyond the flag.</p>")
            + _html(bias))
    else:
        bias_html = Markup(f"<p>{NOT_CHECKABLE}</p>")
    if mitigation is not None:
        mit_html = Markup(
            f"<p>fairlearn ThresholdOptimizer with the constraint <code>{mitigation.constraint}</code> on "
            f"<code>{mitigation.sensitive}</code>, fitted on the validation slice and compared on test. "
            "<strong>It uses the protected characteristic at decision time</strong>, which needs a lawful basis and "
            "the board's explicit approval. The mitigated model is logged as a candidate, not registered.</p>"
            + mitigation.comparison.to_html(float_format=lambda v: f"{v:.3f}", border=0, na_rep="-")
            + mitigation.by_group.to_html(float_format=lambda v: f"{v:.3f}", border=0, na_rep="-"))
    else:
        mit_html = Markup("<p>Mitigation: {}.</p>").format(mitigation_note)
    op = audit.operating_point
    return Environment(autoescape=select_autoescape(default=True)).from_string(TEMPLATE).render(
        model=model, scope=scope, today=date.today().isoformat(), capacity=f"{audit.config.capacity:.0%}",
        k=f"{int(op['k']):,}", n=f"{int(op['n']):,}", threshold=f"{op['threshold']:.3f}",
        precision=f"{op['precision_at_k']:.3f}", recall=f"{op['recall_at_k']:.3f}", why=WHY[audit.config.use],
        findings=findings(audit), bootstrap=audit.config.bootstrap, band=f"{audit.config.band[0]}-{audit.config.band[1]}",
        plot=disparity_plot(audit), primary_table=_html(primary), group_table=_html(audit.by_group),
        bias=bias_html, mitigation=mit_html, card_summary=card_summary(audit), all_table=_html(audit.disparities))
