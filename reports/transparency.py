"""An Algorithmic Transparency Recording Standard (ATRS v3.0) record of a registered model.

UK public bodies publish one record per algorithmic tool: metadata, a Tier 1 overview for the public,
and Tier 2 sections on owner and responsibility, description and rationale, the decision-making
process, the tool specification (with its data), and risks, mitigations and impact assessments. This
module fills every field riskloop knows (the model contract, the gate's verified evidence, the test
metrics, the remedy and the use of protected characteristics, the promotion history) and marks each
field only the partnership can fill (senior responsible owner, DPIA reference, contact, ...) as
`partnership`. Every count of people passes the disclosure rule (`reports.disclosure`), and every
ratio shown is computed from the counts as shown. Three forms: HTML to read, CSV and JSON (field by
field, in the standard's order) to submit.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import date
from typing import Literal

import pandas as pd

from riskloop.models.contract import ModelContract
from riskloop.models.evidence import GateEvidence, calibration_verdicts, verdicts
from riskloop.reports.disclosure import SUPPRESSED, disclose, disclose_text, from_published
from riskloop.reports.render import render, table

STANDARD_VERSION = "3.0"
TO_COMPLETE = "To be completed by the partnership"
FilledBy = Literal["riskloop", "partnership"]


@dataclass(frozen=True)
class TransparencyInputs:
    contract: ModelContract
    model: str  # e.g. riskloop-escalation v3
    evidence: GateEvidence | None  # verified; None when it could not be verified
    evidence_note: str  # how it was verified, or why it could not be
    history: pd.DataFrame  # promotion attempts (experiments.governance.history)
    generated: date


@dataclass(frozen=True)
class RecordField:
    tier: str
    section: str
    field: str  # the standard's field, snake_case
    label: str
    value: str
    filled_by: FilledBy


def _partnership(tier: str, section: str, field: str, label: str, guidance: str) -> RecordField:
    return RecordField(tier, section, field, label, f"{TO_COMPLETE}: {guidance}", "partnership")


def _purpose(contract: ModelContract) -> str:
    snapshot = contract.snapshot
    label = snapshot.label if snapshot else "the table's outcome"
    horizon = f"within {snapshot.horizon_days} days" if snapshot else "in the table's outcome window"
    use = (
        "to offer support early (an assistive use: the harm of a wrong decision is mostly a missed chance of help)"
        if contract.audit.use == "assistive"
        else "for enforcement (a punitive use: the harm of a wrong decision falls on people wrongly selected)"
    )
    return (
        f"A statistical model estimates, for each person in the partnership's records, the probability of "
        f"'{label}' {horizon}. The people with the highest estimates (the {contract.capacity:.0%} a team can work "
        f"with) are listed {use}. Each listed person comes with the three main reasons for their estimate. The "
        "list is advisory: a practitioner reviews every listed person and decides what, if anything, to do."
    )


def _protected(contract: ModelContract, evidence: GateEvidence | None) -> str:
    audited = ", ".join(contract.protected) or "none"
    used = ", ".join(contract.protected_as_features) or "none"
    within = evidence.calibrated_within if evidence else ()
    text = f"Protected characteristics audited: {audited}. Used as model inputs: {used}."
    if within:
        text += (
            f" Calibrated within {', '.join(within)}: the model's score is mapped to a probability separately for "
            f"each group of {', '.join(within)}, which is therefore required when a person is scored; it is never a "
            "model input and does not change who ranks above whom within a group."
        )
    return text


def period(window: tuple[date, date]) -> str:
    """A window of as-of dates in words: one date, or the first and last."""
    return f"the as-of date {window[0]}" if window[0] == window[1] else f"the as-of dates {window[0]} to {window[1]}"


def _windows(contract: ModelContract) -> str:
    fitted = (
        f"Fitted on {period(contract.training_window)}; early-stopped and calibrated on "
        f"{period(contract.calibration_window)}; "
    )
    if contract.refit:
        return fitted + (
            f"refitted on every outcome known by {contract.labels_closed_by()}. Its figures were measured on "
            f"{period(contract.test_window)} by the same procedure fitted without those outcomes; it was judged "
            "against the model it replaces by a backtest one cycle earlier or in shadow."
        )
    return fitted + f"tested, out of time, on {period(contract.test_window)}."


def gate_table(evidence: GateEvidence) -> pd.DataFrame:
    """The gate's calibration checks as they may be published: group sizes and observed events disclosed,
    the ratio computed from the observed events as shown."""
    threshold = evidence.settings.disclosure_threshold
    verdicts = calibration_verdicts(evidence)
    verdicts = verdicts[verdicts["scope"] == "all"]
    rows = []
    for r in verdicts.itertuples():
        observed = disclose(r.observed_events, threshold)
        hidden = disclose(r.group_n, threshold) == SUPPRESSED or observed == SUPPRESSED
        ratio = from_published(lambda o, e: o / e if e else float("nan"), observed, r.expected_events)
        rows.append(
            {
                "characteristic": r.characteristic,
                "group": r.group,
                "people": disclose_text(r.group_n, threshold),
                "observed events": SUPPRESSED if hidden else disclose_text(r.observed_events, threshold),
                "expected events": SUPPRESSED if hidden else f"{r.expected_events:.1f}",
                "observed / expected": SUPPRESSED if hidden or ratio == SUPPRESSED else f"{ratio:.2f}",
                "verdict": r.status,
            }
        )
    return pd.DataFrame(rows)


def _gate_summary(evidence: GateEvidence | None, note: str, refit: bool) -> str:
    if evidence is None:
        return f"The promotion gate's evidence could not be verified ({note}): no fairness claim is made."
    counts = verdicts(evidence)
    s = evidence.settings
    return (
        f"Before this model could be used, an automated gate judged it on the people scored at "
        f"{period(evidence.test_window)}, "
        + (
            "scored by the same procedure fitted without their outcomes (this model was refitted with them)"
            if refit
            else "whose outcomes it never learned from"
        )
        + f" ({note}). It checked, within every group of "
        f"{', '.join(sorted({c.characteristic for c in evidence.calibration}))}, that the predicted numbers of "
        f"events match those observed within {s.calibration_tolerance:.0%} (calibration), and that no group is "
        f"{'missed' if s.use == 'assistive' else 'wrongly selected'} more than its own risks imply, by more than "
        f"{s.band[1]}x the reference group's excess. {counts.sum()} checks: {counts['fail']} failed, "
        f"{counts['inconclusive']} inconclusive (too few people or events to tell either way). Calibration per group is "
        "tabled below; groups of 1 to "
        f"{s.disclosure_threshold} people are shown as '*', larger counts rounded to the nearest 5."
    )


def _history(history: pd.DataFrame) -> str:
    if history.empty:
        return "No promotion attempt is recorded."
    lines = []
    for r in history.itertuples():
        line = f"{r.when} UTC: v{r.challenger} {r.decision} by {r.by}"
        if r.decision == "forced":
            line += f" (GOVERNANCE OVERRIDE: {r.forced_reason})"
        lines.append(line)
    return "; ".join(lines) + "."


def record(inputs: TransparencyInputs) -> list[RecordField]:
    """Every field of the record, in the standard's order."""
    c, evidence = inputs.contract, inputs.evidence
    metrics = evidence.test_metrics if evidence else {}
    forced = int((inputs.history["decision"] == "forced").sum()) if not inputs.history.empty else 0

    def ours(tier: str, section: str, field: str, label: str, value: str) -> RecordField:
        return RecordField(tier, section, field, label, value, "riskloop")

    meta, t1, t2 = "Metadata", "Tier 1", "Tier 2"
    owner, why, process = "Owner and responsibility", "Description and rationale", "Decision-making process"
    spec, risks = "Tool specification", "Risks, mitigations and impact assessments"
    performance = (
        f"On the test period, ROC AUC {metrics['test_roc_auc']:.3f} (how well it orders people who went on to the "
        f"outcome above those who did not; 0.5 is chance); of the people listed, {metrics['test_precision_at_k']:.1%} "
        f"went on to the outcome, against {metrics['test_prevalence']:.1%} of everyone scored; the listed people "
        f"included {metrics['test_recall_at_k']:.1%} of all who did."
        if {"test_roc_auc", "test_precision_at_k", "test_prevalence", "test_recall_at_k"} <= metrics.keys()
        else "Test metrics are not available (the gate's evidence could not be verified)."
    )
    return [
        ours(meta, "Metadata", "title", "Title", f"{c.registered_model}: {c.name} risk model ({inputs.model})"),
        ours(meta, "Metadata", "standard_version", "ATRS version", STANDARD_VERSION),
        ours(meta, "Metadata", "date_generated", "Date this record was generated", inputs.generated.isoformat()),
        _partnership(meta, "Metadata", "organisation", "Organisation", "the partnership and its member bodies"),
        _partnership(meta, "Metadata", "function", "Function", "e.g. community safety, policing, social care"),
        _partnership(meta, "Metadata", "phase", "Phase", "pre-deployment, beta/pilot, production or retired"),
        _partnership(meta, "Metadata", "region", "Geographic region", "e.g. Wales, or the local authorities"),
        ours(t1, "Overview", "name", "Name", f"{c.name} risk model ({c.registered_model})"),
        ours(t1, "Overview", "description", "Description", _purpose(c)),
        _partnership(t1, "Overview", "website", "Website", "a public page about the tool"),
        _partnership(t1, "Overview", "contact_email", "Contact email", "a monitored team address"),
        _partnership(t2, owner, "organisation_or_department", "Organisation or department", "the accountable body"),
        _partnership(t2, owner, "team", "Team", "the team responsible for using the tool"),
        _partnership(t2, owner, "senior_responsible_owner", "Senior responsible owner", "role title"),
        ours(
            t2,
            owner,
            "external_supplier",
            "External supplier involvement",
            "riskloop is open-source software (Apache-2.0); no supplier is involved unless the partnership "
            "contracts one (then: name, Companies House number, role, procurement route, terms of data access).",
        ),
        ours(
            t2,
            why,
            "detailed_description",
            "Detailed description",
            f"A {c.model_group} model over {len(c.features)} features built from the partnership's records as "
            f"they stood on each as-of date (no information from after it), with probabilities calibrated on "
            f"held-out data. {_windows(c)}",
        ),
        ours(t2, why, "scope", "Scope", _purpose(c)),
        ours(t2, why, "benefit", "Benefit", performance),
        ours(
            t2,
            why,
            "alternatives_considered",
            "Alternatives considered",
            "Each training compares the config's model families (for example logistic regression, gradient "
            "boosting and a one-feature prior-harm baseline) on several successive out-of-time periods and "
            f"chooses on validation data only; the chosen group is '{c.model_group}'. The model card shows the "
            "comparison.",
        ),
        ours(
            t2,
            process,
            "process_integration",
            "Process integration",
            f"Lists per local authority of the {c.capacity:.0%} highest estimates are produced for an as-of date; "
            "each carries the model's version, the data's fingerprint and each person's reasons.",
        ),
        ours(
            t2,
            process,
            "provided_information",
            "Provided information",
            "For each listed person (by pseudonym): the estimated probability, a risk band (1-20) and its label, "
            "and the three main reasons in plain language.",
        ),
        _partnership(t2, process, "frequency_and_scale", "Frequency and scale of usage", "how often lists are made"),
        ours(
            t2,
            process,
            "human_decisions_and_review",
            "Human decisions and review",
            "No decision is automated: a practitioner reviews every listed person, may decline, and records the "
            "review decision, which riskloop keeps beside the list.",
        ),
        _partnership(t2, process, "required_training", "Required training", "training for list reviewers"),
        _partnership(t2, process, "appeals_and_review", "Appeals and review", "how a person can challenge"),
        ours(
            t2,
            spec,
            "system_architecture",
            "System architecture",
            f"riskloop {c.riskloop_version}: records -> point-in-time features -> model (tracked in MLflow, "
            "promoted through a gate that recomputes its decision from verified evidence) -> batch lists and a "
            "secured scoring API; a learning loop estimates what the interventions achieved and retrains.",
        ),
        ours(t2, spec, "model", "Model", f"{c.model_group}; config {c.config_hash}; {_windows(c)}"),
        ours(
            t2,
            spec,
            "maintenance",
            "Maintenance",
            f"Each retrained model is a challenger that must pass the gate before it replaces the champion. "
            f"Promotion history: {_history(inputs.history)}",
        ),
        ours(
            t2,
            spec,
            "data_description",
            "Data description",
            "People, areas, incidents (with roles), interventions and outcomes; identifiers pseudonymised. "
            f"Training data fingerprint {c.data_fingerprint}.",
        ),
        ours(t2, spec, "protected_characteristics", "Protected characteristics", _protected(c, evidence)),
        _partnership(t2, spec, "data_collection", "Data collection", "the source systems and their legal basis"),
        _partnership(t2, spec, "data_sharing_agreements", "Data sharing agreements", "the agreements in force"),
        _partnership(t2, spec, "data_access_and_storage", "Data access and storage", "where data is held, by whom"),
        _partnership(t2, risks, "dpia", "Data protection impact assessment", "DPIA reference and date"),
        _partnership(t2, risks, "equality_impact_assessment", "Equality impact assessment", "reference and date"),
        ours(
            t2,
            risks,
            "fairness_assessment",
            "Fairness assessment",
            _gate_summary(evidence, inputs.evidence_note, c.refit),
        ),
        ours(
            t2,
            risks,
            "risks_and_mitigations",
            "Risks and mitigations",
            "Recorded data reflects where agencies look as well as what people do, so groups recorded more heavily "
            "can be over-estimated: audited by group against the gate above. Interventions change the outcomes "
            "a retrained model learns from: the learning loop accounts for who was treated. Scores are advisory "
            "and every list is reviewed by a person."
            + (f" {forced} promotion(s) overrode the gate (see maintenance)." if forced else ""),
        ),
    ]


def record_json(fields: list[RecordField]) -> str:
    sections: dict[str, dict[str, str]] = {}
    for f in fields:
        sections.setdefault(f"{f.tier}: {f.section}" if f.tier != "Metadata" else "Metadata", {})[f.field] = f.value
    to_complete = [f"{f.tier}: {f.section}: {f.field}" for f in fields if f.filled_by == "partnership"]
    return json.dumps({"standard_version": STANDARD_VERSION, "record": sections, "to_complete": to_complete}, indent=2)


def record_csv(fields: list[RecordField]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(RecordField.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(f) for f in fields)
    return buffer.getvalue()


def render_record(inputs: TransparencyInputs, fields: list[RecordField]) -> str:
    evidence = inputs.evidence
    sections: dict[tuple[str, str], list[RecordField]] = {}
    for f in fields:
        sections.setdefault((f.tier, f.section), []).append(f)
    return render(
        "transparency.html",
        title=f"Algorithmic transparency record: {inputs.model}",
        model=inputs.model,
        sections=sections,
        gate=table(gate_table(evidence)) if evidence else None,
        to_complete=sum(f.filled_by == "partnership" for f in fields),
        prefix=TO_COMPLETE,
    )
