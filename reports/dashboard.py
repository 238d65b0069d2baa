"""The area profile dashboard: a static site (the community safety audit view) from a `CommunityAudit`.

Pure: frames in, HTML strings out (`render_dashboard` returns {file name: page}); the CLI writes them.
Every count of people or incidents shown (tables, headline figures, plotted values) goes through
`reports.disclosure`: 1 to `threshold` is "*", others are rounded to the nearest 5, a table with a
total gets secondary suppression, and every rate, change or share is computed from the counts as
published (residents too), so it is "*" when one of them is and reveals nothing they do not. In the markup
every count carries `class="count"` and every figure derived from a count `class="rate"`, so a test
can check each one. Figures are inline SVG (matplotlib), in the Okabe-Ito palette, labelled with units.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from markupsafe import Markup  # noqa: E402

from riskloop.artifacts.learning import Learned  # noqa: E402
from riskloop.features.area_profile import CommunityAudit  # noqa: E402
from riskloop.models.fairness import AuditConfig  # noqa: E402
from riskloop.reports.disclosure import (  # noqa: E402
    SUPPRESSED,
    disclose,
    from_published,
    protect_counts,
    protect_series,
    share,
    suppressed,
)
from riskloop.reports.figures import PALETTE, UNSTABLE, points, unstable  # noqa: E402
from riskloop.reports.render import render  # noqa: E402
from riskloop.reports.words import words  # noqa: E402

PER = 100_000
TYPE_WORDS = {"asb": "anti-social behaviour", "da": "domestic abuse", "stalking_harassment": "stalking and harassment"}
CHARACTERISTICS = {
    "age_band": "Age band (years, at the as-of date)",
    "sex": "Sex",
    "ethnicity": "Ethnicity",
    "tier": "Prevention tier",
}
LEVEL_ORDER = {
    "sex": ("F", "M", "X", "U", "unknown"),
    "tier": ("primary", "secondary", "tertiary"),
    "age_band": ("0-17", "18-24", "25-34", "35-49", "50-64", "65+", "unknown"),
}


# --- cells and tables -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One table cell as shown: `kind` is "count" (a disclosed count), "rate" (derived from one),
    "num" (another number) or "" (text); `href` makes it a link."""

    text: str
    kind: str = ""
    href: str = ""


@dataclass(frozen=True)
class Grid:
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    total: tuple[Cell, ...] | None = None  # a total row, kept last when sorting
    sortable: bool = False


def shown_text(value) -> str:
    """A disclosed count ("*" or an int) as text."""
    return value if value == SUPPRESSED else f"{int(value):,}"


def count(value) -> Cell:
    return Cell(shown_text(value), "count")


def per_100k(n: float, population: float) -> float:
    return n / population * PER if population else float("nan")


def change(now: float, before: float) -> float:
    return (now - before) / before * 100 if before else float("nan")


def rate_text(value: float) -> str:
    """A rate per 100,000 without false precision: whole numbers from 100, one decimal below."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def change_text(value: float) -> str:
    """A change in per cent, signed; one that rounds to zero is "0%" (never "-0%")."""
    return f"{value:+.0f}%" if round(value) else "0%"


FORMATS: dict[Callable[[float, float], float], Callable[[float], str]] = {
    per_100k: rate_text,
    change: change_text,
    share: "{:.0f}%".format,
}


def rate(f: Callable[[float, float], float], *published, fmt: Callable[[float], str] | None = None) -> Cell:
    """`f` (per_100k, change, share) of counts as published (`from_published`): "*" when one is."""
    value = from_published(f, *published)
    if isinstance(value, str):  # SUPPRESSED
        return Cell(SUPPRESSED, "rate")
    if not math.isfinite(value):
        return Cell("-", "rate")
    return Cell((fmt or FORMATS[f])(value), "rate")


def plotted_rate(f: Callable[[float, float], float], *published) -> float:
    """`rate` as a number to draw: NaN (not drawn) when suppressed."""
    value = from_published(f, *published)
    return float("nan") if isinstance(value, str) else value  # a str is SUPPRESSED


def text(value) -> Cell:
    return Cell(str(value))


def num(value, fmt: str = "{:,}") -> Cell:
    return Cell(fmt.format(value), "num")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "unit"


def la_page(name: str) -> str:
    return f"la-{slug(name)}.html"


# --- figures: inline SVG ----------------------------------------------------------------------------

_FIGURE_IDS = itertools.count()


def svg(fig) -> Markup:
    """The figure as inline SVG markup (text kept as text, no namespaces or metadata: nothing points
    off the page); ids are salted per figure so that several figures share a page. The figure is closed."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"riskloop-figure-{next(_FIGURE_IDS)}"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    markup = buffer.getvalue()
    markup = markup[markup.index("<svg") :]
    markup = re.sub(r"<metadata>.*?</metadata>", "", markup, flags=re.S)
    markup = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", markup)
    markup = re.sub(r"<svg ", '<svg role="img" ', markup, count=1)
    return Markup(markup)


def _plotted(values: pd.Series, threshold: int) -> np.ndarray:
    """Counts as they may be drawn: rounded to 5, suppressed ones missing (NaN)."""
    return np.array([np.nan if suppressed(v, threshold) else disclose(v, threshold) for v in values], float)


def time_figure(monthly: pd.DataFrame, threshold: int) -> Markup:
    """Incidents and domestic abuse per month (disclosed), and harm per month, over 36 months."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True)
    months = monthly["month"]
    incidents = _plotted(monthly["incidents"], threshold)
    top.plot(months, incidents, marker="o", ms=3, color=PALETTE[0], label="all incidents")
    top.plot(
        months,
        _plotted(monthly["domestic_abuse"], threshold),
        marker="s",
        ms=3,
        color=PALETTE[5],
        label="domestic abuse",
    )
    top.set(ylabel="incidents per month", title="Incidents per month (rounded to 5; gaps: suppressed)")
    top.set_ylim(bottom=0)
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    harm = np.where(np.isnan(incidents), np.nan, monthly["harm"].to_numpy(float))
    bottom.bar(months, harm, width=20, color=PALETTE[2])
    bottom.set(ylabel="harm per month\n(sum of harm weights)", xlabel="month")
    bottom.tick_params(axis="x", rotation=30)
    return svg(fig)


def bar_figure(labels: list[str], values: np.ndarray, xlabel: str, title: str, colour: str = PALETTE[0]) -> Markup:
    """Horizontal bars; a missing value (suppressed) is drawn as no bar and marked "*" in its label."""
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(labels) + 1.3))
    y = np.arange(len(labels))[::-1]
    ax.barh(y, np.nan_to_num(values), color=colour)
    ax.set_yticks(y, [f"{label} (*)" if np.isnan(v) else label for label, v in zip(labels, values)], fontsize=8)
    ax.set(xlabel=xlabel, title=title)
    return svg(fig)


def effects_figure(effects: pd.DataFrame) -> Markup:
    """Naive and doubly robust effect of each programme with 95% intervals (percentage points)."""
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(effects) + 1.8), layout="constrained")
    y = np.arange(len(effects))[::-1]
    for offset, (name, colour, label) in zip(
        (0.15, -0.15), (("naive", PALETTE[1], "naive (treated - untreated)"), ("dr", PALETTE[0], "doubly robust"))
    ):
        value, low, high = (points(effects[c]) for c in (name, f"{name}_ci_low", f"{name}_ci_high"))
        ax.errorbar(
            value,
            y + offset,
            xerr=np.abs(np.vstack([value - low, high - value])),
            fmt="o",
            color=colour,
            label=f"{label}, 95% interval",
            capsize=3,
        )
    ax.axvline(0, color="black", lw=0.8)
    shaky = unstable(effects["dr_ci_low"], effects["dr_ci_high"])
    ax.set_yticks(y, [words(p) + (" (unstable)" if s else "") for p, s in zip(effects["programme"], shaky)])
    ax.set(
        xlabel="change in escalation within the horizon, percentage points\n(below 0 = fewer; intervals clipped to "
        "±100)",
        title="Programme outcomes",
    )
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)  # below the axis label, whatever the height
    return svg(fig)


# --- the learning loop's outputs --------------------------------------------------------------------


def _points(value: float) -> str:
    return "-" if pd.isna(value) else f"{points(value):+.1f}"


def _interval(estimates, name: str, suppressed_row: bool, unsure: bool) -> Cell:
    """An estimate with its interval, in points ("*" where the row's starters are suppressed)."""
    if suppressed_row:
        return Cell(SUPPRESSED, "rate")
    return Cell(
        f"{_points(getattr(estimates, name))} ({_points(getattr(estimates, name + '_ci_low'))} to "
        f"{_points(getattr(estimates, name + '_ci_high'))})" + (", unstable" if unsure else ""),
        "rate",
    )


ESTIMATES = ("naive", "naive_ci_low", "naive_ci_high", "dr", "dr_ci_low", "dr_ci_high")


def outcomes_view(learning: Learned | None, threshold: int) -> dict | None:
    """Programme outcomes (everyone, per programme): a table with intervals (clipped to ±100 points, an
    estimate whose interval reaches past them unstable), a figure, the verdicts; a programme with too few
    starts to estimate is a row that says so. Comparison rows are person-months (the monthly cohorts of
    the window stacked), not people."""
    verdicts = learning.summary.programmes if learning is not None else {}
    if learning is None or (learning.effects.empty and not verdicts):
        return None
    effects = learning.effects
    overall = (
        effects[effects["subgroup"].astype(str) == "all"].reset_index(drop=True)
        if len(effects)
        else pd.DataFrame(columns=["programme", "n_treated", "n_control", *ESTIMATES])
    )
    numbers = overall.assign(**{c: pd.to_numeric(overall[c], errors="coerce") for c in ESTIMATES})
    shaky = unstable(numbers["naive_ci_low"], numbers["naive_ci_high"]) | unstable(
        numbers["dr_ci_low"], numbers["dr_ci_high"]
    )
    rows = []
    for r, e, unsure in zip(overall.itertuples(), numbers.itertuples(), shaky):
        started = str(r.n_treated)
        small = started == SUPPRESSED or (started.isdigit() and suppressed(int(started), threshold))
        started_shown = count(SUPPRESSED if small else disclose(int(float(started)), threshold))
        control = str(r.n_control)
        control_shown = count(
            SUPPRESSED
            if control == SUPPRESSED or suppressed(float(control), threshold)
            else disclose(float(control), threshold)
        )
        naive, dr = (_interval(e, name, small, unsure) for name in ("naive", "dr"))
        rows.append(
            (text(words(r.programme)), started_shown, control_shown, naive, dr, text(verdicts.get(r.programme, "")))
        )
    for programme in (p for p in verdicts if p not in set(overall["programme"])):
        rows.append(
            (
                text(words(programme)),
                text("-"),
                text("-"),
                text("too few to estimate"),
                text("too few to estimate"),
                text(verdicts[programme]),
            )
        )
    plotted = numbers[numbers["dr"].notna() & numbers["naive"].notna()]
    grid = Grid(
        (
            "programme",
            "people who started",
            "comparison person-months",
            "naive (points, 95% CI)",
            "doubly robust (points, 95% CI)",
            "verdict",
        ),
        tuple(rows),
    )
    return {
        "table": grid,
        "figure": effects_figure(plotted) if len(plotted) else None,
        "unstable": UNSTABLE if shaky.any() else "",
        "as_of": learning.summary.as_of,
        "recommendation": learning.summary.recommendation,
    }


# --- the pages --------------------------------------------------------------------------------------


def _published(row: pd.Series, threshold: int, shown: pd.Series | None = None) -> pd.Series:
    """A local authority's (or the total's) figures as published: `shown` counts (after secondary
    suppression) where given, the other counts disclosed, harm kept unless its incidents are "*"."""
    out = row.drop(["harm", "areas"]).map(lambda n: disclose(n, threshold)).astype(object)
    if shown is not None:
        out[shown.index] = shown
    out["harm"] = SUPPRESSED if out["incidents"] == SUPPRESSED else row["harm"]
    return out


def _la_cells(label: Cell, p: pd.Series, areas: int, lists: bool) -> tuple[Cell, ...]:
    return (
        label,
        count(p["population"]),
        num(areas),
        count(p["incidents"]),
        rate(per_100k, p["incidents"], p["population"]),
        rate(per_100k, p["harm"], p["population"]),
        rate(change, p["incidents"], p["incidents_before"]),
        rate(per_100k, p["domestic_abuse"], p["population"]),
        rate(share, p["repeat_victims"], p["victims"]),
        count(p["managed"]),
    ) + ((count(p["listed"]),) if lists else ())


def _la_table(audit: CommunityAudit, threshold: int) -> tuple[Grid, dict[str, dict]]:
    """The index's table of local authorities with a total row (secondary suppression down each count
    column), and each one's headline figures for its page."""
    la = audit.local_authorities.set_index("local_authority")
    count_columns = ["incidents", "domestic_abuse", "victims", "managed"] + (["listed"] if audit.has_lists else [])
    shown, _ = protect_counts(la[count_columns], threshold, rows=False, columns=True)
    rows, headlines = [], {}
    for name in la.index:
        p = _published(la.loc[name], threshold, shown.loc[name])
        cells = _la_cells(Cell(name, "", la_page(name)), p, int(la.loc[name, "areas"]), audit.has_lists)
        rows.append(cells)
        headlines[name] = {"cells": dict(zip(_LA_COLUMNS(audit.has_lists), cells)), "published": p}
    total = _la_cells(
        Cell("all local authorities"),
        _published(la.sum(numeric_only=True), threshold),
        int(la["areas"].sum()),
        audit.has_lists,
    )
    return Grid(_LA_COLUMNS(audit.has_lists), tuple(rows), total, sortable=True), headlines


def _LA_COLUMNS(lists: bool) -> tuple[str, ...]:
    return (
        "local authority",
        "residents",
        "small areas",
        "incidents (12 months)",
        "incidents per 100,000 residents",
        "harm per 100,000 residents",
        "change on the previous 12 months",
        "domestic abuse per 100,000 residents",
        "repeat victims (% of victims)",
        "managed (intervention at the as-of date)",
    ) + (("on the current list",) if lists else ())


def _area_rows(audit: CommunityAudit, threshold: int) -> pd.DataFrame:
    """Each small area's disclosed figures; within a local authority the areas add up to about its total,
    so its columns of incident counts (the 12 months and the previous 12) get secondary suppression."""
    areas = audit.areas.copy()
    shown = pd.DataFrame(index=areas.index, columns=["shown", "shown_before"], dtype=object)
    for _, group in areas.groupby("local_authority"):
        s, _ = protect_counts(group[["incidents", "incidents_before"]], threshold, rows=False, columns=True)
        shown.loc[group.index] = s.to_numpy()
    areas[["shown", "shown_before"]] = shown
    areas["residents"] = areas["population"].map(lambda n: disclose(n, threshold)).astype(object)
    areas["harm_shown"] = areas["harm"].where(areas["shown"] != SUPPRESSED, SUPPRESSED)
    areas["rate"] = [plotted_rate(per_100k, n, p) for n, p in zip(areas["shown"], areas["residents"])]
    return areas.sort_values(["rate", "area_id"], ascending=[False, True], na_position="last").reset_index(drop=True)


def _area_grid(areas: pd.DataFrame, with_la: bool) -> Grid:
    rows = []
    for i, r in enumerate(areas.itertuples(), 1):
        rows.append(
            (
                num(i),
                text(r.area_id),
                *((Cell(r.local_authority, "", la_page(r.local_authority)),) if with_la else ()),
                count(r.residents),
                num(int(r.deprivation_quintile)),
                count(r.shown),
                rate(per_100k, r.shown, r.residents),
                rate(per_100k, r.harm_shown, r.residents),
                rate(change, r.shown, r.shown_before),
            )
        )
    columns = (
        "rank",
        "small area",
        *(("local authority",) if with_la else ()),
        "residents",
        "deprivation quintile (1 = most deprived)",
        "incidents (12 months)",
        "incidents per 100,000 residents",
        "harm per 100,000 residents",
        "change on the previous 12 months",
    )
    return Grid(columns, tuple(rows), sortable=True)


def _counts_grid(
    labels: list[str], counts: pd.DataFrame, threshold: int, first: str, names: tuple[str, ...], shares: bool = True
) -> Grid:
    """Rows of counts (one column per cohort) with a total row; secondary suppression down each column;
    each count's share of its column ("*" when the count is)."""
    shown, _ = protect_counts(counts, threshold, rows=False, columns=True)
    totals = counts.sum().map(lambda n: disclose(n, threshold))
    rows = []
    for label, key in zip(labels, counts.index):
        cells = [text(label)]
        for column in counts.columns:
            cells.append(count(shown.loc[key, column]))
            if shares:
                cells.append(rate(share, shown.loc[key, column], totals[column]))
        rows.append(tuple(cells))
    total_cells = [text("total")]
    for column in counts.columns:
        total_cells.append(count(totals[column]))
        if shares:
            total_cells.append(rate(share, totals[column], totals[column]))
    columns = [first]
    for name in names:
        columns += [name] + ([f"{name}: share"] if shares else [])
    return Grid(tuple(columns), tuple(rows), tuple(total_cells))


def _profile_grids(audit: CommunityAudit, name: str, threshold: int) -> list[dict]:
    profiles = audit.profiles[audit.profiles["local_authority"] == name]
    cohorts = ["managed"] + (["listed"] if audit.has_lists else [])
    out = []
    for characteristic, heading in CHARACTERISTICS.items():
        part = profiles[profiles["characteristic"] == characteristic]
        table = part.pivot_table(index="level", columns="cohort", values="n", aggfunc="sum", fill_value=0)
        table = table.reindex(columns=cohorts, fill_value=0)
        order = LEVEL_ORDER.get(characteristic)
        levels = sorted(table.index, key=lambda v: (order.index(v) if order and v in order else 99, str(v)))
        if not levels:
            continue
        table = table.reindex(levels)
        names = ("managed (intervention)", "on the current list")[: len(cohorts)]
        out.append(
            {"heading": heading, "grid": _counts_grid([str(v) for v in levels], table, threshold, "group", names)}
        )
    return out


def _mix_grid(audit: CommunityAudit, name: str, residents: int | str, threshold: int) -> tuple[Grid, Markup]:
    """Incidents by type with a total row; `residents` as published."""
    mix = audit.mix[audit.mix["local_authority"] == name].set_index("type")
    counts = mix[["incidents", "incidents_before"]]
    shown, hidden = protect_counts(counts, threshold, rows=False, columns=True)
    totals = counts.sum().map(lambda n: disclose(n, threshold))
    rows = [(text(TYPE_WORDS.get(t, words(t))), *_mix_cells(shown.loc[t], residents)) for t in mix.index]
    total = (text("total"), *_mix_cells(totals, residents))
    grid = Grid(
        ("incident type", "incidents (12 months)", "per 100,000 residents", "incidents (previous 12 months)", "change"),
        tuple(rows),
        total,
        sortable=True,
    )
    plotted = np.array([np.nan if hidden.loc[t, "incidents"] else float(shown.loc[t, "incidents"]) for t in mix.index])
    figure = bar_figure(
        [TYPE_WORDS.get(t, words(t)) for t in mix.index],
        plotted,
        "incidents in the 12 months before the as-of date (rounded to 5)",
        "Incident mix",
    )
    return grid, figure


def _mix_cells(p: pd.Series, residents: int | str) -> tuple[Cell, ...]:
    return (
        count(p["incidents"]),
        rate(per_100k, p["incidents"], residents),
        count(p["incidents_before"]),
        rate(change, p["incidents"], p["incidents_before"]),
    )


def _deprivation(audit: CommunityAudit, name: str, published: pd.Series, threshold: int) -> tuple[Grid, Markup]:
    """Incidents by deprivation quintile; the "all" row is the local authority's total as published (its
    headline figure): each incident once, where the quintiles count one in each quintile it involves."""
    d = audit.deprivation[audit.deprivation["local_authority"] == name].set_index("deprivation_quintile").sort_index()
    shown, _ = protect_series(d["incidents"], threshold, total=True)
    residents = d["population"].map(lambda n: disclose(n, threshold))
    rows = tuple(
        (
            num(int(q)),
            num(int(d.loc[q, "areas"])),
            count(residents[q]),
            count(shown[q]),
            rate(per_100k, shown[q], residents[q]),
        )
        for q in d.index
    )
    total = (
        text("all"),
        num(int(d["areas"].sum())),
        count(published["population"]),
        count(published["incidents"]),
        rate(per_100k, published["incidents"], published["population"]),
    )
    grid = Grid(
        (
            "deprivation quintile (1 = most deprived)",
            "small areas",
            "residents",
            "incidents (12 months)",
            "incidents per 100,000 residents",
        ),
        rows,
        total,
    )
    values = np.array([plotted_rate(per_100k, shown[q], residents[q]) for q in d.index])
    figure = bar_figure(
        [f"quintile {q}" for q in d.index],
        values,
        "incidents per 100,000 residents (12 months)",
        "Deprivation gradient (quintile 1 = most deprived areas)",
        PALETTE[4],
    )
    return grid, figure


def _programmes(audit: CommunityAudit, name: str, threshold: int) -> Grid:
    p = audit.programmes[audit.programmes["local_authority"] == name].set_index("programme").sort_index()
    counts = p[["active", "started_12m"]]
    shown, _ = protect_counts(counts, threshold, rows=False, columns=True)
    rows = tuple(
        (text(words(prog)), count(shown.loc[prog, "active"]), count(shown.loc[prog, "started_12m"]))
        for prog in counts.index
    )
    totals = counts.sum()
    total = (
        text("total"),
        count(disclose(totals["active"], threshold)),
        count(disclose(totals["started_12m"], threshold)),
    )
    return Grid(("programme", "active at the as-of date", "started in the 12 months"), rows, total)


def _risk(audit: CommunityAudit, name: str, threshold: int) -> tuple[Grid, Markup] | None:
    if not audit.has_lists:
        return None
    r = audit.risk[audit.risk["local_authority"] == name].set_index("risk_bin")["n"]
    if r.sum() == 0:
        return None
    shown, hidden = protect_series(r, threshold, total=True)
    grid = _counts_grid(
        list(r.index), r.to_frame("listed"), threshold, "calibrated risk of escalation", ("people on the list",)
    )
    values = np.array([np.nan if hidden[b] else float(shown[b]) for b in r.index])
    figure = bar_figure(
        list(r.index),
        values,
        "people on the current list (rounded to 5)",
        "Risk of escalation within the horizon, people on the current list",
        PALETTE[3],
    )
    return grid, figure


def _quality(audit: CommunityAudit, threshold: int) -> dict:
    rows = audit.coverage["rows"]
    tables = pd.DataFrame(rows).T[["read", "valid", "quarantined"]]
    shown, _ = protect_counts(tables, threshold, rows=False, columns=False)
    # rows of `areas` are places, not people: shown exactly; the other tables' rows are disclosed
    volume = Grid(
        ("table", "rows read", "valid", "quarantined"),
        tuple(
            (
                text(t),
                *(
                    (num(int(tables.loc[t, c])) for c in ("read", "valid", "quarantined"))
                    if t == "areas"
                    else (count(shown.loc[t, c]) for c in ("read", "valid", "quarantined"))
                ),
            )
            for t in tables.index
        ),
    )
    q = audit.quarantine
    rules = None
    if len(q):
        counts = q[["rows"]]
        s, _ = protect_counts(counts, threshold, rows=False, columns=True)
        rules = Grid(
            ("table", "rule broken", "rows quarantined"),
            tuple((text(r.table), text(r.rule), count(s.loc[i, "rows"])) for i, r in enumerate(q.itertuples())),
            (text("total"), text(""), count(disclose(q["rows"].sum(), threshold))),
        )
    m = audit.missing[audit.missing["missing"] > 0].reset_index(drop=True)
    missing = None
    if len(m):
        missing = Grid(
            ("table", "column", "rows missing it", "rows checked", "share of rows"),
            tuple(
                (
                    text(r.table),
                    text(words(r.column)),
                    count(disclose(r.missing, threshold)),
                    count(disclose(r.rows, threshold)),
                    rate(share, disclose(r.missing, threshold), disclose(r.rows, threshold), fmt="{:.1f}%".format),
                )
                for r in m.itertuples()
            ),
        )
    c = audit.coverage
    return {
        "volume": volume,
        "rules": rules,
        "missing": missing,
        "first": c["first_incident"],
        "last": c["last_incident"],
        "end": c["data_end"],
        "as_of": c["as_of"],
        "running": count(disclose(c["running_interventions"], threshold)),
    }


def _tile(label: str, cell: Cell) -> dict:
    return {"label": label, "cell": cell}


def render_dashboard(
    audit: CommunityAudit,
    threshold: int = AuditConfig.disclosure_threshold,
    learning: Learned | None = None,
    reports: dict[str, str | None] | None = None,
    title: str = "Community safety profile",
) -> dict[str, str]:
    """The site's pages: {"index.html", "reports.html", "la-<name>.html" per local authority: HTML}."""
    la_grid, headlines = _la_table(audit, threshold)
    areas = _area_rows(audit, threshold)
    outcomes = outcomes_view(learning, threshold)
    names = list(audit.local_authorities["local_authority"])
    nav = [(n, la_page(n)) for n in names]
    common = dict(
        site_title=title,
        as_of=audit.as_of,
        threshold=threshold,
        nav=nav,
        outcomes=outcomes,
        has_lists=audit.has_lists,
        has_reports=reports is not None,
    )
    pages = {
        "index.html": render(
            "dashboard_index.html",
            title=f"{title} at {audit.as_of}",
            page="index",
            la_grid=la_grid,
            area_grid=_area_grid(areas, True),
            quality=_quality(audit, threshold),
            total_rate=la_rate_figure(headlines),
            **common,
        )
    }
    for name in names:
        published = headlines[name]["published"]
        cells = headlines[name]["cells"]
        tiles = [
            _tile("residents", cells["residents"]),
            _tile("incidents in the 12 months", cells["incidents (12 months)"]),
            _tile("incidents per 100,000 residents", cells["incidents per 100,000 residents"]),
            _tile("change on the previous 12 months", cells["change on the previous 12 months"]),
            _tile("managed: an intervention at the as-of date", cells["managed (intervention at the as-of date)"]),
        ]
        if audit.has_lists:
            tiles.append(_tile("on the current list", cells["on the current list"]))
        victims = pd.DataFrame(
            {
                "all": published[["victims", "repeat_victims"]].to_list(),
                "domestic abuse": published[["da_victims", "da_repeat_victims"]].to_list(),
            },
            index=["victims in the 12 months", "of whom victimised twice or more"],
        )
        victim_rows = [(text(label), *(count(v) for v in victims.loc[label])) for label in victims.index]
        victim_rows.append(
            (
                text("repeat victims: share of victims"),
                *(rate(share, victims.iloc[1][c], victims.iloc[0][c]) for c in victims.columns),
            )
        )
        mix_grid, mix_figure = _mix_grid(audit, name, published["population"], threshold)
        dep_grid, dep_figure = _deprivation(audit, name, published, threshold)
        involved = published["involved"]
        covered = SUPPRESSED if involved == SUPPRESSED else published["involved_covered"]
        coverage = Grid(
            ("people involved in incidents in the 12 months", "of whom had an intervention in that time", "coverage"),
            ((count(involved), count(covered), rate(share, covered, involved)),),
        )
        local_areas = areas[areas["local_authority"] == name].reset_index(drop=True)
        pages[la_page(name)] = render(
            "dashboard_la.html",
            title=f"{name}: {title} at {audit.as_of}",
            page=la_page(name),
            name=name,
            tiles=tiles,
            profiles=_profile_grids(audit, name, threshold),
            time_figure=time_figure(audit.monthly[audit.monthly["local_authority"] == name], threshold),
            mix_grid=mix_grid,
            mix_figure=mix_figure,
            victims=Grid(("", "all incidents", "domestic abuse"), tuple(victim_rows)),
            da_incidents=count(published["domestic_abuse"]),
            da_rate=cells["domestic abuse per 100,000 residents"],
            top_areas=_area_grid(local_areas.head(10), False),
            n_areas=len(local_areas),
            dep_grid=dep_grid,
            dep_figure=dep_figure,
            coverage=coverage,
            programmes=_programmes(audit, name, threshold),
            risk=_risk(audit, name, threshold),
            **common,
        )
    pages["reports.html"] = render(
        "dashboard_reports.html",
        title=f"Reports: {title}",
        page="reports.html",
        reports=list((reports or {}).items()),
        **common,
    )
    return pages


def la_rate_figure(headlines: dict[str, dict]) -> Markup:
    """Incidents per 100,000 residents by local authority, as published (suppressed ones left out)."""
    names = list(headlines)
    values = np.array(
        [
            plotted_rate(per_100k, headlines[n]["published"]["incidents"], headlines[n]["published"]["population"])
            for n in names
        ]
    )
    order = np.argsort(-np.nan_to_num(values, nan=-1))
    return bar_figure(
        [names[i] for i in order],
        values[order],
        "incidents per 100,000 residents (12 months)",
        "Incident rate by local authority",
    )
