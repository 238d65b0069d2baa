"""A `riskloop score` output folder in memory: O(1) lookup by pseudonym, lists in rank order.

The folder holds `prioritisation.parquet` (one row per scored person) and `manifest.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COLUMNS = ("person_id", "area_id", "local_authority", "unit", "rank", "listed", "risk", "band", "band_label",
           "prevention_tier", "reason_1", "reason_2", "reason_3", "model_name", "model_version", "run_id",
           "data_fingerprint", "as_of", "scored_at")
REASONS = ("reason_1", "reason_2", "reason_3")
MANIFEST_MODEL = ("name", "version", "run_id", "uri")


class ScoreError(ValueError):
    """A score folder problem, in one line."""


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ScoreError(f"cannot read {path}: {exc}") from exc
    model = manifest.get("model") if isinstance(manifest, dict) else None
    if not isinstance(model, dict) or any(k not in model for k in MANIFEST_MODEL) or "as_of" not in manifest:
        raise ScoreError(f"{path} lacks model.{{{','.join(MANIFEST_MODEL)}}} or as_of")
    return manifest


class ScoreStore:
    """The batch scores: `person(pseudonym)` and `listed(local_authority)` without scanning."""

    def __init__(self, table: pa.Table, manifest: dict[str, Any]):
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise ScoreError(f"prioritisation.parquet lacks column '{missing[0]}' ({len(missing)} missing)")
        self.manifest = manifest
        self._columns = {c: (pc.cast(table[c], pa.string()) if c == "as_of" else table[c]).to_numpy(
            zero_copy_only=False) for c in COLUMNS}
        ids = self._columns["person_id"]
        self._index = dict(zip(ids.tolist(), range(len(ids))))
        if len(self._index) != len(ids):
            raise ScoreError("prioritisation.parquet has a person_id more than once")
        self.local_authorities = frozenset(self._columns["local_authority"].tolist())
        self._lists = self._rank_order()

    @classmethod
    def load(cls, folder: Path) -> "ScoreStore":
        parquet = folder / "prioritisation.parquet"
        if not parquet.is_file():
            raise ScoreError(f"{folder} has no prioritisation.parquet (is it a `riskloop score` output folder?)")
        return cls(pq.read_table(parquet), load_manifest(folder / "manifest.json"))

    def _rank_order(self) -> dict[str, np.ndarray]:
        """Row positions of each local authority's listed people by rank, then risk (high first), then pseudonym."""
        c = self._columns
        order = np.lexsort((c["person_id"], -c["risk"], c["rank"], c["local_authority"]))
        order = order[c["listed"][order]]
        authorities = c["local_authority"][order]
        bounds = np.flatnonzero(authorities[1:] != authorities[:-1]) + 1
        return {str(part[0]): rows for part, rows in zip(np.split(authorities, bounds), np.split(order, bounds))
                if len(rows)}

    def __len__(self) -> int:
        return len(self._index)

    @property
    def as_of(self) -> str:
        return str(self.manifest["as_of"])

    def row(self, position: int) -> dict[str, Any]:
        record = {c: _native(values[position]) for c, values in self._columns.items() if c not in REASONS}
        record["reasons"] = [r for r in (self._columns[c][position] for c in REASONS) if r]
        return record

    def person(self, pseudonym: str) -> dict[str, Any] | None:
        position = self._index.get(pseudonym)
        return None if position is None else self.row(position)

    def listed(self, local_authority: str) -> np.ndarray:
        """Row positions of the local authority's listed people in rank order (empty if none)."""
        return self._lists.get(local_authority, np.empty(0, dtype=np.int64))
