"""The data set folder: the four contract tables (`<table>.parquet` or `<table>.csv`), `dataset.json`
(its coverage) and, when a job asks for it, `_quarantine/<table>.csv` (the rows validation rejected,
with their reason). `read_dataset` reads and validates (the quarantine stays in memory, on the
`Dataset`); the job decides whether `write_quarantine` puts it beside the data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa

from riskloop.features.io import (
    DataError,
    atomic_folder,
    data_fingerprint,
    read_raw_table,
    table_path,
    write_csv_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from riskloop.features.schema import TABLE_NAMES
from riskloop.features.validate import Dataset, validate_tables

QUARANTINE_DIR = "_quarantine"
COVERAGE_FILE = "dataset.json"


@dataclass(frozen=True)
class Coverage:
    """What `dataset.json` says of the data: the last day it covers (the one thing the readers need), and
    where it came from (the first day, what made it and with which seed, where the file says)."""

    end: date
    start: date | None = None
    kind: str = "riskloop data set"
    seed: int | None = None


def parse_coverage(text: str, where: str) -> Coverage | None:
    """`dataset.json`'s text as a `Coverage`; None when it names no `end` (the last valid incident's date
    stands in). Both engines read the file through this."""
    try:
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise TypeError(f"expected a JSON object, got {type(meta).__name__}")
        if not meta.get("end"):
            return None
        end, start = date.fromisoformat(meta["end"]), meta.get("start")
        start = date.fromisoformat(start) if start else None
        if start is not None and start > end:
            raise ValueError(f"its start {start} is after its end {end}")
        return Coverage(end, start, meta.get("kind", "riskloop data set"), meta.get("seed"))
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{where}: not a readable coverage (its end as YYYY-MM-DD): {exc}") from exc


def read_coverage(folder: Path) -> Coverage | None:
    """The data set's coverage from its `dataset.json`, if it has one."""
    path = Path(folder) / COVERAGE_FILE
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return parse_coverage(text, str(path))


def read_raw_tables(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The four tables as given (CSV cells stay text) and the file each came from."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data set folder not found")
    raw, sources = {}, {}
    for name in TABLE_NAMES:
        path = table_path(folder, name)
        if path is None:
            raise DataError(f"{folder}: missing table '{name}' (expected {name}.parquet or {name}.csv)")
        raw[name], sources[name] = read_raw_table(path), str(path)
    return raw, sources


def read_dataset(folder: Path, today: date | None = None) -> Dataset:
    """Read and validate a data set folder. Its coverage end is `dataset.json`'s, else the last valid
    incident's date. Nothing is written: the rejected rows are in `Dataset.quarantine`."""
    today = today or date.today()
    raw, sources = read_raw_tables(folder)
    valid, quarantined, report = validate_tables(raw, today, sources)
    coverage = read_coverage(folder)
    if coverage is not None:
        end = coverage.end
    else:
        end = valid["incidents"]["date"].max().date() if len(valid["incidents"]) else today
    return Dataset(
        **valid,
        fingerprint=data_fingerprint(folder, TABLE_NAMES),
        end=end,
        report=report,
        source=str(folder),
        quarantine=quarantined,
    )


def write_quarantine(folder: Path, quarantine: dict[str, pd.DataFrame]) -> list[Path]:
    """`<folder>/_quarantine/<table>.csv` for the tables with rejected rows (a `Dataset.quarantine`), the folder
    replaced as a whole (`atomic_folder`: killed at any moment, the previous quarantine or this one, never files
    of both); nothing is written where no row was rejected and there is no quarantine yet. A `_quarantine/`
    holding anything but quarantined rows (`<table>.csv`; Spark's `<table>/` parts) is refused in one line and
    left as it was."""
    target_folder = Path(folder) / QUARANTINE_DIR
    rejected = {name: rows for name, rows in quarantine.items() if len(rows)}
    if not rejected and not target_folder.exists():
        return []
    names = sorted({*TABLE_NAMES, *quarantine})
    writes = (*(f"{name}.csv" for name in names), *(f"{name}/*" for name in names))
    remedy = f"move it out of {target_folder}"
    with atomic_folder(target_folder, writes, "riskloop's validation", remedy=remedy) as written:
        for name, rows in rejected.items():
            write_csv_atomic(rows, written / f"{name}.csv")
    return [target_folder / f"{name}.csv" for name in rejected]


def write_dataset(folder: Path, tables: dict[str, pa.Table], coverage: Coverage) -> dict[str, int]:
    """Write the contract tables as Parquet and `dataset.json`; return each table's row count. People are
    written in person_id order, the order the features need them in (`PreparedData` sorts only if not)."""
    folder = Path(folder)
    for name, table in tables.items():
        ordered = table.sort_by("person_id") if name == "people" and "person_id" in table.column_names else table
        write_parquet_atomic(ordered, folder / f"{name}.parquet")
    meta = {
        "kind": coverage.kind,
        "start": coverage.start.isoformat() if coverage.start else None,
        "end": coverage.end.isoformat(),
        "seed": coverage.seed,
    }
    write_text_atomic(json.dumps(meta, indent=2, sort_keys=True), folder / COVERAGE_FILE)
    return {name: table.num_rows for name, table in tables.items()}
