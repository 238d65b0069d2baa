"""Plots for reports, returned as PNG bytes (embedded in HTML, logged to MLflow)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from riskloop.models.metrics import calibration_table, top_k  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def calibration_plot(y: np.ndarray, p: np.ndarray, title: str) -> bytes:
    table = calibration_table(np.asarray(y, float), np.asarray(p, float), bins=10)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    top = max(table["predicted"].max(), table["observed"].max()) * 1.1
    ax.plot([0, top], [0, top], ls="--", color="grey", label="perfectly calibrated")
    ax.plot(table["predicted"], table["observed"], marker="o", label="model (deciles of risk)")
    ax.set(xlabel="mean predicted risk", ylabel="observed rate", title=title)
    ax.legend()
    return _png(fig)


def precision_at_k_plot(y: np.ndarray, scores: dict[str, np.ndarray], capacity: float, title: str) -> bytes:
    """Precision among the top x% for each model, with the configured capacity marked."""
    y = np.asarray(y, float)
    shares = np.linspace(0.005, 0.3, 60)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, s in scores.items():
        ax.plot(shares * 100, [y[top_k(s, max(1, int(q * len(y))))].mean() for q in shares], label=name)
    ax.axvline(capacity * 100, color="grey", ls="--", label=f"capacity ({capacity:.0%})")
    ax.axhline(y.mean(), color="black", lw=0.8, label="base rate")
    ax.set(xlabel="share of cohort prioritised (%)", ylabel="precision", title=title)
    ax.legend(fontsize=7, loc="upper right")
    return _png(fig)


def metric_over_time_plot(frame, metric: str, title: str) -> bytes:
    """One line per model group across temporal splits."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for group, rows in frame.groupby("group"):
        ax.plot(rows["split"], rows[metric], marker="o", label=group)
    ax.set(xlabel="test as-of date", ylabel=metric, title=title)
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=6)
    return _png(fig)
