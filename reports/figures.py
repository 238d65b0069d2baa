"""Figures for reports, as PNG bytes (embedded in HTML by `data_uri`, logged to MLflow as files)."""

from __future__ import annotations

import io
from itertools import cycle

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from riskloop.models.metrics import calibration_table, top_k  # noqa: E402
from riskloop.reports.disclosure import disclose_text, suppressed  # noqa: E402
from riskloop.reports.words import words  # noqa: E402

#: Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
STATUS_COLOURS = {"pass": "#009E73", "fail": "#D55E00", "inconclusive": "#999999"}
UNSTABLE = (
    "its 95% interval reaches past ±100 percentage points, which no change in a probability can: the interval "
    "is shown clipped to ±100, and the estimate rests on too few comparable people to judge"
)


def points(values) -> np.ndarray:
    """Changes in a probability as percentage points, clipped to the possible -100 to +100."""
    return np.clip(np.asarray(values, float) * 100, -100, 100)


def unstable(low, high) -> np.ndarray:
    """Whether 95% intervals of a change in a probability reach past ±100 points (`UNSTABLE`)."""
    return (np.asarray(low, float) < -1) | (np.asarray(high, float) > 1)


def png(fig=None) -> bytes:
    """The figure (default: the current one) as PNG bytes; the figure is closed."""
    fig = fig or plt.gcf()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def calibration_plot(y: np.ndarray, p: np.ndarray, title: str) -> bytes:
    table = calibration_table(np.asarray(y, float), np.asarray(p, float), bins=10)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    top = max(table["predicted"].max(), table["observed"].max()) * 1.1
    ax.plot([0, top], [0, top], ls="--", color="grey", label="perfectly calibrated")
    ax.plot(table["predicted"], table["observed"], marker="o", color=PALETTE[0], label="model (deciles of risk)")
    ax.set(xlabel="mean predicted risk", ylabel="observed rate", title=title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8)  # below the axes, off the lines
    return png(fig)


def precision_at_k_plot(y: np.ndarray, scores: dict[str, np.ndarray], capacity: float, title: str) -> bytes:
    """Precision among the top x% for each model, with the configured capacity marked."""
    y = np.asarray(y, float)
    shares = np.linspace(0.005, 0.3, 60)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for colour, (name, s) in zip(cycle(PALETTE), scores.items()):
        ax.plot(shares * 100, [y[top_k(s, max(1, int(q * len(y))))].mean() for q in shares], label=name, color=colour)
    ax.axvline(capacity * 100, color="grey", ls="--", label=f"capacity ({capacity:.0%})")
    ax.axhline(y.mean(), color="black", lw=0.8, label="base rate")
    ax.set(xlabel="share of cohort prioritised (%)", ylabel="precision", title=title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


def metric_over_time_plot(frame: pd.DataFrame, metric: str, title: str) -> bytes:
    """One line per model group across temporal splits."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for colour, (group, rows) in zip(cycle(PALETTE), frame.groupby("group")):
        ax.plot(rows["split"], rows[metric], marker="o", label=group, color=colour)
    ax.set(xlabel="test as-of date", ylabel=words(metric), title=title)
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


#: The counts a disparity's ratio rests on: hidden with any of them.
RESTS_ON = ("n", "numerator", "denominator", "reference_numerator", "reference_denominator")


def disparity_plot(
    disparities: pd.DataFrame, metrics: tuple[str, ...], band: tuple[float, float], disclosure_threshold: int
) -> bytes:
    """Forest plot of each group's ratio to the reference with its interval; undefined ratios, and those
    of groups too small to disclose, are listed, not drawn."""
    low, high = 0.1, 10.0  # ratios beyond are drawn at the edge
    rows_per = max(1, max((disparities["metric"] == m).sum() for m in metrics))
    fig, axes = plt.subplots(1, len(metrics), figsize=(12, 0.32 * rows_per + 1.6), squeeze=False, sharey=True)
    for ax, metric in zip(axes[0], metrics):
        rows = disparities[disparities["metric"] == metric].reset_index(drop=True)
        ax.axvspan(*band, color="#e8f5e9")
        ax.axvline(1, color="black", lw=0.8)
        for i, r in rows.iterrows():
            hidden = any(suppressed(r[c], disclosure_threshold) for c in RESTS_ON if c in r)
            if hidden or not np.isfinite(r["ratio"]):
                ax.text(
                    low,
                    i,
                    " suppressed (small count)" if hidden else " not defined",
                    va="center",
                    fontsize=7,
                    color="#555555",
                )
                continue
            point, lo_ci, hi_ci = (
                float(np.clip(np.nan_to_num(v, nan=r["ratio"], posinf=high, neginf=low), low, high))
                for v in (r["ratio"], r["ci_low"], r["ci_high"])
            )
            ax.errorbar(
                point,
                i,
                xerr=[[max(point - lo_ci, 0)], [max(hi_ci - point, 0)]],
                fmt="o",
                color=STATUS_COLOURS[r["status"]],
            )
        ax.set_yticks(
            np.arange(len(rows)),
            [
                f"{c}: {g} (n={disclose_text(n, disclosure_threshold)})"
                for c, g, n in zip(rows["characteristic"], rows["group"], rows["n"])
            ],
            fontsize=7,
        )
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xscale("log")
        ax.set_xlim(low * 0.9, high * 1.1)
        ax.set_xticks([0.1, 0.25, 0.5, 1, 2, 4, 10], ["0.1", "0.25", "0.5", "1", "2", "4", "10"])
        ax.minorticks_off()
        ax.set(title=f"{words(metric)}: ratio to reference", xlabel="ratio (log scale), 95% interval")
    return png(fig)


def importance_over_splits_plot(table: pd.DataFrame, top: int = 8) -> bytes:
    names = table.mean().nlargest(top).index
    fig, ax = plt.subplots(figsize=(8, 4))
    for colour, name in zip(cycle(PALETTE), names):
        ax.plot(table.index, table[name], marker="o", label=name, color=colour)
    ax.set(ylabel="mean |SHAP| (log-odds)", xlabel="temporal split")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


def effect_plot(effects: pd.DataFrame, title: str) -> bytes:
    """Naive and doubly robust effects with 95% intervals, one row per subgroup level (percentage points)."""
    shaky = unstable(effects["dr_ci_low"], effects["dr_ci_high"])
    labels = [
        ("everyone" if r.subgroup == "all" else f"{r.subgroup}: {r.level}") + (" (unstable)" if s else "")
        for r, s in zip(effects.itertuples(), shaky)
    ]
    y = np.arange(len(effects))[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(effects) + 1.4))
    for offset, (name, colour, label) in zip(
        (0.15, -0.15),
        (("naive", PALETTE[1], "naive (treated - untreated)"), ("dr", PALETTE[0], "doubly robust, 95% interval")),
    ):
        value, low, high = (points(effects[c]) for c in (name, f"{name}_ci_low", f"{name}_ci_high"))
        ax.errorbar(
            value,
            y + offset,
            xerr=np.abs(np.vstack([value - low, high - value])),
            fmt="o",
            color=colour,
            label=label,
            capsize=3,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels)
    ax.set(
        xlabel="change in escalation within the horizon (percentage points; below 0 = fewer; "
        "intervals clipped to ±100)",
        title=title,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(effects) < 4 else -0.12), ncol=2, fontsize=8)
    return png(fig)


def qini_plot(curves: dict[str, pd.DataFrame], title: str) -> bytes:
    """Escalations prevented against the share targeted, per learner, with the random-targeting line."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for colour, (name, curve) in zip(cycle(PALETTE), curves.items()):
        ax.plot(curve["share"] * 100, curve["prevented"], color=colour, label=words(name))
    first = next(iter(curves.values()))
    ax.plot(first["share"] * 100, first["random"], color="grey", ls="--", label="random targeting")
    ax.set(
        xlabel="people analysed, highest predicted benefit first (% of them)",
        ylabel="escalations prevented among them (estimated number)",
        title=title,
    )
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(fontsize=8)
    return png(fig)


def psi_plot(drift: pd.DataFrame, top: int = 12) -> bytes:
    """The largest population stability indices, with the 0.1 and 0.25 rules of thumb and each one's noise level."""
    shown = drift.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.5))
    y = np.arange(len(shown))
    colours = [PALETTE[5] if v in ("shift", "major shift") else PALETTE[0] for v in shown["verdict"]]
    ax.barh(y, shown["psi"], color=colours)
    ax.scatter(shown["null_p99"], y, marker="|", s=200, color="black", label="noise level (99% of PSI with no change)")
    for rule in (0.1, 0.25):
        ax.axvline(rule, color="grey", ls=":", lw=1)
    ax.set_yticks(y, [words(c) for c in shown["column"]])
    ax.set(xlabel="population stability index (dotted: 0.1 and 0.25 rules of thumb)", title="What changed in the data")
    ax.legend(fontsize=8, loc="lower right")
    return png(fig)


def loop_plot(cycles: pd.DataFrame) -> bytes:
    """Closed-loop simulation: true escalations per cycle by policy, and the recorded/true ratio of the
    listed's offending against everyone else's."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for colour, ((policy, retrain), rows) in zip(cycle(PALETTE), cycles.groupby(["policy", "retrain"], sort=True)):
        label = f"{policy} ({retrain})"
        left.plot(rows["cycle"], rows["true_escalations"], marker="o", color=colour, label=label)
        right.plot(
            rows["cycle"],
            rows["recorded_true_offending_ratio_listed"],
            marker="o",
            color=colour,
            label=f"{label}: listed",
        )
        right.plot(
            rows["cycle"],
            rows["recorded_true_offending_ratio_others"],
            ls="--",
            marker="s",
            mfc="none",
            color=colour,
            label=f"{label}: others",
        )
    left.set(xlabel="cycle (years)", ylabel="true high-harm offending involvements", title="Escalations per cycle")
    right.set(xlabel="cycle (years)", ylabel="recorded / true offending", title="How much of the truth gets recorded")
    for ax in (left, right):
        ax.legend(fontsize=7)
        ax.set_xticks(sorted(cycles["cycle"].unique()))  # whole cycles, one tick each (even for a single one)
    return png(fig)


def shape_function_plot(shapes: dict[str, pd.Series], importance: pd.Series, top: int = 12) -> bytes:
    """An additive model's shape functions (contribution to the log-odds by value, centred on the training
    mean) of its `top` most important features, one panel each."""
    names = [f for f in importance.sort_values(ascending=False, kind="stable").index if f in shapes][:top]
    columns = 4
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, names):
        shape = shapes[name]
        ax.plot(shape.index, shape.to_numpy(), color=PALETTE[0])
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(shape.index[0], shape.index[-1])
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("log-odds contribution", fontsize=8)
    fig.tight_layout()
    return png(fig)
