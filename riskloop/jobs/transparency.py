"""The transparency job: an ATRS record of a registered model, from its contract, its verified gate
evidence and its promotion history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from riskloop.artifacts.reports import write_transparency
from riskloop.experiments.governance import history
from riskloop.experiments.registry import load_model, model_evidence
from riskloop.jobs.common import model_label
from riskloop.models.evidence import EvidenceError
from riskloop.reports.transparency import TransparencyInputs, record, record_csv, record_json, render_record


@dataclass(frozen=True)
class TransparencyJob:
    model: str  # model URI, e.g. models:/riskloop-escalation@champion
    out: Path


@dataclass(frozen=True)
class Recorded:
    path: Path  # the HTML page; .csv and .json beside it
    to_complete: int  # fields only the partnership can fill
    verified: bool  # the gate's evidence was verified


def transparency(job: TransparencyJob) -> Recorded:
    loaded = load_model(job.model)
    try:
        verified = model_evidence(loaded)
        evidence, note = verified.content, f"evidence verified, sha256 {verified.sha256[:12]}"
    except EvidenceError as exc:
        evidence, note = None, str(exc)
    inputs = TransparencyInputs(
        loaded.contract,
        model_label(loaded),
        evidence,
        note,
        history(loaded.name or loaded.contract.registered_model),
        date.today(),
    )
    fields = record(inputs)
    path = write_transparency(job.out, render_record(inputs, fields), record_csv(fields), record_json(fields))
    return Recorded(path, sum(f.filled_by == "partnership" for f in fields), evidence is not None)
