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

import numpy as np
import pytest

from riskloop.artifacts.dataset import read_dataset
from riskloop.features.snapshot import PreparedData
from riskloop.jobs.synthetic import synthetic_truth
from riskloop.pipelines.audit import audit_cohort
from riskloop.pipelines.explain import explain_cohort
from riskloop.pipelines.score import score_cohort
from riskloop.reports.disclosure import SUPPRESSED
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


def chromium(folder: Path, *options: str) -> list[str]:
    """Headless Chromium with a profile of its own under `folder`: test workers may run two at once, and a
    second Chromium on the same profile hands its page to the first and exits."""
    profile = f"--user-data-dir={folder / 'chromium-profile'}"
    return [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", profile, *options]


def browse(page: str, folder: Path) -> list[str]:
    """Open a page in headless Chromium; return what is wrong with it as rendered."""
    path = folder / "page.html"
    path.write_text(page.replace("<head>", f"<head><script>{CHECK}</script>", 1), encoding="utf-8")
    dom = subprocess.run(
        chromium(folder, "--window-size=1200,900", "--dump-dom", path.as_uri()),
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


def _shown(text: str) -> float:
    """A figure as shown; "-" (not defined) is NaN."""
    return float("nan") if text == "-" else float(text.replace(",", ""))


def _close(shown: str, expected: float, what) -> None:
    """`shown` is `expected` to the precision shown ("-" when it is not defined)."""
    if not np.isfinite(expected):
        assert shown == "-", (shown, expected, what)
        return
    digits = len(shown.split(".")[1]) if "." in shown else 0
    assert abs(_shown(shown) - expected) <= 0.5 * 10**-digits + 1e-9, (shown, expected, what)


def _div(a: float, b: float) -> float:
    return a / b if b and np.isfinite(b) else float("nan")


def _interval(shown: str, low: float, high: float, what) -> None:
    if not (np.isfinite(low) and np.isfinite(high)):
        assert shown == "-", (shown, what)
        return
    a, b = shown.split("-")
    _close(a, low, what)
    _close(b, high, what)


def check_recomputed(page: str) -> int:
    """The rate-recomputation test of the dashboard, for the fairness tables: every rate, ratio and interval
    recomputed from the counts the page shows beside it ("*" exactly when one of them is "*"), the findings'
    figures from the figures they quote, and a rate hidden in one table hidden in every other. Returns how
    many figures were checked."""
    from test_dashboard import columns, parse

    from riskloop.models.gate import poisson_interval, wilson

    checked, hidden = 0, set()
    tables = [columns(t) for t in parse(page).tables if t["head"]]
    for rows in tables:
        for row in rows:
            key = (row.get("characteristic"), row.get("group"))
            if {"observed events", "expected events", "ratio", "95% CI"} <= set(row):
                if row["observed events"] == SUPPRESSED or row["people"] == SUPPRESSED:
                    assert row["ratio"] == row["95% CI"] == SUPPRESSED, row
                else:
                    observed, expected = _shown(row["observed events"]), _shown(row["expected events"])
                    _close(row["ratio"], _div(observed, expected), row)
                    low, high = poisson_interval(observed)
                    _interval(row["95% CI"], _div(float(low), expected), _div(float(high), expected), row)
                checked += 1
            if {"errors", "events", "rate", "rate, 95% CI"} <= set(row):
                if SUPPRESSED in (row["errors"], row["events"], row["people"]):
                    assert row["rate"] == SUPPRESSED and row["rate, 95% CI"] == SUPPRESSED, row
                    hidden.add(key)
                else:
                    errors, events = _shown(row["errors"]), _shown(row["events"])
                    _close(row["rate"], _div(errors, events), row)
                    low, high = wilson(errors, events)
                    _interval(row["rate, 95% CI"], float(low), float(high), row)
                    if "excess over the reference" in row:
                        ref = next(r for r in rows if r["status"] == "reference" and r["characteristic"] == key[0])
                        scale = _shown(row["rate its own risks imply"]) * (
                            _shown(ref["rate"]) / _shown(ref["rate its own risks imply"])
                        )
                        _close(row["excess over the reference"], _div(_shown(row["rate"]), scale), row)
                        _interval(row["excess, 95% CI"], _div(float(low), scale), _div(float(high), scale), row)
                checked += 1
            if {"counted", "out of", "rate", "reference group's rate", "ratio"} <= set(row):
                if row["counted"] == SUPPRESSED:
                    assert row["rate"] == row["ratio"] == SUPPRESSED, row
                else:
                    _close(row["rate"], _div(_shown(row["counted"]), _shown(row["out of"])), row)
                    _close(row["ratio"], _div(_shown(row["rate"]), _shown(row["reference group's rate"])), row)
                checked += 1
            if {"people", "events", "observed rate", "selected", "selection rate"} <= set(row):
                if SUPPRESSED in (row["people"], row["events"], row["selected"]):
                    assert row["observed rate"] == row["selection rate"] == SUPPRESSED, row
                else:
                    _close(row["observed rate"], _div(_shown(row["events"]), _shown(row["people"])), row)
                    _close(row["selection rate"], _div(_shown(row["selected"]), _shown(row["people"])), row)
                checked += 1
            if {"people", "events", "selected before", "true positive rate before"} <= set(row):  # mitigation
                for when in ("before", "after"):
                    if SUPPRESSED in (row["people"], row["events"], row[f"selected {when}"]):
                        assert row[f"true positive rate {when}"] == SUPPRESSED, row
                    else:
                        _close(
                            row[f"selection rate {when}"],
                            _div(_shown(row[f"selected {when}"]), _shown(row["people"])),
                            row,
                        )
                    checked += 1
    # the mitigation's min/max ratios are of the rates its group table shows
    rules = next((rows for rows in tables if "decision rule" in rows[0]), None)
    groups = next((rows for rows in tables if "true positive rate after" in rows[0]), None)
    if rules and groups:
        for rule, when in (("model at the mitigated share", "before"), ("mitigated (ThresholdOptimizer)", "after")):
            row = next(r for r in rules if r["decision rule"] == rule)
            for rate in ("true positive rate", "false positive rate"):
                shown = [_shown(g[f"{rate} {when}"]) for g in groups if g[f"{rate} {when}"] != SUPPRESSED]
                _close(row[f"{rate} (min/max)"], _div(min(shown), max(shown)), row)
                checked += 1
    # a harmful error rate hidden in the gate's table is hidden in the descriptive tables too
    harmful = "false negative rate" if "false negative rate (" in page or "The false negative rate" in page else None
    for rows in tables:
        for row in rows:
            if harmful and row.get("metric") == harmful and (row["characteristic"], row["group"]) in hidden:
                assert row["rate"] == SUPPRESSED, row
                checked += 1
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", page)).split())
    for observed, expected, ratio in re.findall(
        r"([\d,]+) events observed against ([\d,.]+) expected, ratio ([\d.]+)", text
    ):
        _close(ratio, _shown(observed) / _shown(expected), (observed, expected))
        checked += 1
    for errors, events, rate in re.findall(r"([\d,]+) errors out of ([\d,]+) events \(rate ([\d.]+)\)", text):
        _close(rate, _shown(errors) / _shown(events), (errors, events))
        checked += 1
    return checked


@pytest.mark.parametrize("report", ["model card", "fairness report", "fairness audit"])
def test_every_figure_is_computed_from_the_figures_shown(pages, report):
    assert check_recomputed(pages[report]) > 20


def test_a_rate_hidden_in_the_gate_is_hidden_everywhere_and_the_findings_add_up():
    """The dashboard's synthetic audit (many groups with 1 to 7 events): the recomputation holds, and a
    false negative rate of a group whose events are "*" in the gate's table is "*" in the disparities."""
    from test_dashboard import fairness_page

    page = fairness_page()
    assert check_recomputed(page) > 30
    assert re.search(r"<td>ethnicity</td><td>Other</td><td>false negative rate</td><td class=\"num\">\*</td>", page)


def test_the_model_card_marks_its_choice_and_says_what_its_figures_are(pages):
    from test_dashboard import columns, parse

    card = pages["model card"]
    text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", card)).split()))
    assert "`" not in text  # no Markdown in HTML
    assert re.search(r"Source: the data set in the folder '[^'/]+' .*?, fingerprint [0-9a-f]{8,} , a digest", text)
    tables = [columns(t) for t in parse(card).tables if t["head"]]
    performance = next(rows for rows in tables if "model group" in rows[0])
    headings = list(performance[0])
    assert headings[:4] == ["model group", "choice", "ROC AUC (validation)", "precision at k (validation)"]
    assert performance[0]["choice"] == "selected" and all(r["choice"] == "" for r in performance[1:])
    assert len(headings) <= 8
    assert re.search(
        r"Their AUC is 0 or 1 by construction, so they are named here rather than scored: .*"
        r"age_band follows from age[;.]",
        text,
    )
    proxies = next(rows for rows in tables if "proxy strength" in rows[0])
    assert "age" not in [r["feature"] for r in proxies if r["characteristic"] == "age_band"]


def test_the_explainability_report_reads_its_figures_out(pages):
    page = pages["explainability report"]
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", page)).split())
    assert re.search(r"The last bar adds up the mean absolute attributions of the \d+ features not drawn", text)
    assert re.search(
        r"share of those whose first reason changed [\d.]+ .*?(stable|moderately stable|unstable) \(", text
    )
    for count in re.findall(r"([\d,]+) people", text):
        assert int(count.replace(",", "")) % 5 == 0, count
    listed = re.search(r"people listed by both of the last two models ([\d,*]+)", text)
    assert listed and (listed[1] == SUPPRESSED or int(listed[1].replace(",", "")) % 5 == 0)


def test_the_findings_quote_the_figures_of_the_tables_and_add_up():
    """A score that over-states group B by half and misses its events: the gate fails, and each failing
    finding's ratio and rate are those of the counts it quotes (as the tables show them)."""
    import pandas as pd

    from riskloop.models.fairness import AuditConfig, audit
    from riskloop.reports.fairness_report import findings, render_fairness_report

    rng = np.random.default_rng(4)
    n = 6_000
    frame = pd.DataFrame({"group": rng.choice(["A", "B"], n, p=[0.8, 0.2])})
    truth = rng.beta(1.5, 10, n)
    y = (rng.random(n) < truth).astype(int)
    risk = np.where(frame["group"] == "B", truth * 1.6, truth)
    result = audit(y, risk, frame, ["group"], AuditConfig(bootstrap=50, intersections=()), capacity=0.1)
    said = " ".join(findings(result))
    assert "Risk is mis-calibrated for group = B overall" in said
    page = render_fairness_report(result, "riskloop-test", "a synthetic audit")
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", page)).split())
    quoted = re.findall(r"([\d,]+) events observed against ([\d,.]+) expected, ratio ([\d.]+)", text)
    assert quoted and check_recomputed(page) >= len(quoted) + 8


def test_a_verdict_the_rounded_figures_would_not_give_is_marked():
    """22 events against 39.07 expected: the exact interval (0.35-0.85) straddles 0.80, inconclusive; shown
    as 20, its interval (0.31-0.79) lies below the band, so the verdict is marked and the footnote says why."""
    import pandas as pd
    from test_dashboard import fairness_audit

    from riskloop.reports import published

    row = {"characteristic": "sex", "group": "F", "scope": "all", "n": 2_580, "observed_events": 22}
    row |= {"expected_events": 39.07, "ratio": 22 / 39.07, "ci_low": 0.35, "ci_high": 0.85}
    frame = pd.DataFrame([row | {"too_few": False, "status": "inconclusive"}])
    shown = published.calibration(fairness_audit(), frame).iloc[0]
    assert (shown["observed_events"], shown["ci"], shown["status"]) == (
        20,
        "0.31-0.79",
        f"inconclusive {published.DIFFERS}",
    )
    assert published.DIFFERS in published.FOOTNOTE
    agreeing = published.calibration(fairness_audit(), frame.assign(observed_events=30, ratio=30 / 39.07)).iloc[0]
    assert agreeing["status"] == "inconclusive"
