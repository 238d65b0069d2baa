"""The scores folder (`riskloop score`): what a community safety team receives.

- `prioritisation.parquet`: everyone scored, ranked within their unit, reasons for the listed only;
- `lists/<local authority>.csv` (and `lists/<local authority>/<area>.csv` per area): the listed, by
  rank, behind an ADVISORY line, with empty `review_decision` and `review_note` for the case meeting;
- `manifest.json`: the `Manifest` (model, contract, data fingerprint, counts that reconcile, capacity,
  every file's hash).

`write_scores` writes the folder whole or not at all; `read_scores` reads it back, the teams' review
decisions included. Both engines (local and Spark) write through `write_scores`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from riskloop.features.io import DataError, atomic_folder, sha256_file
from riskloop.features.validate import ValidationReport
from riskloop.models.contract import ModelContract, validation_message

Unit = Literal["local_authority", "area"]
PRIORITISATION = "prioritisation.parquet"
MANIFEST = "manifest.json"
LISTS = "lists"
REASONS = ("reason_1", "reason_2", "reason_3")
#: The columns of `prioritisation.parquet`, in order.
COLUMNS = (
    "person_id",
    "area_id",
    "local_authority",
    "unit",
    "rank",
    "listed",
    "risk",
    "band",
    "band_label",
    "prevention_tier",
    *REASONS,
    "model_name",
    "model_version",
    "run_id",
    "data_fingerprint",
    "as_of",
    "scored_at",
)
LIST_COLUMNS = (
    "rank",
    "person_id",
    "area_id",
    "risk",
    "band",
    "band_label",
    "prevention_tier",
    *REASONS,
    "review_decision",
    "review_note",
)
ADVISORY = (
    "# ADVISORY prioritisation list for a case meeting: scores are advice, a practitioner decides; "
    "record the decision and why in review_decision and review_note."
)


class ScoresError(DataError, ValueError):
    """A scores folder that cannot be read, in one line."""


@dataclass(frozen=True)
class ModelRef:
    name: str | None
    version: str | None
    run_id: str | None
    uri: str


@dataclass(frozen=True)
class DataRef:
    source: str
    fingerprint: str
    coverage_end: date
    quarantine: str


@dataclass(frozen=True)
class TableCounts:
    read: int
    valid: int
    quarantined: int
    rules: dict[str, int]


@dataclass(frozen=True)
class UnitCounts:
    cohort: int
    places: int
    listed: int


@dataclass(frozen=True)
class Counts:
    """Every input row used or quarantined, every cohort member scored, every unit's places filled."""

    tables: dict[str, TableCounts]
    cohort: int
    scored: int
    listed: int
    units: dict[str, UnitCounts]
    reconciles: bool

    @classmethod
    def of(cls, report: ValidationReport, cohort: int, scored: int, units: pd.DataFrame) -> Counts:
        """The counts of a scoring run: `units` has a row per unit with `cohort`, `places` and `listed`."""
        tables = {t.table: TableCounts(t.read, t.valid, t.quarantined, dict(t.reasons)) for t in report.tables.values()}
        per_unit = {
            str(unit): UnitCounts(int(row["cohort"]), int(row["places"]), int(row["listed"]))
            for unit, row in units.iterrows()
        }
        listed = int(units["listed"].sum())
        reconciles = (
            all(t.read == t.valid + t.quarantined for t in tables.values())
            and cohort == scored == int(units["cohort"].sum())
            and all(u.listed == min(u.cohort, u.places) for u in per_unit.values())
        )
        return cls(tables, cohort, scored, listed, per_unit, bool(reconciles))

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables.values())


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class Manifest:
    """What a list is, where it came from and what it holds: every list carries its model version, the
    data's fingerprint and the contract the model was scored under."""

    riskloop_version: str
    scored_at: str
    as_of: date
    model: ModelRef
    contract: ModelContract
    data: DataRef
    counts: Counts
    capacity: dict[str, Any]
    engine: str
    runtime_seconds: float
    files: tuple[FileEntry, ...] = ()


MANIFEST_ADAPTER: TypeAdapter[Manifest] = TypeAdapter(Manifest)


@dataclass(frozen=True)
class Scores:
    """A scores folder read back: its manifest, everyone scored, and (read from the lists when first asked
    for) the review decisions the teams wrote into them."""

    folder: Path
    manifest: Manifest
    prioritisation: pd.DataFrame

    @cached_property
    def reviews(self) -> pd.DataFrame:
        """`person_id`, `review_decision` of every listed person (empty where a list came back untouched)."""
        return _reviews(self.folder)

    @property
    def listed(self) -> pd.Series:
        """person_id -> listed at the scoring date."""
        frame = self.prioritisation
        return frame.set_index(frame["person_id"].astype(str))["listed"].astype(bool)


def _file_name(unit: str) -> str:
    return re.sub(r"[^A-Za-z0-9 _.-]", "_", unit).strip() or "_"


def _write_lists(listed: pd.DataFrame, folder: Path, per: Unit) -> list[tuple[Path, int]]:
    """lists/<local authority>.csv (and lists/<local authority>/<area>.csv per area): the listed, by rank."""
    written = []
    listed = listed.assign(review_decision="", review_note="")
    groups = [(Path(_file_name(la)), rows) for la, rows in listed.groupby("local_authority", sort=True)]
    if per == "area":
        groups += [
            (Path(_file_name(la)) / _file_name(area), rows)
            for (la, area), rows in listed.groupby(["local_authority", "area_id"], sort=True)
        ]
    for name, rows in groups:
        path = folder / LISTS / name.with_suffix(".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        ordered = rows.sort_values(["risk", "unit", "rank"], ascending=[False, True, True], kind="stable")
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(ADVISORY + "\n")
            ordered[list(LIST_COLUMNS)].to_csv(handle, index=False, lineterminator="\n", float_format="%.6f")
        written.append((path, len(ordered)))
    return written


def write_scores(
    out_dir: Path, manifest: Manifest, per: Unit, write_prioritisation: Callable[[Path], int], listed: pd.DataFrame
) -> Manifest:
    """Write the scores folder atomically (replaced as a whole): `write_prioritisation(path)` writes
    `prioritisation.parquet` and returns its rows; `listed` (the listed rows) become the lists. Returns
    the manifest as written, with every file's hash and rows."""
    with atomic_folder(Path(out_dir)) as folder:
        target = folder / PRIORITISATION
        files = [(target, write_prioritisation(target)), *_write_lists(listed, folder, per)]
        entries = tuple(FileEntry(p.relative_to(folder).as_posix(), sha256_file(p), rows) for p, rows in files)
        manifest = dataclasses.replace(manifest, files=entries)
        (folder / MANIFEST).write_bytes(MANIFEST_ADAPTER.dump_json(manifest, indent=2) + b"\n")
    return manifest


def read_manifest(folder: Path) -> Manifest:
    path = Path(folder) / MANIFEST
    try:
        return MANIFEST_ADAPTER.validate_json(path.read_bytes())
    except OSError as exc:
        raise ScoresError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise ScoresError(f"{path} is not a riskloop manifest: {validation_message(exc)}") from exc


def _reviews(folder: Path) -> pd.DataFrame:
    lists = [
        pd.read_csv(
            path, skiprows=int(path.read_text(encoding="utf-8").startswith("#")), dtype=str, keep_default_na=False
        )
        for path in sorted((folder / LISTS).rglob("*.csv"))
    ]
    if not lists:
        return pd.DataFrame(columns=["person_id", "review_decision"])
    return pd.concat(lists, ignore_index=True)[["person_id", "review_decision"]].drop_duplicates("person_id")


def read_scores(folder: Path, columns: list[str] | None = None) -> Scores:
    """A scores folder: its manifest and `prioritisation.parquet` (all columns, or `columns`); the review
    decisions in its lists are read when asked for (`Scores.reviews`)."""
    folder = Path(folder)
    parquet = folder / PRIORITISATION
    if not parquet.is_file():
        raise ScoresError(f"{folder} has no {PRIORITISATION} (is it a `riskloop score` output folder?)")
    manifest = read_manifest(folder)
    frame = pd.read_parquet(parquet, columns=columns)
    missing = [c for c in (columns or COLUMNS) if c not in frame.columns]
    if missing:
        raise ScoresError(f"{PRIORITISATION} lacks column '{missing[0]}' ({len(missing)} missing)")
    return Scores(folder, manifest, frame)
