"""The ingest's private folder (`OUT/_private/`, mode 0700, files 0600): personal data, kept for the team.

It holds the link table (every source record: its source, source id, names, birth date, cluster and
pseudonym), the quarantined source rows, the pairs near the linkage threshold for review, and a check value
of the partnership key (an HMAC of a fixed text, never the key), so that `reidentify` refuses a wrong key
instead of joining nothing. Nothing in it may be shared outside the partnership's data controllers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from pathlib import Path

import pandas as pd

from riskloop.features.io import DataError

PRIVATE_DIR = "_private"
LINK_TABLE = "link_table.parquet"
KEY_CHECK = "key_check.txt"
NEAR_THRESHOLD = "near_threshold_pairs.csv"
QUARANTINE_DIR = "quarantine"
FOLDER_MODE = 0o700
FILE_MODE = 0o600
_CHECK_TEXT = b"riskloop link table key check"


def private_tree(root: Path, folder: Path) -> None:
    """Create `folder` under `root`, `root` and every folder between them mode 0700."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in [folder, *folder.parents[: len(folder.relative_to(root).parts)]]:
        os.chmod(path, FOLDER_MODE)


def _write_private(target: Path, write) -> None:  # noqa: ANN001 - write(path) fills the file
    """Write `target` whole or not at all, mode 0600 from its creation (mkstemp's mode) to its rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, FOLDER_MODE)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_private_csv(frame: pd.DataFrame, target: Path) -> None:
    _write_private(target, lambda path: frame.to_csv(path, index=False))


def key_check(key: bytes) -> str:
    """A value that shows which key made a link table without revealing it."""
    return hmac.new(key, _CHECK_TEXT, hashlib.sha256).hexdigest()


def write_private(
    out: Path, link: pd.DataFrame, near_threshold: pd.DataFrame, quarantine: dict[str, pd.DataFrame], key: bytes
) -> Path:
    """`out/_private/`: the link table, the key check, the pairs nearest the threshold and the quarantined
    source rows (`quarantine/<name>.csv` per non-empty frame). `out` is the temporary folder of the ingest's
    `atomic_folder` (mode 0700 from its creation, and settling this folder 0700 and its files 0600), so the
    files are written plainly; nothing stale is there to remove."""
    folder = Path(out) / PRIVATE_DIR
    (folder / QUARANTINE_DIR).mkdir(parents=True)
    link.to_parquet(folder / LINK_TABLE, index=False)
    (folder / KEY_CHECK).write_text(key_check(key) + "\n")
    near_threshold.to_csv(folder / NEAR_THRESHOLD, index=False)
    for name, frame in quarantine.items():
        if len(frame):
            frame.to_csv(folder / QUARANTINE_DIR / f"{name}.csv", index=False)
    return folder


def read_link_table(ingest_out: Path, key: bytes) -> pd.DataFrame:
    """The link table of an ingest's output folder; DataError if absent or made with another key."""
    folder = Path(ingest_out) / PRIVATE_DIR
    if not (folder / LINK_TABLE).exists() or not (folder / KEY_CHECK).exists():
        raise DataError(f"{ingest_out}: no link table ({PRIVATE_DIR}/{LINK_TABLE}): is this an ingest's output?")
    if not hmac.compare_digest((folder / KEY_CHECK).read_text().strip(), key_check(key)):
        raise DataError(f"{ingest_out}: the pseudonym key is not the one this link table was made with")
    return pd.read_parquet(folder / LINK_TABLE)


def reidentified(frame: pd.DataFrame, link: pd.DataFrame) -> pd.DataFrame:
    """A list's rows with the source and source id of each record linked to its person (one row per record;
    a person with no record in the link table keeps one row with them blank)."""
    if "person_id" not in frame.columns:
        raise DataError("the list has no person_id column")
    ids = link[["person_id", "source", "source_id"]].drop_duplicates()
    return frame.merge(ids, on="person_id", how="left", sort=False)
