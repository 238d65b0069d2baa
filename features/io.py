"""Reading and writing data sets at the edges: Parquet or CSV in, atomic Parquet/CSV out."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class DataError(Exception):
    """A fatal problem with an input data set (missing table, missing column, unreadable file)."""


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_parquet_atomic(table: pa.Table | pd.DataFrame, target: Path,
                         metadata: dict[str, str] | None = None) -> None:
    """Write Parquet so that readers see the old file or the complete new one, never half of one."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               **{k.encode(): v.encode() for k, v in metadata.items()}})
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_csv_atomic(frame: pd.DataFrame, target: Path) -> None:
    """Write CSV with every text field quoted, so a value holding a line break reads back as one field."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, quoting=csv.QUOTE_NONNUMERIC)


def write_text_atomic(text: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def table_path(data_dir: Path, name: str) -> Path | None:
    """The file holding table `name` in a data set folder: NAME.parquet or NAME.csv.

    Raises DataError if both are there: riskloop does not guess which one is meant.
    """
    found = [p for p in (Path(data_dir) / f"{name}.parquet", Path(data_dir) / f"{name}.csv") if p.exists()]
    if len(found) > 1:
        raise DataError(f"{data_dir}: both {found[0].name} and {found[1].name} are present; keep one")
    return found[0] if found else None


def read_raw_table(path: Path) -> pd.DataFrame:
    """Read a table without interpreting it: CSV cells stay strings so validation sees them as given."""
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return pq.read_table(path).to_pandas(date_as_object=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure is reported as one clear line
        raise DataError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from exc


def data_fingerprint(data_dir: Path, names: tuple[str, ...]) -> str:
    """SHA-256 over the bytes of the data set's table files: same files, same fingerprint."""
    digest = hashlib.sha256()
    for name in names:
        path = table_path(data_dir, name)
        if path is None:
            continue
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def coverage_end(data_dir: Path) -> date | None:
    """The last day the data set covers, from its `dataset.json` if it has one."""
    meta = Path(data_dir) / "dataset.json"
    if not meta.exists():
        return None
    end = json.loads(meta.read_text()).get("end")
    return date.fromisoformat(end) if end else None
