"""The learning folder (`riskloop learn`): `<out>/learning/` with

- `outcomes.parquet`: one row per person scored at T (pseudonyms only; it stays in the folder);
- `effects.csv` (naive and doubly robust effects, counts under the disclosure rule), `who_benefits.csv`,
  `drift.csv`;
- `learning.json`: the `LearningSummary` (verdicts, promotion, the recommendation);
- `learning_report.html`.

`write_learning` writes it whole or not at all; `read_learning` reads what the dashboard shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from riskloop.features.io import DataError, atomic_folder
from riskloop.models.contract import validation_message

LEARNING_DIR = "learning"
CHALLENGER_DIR = "challenger"  # the retrained model's training folder, beside `LEARNING_DIR`
SUMMARY = "learning.json"
EFFECTS = "effects.csv"
REPORT = "learning_report.html"
#: What the learning folder holds (`features.io.check_replaceable`)
LEARNING_WRITES = ("outcomes.parquet", EFFECTS, "who_benefits.csv", "drift.csv", SUMMARY, REPORT)
#: The files that may leave the output folder (to MLflow): no person-level row among them.
SHAREABLE = (EFFECTS, "who_benefits.csv", "drift.csv", SUMMARY, REPORT)


@dataclass(frozen=True)
class LearningSummary:
    """What a learning cycle concluded."""

    as_of: date
    retrain: str
    promoted: bool
    promotion_reasons: list[str]
    challenger_version: str | None
    programmes: dict[str, str]  # programme -> the verdict a board reads
    recommendation: str
    judged_by: str | None = None  # what promotion followed: "shadow" or "backtest" (None: no retrain)
    judgement: dict[str, dict[str, float]] | None = None  # champion / challenger -> metric on the judging cohort
    sampled: list[str] = field(default_factory=list)  # what the cycle sampled and how much, in words


SUMMARY_ADAPTER: TypeAdapter[LearningSummary] = TypeAdapter(LearningSummary)


@dataclass(frozen=True)
class LearningOutputs:
    """A cycle's files, in memory, as `write_learning` writes them."""

    summary: LearningSummary
    outcomes: pd.DataFrame
    effects: pd.DataFrame  # already under the disclosure rule
    who_benefits: pd.DataFrame
    drift: pd.DataFrame
    report_html: str


@dataclass(frozen=True)
class Learned:
    """A learning folder read back: its summary and its (disclosed) effects."""

    folder: Path
    summary: LearningSummary
    effects: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def report(self) -> Path | None:
        path = self.folder / REPORT
        return path if path.exists() else None


def write_learning(out_dir: Path, outputs: LearningOutputs) -> Path:
    """Write `<out_dir>/learning/` atomically (replaced as a whole); return the folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out_dir / LEARNING_DIR, LEARNING_WRITES, "riskloop learn") as folder:
        outputs.outcomes.to_parquet(folder / "outcomes.parquet", index=False)
        outputs.effects.to_csv(folder / EFFECTS, index=False)
        outputs.who_benefits.to_csv(folder / "who_benefits.csv", index=False)
        outputs.drift.to_csv(folder / "drift.csv", index=False)
        (folder / SUMMARY).write_bytes(SUMMARY_ADAPTER.dump_json(outputs.summary, indent=2) + b"\n")
        (folder / REPORT).write_text(outputs.report_html, encoding="utf-8")
    return out_dir / LEARNING_DIR


def read_learning(folder: Path) -> Learned:
    """A `riskloop learn` output folder (or its `learning/` folder)."""
    folder = Path(folder)
    folder = folder / LEARNING_DIR if (folder / LEARNING_DIR).is_dir() else folder
    if not (folder / EFFECTS).exists() or not (folder / SUMMARY).exists():
        raise DataError(f"{folder}: no {EFFECTS} and {SUMMARY} (give a `riskloop learn` output folder)")
    try:
        summary = SUMMARY_ADAPTER.validate_json((folder / SUMMARY).read_bytes())
    except ValidationError as exc:
        raise DataError(f"{folder / SUMMARY}: {validation_message(exc)}") from exc
    empty = (folder / EFFECTS).stat().st_size <= 1
    effects = pd.DataFrame() if empty else pd.read_csv(folder / EFFECTS, dtype={"n_treated": str, "n_control": str})
    return Learned(folder, summary, effects)
