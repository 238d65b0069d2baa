"""Reading and writing data sets at the edges: Parquet or CSV in, atomic Parquet/CSV out.

Every file riskloop writes through here appears whole or not at all, with one mode whatever the
umask: files 0644, folders 0755 (keep outputs under a folder only the team can enter). Temporary
names are `.<target name>.<pid>.<random>.tmp` beside the target; the next write of the same target
removes those whose process on this machine is gone (a killed run's leftovers). A folder is swapped
for its previous version in one step where the system can (Linux: `renameat2` with `RENAME_EXCHANGE`).
"""

from __future__ import annotations

import csv
import ctypes
import errno
import fnmatch
import functools
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    if target.is_dir():
        raise DataError(f"{target} is a folder: give the name of a file to write")
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


_AT_FDCWD = -100  # <fcntl.h>: a relative path is read from the current folder
_RENAME_EXCHANGE = 2  # <linux/fs.h>
#: What `renameat2` answers where it cannot exchange (an old kernel, a file system without the flag, a sandbox
#: that filters the call): the two renames are used instead, and report any real failure themselves
_CANNOT_EXCHANGE = frozenset({errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM})


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """glibc's `renameat2`, or None off Linux or where the C library lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def exchange(first: Path, second: Path) -> bool:
    """Trade the places of two existing paths in one step (`renameat2(RENAME_EXCHANGE)`): a process killed at any
    moment leaves both names taken, by the old or the new. False, and nothing changed, where the system cannot."""
    call = _renameat2()
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _CANNOT_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _swap_in(folder: Path, target: Path) -> None:
    """Put `folder` in `target`'s place. Where the system can, the two trade places in one step and `folder`
    then holds the previous output (its caller removes it); elsewhere two renames, between which the previous
    folder waits at `.<name>.previous` (`recover_folder` puts it back if the process is killed there)."""
    if target.exists() and exchange(folder, target):
        return
    if target.exists():
        os.replace(target, _aside(target))
    os.replace(folder, target)
    shutil.rmtree(_aside(target), ignore_errors=True)


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
_GLOB = re.compile(r"[*?\[]")
#: What a killed write leaves beside what it wrote (`atomic_path`'s and `atomic_folder`'s temporaries, a folder
#: moved aside): the writer's too, if what it was writing is
_LEFTOVER = re.compile(r"\.(.+?)\.(?:(?:\d+\.)?\w+\.tmp|previous)")


@dataclass(frozen=True)
class Writes:
    """What a writer puts in the folder it replaces whole (`check_replaceable`).

    `patterns`: the paths of its files inside the folder, as glob patterns matched part by part, so that `*`
    never crosses a `/` (`manifest.json`, `lists/*.csv`, `lists/*/*.csv`); a folder is its writer's if a pattern
    names it or a path under it. `recorded`, for a writer that records its files (a manifest): the paths, exactly,
    of the files a previous output of it holds, or None where it cannot tell (no readable record). Where it can,
    the record decides instead of the patterns with a wildcard (a user's `lists/notes.csv` is not the writer's
    because it matches `lists/*.csv`); the patterns without one (`manifest.json`) are the writer's either way."""

    patterns: tuple[str, ...]
    recorded: Callable[[Path], Iterable[str] | None] | None = None


def _declared(
    parts: tuple[str, ...], folder: bool, patterns: list[tuple[str, ...]], exact: set[tuple[str, ...]]
) -> bool:
    """Whether a path (its parts) is one of `exact` or matches one of `patterns`, part by part; a folder also if
    one of them goes on under it. A killed write's leftover is declared if what it was writing is."""
    leftover = _LEFTOVER.fullmatch(parts[-1])
    if leftover and _declared((*parts[:-1], leftover[1]), True, patterns, exact):
        return True
    if parts in exact or (folder and any(e[: len(parts)] == parts for e in exact)):
        return True
    return any(
        (len(p) == len(parts) or (folder and len(p) > len(parts)))
        and all(fnmatch.fnmatchcase(part, q) for part, q in zip(parts, p))
        for p in patterns
    )


def _foreign(target: Path, writes: Writes) -> list[str]:
    """The paths in folder `target` (relative, with `/`) that `writes` does not account for, at any depth, in
    order; a folder not accounted for is named, not entered."""
    recorded = None if writes.recorded is None else writes.recorded(target)
    patterns = [tuple(p.split("/")) for p in writes.patterns if recorded is None or not _GLOB.search(p)]
    exact = {tuple(p.split("/")) for p in recorded or ()}

    def unreadable(exc: OSError) -> None:
        raise DataError(f"{target}: cannot look inside {exc.filename} ({exc.strerror}), so it is not replaced") from exc

    foreign = []
    for folder, folders, files in os.walk(target, onerror=unreadable):
        base = Path(folder).relative_to(target).parts
        for name in list(folders):
            if os.path.islink(os.path.join(folder, name)):  # a link is replaced as a file is, never followed
                folders.remove(name)
                files.append(name)
            elif not _declared((*base, name), True, patterns, exact):
                folders.remove(name)
                foreign.append("/".join((*base, name)))
        foreign += [
            "/".join((*base, name))
            for name in files
            if name not in FOLDER_VIEWS and not _declared((*base, name), False, patterns, exact)
        ]
    return sorted(foreign)


def check_replaceable(target: Path, writes: Iterable[str] | Writes, writer: str, remedy: str | None = None) -> None:
    """Raise DataError if `target` (or the nearest of its folders that exists) is a file, or a folder holding
    anything, at any depth, that `writer` does not write (`writes`: its `Writes`, or its patterns alone): the
    folder is replaced whole, and nothing else in it may be lost. The one line names the first such path and says
    what to do (`remedy`; by default, give another folder)."""
    target = Path(target)
    writes = writes if isinstance(writes, Writes) else Writes(tuple(writes))
    if target.is_symlink():
        raise DataError(f"{target} is a symbolic link: give the folder it points to, or a new one")
    nearest = next(p for p in (target, *target.parents) if p.exists())
    if not nearest.is_dir():
        raise DataError(f"{nearest} is a file: give a folder (new, empty, or a previous output of {writer})")
    here = Path.cwd().resolve()
    if target.resolve() in (here, *here.parents):
        raise DataError(f"{target} is the folder you are in, or holds it: {writer} replaces its folder whole")
    others = _foreign(target, writes) if target.is_dir() else []
    if others:
        raise DataError(
            f"{target} holds {others[0]!r}, which {writer} does not write: it replaces the folder whole, so "
            + (remedy or f"give a new or empty folder, or a previous output of {writer}")
        )


@contextmanager
def atomic_folder(
    target: Path, writes: Iterable[str] | Writes, writer: str, private: tuple[str, ...] = (), remedy: str | None = None
) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; if the block succeeds, it replaces `target` as a whole
    (the subfolders named in `private` mode 0700, their files 0600; the rest 0755 and 0644). A `target` holding
    anything but what `writer` writes (`writes`, `remedy`: `check_replaceable`) is refused before the block runs.

    Killed at any moment, this leaves the previous folder (or nothing, if there was none) or the new one, never a
    partial one: the new folder and the previous one trade places in one step (`exchange`), and the previous one,
    now under the temporary name, is removed after. Where the system cannot exchange, two renames: between them
    the previous folder waits at `.<name>.previous` (no `target` for a moment), which the next run puts back.
    """
    target = Path(target)
    recover_folder(target)
    check_replaceable(target, writes, writer, remedy)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _settle(tmp, private)
        _swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_file_target(target: Path, option: str, what: str, example: str) -> None:
    """Raise DataError in one line if a file cannot be written at `target` (given as `option`): it is a folder,
    or a folder it would go in is a file. For a job to call before its work."""
    target = Path(target)
    if target.is_dir():
        raise DataError(
            f"{option} {target} is a folder: give the {what} to write (a new file or a previous one), "
            f"e.g. {target / example}"
        )
    nearest = next(p for p in target.parents if p.exists())
    if not nearest.is_dir():
        raise DataError(f"{option} {target}: {nearest} is a file, not a folder")


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
