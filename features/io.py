"""Reading and writing data sets at the edges: Parquet or CSV in, atomic Parquet/CSV out.

Every file riskloop writes through here appears whole or not at all, with one mode whatever the
umask: files 0644, folders 0755 (keep outputs under a folder only the team can enter). Temporary
names are `.<target name>.<pid>.<random>.tmp` beside the target; the next write of the same target
removes those whose process on this machine is gone (a killed run's leftovers).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class DataError(Exception):
    """A fatal problem with an input data set (missing table, missing column, unreadable file)."""


FILE_MODE = 0o644
FOLDER_MODE = 0o755
PRIVATE_FILE_MODE = 0o600  # personal data: the owner's only
PRIVATE_FOLDER_MODE = 0o700


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: Path) -> None:
    """Remove temporary files and folders beside `target` whose writing process is gone."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)\.)?\w+\.tmp")
    for path in target.parent.glob(".*.tmp"):
        match = pattern.fullmatch(path.name)
        if match is None or (match[1] is not None and process_alive(int(match[1]))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place (mode 0644) only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _aside(target: Path) -> Path:
    return target.parent / f".{target.name}.previous"


def recover_folder(target: Path) -> None:
    """Undo what a killed `atomic_folder` left: put back a folder moved aside, remove stale temporaries."""
    target = Path(target)
    if not target.exists() and _aside(target).exists():
        os.replace(_aside(target), target)
    shutil.rmtree(_aside(target), ignore_errors=True)
    remove_stale_temporaries(target)


def _settle(folder: Path, private: tuple[str, ...] = ()) -> None:
    """Give the tree its modes and flush it to disk before it is renamed into place; the subfolders named in
    `private` (personal data) and everything in them are the owner's only (0700, files 0600)."""
    closed = [folder / name for name in private]
    for path in [folder, *folder.rglob("*")]:
        mine = any(path == c or c in path.parents for c in closed)
        if path.is_dir():
            os.chmod(path, PRIVATE_FOLDER_MODE if mine else FOLDER_MODE)
        else:
            os.chmod(path, PRIVATE_FILE_MODE if mine else FILE_MODE)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


#: What a file browser leaves in a folder it showed: not a user's file, so it does not stop a rerun
FOLDER_VIEWS = (".DS_Store", "Thumbs.db", "desktop.ini")


def check_replaceable(target: Path, writes: Iterable[str], writer: str) -> None:
    """Raise DataError if `target` (or the nearest of its folders that exists) is a file, or a folder holding a name
    that matches none of `writes` (glob patterns of what `writer` puts there): the folder is replaced whole, and
    nothing else in it may be lost."""
    target = Path(target)
    if target.is_symlink():
        raise DataError(f"{target} is a symbolic link: give the folder it points to, or a new one")
    nearest = next(p for p in (target, *target.parents) if p.exists())
    if not nearest.is_dir():
        raise DataError(f"{nearest} is a file: give a folder (new, empty, or a previous output of {writer})")
    here = Path.cwd().resolve()
    if target.resolve() in (here, *here.parents):
        raise DataError(f"{target} is the folder you are in, or holds it: {writer} replaces its folder whole")
    patterns = (*writes, *FOLDER_VIEWS)
    others = (
        sorted(p.name for p in target.iterdir() if not any(fnmatch.fnmatchcase(p.name, w) for w in patterns))
        if target.is_dir()
        else []
    )
    if others:
        raise DataError(
            f"{target} holds {others[0]!r}, which {writer} does not write: it replaces the folder whole, so give a "
            f"new or empty folder, or a previous output of {writer}"
        )


@contextmanager
def atomic_folder(target: Path, writes: Iterable[str], writer: str, private: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; if the block succeeds, it replaces `target` as a whole
    (the subfolders named in `private` mode 0700, their files 0600; the rest 0755 and 0644). A `target` holding
    anything but what `writer` writes (`writes`: `check_replaceable`) is refused before the block runs.

    Killed at any moment, this leaves the previous folder (or nothing), never a partial one: between
    the two renames the previous folder waits at `.<name>.previous`, which the next run puts back.
    """
    target = Path(target)
    recover_folder(target)
    check_replaceable(target, writes, writer)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _settle(tmp, private)
        if target.exists():
            os.replace(target, _aside(target))
        os.replace(tmp, target)
        shutil.rmtree(_aside(target), ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_parquet_atomic(table: pa.Table | pd.DataFrame, target: Path, metadata: dict[str, str] | None = None) -> None:
    """Write Parquet so that readers see the old file or the complete new one, never half of one."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in metadata.items()}}
        )
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


def _column_names(path: Path) -> list[str]:
    """A table file's column names as written (a CSV's header row, a Parquet file's schema)."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    return pq.read_schema(path).names


def _refuse_duplicated_columns(path: Path) -> None:
    """Raise DataError naming the columns a table file holds more than once (riskloop does not guess which)."""
    duplicated = [name for name, count in Counter(_column_names(path)).items() if count > 1]
    if len(duplicated) == 1:
        raise DataError(f"{path}: duplicated column '{duplicated[0]}' (keep one)")
    if duplicated:
        raise DataError(f"{path}: duplicated columns {', '.join(repr(n) for n in duplicated)} (keep one of each)")


def read_raw_table(path: Path) -> pd.DataFrame:
    """Read a table without interpreting it: CSV cells stay strings so validation sees them as given.

    Raises DataError in one line for a file that cannot be read or holds a column twice."""
    try:
        _refuse_duplicated_columns(path)
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return pq.read_table(path).to_pandas(date_as_object=False)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is reported as one clear line
        raise DataError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
