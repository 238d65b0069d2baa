"""The scores folder (`riskloop score`): what a community safety team receives.

- `prioritisation.parquet`: everyone scored, ranked within their unit, reasons for the listed only;
- `lists/<local authority>.csv` (and `lists/<local authority>/<area>.csv` per area): the listed, by
  rank, behind an ADVISORY line, with empty `review_decision` and `review_note` for the case meeting.
  Each unit has its own file (`list_names`), which names the unit exactly in its `local_authority` (and
  `area_id`) column, as the manifest's entry does; a text cell that a spreadsheet would open as a
  formula is written behind a `'` (`neutralised`, undone on reading by `restored`);
- `manifest.json`: the `Manifest` (model, contract, data fingerprint, counts that reconcile, capacity,
  every file's hash).

`write_scores` writes the folder whole or not at all; `read_scores` reads it back, the teams' review
decisions included. Both engines (local and Spark) write through `write_scores`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from riskloop.features.io import DataError, Writes, atomic_folder, sha256_file
from riskloop.features.validate import ValidationReport
from riskloop.models.contract import ModelContract, validation_message

Unit = Literal["local_authority", "area"]
PRIORITISATION = "prioritisation.parquet"
#: A shadow model's scores of the same cohort (`riskloop score --shadow`): kept beside the lists to judge the
#: model on outcomes neither model had seen, never listed and never served.
SHADOW = "shadow.parquet"
SHADOW_COLUMNS = ("person_id", "unit", "risk", "band", "rank", "would_list")
MANIFEST = "manifest.json"
LISTS = "lists"


def _written(folder: Path) -> set[str] | None:
    """The files a previous scores folder holds as its manifest records them (None if it has no readable one)."""
    try:
        return {MANIFEST, *(f.path for f in read_manifest(folder).files)}
    except ScoresError:
        return None


#: What a scores folder holds (`features.io.check_replaceable`): the lists its manifest records, or where it has
#: none that can be read, any list file (`lists/<unit>.csv`, `lists/<local authority>/<area>.csv`)
SCORES_WRITES = Writes((PRIORITISATION, SHADOW, MANIFEST, f"{LISTS}/*.csv", f"{LISTS}/*/*.csv"), _written)
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
    "local_authority",
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


#: What a spreadsheet reads a cell beginning with as a formula (OWASP, CSV injection), after any whitespace
#: (space, tab, no-break space...); some read the full-width forms (＝ ＋ － ＠) as formulas too.
FORMULA_STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: A list file's name holds at most this many characters of its unit's name (then a hash, if it must).
NAME_LENGTH = 100


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
    """A file of the folder; a list names the unit it lists exactly (its area's too, per area)."""

    path: str
    sha256: str
    rows: int
    local_authority: str | None = None
    area_id: str | None = None


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
    shadow: ModelRef | None = None  # the model scored in shadow beside this one (`shadow.parquet`)


MANIFEST_ADAPTER: TypeAdapter[Manifest] = TypeAdapter(Manifest)


@dataclass(frozen=True)
class Scores:
    """A scores folder read back: its manifest, everyone scored, and (read from the lists when first asked
    for) the review decisions the teams wrote into them."""

    folder: Path
    manifest: Manifest
    prioritisation: pd.DataFrame

    @cached_property
    def shadow(self) -> pd.DataFrame | None:
        """The shadow model's scores of the cohort (`SHADOW_COLUMNS`), or None if none was scored."""
        if self.manifest.shadow is None:
            return None
        path = self.folder / SHADOW
        try:
            return pd.read_parquet(path, columns=list(SHADOW_COLUMNS))
        except (OSError, ValueError) as exc:
            raise ScoresError(f"cannot read the shadow scores {path}: {exc}") from exc

    @cached_property
    def reviews(self) -> pd.DataFrame:
        """`person_id`, `review_decision` of every listed person (empty where a list came back untouched)."""
        return _reviews(self.folder, self.manifest)

    @property
    def listed(self) -> pd.Series:
        """person_id -> listed at the scoring date."""
        frame = self.prioritisation
        return frame.set_index(frame["person_id"].astype(str))["listed"].astype(bool)


def _sanitised(unit: str) -> str:
    return re.sub(r"[^A-Za-z0-9 _.-]", "_", unit)[:NAME_LENGTH].strip(" .") or "_"


def _clashing(names: dict[str, str], folders: bool) -> list[str]:
    """The units whose file (or, with `folders`, folder) name another's equals on a disk that ignores case."""
    taken: dict[str, list[str]] = {}
    for unit, name in names.items():
        for key in (f"{name}.csv", name) if folders else (f"{name}.csv",):
            taken.setdefault(key.casefold(), []).append(unit)
    return sorted({unit for units in taken.values() if len(units) > 1 for unit in units})


def list_names(units: Iterable[str], folders: bool = False) -> dict[str, str]:
    """Each unit's list file name without `.csv` (with `folders`, also the name of its folder of lists): its
    name with every character but letters, digits, space, `_`, `.` and `-` replaced by `_` (`Cardiff`
    stays `Cardiff`), unless that would be another unit's name too, ignoring case; then it ends in `-` and
    8 hex digits of the SHA-256 of the exact name (`Swan_sea-1f0c9a2b`)."""
    names = {unit: _sanitised(unit) for unit in sorted(set(units))}
    while clashing := _clashing(names, folders):
        hashed = {unit: f"{_sanitised(unit)}-{hashlib.sha256(unit.encode()).hexdigest()[:8]}" for unit in clashing}
        if all(names[unit] == name for unit, name in hashed.items()):  # a clash of SHA-256 prefixes
            raise ScoresError(f"units {', '.join(map(repr, clashing))} cannot be given distinct list file names")
        names.update(hashed)
    return names


def _formula(text: str) -> bool:
    """Whether a spreadsheet may open `text` as a formula: a formula start after any whitespace, or a tab or
    carriage return first (OWASP)."""
    return text.startswith(("\t", "\r")) or text.lstrip().startswith(FORMULA_STARTS)


def neutralised(cell: object) -> object:
    """A text cell that a spreadsheet would open as a formula, behind a `'` (as is one that would read back
    as such a cell, so that `restored` gives every cell back); anything else as it is."""
    if isinstance(cell, str) and _formula(cell.lstrip("'")):
        return "'" + cell
    return cell


def restored(cell: str) -> str:
    """A list cell as it was before `neutralised` (a cell a spreadsheet saved without its `'` stays as it is)."""
    return cell[1:] if cell.startswith("'") and _formula(cell.lstrip("'")) else cell


def _write_list(rows: pd.DataFrame, path: Path) -> int:
    """One list: the ADVISORY line, then the rows by risk, text cells neutralised and quoted (a carriage
    return in one stays in its cell); returns its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = rows.sort_values(["risk", "unit", "rank"], ascending=[False, True, True], kind="stable")
    cells = ordered[list(LIST_COLUMNS)]
    text = [c for c in LIST_COLUMNS if not pd.api.types.is_numeric_dtype(cells[c])]
    cells = cells.assign(**{c: cells[c].map(neutralised) for c in text})
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(ADVISORY + "\n")
        cells.to_csv(handle, index=False, lineterminator="\n", float_format="%.6f", quoting=csv.QUOTE_NONNUMERIC)
    return len(cells)


def _write_lists(listed: pd.DataFrame, folder: Path, per: Unit) -> list[tuple[Path, int, str, str | None]]:
    """lists/<local authority>.csv (and lists/<local authority>/<area>.csv per area), a file per unit:
    (path, rows, local authority, area) of each."""
    listed = listed.assign(review_decision="", review_note="")
    lists = folder / LISTS
    names = list_names(listed["local_authority"], folders=True)
    written: list[tuple[Path, int, str, str | None]] = []
    for la, rows in listed.groupby("local_authority", sort=True):
        path = lists / f"{names[la]}.csv"
        written.append((path, _write_list(rows, path), str(la), None))
        if per == "area":
            areas = list_names(rows["area_id"])
            for area, area_rows in rows.groupby("area_id", sort=True):
                path = lists / names[la] / f"{areas[area]}.csv"
                written.append((path, _write_list(area_rows, path), str(la), str(area)))
    return written


def lists_reconcile(files: tuple[FileEntry, ...], units: dict[str, UnitCounts], per: Unit) -> bool:
    """Every unit with someone listed has a list of its own holding them all (per area, so has each local
    authority), none without anyone listed has one, and no two lists share a name, ignoring case."""
    lists = [f for f in files if f.local_authority is not None]
    own = [f for f in lists if (f.area_id is not None) == (per == "area")]
    rows = {f.area_id if per == "area" else f.local_authority: f.rows for f in own}
    return (
        len({f.path.casefold() for f in lists}) == len(lists)
        and len(rows) == len(own)
        and rows == {unit: counts.listed for unit, counts in units.items() if counts.listed}
        and sum(f.rows for f in lists if f.area_id is None) == sum(u.listed for u in units.values())
    )


def write_scores(
    out_dir: Path,
    manifest: Manifest,
    per: Unit,
    write_prioritisation: Callable[[Path], int],
    listed: pd.DataFrame,
    shadow: pd.DataFrame | None = None,
) -> Manifest:
    """Write the scores folder atomically (replaced as a whole): `write_prioritisation(path)` writes
    `prioritisation.parquet` and returns its rows; `listed` (the listed rows) become the lists; `shadow`
    (`SHADOW_COLUMNS`, with `manifest.shadow` naming its model) becomes `shadow.parquet`. Returns the
    manifest as written: every file's hash and rows, and counts that reconcile only if every unit's
    listed are in a list of its own (`lists_reconcile`)."""
    if (shadow is None) != (manifest.shadow is None):
        raise ValueError("shadow scores and the manifest's shadow model go together")
    with atomic_folder(Path(out_dir), SCORES_WRITES, "riskloop score") as folder:
        target = folder / PRIORITISATION
        files = [(target, write_prioritisation(target), None, None), *_write_lists(listed, folder, per)]
        if shadow is not None:
            shadow[list(SHADOW_COLUMNS)].to_parquet(folder / SHADOW, index=False, compression="zstd")
            files.append((folder / SHADOW, len(shadow), None, None))
        entries = tuple(
            FileEntry(p.relative_to(folder).as_posix(), sha256_file(p), rows, la, area) for p, rows, la, area in files
        )
        counts = manifest.counts
        reconciles = counts.reconciles and lists_reconcile(entries, counts.units, per)
        manifest = dataclasses.replace(
            manifest, files=entries, counts=dataclasses.replace(counts, reconciles=reconciles)
        )
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


def _read_list(path: Path) -> pd.DataFrame:
    """A list as returned by a team: every cell as text, as it was before `neutralised`."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:  # a carriage return in a cell stays one
            text = handle.read()
    except OSError as exc:
        raise ScoresError(f"cannot read the list {path}: {exc.strerror or exc}") from exc
    frame = pd.read_csv(io.StringIO(text), skiprows=int(text.startswith("#")), dtype=str, keep_default_na=False)
    return frame.map(restored)


def _reviews(folder: Path, manifest: Manifest) -> pd.DataFrame:
    """`person_id`, `review_decision` of everyone in the manifest's lists (per area, someone is on two lists:
    a decision written on either counts)."""
    lists = [_read_list(folder / f.path) for f in manifest.files if f.path.startswith(f"{LISTS}/")]
    if not lists:
        return pd.DataFrame(columns=["person_id", "review_decision"])
    reviews = pd.concat(lists, ignore_index=True)[["person_id", "review_decision"]]
    decided_first = reviews.sort_values("review_decision", key=lambda d: d == "", kind="stable")
    return decided_first.drop_duplicates("person_id").sort_index().reset_index(drop=True)


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
