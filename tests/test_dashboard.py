"""The area profile dashboard: a tiny world rendered into a static site, its content and its disclosure
control checked cell by cell, and (with Chromium) opened in a headless browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import hand_manifest, make_world
from typer.testing import CliRunner

from riskloop.artifacts.dataset import read_dataset
from riskloop.artifacts.scores import UnitCounts, write_scores
from riskloop.cli import app
from riskloop.features.area_profile import community_audit
from riskloop.learning.cycle import LearningResult
from riskloop.learning.drift import coverage_note, drift_by_unit, drift_table
from riskloop.learning.effects import Nuisance, effect_table, overlap
from riskloop.learning.policy import COLUMNS, RULES, PolicyEvaluation, recommend
from riskloop.learning.programmes import ProgrammeResult, analyse_programme
from riskloop.learning.report import TARGETING_COLUMNS, render_learning_report, who_view
from riskloop.learning.uplift import qini_curve
from riskloop.models.fairness import AuditConfig, audit
from riskloop.reports.dashboard import change, la_page, per_100k, render_dashboard
from riskloop.reports.disclosure import SUPPRESSED, disclose, protect_counts, protect_series, share
from riskloop.reports.fairness_report import findings, render_fairness_report

AS_OF = date(2025, 7, 1)
runner = CliRunner()
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A 4,000-person world (2 local authorities): many counts of 1 to 10 to suppress."""
    return make_world(tmp_path_factory.mktemp("dash") / "world", 4_000, seed=5)


def fake_scores(world: Path, folder: Path) -> Path:
    """A `riskloop score` folder's prioritisation.parquet for the cohort at AS_OF (risks drawn at random)."""
    people = pd.read_parquet(world / "people.parquet")
    areas = pd.read_parquet(world / "areas.parquet")
    incidents = pd.read_parquet(world / "incidents.parquet")
    cohort = incidents.loc[pd.to_datetime(incidents["date"]) < pd.Timestamp(AS_OF), "person_id"].unique()
    frame = people[people["person_id"].isin(cohort)].merge(areas[["area_id", "local_authority"]], on="area_id")
    rng = np.random.default_rng(0)
    frame = frame.assign(risk=rng.beta(1, 6, len(frame)))
    frame["rank"] = frame.groupby("local_authority")["risk"].rank(ascending=False, method="first").astype(int)
    frame["listed"] = frame["rank"] <= 40
    frame["prevention_tier"] = rng.choice(["primary", "secondary", "tertiary"], len(frame))
    frame["as_of"] = pd.Timestamp(AS_OF)
    frame = frame[["person_id", "area_id", "local_authority", "rank", "listed", "risk", "prevention_tier", "as_of"]]
    units = {la: UnitCounts(len(rows), 40, int(rows["listed"].sum())) for la, rows in frame.groupby("local_authority")}

    def prioritisation(path: Path) -> int:
        frame.to_parquet(path, index=False)
        return len(frame)

    write_scores(
        folder,
        hand_manifest(AS_OF, units),
        "local_authority",
        prioritisation,
        frame[frame["listed"]].assign(
            unit=frame["local_authority"], band=1, band_label="low", reason_1="", reason_2="", reason_3=""
        ),
    )
    return folder


def fairness_audit():
    """A small synthetic audit: many groups whose events and errors number 1 to 7."""
    rng = np.random.default_rng(1)
    n = 3_000
    frame = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], n),
            "ethnicity": rng.choice(["White", "Asian", "Black", "Mixed", "Other"], n, p=[0.8, 0.08, 0.06, 0.04, 0.02]),
        }
    )
    risk = rng.beta(1, 8, n)
    y = (rng.random(n) < risk).astype(int)
    return audit(y, risk, frame, ["sex", "ethnicity"], AuditConfig(bootstrap=50), capacity=0.1)


def fairness_page() -> str:
    return render_fairness_report(fairness_audit(), "riskloop-test", "a synthetic audit")


def learning_page(threshold: int, near_trim: int = 0, drift_coverage: str = "") -> str:
    """A learning report of a synthetic cycle (disclosure threshold `threshold`): small subgroups, a few
    starters trimmed, `near_trim` starters kept just under the trim, a programme with 19 starters, 6 new
    programme starts."""
    rng = np.random.default_rng(2)
    n = 2_000
    t = (rng.random(n) < 0.1).astype(int)
    y = (rng.random(n) < 0.2).astype(int)
    e = np.clip(0.1 + 0.03 * rng.standard_normal(n), 0.01, 0.9)
    e[np.flatnonzero(t)[:3]] = 0.97
    e[np.flatnonzero(t)[3 : 3 + near_trim]] = 0.9
    nuisance = Nuisance(e, np.full(n, 0.2), ~((t == 1) & (e > 0.95)))
    tier = rng.choice(["primary", "secondary", "tertiary"], n, p=[0.88, 0.1, 0.02])
    effects = effect_table(t, y, nuisance, {"prevention tier": tier})
    curve = qini_curve(y, t, rng.random(n))
    who = pd.DataFrame({"learner": ["t_learner", "x_learner"], "qini_coefficient": [0.01, -0.01]})
    rules = pd.DataFrame(  # which targeting: places, then escalations' and harm's six figures per 1,000 people
        [[200, 30.0, 28.0, 32.0, 0, 0, 0, 2410.0, 2200.0, 2620.0, 0, 0, 0]]
        + [[200, 29.0, 27.0, 31.0, -1.0, -2.5, 0.5, 2390.0, 2150.0, 2630.0, -20.0, -90.0, 50.0]] * 3
        + [[0, 33.0, 31.0, 35.0, 3.0, 1.0, 5.0, 2460.0, 2240.0, 2680.0, 50.0, 10.0, 90.0]],
        index=list(RULES),
        columns=list(COLUMNS),
    )
    drive = ProgrammeResult(
        "drive",
        int(t.sum()),
        effects,
        overlap(t, nuisance),
        {"t_learner": curve, "x_learner": curve},
        who,
        None,
        targeting=PolicyEvaluation(rules, *recommend(rules)),
    )
    few = pd.DataFrame({"person_id": np.arange(n), "started_youth_early_action": np.arange(n) < 19, "escalated": y})
    small = analyse_programme("youth_early_action", pd.DataFrame({"x": rng.random(n)}), few, {})
    outcomes = pd.DataFrame(
        {
            "listed": rng.random(n) < 0.1,
            "any_programme": t.astype(bool),
            "escalated": np.where(rng.random(n) < 0.05, np.nan, y),
        }
    )
    before, after = pd.DataFrame({"x": rng.random(500), "la": "A"}), pd.DataFrame({"x": rng.random(500), "la": "A"})
    champion = SimpleNamespace(
        name="riskloop-test", version=3, contract=SimpleNamespace(audit=AuditConfig(disclosure_threshold=threshold))
    )
    result = LearningResult(
        date(2024, 12, 1),
        365,
        champion,
        outcomes,
        [drive, small],
        {"incident involvements": 1_234, "programme starts": 6},
        drift_table(before, after, ["x"]),
        drift_by_unit(before, after, "x", "la"),
        (date(2024, 12, 1), date(2025, 12, 1)),
        "treatment-aware",
        drift_coverage=drift_coverage,
    )
    return render_learning_report(result)


def fake_learning(folder: Path) -> Path:
    """A `riskloop learn` output: effects.csv (counts disclosed), learning.json, learning_report.html."""
    learning = folder / "learning"
    learning.mkdir(parents=True)
    pd.DataFrame(
        {
            "programme": ["drive", "drive", "iris", "diversion"],
            "subgroup": ["all", "sex", "all", "all"],
            "level": ["all", "F", "all", "all"],
            "n_treated": ["120", "*", "*", "40"],
            "n_control": ["2400", "800", "2500", "2500"],
            "treated_rate": [0.2, "*", "*", 0.1],
            "naive": [0.05, "*", "*", 0.01],
            "naive_se": [0.02, "*", "*", 0.05],
            "naive_ci_low": [0.01, "*", "*", -0.09],
            "naive_ci_high": [0.09, "*", "*", 0.11],
            "dr": [-0.04, "*", "*", -0.452],
            "dr_se": [0.015, "*", "*", 0.51],
            "dr_ci_low": [-0.07, "*", "*", -1.45],
            "dr_ci_high": [-0.01, "*", "*", 0.546],
        }
    ).to_csv(learning / "effects.csv", index=False)
    (learning / "learning.json").write_text(
        json.dumps(
            {
                "as_of": "2024-12-01",
                "retrain": "treatment-aware",
                "promoted": False,
                "promotion_reasons": [],
                "challenger_version": "2",
                "programmes": {
                    "drive": "It worked.",
                    "iris": "Too few to estimate.",
                    "youth_early_action": "Too few to estimate: fewer than 20 started it.",
                },
                "recommendation": "Keep filling places by risk.",
            }
        )
    )
    (learning / "learning_report.html").write_text(learning_page(10), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def site(world, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("site")
    card, fairness = base / "model_card.html", base / "fairness_report.html"
    card.write_text("<!doctype html><title>Model card</title><p>card</p>")
    fairness.write_text(fairness_page(), encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "dashboard",
            "--data",
            str(world),
            "--scores",
            str(fake_scores(world, base / "scores")),
            "--learning",
            str(fake_learning(base / "learn")),
            "--report",
            str(card),
            "--report",
            str(fairness),
            "--report",
            str(base / "missing" / "explainability.html"),
            "--out",
            str(base / "site"),
        ],
    )
    assert result.exit_code == 0, result.output
    return base / "site"


class Cells(HTMLParser):
    """Every table (rows of (class, text) cells, split into body and total) and every element with a class."""

    def __init__(self):
        super().__init__()
        self.tables, self.classed, self.links, self._stack = [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "src"):
            if name in attrs:
                self.links.append(attrs[name])
        if tag == "table":
            self.tables.append({"head": [], "body": [], "total": []})
            self._part = "body"
        elif tag == "thead":
            self._part = "head"
        elif tag == "tfoot":
            self._part = "total"
        elif tag == "tbody":
            self._part = "body"
        elif tag == "tr" and self.tables:
            self.tables[-1][getattr(self, "_part", "body")].append([])
        elif tag in ("td", "th") and self.tables and self.tables[-1][getattr(self, "_part", "body")]:
            self._cell = [attrs.get("class") or "", ""]
        if "class" in attrs and tag not in ("td", "th"):
            self._stack.append([attrs["class"], ""])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][getattr(self, "_part", "body")][-1].append((self._cell[0], self._cell[1].strip()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        for item in self._stack:
            item[1] += data
        if self._stack and data.strip():
            self.classed.append((self._stack[-1][0], data.strip()))
            self._stack.pop()


def parse(page: str) -> Cells:
    cells = Cells()
    cells.feed(page)
    return cells


def is_count(cls: str) -> bool:
    return "count" in cls.split()


def allowed_count(text: str, threshold: int) -> bool:
    """ "*", "0" or a multiple of 5, at least the smallest count above the threshold rounded to 5 (8 -> 10)."""
    if text == SUPPRESSED:
        return True
    value = int(text.replace(",", ""))
    return value == 0 or (value % 5 == 0 and value >= 5 * round((threshold + 1) / 5 + 1e-9))


def test_the_learning_report_warns_in_words_when_starters_crowd_the_trim():
    assert "Weak overlap" not in learning_page(10)
    assert "Weak overlap" not in learning_page(10, near_trim=15)  # under a tenth of about 200 starters
    text = lambda page: " ".join(page.split())  # noqa: E731
    assert "Weak overlap: 40 people who started had a propensity between 0.8 and 0.95" in text(
        learning_page(10, near_trim=40)
    )
    assert "Weak overlap: * people who started" in text(learning_page(50, near_trim=40))  # a count under the threshold


def test_every_figure_of_the_learning_report_has_its_unit():
    """Effects and their intervals in points; true effects (synthetic worlds) in points like the estimates."""
    page = learning_page(10)
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", page)
    for low_high in (
        "naive 95% low (points)",
        "naive 95% high (points)",
        "DR 95% low (points)",
        "DR 95% high (points)",
    ):
        assert low_high in headers
    assert "Qini coefficient (escalations prevented beyond random targeting, mean over shares)" in headers
    # which targeting: escalations and recorded harm side by side, each per 1,000 people with its interval
    for shown in TARGETING_COLUMNS:
        assert shown in headers
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert "2,410.0 (2,200.0 to 2,620.0)" in cells and "+50.0 (+10.0 to +90.0)" in cells
    who = pd.DataFrame(
        {
            "learner": ["t_learner"],
            "qini_coefficient": [0.01],
            "spearman_with_true_effect": [0.2],
            "true_effect_top_decile": [-0.081],
            "true_effect_everyone": [-0.04],
        }
    )
    shown = who_view(who).iloc[0]
    assert shown["true effect in the tenth with the highest predicted benefit (points)"] == "-8.1"
    assert shown["true effect, everyone analysed (points)"] == "-4.0" and shown["learner"] == "T-learner"


def test_the_learning_report_says_when_drift_is_the_data_coverage():
    assert coverage_note([], date(2019, 1, 1), 1095) == ""
    note = coverage_note([date(2020, 7, 1)], date(2019, 1, 1), 1095)
    assert note.startswith("The data begin 2019-01-01, so the cohort at 2020-07-01 has less than the 1,095 days")
    assert note in " ".join(html.unescape(learning_page(10, drift_coverage=note)).split())
    assert "the data's coverage" not in html.unescape(learning_page(10))


def test_secondary_suppression():
    counts = pd.DataFrame({"a": [3, 20, 40], "b": [12, 50, 60]}, index=["x", "y", "z"])
    shown, hidden = protect_counts(counts, 7, rows=False, columns=True)
    assert list(shown["a"]) == [SUPPRESSED, SUPPRESSED, 40]  # 3 is small; 20, the next smallest, goes with it
    assert list(shown["b"]) == [10, 50, 60]  # no small cell: rounded to 5 only
    shown, _ = protect_counts(counts, 7, rows=True, columns=True)
    assert shown.loc["x", "b"] == SUPPRESSED  # the row's total would reveal the 3 too
    assert (protect_counts(counts, 7)[1].sum(axis=0) != 1).all() and (
        protect_counts(counts, 7)[1].sum(axis=1) != 1
    ).all()
    shown, _ = protect_series(pd.Series([4, 0, 0, 30]), 7)
    assert list(shown) == [SUPPRESSED, 0, 0, SUPPRESSED]  # zeros cannot hide it: the next non-zero cell does
    shown, _ = protect_series(pd.Series([9, 30, 12]), 10)
    assert list(shown) == [SUPPRESSED, 30, SUPPRESSED]  # a partnership's threshold of 10


def test_every_local_authority_has_a_page_and_nothing_points_off_the_site(site, world):
    authorities = pd.read_parquet(world / "areas.parquet")["local_authority"].unique()
    assert len(authorities) >= 2
    pages = {p.name: p.read_text(encoding="utf-8") for p in site.glob("*.html")}
    assert set(pages) == {"index.html", "reports.html", *(la_page(n) for n in authorities)}
    for name, page in pages.items():
        assert (
            "http://" not in page
            and "https://" not in page
            and "//" not in re.sub(r"<svg.*?</svg>|<script>.*?</script>", "", page, flags=re.S)
        ), name
        for link in parse(page).links:
            assert not re.match(r"[a-z]+:", link) and not link.startswith("/"), (name, link)
            target = link.split("#")[0]
            assert not target or (site / target).exists(), (name, link)
        assert "{{" not in page and "{%" not in page
    index = pages["index.html"]
    for n in authorities:
        assert f'href="{la_page(n)}"' in index and f"<h1>{n}</h1>" in pages[la_page(n)]
    la = pages[la_page(authorities[0])]
    for heading in (
        "The managed cohort",
        "Incidents and harm over time",
        "Incident mix",
        "Repeat victimisation",
        "Where it concentrates",
        "Deprivation gradient",
        "Intervention coverage",
        "Programme outcomes",
        "Risk distribution of the current list",
    ):
        assert heading in la, heading
    assert la.count("<svg") >= 4 and "on the current list" in la and "doubly robust" in la
    assert "Data quality" in index and "Missing fields" in index and 'class="sortable"' in index


def test_programme_outcomes_name_person_months_and_keep_programmes_too_small_to_estimate(site):
    index = parse((site / "index.html").read_text(encoding="utf-8"))
    outcomes = next(
        columns(t)
        for t in index.tables
        if t["head"] and t["head"][0][0][1] == "programme" and any("doubly robust" in h for _, h in t["head"][0])
    )
    assert "comparison person-months" in outcomes[0] and "comparison people" not in outcomes[0]
    by_name = {row["programme"]: row for row in outcomes}
    assert set(by_name) == {"drive", "iris", "diversion", "youth early action"}
    assert by_name["youth early action"]["doubly robust (points, 95% CI)"] == "too few to estimate"
    assert by_name["drive"]["comparison person-months"] == "2,400"


def test_an_interval_past_100_points_is_clipped_and_called_unstable(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    outcomes = next(
        columns(t)
        for t in parse(index).tables
        if t["head"] and t["head"][0][0][1] == "programme" and any("doubly robust" in h for _, h in t["head"][0])
    )
    by_name = {row["programme"]: row for row in outcomes}
    assert by_name["diversion"]["doubly robust (points, 95% CI)"] == "-45.2 (-100.0 to +54.6), unstable"
    assert by_name["drive"]["doubly robust (points, 95% CI)"] == "-4.0 (-7.0 to -1.0)"
    assert "An estimate marked unstable: its 95% interval reaches past ±100 percentage points" in index
    assert "-145" not in index


def test_the_report_index_links_copies_of_the_reports(site):
    reports = (site / "reports.html").read_text()
    assert 'href="reports/model_card.html"' in reports and 'href="reports/learning_report.html"' in reports
    assert "Explainability report: not produced in this run" in reports
    assert (site / "reports" / "model_card.html").exists() and (site / "reports" / "learning_report.html").exists()


def check_disclosure(pages: dict[str, str], threshold: int) -> int:
    """Every count shown is "*", 0 or a multiple of 5 no smaller than a count above the threshold rounds to; on a row whose counts are all "*"
    every rate is "*"; in a table with a total, no count column has exactly one "*" among non-zero cells.
    Returns how many counts were checked."""
    checked = 0
    for name, page in pages.items():
        cells = parse(page)
        for cls, value in cells.classed:
            if is_count(cls):
                assert allowed_count(value, threshold), (name, value)
                checked += 1
        for table in cells.tables:
            for row in table["body"] + table["total"]:
                counts = [v for c, v in row if is_count(c)]
                for value in counts:
                    assert allowed_count(value, threshold), (name, row)
                    checked += 1
                if counts and all(v == SUPPRESSED for v in counts):
                    assert all(v == SUPPRESSED for c, v in row if "rate" in c.split()), (name, row)
            if table["total"] and table["body"]:
                for j, (cls, _) in enumerate(table["body"][0]):
                    if is_count(cls):
                        column = [row[j][1] for row in table["body"] if len(row) > j]
                        stars = column.count(SUPPRESSED)
                        others = [v for v in column if v not in (SUPPRESSED, "0")]
                        assert stars != 1 or not others, (name, j, column)
    return checked


def test_no_page_shows_an_unsuppressed_small_count(site, world):
    pages = {p.name: p.read_text(encoding="utf-8") for p in site.glob("*.html")}
    assert check_disclosure(pages, 7) > 200
    # the raw counts behind one table: a type with 1 to 7 incidents in a local authority is "*" on its page
    audit = community_audit(read_dataset(world), AS_OF)
    mix = audit.mix
    small = mix[(mix["incidents"] >= 1) & (mix["incidents"] <= 7)]
    assert len(small), "the tiny world should have small counts to suppress"
    from riskloop.reports.dashboard import TYPE_WORDS
    from riskloop.reports.words import words

    for r in small.itertuples():
        label = TYPE_WORDS.get(r.type, words(r.type))
        row = re.search(rf"<tr><td>{re.escape(label)}</td>(.*?)</tr>", pages[la_page(r.local_authority)])
        assert row and row[1].startswith('<td class="num count">*</td><td class="num rate">*</td>'), (label, row)


def columns(table: dict) -> list[dict[str, str]]:
    """A parsed table's body and total rows as {column heading: cell text}."""
    headings = [t for _, t in table["head"][0]]
    return [dict(zip(headings, (t for _, t in row))) for row in table["body"] + table["total"]]


def value(shown: str) -> float:
    return float(shown.replace(",", "").replace("%", "").replace("+", ""))


def check_rate(shown: str, f, *counts: str) -> None:
    """A rate as shown is `f` of the counts as shown: "*" exactly when one of them is, else `f` of them
    to the precision shown (so it reveals nothing they do not), in whole numbers from 100, never "-0%"."""
    if SUPPRESSED in counts:
        assert shown == SUPPRESSED, (shown, counts)
        return
    expected = f(*(value(c) for c in counts))
    if not np.isfinite(expected):
        assert shown == "-", (shown, counts)
        return
    digits = len(shown.rstrip("%").split(".")[1]) if "." in shown else 0
    assert abs(value(shown) - expected) <= 0.5 * 10**-digits + 1e-9, (shown, expected, counts)
    assert "." not in shown or abs(expected) < 100, (shown, counts)
    assert shown not in ("-0%", "+0%"), (shown, counts)


def test_every_rate_is_computed_from_the_counts_shown(site, world):
    """Each rate, change and share on every page recomputed from the counts and residents the site shows
    (or, where the site shows no count it depends on, the count as published): it never reveals more."""
    pages = {p.name: p.read_text(encoding="utf-8") for p in site.glob("*.html")}
    audit = community_audit(read_dataset(world), AS_OF)
    checked = 0
    la_pages = {}
    for name, page in pages.items():
        tables = [columns(t) for t in parse(page).tables if t["head"]]
        for rows in tables:
            for row in rows:
                if {"residents", "incidents (12 months)", "incidents per 100,000 residents"} <= set(row):
                    check_rate(
                        row["incidents per 100,000 residents"], per_100k, row["incidents (12 months)"], row["residents"]
                    )
                    assert (
                        (row["harm per 100,000 residents"] == SUPPRESSED)
                        == (row["incidents (12 months)"] == SUPPRESSED)
                        if "harm per 100,000 residents" in row
                        else True
                    )
                for heading in [h for h in row if h.endswith(": share")]:
                    total = rows[-1][heading.removesuffix(": share")]
                    check_rate(row[heading], share, row[heading.removesuffix(": share")], total)
                checked += 1
        if name.startswith("la-"):
            tiles = {
                label: shown
                for _, shown, label in re.findall(
                    r'<span class="value ([a-z]*)">(.*?)</span><span class="label">(.*?)</span>', page
                )
            }
            mix = next(rows for rows in tables if "incident type" in rows[0])
            for row in mix:
                check_rate(row["per 100,000 residents"], per_100k, row["incidents (12 months)"], tiles["residents"])
                check_rate(row["change"], change, row["incidents (12 months)"], row["incidents (previous 12 months)"])
            victims = next(rows for rows in tables if "all incidents" in rows[0])
            for column in ("all incidents", "domestic abuse"):
                check_rate(victims[2][column], share, victims[1][column], victims[0][column])
            coverage = next(rows for rows in tables if "coverage" in rows[0])[0]
            check_rate(coverage["coverage"], share, *list(coverage.values())[1::-1])
            da = re.search(
                r'in the 12 months: <span class="num count">(.*?)</span>\s*\(<span class="num rate">(.*?)</span>', page
            )
            check_rate(da[2], per_100k, da[1], tiles["residents"])
            check_rate(
                tiles["incidents per 100,000 residents"],
                per_100k,
                tiles["incidents in the 12 months"],
                tiles["residents"],
            )
            check_rate(
                tiles["change on the previous 12 months"],
                change,
                tiles["incidents in the 12 months"],
                mix[-1]["incidents (previous 12 months)"],
            )
            la_pages[re.search(r"<h1>(.*?)</h1>", page)[1]] = (tiles, mix[-1], victims, da[1])
            checked += 4
    # the index's figures from counts shown on each local authority's page, and the totals' as published
    la = audit.local_authorities.set_index("local_authority")
    index = [columns(t) for t in parse(pages["index.html"]).tables if t["head"]]
    for row in next(rows for rows in index if "small areas" in rows[0] and "local authority" in rows[0]):
        if row["local authority"] in la_pages:
            tiles, mix_total, victims, da = la_pages[row["local authority"]]
            before, victims_n, repeat = (
                mix_total["incidents (previous 12 months)"],
                victims[0]["all incidents"],
                victims[1]["all incidents"],
            )
        else:
            total = la.sum(numeric_only=True)
            before, da, victims_n, repeat = (
                str(disclose(total[c], 7)) for c in ("incidents_before", "domestic_abuse", "victims", "repeat_victims")
            )
        check_rate(row["change on the previous 12 months"], change, row["incidents (12 months)"], before)
        check_rate(row["domestic abuse per 100,000 residents"], per_100k, da, row["residents"])
        check_rate(row["repeat victims (% of victims)"], share, repeat, victims_n)
        checked += 1
    # the small areas' change, from their previous year's counts as published (secondary suppression per authority)
    areas = audit.areas.set_index("area_id")
    before = pd.concat(
        [
            protect_counts(g[["incidents", "incidents_before"]], 7, rows=False, columns=True)[0]
            for _, g in areas.groupby("local_authority")
        ]
    )["incidents_before"]
    for page in pages.values():
        for rows in (columns(t) for t in parse(page).tables if t["head"]):
            for row in (r for r in rows if "rank" in r):
                check_rate(
                    row["change on the previous 12 months"],
                    change,
                    row["incidents (12 months)"],
                    str(before[row["small area"]]),
                )
                checked += 1
    assert checked > 100


def test_the_deprivation_gradient_agrees_with_the_headline_figures(world, tmp_path):
    """Its "all" row is the local authority's total (each incident once), as on the tiles, though the
    quintiles count an incident involving people of two areas in each; its caption names what the
    quintiles are (the data set's own areas, not national ranks)."""
    shared = tmp_path / "world"
    shutil.copytree(world, shared)
    areas, people = pd.read_parquet(world / "areas.parquet"), pd.read_parquet(world / "people.parquet")
    split = areas.assign(
        area_id=areas["area_id"] + "b",
        population=areas["population"] // 2,
        deprivation_rank=areas["deprivation_rank"] + len(areas),
    )
    pd.concat(
        [areas.assign(population=areas["population"] - split["population"]), split], ignore_index=True
    ).to_parquet(shared / "areas.parquet", index=False)
    people["area_id"] = people["area_id"].where(np.arange(len(people)) % 2 == 0, people["area_id"] + "b")
    people.to_parquet(shared / "people.parquet", index=False)  # each area in two: many incidents involve both
    audit = community_audit(read_dataset(shared), AS_OF)
    by_quintile = audit.deprivation.groupby("local_authority")["incidents"].sum()
    la = audit.local_authorities.set_index("local_authority")["incidents"]
    assert (by_quintile > la + 10).all()
    pages = render_dashboard(audit, 7)
    for name in la.index:
        page = pages[la_page(name)]
        tiles = {
            label: shown
            for shown, label in re.findall(
                r'<span class="value [a-z]*">(.*?)</span><span class="label">(.*?)</span>', page
            )
        }
        gradient = next(
            columns(t)
            for t in parse(page).tables
            if t["head"] and "deprivation quintile (1 = most deprived)" == t["head"][0][0][1]
        )
        assert gradient[-1]["incidents (12 months)"] == tiles["incidents in the 12 months"]
        assert gradient[-1]["incidents per 100,000 residents"] == tiles["incidents per 100,000 residents"]
        assert gradient[-1]["residents"] == tiles["residents"]
        caption = re.search(r"<h2>Deprivation gradient</h2>.*?<figcaption[^>]*>(.*?)</figcaption>", page, re.S)[1]
        assert "national ranks" not in caption and "own small areas" in caption


#: Column headings of counts of people (or of their events) in the reports the site copies.
REPORT_COUNTS = {
    "people",
    "observed events",
    "events",
    "errors",
    "selected",
    "counted",
    "out of",
    "started",
    "untreated (person-months)",
}


def check_report_counts(page: str, threshold: int) -> int:
    """In a report's tables, every count is "*", 0 or a multiple of 5 above the threshold, and on a row
    with a suppressed count no other number is shown; so are the counts of people in its sentences.
    Returns how many counts were checked."""
    checked = 0
    for table in (t for t in parse(page).tables if t["head"]):
        headings = [h for _, h in table["head"][0]]
        for cells in table["body"]:
            row = dict(zip(headings, (v for _, v in cells)))
            counts = [h for h in row if h in REPORT_COUNTS]
            for heading in counts:
                assert allowed_count(row[heading], threshold), (heading, row)
                checked += 1
            if any(row[h] == SUPPRESSED for h in counts):
                numbers = [
                    v
                    for h, (cls, v) in zip(headings, cells)
                    if h not in counts and "num" in cls.split() and re.fullmatch(r"[-+]?[\d,.]+%?", v)
                ]
                assert not numbers, row
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", page))
    for found in re.findall(r"(\d[\d,]*) (?:people|untreated people|incident involvements|programme starts)\b", text):
        assert allowed_count(found, threshold), found
        checked += 1
    return checked


def test_the_reports_copied_into_the_site_show_no_small_count(site):
    fairness = (site / "reports" / "fairness_report.html").read_text(encoding="utf-8")
    assert check_report_counts(fairness, 7) > 100
    learning = (site / "reports" / "learning_report.html").read_text(encoding="utf-8")
    assert check_report_counts(learning, 10) > 10
    assert 'counts of 1 to 10 shown as "*"' in learning and "1 to 7" not in learning
    assert "youth_early_action" not in re.sub(r"<img[^>]*>", "", learning)
    assert "<td>T-learner</td>" in learning and "t_learner" not in re.sub(r"<img[^>]*>", "", learning)
    effects = next(columns(t) for t in parse(learning).tables if t["head"] and "escalated (started)" in columns(t)[0])
    # a subgroup whose starters are shown but whose escalations among them number 1 to 10: its rate is "*"
    assert any(r["started"] != SUPPRESSED and r["escalated (started)"] == SUPPRESSED for r in effects)


def test_the_fairness_findings_say_why_checks_are_inconclusive():
    """Too few people or events, or an interval straddling an edge of the band: both, with their counts."""
    result = fairness_audit()
    checks = pd.concat([result.errors, result.calibration])
    inconclusive = checks[checks["status"] == "inconclusive"]
    few = int(inconclusive["too_few"].sum())
    assert 0 < few < len(inconclusive)
    band = 1 / (1 + result.config.calibration_tolerance), 1 + result.config.calibration_tolerance
    judged = result.calibration[(result.calibration["status"] == "inconclusive") & ~result.calibration["too_few"]]
    assert ((judged["ci_low"] < band[0]) | (judged["ci_high"] > band[1])).all()  # they do straddle an edge
    sentence = next(f for f in findings(result) if "inconclusive" in f)
    assert sentence.startswith(f"{len(inconclusive)} gate checks are inconclusive: {few} with too few people or events")
    assert f"{len(inconclusive) - few} because the 95% interval straddles an edge of the accepted band" in sentence


def test_what_people_read_is_in_words_and_open_interventions_are_not_missing_data(site, world, tmp_path):
    pages = {p.name: p.read_text(encoding="utf-8") for p in site.glob("*.html")}
    for name, page in pages.items():
        for raw in ("youth_early_action", "stalking harassment", "end_date", "-0%", "+0%"):
            assert raw not in page, (name, raw)
    la = pages[la_page(pd.read_parquet(world / "areas.parquet")["local_authority"].iloc[0])]
    assert "<td>stalking and harassment</td>" in la and "<td>youth early action</td>" in la
    interventions = pd.read_parquet(world / "interventions.parquet")
    running = int(interventions["end_date"].isna().sum())
    assert running > 7, "the tiny world should have interventions still running"
    index = pages["index.html"]
    assert f'no end date yet: <span class="num count">{disclose(running, 7)}</span>' in index
    assert not any("rows missing it" in columns(t)[0] for t in parse(index).tables if t["head"])
    # 12 ended interventions without a completion flag: missing among the ended ones only
    shutil.copytree(world, tmp_path / "world")
    ended = np.flatnonzero(interventions["end_date"].notna())[:12]
    interventions["completed"] = interventions["completed"].astype(object)
    interventions.loc[ended, "completed"] = None
    interventions.to_parquet(tmp_path / "world" / "interventions.parquet", index=False)
    index = render_dashboard(community_audit(read_dataset(tmp_path / "world"), AS_OF), 7)["index.html"]
    missing = next(columns(t) for t in parse(index).tables if t["head"] and "rows missing it" in columns(t)[0])
    assert [(r["table"], r["column"], r["rows missing it"], r["rows checked"]) for r in missing] == [
        ("interventions", "completed", "10", f"{disclose(len(interventions) - running, 7):,}")
    ]
    check_rate(missing[0]["share of rows"], share, missing[0]["rows missing it"], missing[0]["rows checked"])


def test_the_threshold_is_configurable(world, tmp_path):
    result = runner.invoke(
        app,
        [
            "dashboard",
            "--data",
            str(world),
            "--as-of",
            AS_OF.isoformat(),
            "--disclosure-threshold",
            "10",
            "--out",
            str(tmp_path / "site"),
        ],
    )
    assert result.exit_code == 0, result.output
    pages = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "site").glob("*.html")}
    check_disclosure(pages, 10)
    assert "counts of 1 to 10 are shown" in pages["index.html"]
    assert "learning loop has not run" in pages["index.html"]
    again = ["dashboard", "--data", str(world), "--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "site")]
    assert runner.invoke(app, again).exit_code == 0  # its own previous site: replaced whole
    (tmp_path / "site" / "notes.txt").write_text("mine")
    refused = runner.invoke(app, again)
    assert refused.exit_code == 2 and "holds 'notes.txt', which riskloop dashboard does not write" in refused.output
    assert (tmp_path / "site" / "notes.txt").read_text() == "mine" and (tmp_path / "site" / "index.html").exists()
    bad = runner.invoke(app, ["dashboard", "--data", str(world), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--as-of is required" in bad.output


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)")
def test_the_dashboard_opens_in_a_browser(site, world, tmp_path):
    from test_reports_render import browse, chromium

    name = la_page(pd.read_parquet(world / "areas.parquet")["local_authority"].iloc[0])
    for page in ("index.html", name, "reports.html"):
        assert browse((site / page).read_text(encoding="utf-8"), tmp_path) == [], page
    shot = tmp_path / "la.png"
    run = subprocess.run(
        chromium(
            tmp_path,
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            (site / name).as_uri(),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert console == [] and shot.exists() and shot.stat().st_size > 20_000, (console, run.stderr[-500:])
    # the sort script works: a click on a heading orders the rows by that column
    sort_check = """<script>window.addEventListener("load", () => {
      const table = document.querySelector("table.sortable"), th = table.tHead.rows[0].cells[4];
      th.click(); th.click();
      const values = [...table.tBodies[0].rows].map(r => r.cells[4].textContent.trim());
      const out = document.createElement("pre"); out.id = "sorted"; out.textContent = JSON.stringify(values);
      document.body.appendChild(out); });</script>"""
    page = tmp_path / "sorted.html"
    page.write_text((site / "index.html").read_text(encoding="utf-8").replace("</body>", sort_check + "</body>"))
    dom = subprocess.run(
        chromium(tmp_path, "--dump-dom", page.as_uri()), capture_output=True, text=True, timeout=120
    ).stdout
    values = json.loads(re.search(r'<pre id="sorted">(.*?)</pre>', dom, re.S)[1].replace("&quot;", '"'))
    numbers = [float(v.replace(",", "")) if v != SUPPRESSED else -1 for v in values]
    assert numbers == sorted(numbers, reverse=True), values
