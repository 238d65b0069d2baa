"""The dashboard job: the area profile dashboard, a static site under disclosure control."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from riskloop.artifacts.learning import read_learning
from riskloop.artifacts.reports import SITE_WRITES, write_site
from riskloop.artifacts.scores import read_scores
from riskloop.features.area_profile import community_audit
from riskloop.features.io import check_replaceable
from riskloop.jobs.common import open_dataset
from riskloop.models.fairness import AuditConfig
from riskloop.reports.dashboard import render_dashboard

#: What the dashboard reads of the lists.
LISTED_COLUMNS = ("person_id", "local_authority", "listed", "risk", "prevention_tier")
REPORT_TITLES = {
    "model_card.html": "Model card",
    "fairness_report.html": "Fairness report of training (out of time)",
    "fairness_audit.html": "Fairness audit",
    "explainability.html": "Explainability report",
    "learning_report.html": "Learning report",
    "transparency_record.html": "Algorithmic transparency record (ATRS)",
}


@dataclass(frozen=True)
class DashboardJob:
    data: Path
    out: Path  # the site's folder (replaced as a whole)
    as_of: date | None = None  # default: the date of `scores`
    scores: Path | None = None  # a `riskloop score` folder: the current lists
    learning: Path | None = None  # a `riskloop learn` folder: programme outcomes
    reports: tuple[Path, ...] = ()  # reports to link from reports.html (copied into the site)
    disclosure_threshold: int = AuditConfig.disclosure_threshold


@dataclass(frozen=True)
class Dashboard:
    out: Path
    pages: int
    local_authorities: int
    reports: int
    warnings: list[str] = field(default_factory=list)


def dashboard(job: DashboardJob) -> Dashboard:
    """Write the dashboard: an index of local authorities, a page per local authority, data quality,
    programme outcomes and a report index; every count under the disclosure rule."""
    check_replaceable(job.out, SITE_WRITES, "riskloop dashboard")
    as_of, warnings, prioritisation = job.as_of, [], None
    if job.scores is not None:
        scores = read_scores(job.scores, list(LISTED_COLUMNS))
        prioritisation, scored_at = scores.prioritisation, scores.manifest.as_of
        if as_of is None:
            as_of = scored_at
        elif scored_at != as_of:
            warnings.append(f"the lists in {job.scores} were scored at {scored_at}, not {as_of}")
    if as_of is None:
        raise ValueError("--as-of is required (or --scores, whose date is used)")
    if job.disclosure_threshold < 1:
        raise ValueError(f"--disclosure-threshold must be at least 1 (got {job.disclosure_threshold})")
    dataset = open_dataset(job.data)
    dataset.require_rows("areas", "people")
    if as_of > dataset.end:
        raise ValueError(f"as-of {as_of} is after the data's end ({dataset.end})")
    files = [Path(r) for r in job.reports]
    learned = read_learning(job.learning) if job.learning is not None else None
    if learned is not None and learned.report is not None and all(f.name != learned.report.name for f in files):
        files.append(learned.report)
    audit = community_audit(dataset, as_of, prioritisation)
    links = {
        REPORT_TITLES.get(f.name, f.stem.replace("_", " ")): f"reports/{f.name}" if f.exists() else None for f in files
    }
    pages = render_dashboard(audit, job.disclosure_threshold, learned, links if files else None)
    write_site(job.out, pages, [f for f in files if f.exists()])
    return Dashboard(Path(job.out), len(pages), len(audit.local_authorities), sum(f.exists() for f in files), warnings)
