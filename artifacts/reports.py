"""Reports written by a job: the transparency record, the fairness audit (`fairness_audit.html` and its disparities under the
disclosure rule, with any rejected rows of an audited table), the explainability report, and the
dashboard's static site (its pages, and copies of the reports it links to in `reports/`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from riskloop.features.io import atomic_folder, write_csv_atomic, write_text_atomic

AUDIT_REPORT = "fairness_audit.html"
EXPLAIN_REPORT = "explainability.html"
TRANSPARENCY_RECORD = "transparency_record"  # .html, .csv and .json
#: What the dashboard's folder holds (`features.io.check_replaceable`): its pages and the reports' copies
SITE_WRITES = ("index.html", "reports.html", "la-*.html", "reports/*")


def write_audit(folder: Path, html: str, disparities: pd.DataFrame, rejected: pd.DataFrame | None = None) -> Path:
    """`fairness_audit.html`, `fairness_disparities.csv` (already disclosed) and, if any, `rejected_rows.csv`."""
    path = Path(folder) / AUDIT_REPORT
    write_text_atomic(html, path)
    write_csv_atomic(disparities, Path(folder) / "fairness_disparities.csv")
    if rejected is not None and len(rejected):
        write_csv_atomic(rejected, Path(folder) / "rejected_rows.csv")
    return path


def write_explainability(folder: Path, html: str) -> Path:
    path = Path(folder) / EXPLAIN_REPORT
    write_text_atomic(html, path)
    return path


def write_transparency(folder: Path, html: str, csv: str, json: str) -> Path:
    """The transparency record in its three forms, each written atomically; returns the HTML page's path."""
    for suffix, text in (("csv", csv), ("json", json), ("html", html)):
        write_text_atomic(text, Path(folder) / f"{TRANSPARENCY_RECORD}.{suffix}")
    return Path(folder) / f"{TRANSPARENCY_RECORD}.html"


def write_site(out: Path, pages: dict[str, str], reports: list[Path]) -> None:
    """The dashboard's folder, replaced as a whole: its pages and `reports/` copies of `reports`."""
    with atomic_folder(Path(out), SITE_WRITES, "riskloop dashboard") as folder:
        for name, page in pages.items():
            (folder / name).write_text(page, encoding="utf-8")
        if reports:
            (folder / "reports").mkdir()
            for f in reports:
                shutil.copyfile(f, folder / "reports" / f.name)
