"""An output folder that appears whole or not at all.

Everything is written into a hidden temporary folder beside the target; at the end the previous
folder (if any) is moved aside, the new one renamed into place and the old one removed. A run killed
at any moment leaves the previous complete folder, or (between the two renames) the previous folder
moved aside, which the next run puts back before it starts. Stale temporary folders are removed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _aside(target: Path) -> Path:
    return target.parent / f".{target.name}.previous"


def recover(target: Path) -> None:
    """Undo what a killed run left: restore a folder moved aside, remove half-written temporary folders."""
    target = Path(target)
    if not target.exists() and _aside(target).exists():
        os.replace(_aside(target), target)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(_aside(target), ignore_errors=True)


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; if the block succeeds, it replaces `target` as a whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
        for path in sorted(tmp.rglob("*"), reverse=True):
            if path.is_file():
                os.chmod(path, 0o644)
        _fsync_tree(tmp)
        if target.exists():
            os.replace(target, _aside(target))
        os.replace(tmp, target)
        shutil.rmtree(_aside(target), ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
