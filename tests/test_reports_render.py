"""Every report opened in headless Chromium: no unrendered template, no JavaScript or console error,
no markup shown as text, every image decodes, no table wider than the page without a scroll wrapper."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData
from riskloop.jobs.synthetic import synthetic_truth
from riskloop.pipelines.audit import audit_cohort
from riskloop.pipelines.explain import explain_cohort
from riskloop.pipelines.score import score_cohort
from riskloop.reports.explain_report import render_explain_report
from riskloop.reports.fairness_report import render_fairness_report
from riskloop.reports.model_card import card_plots, render_model_card

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (.ci/run installs Debian's chromium): the reports are not opened in a browser",
)

#: Runs in the page: collects errors, then on load checks images and tables and writes its findings
#: into <pre id="riskloop-check"> for --dump-dom to return.
CHECK = """
window.__problems = [];
window.addEventListener("error", e => window.__problems.push("error: " + (e.message || "resource failed: "
    + String(e.target && e.target.src).slice(0, 40))), true);
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { window.__problems.push("console." + level + ": " + args.join(" "));
                                  original.apply(console, args); };
}
window.addEventListener("load", () => {
  const problems = window.__problems, body = document.body;
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push("image does not decode: " + img.alt);
  }
  const right = body.getBoundingClientRect().right - parseFloat(getComputedStyle(body).paddingRight);
  for (const table of document.querySelectorAll("table")) {
    if (table.getBoundingClientRect().right <= right + 1) continue;
    let scrolls = false;
    for (let e = table.parentElement; e && e !== body; e = e.parentElement) {
      if (["auto", "scroll"].includes(getComputedStyle(e).overflowX)) scrolls = true;
    }
    if (!scrolls) problems.push("table wider than the page without a scroll wrapper: "
                                + table.rows[0].textContent.slice(0, 40));
  }
  const out = document.createElement("pre");
  out.id = "riskloop-check";
  out.textContent = JSON.stringify(problems);
  body.appendChild(out);
});
"""


def browse(page: str, folder: Path) -> list[str]:
    """Open a page in headless Chromium; return what is wrong with it as rendered."""
    path = folder / "page.html"
    path.write_text(page.replace("<head>", f"<head><script>{CHECK}</script>", 1), encoding="utf-8")
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,900",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    found = re.search(r'<pre id="riskloop-check">(.*?)</pre>', dom, re.S)
    assert found, f"the page did not load: {dom[:300]!r}"
    problems = json.loads(html.unescape(found[1]))
    text = re.sub(r"<script>.*?</script>|data:image/png;base64,[\w+/=]+", "", dom, flags=re.S)
    if re.search(r"\{\{|\{%|\{#", text):
        problems.append("unrendered template")
    problems += [f"markup shown as text: {m}" for m in re.findall(r"&lt;/?[a-zA-Z][^&]{0,30}&gt;", text)]
    return problems


@pytest.fixture(scope="module")
def pages(escalation_run, world_20k) -> dict[str, str]:
    """The four reports of the session's escalation model: model card, fairness report (training),
    fairness audit (with the synthetic truth) and explainability report (with a person's page)."""
    config, data, result = escalation_run
    scorer, as_of = result.scorer, date(2024, 7, 1)
    cohort = score_cohort(scorer, PreparedData.from_dataset(read_dataset(world_20k)), as_of)
    audited = audit_cohort(cohort, synthetic_truth(world_20k, as_of, scorer.contract))
    person = cohort.frame.loc[cohort.frame["risk"].idxmax(), "person_id"]
    explained = explain_cohort(scorer, cohort, sample_size=2_000, person=person)
    model = f"models:/{config.registered_model}@challenger"
    return {
        "model card": render_model_card(config, data, result, card_plots(config, data, result)),
        "fairness report": render_fairness_report(
            result.fairness,
            config.registered_model,
            f"out-of-time audit on {data.splits[-1].name}",
            result.mitigation,
            mitigation_note=result.mitigation_note,
        ),
        "fairness audit": render_fairness_report(audited.audit, model, f"audit at {as_of}", None, audited.bias),
        "explainability report": render_explain_report(
            explained, model, as_of, scorer.importance_by_split, scorer.stability
        ),
    }


@pytest.mark.parametrize("report", ["model card", "fairness report", "fairness audit", "explainability report"])
def test_report_renders_cleanly_in_a_browser(pages, tmp_path, report):
    assert browse(pages[report], tmp_path) == []


@pytest.mark.parametrize("report", ["model card", "fairness report", "fairness audit"])
def test_report_tables_show_no_small_count(pages, report):
    """Group sizes, and the events and errors within groups, under the disclosure rule (threshold 7)."""
    from test_dashboard import check_report_counts

    assert check_report_counts(pages[report], 7) > 20


def test_the_browser_check_finds_each_kind_of_fault(tmp_path):
    broken = (
        """<!doctype html><html><head><meta charset="utf-8"><style>body { max-width: 600px; }</style></head>
    <body><p>{{ title }}</p><p>&lt;p&gt;a paragraph shown as text&lt;/p&gt;</p>
    <img src="data:image/png;base64,AAAA" alt="broken figure"><table><tr><td>"""
        + "x" * 300
        + """</td></tr></table>
    <script>notDefined();</script></body></html>"""
    )
    problems = browse(broken, tmp_path)
    for fault in (
        "error: Uncaught ReferenceError",
        "image does not decode: broken figure",
        "table wider than the page without a scroll wrapper",
        "unrendered template",
        "markup shown as text: &lt;p&gt;",
    ):
        assert any(p.startswith(fault) for p in problems), (fault, problems)
