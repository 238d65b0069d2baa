"""The snapshot file (`riskloop features --out FILE.parquet`): the snapshot rows (ids, `as_of`, features,
`label`, protected columns) with their `SnapshotMeta` (features, protected columns, label, horizon,
lineage) in the Parquet schema's metadata under `riskloop`. Written whole by the local engine and by
Spark (which assembles its parts with `snapshot_metadata`); `read_snapshots` reads it back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from riskloop.features.io import DataError, write_parquet_atomic
from riskloop.features.snapshot import SnapshotMeta

METADATA_KEY = b"riskloop"


def snapshot_metadata(meta: SnapshotMeta) -> dict[bytes, bytes]:
    """The Parquet schema metadata that makes a file a snapshot file."""
    return {METADATA_KEY: meta.to_json().encode()}


def write_snapshots(frame: pd.DataFrame, meta: SnapshotMeta, path: Path) -> None:
    write_parquet_atomic(frame, Path(path), metadata={METADATA_KEY.decode(): meta.to_json()})


def read_snapshots(path: Path) -> tuple[pd.DataFrame, SnapshotMeta]:
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise DataError(f"{path}: not a riskloop snapshot file (no riskloop metadata)")
    return table.to_pandas(), SnapshotMeta.from_json(raw.decode())
