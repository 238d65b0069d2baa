"""A `riskloop score` output folder in memory for the API: O(1) lookup by pseudonym, lists in rank order.
The folder is read by `riskloop.artifacts.scores.read_scores`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from riskloop.artifacts.scores import COLUMNS, REASONS, Manifest, Scores, ScoresError, read_scores


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class ScoreStore:
    """The batch scores: `person(pseudonym)` and `listed(local_authority)` without scanning."""

    def __init__(self, scores: Scores):
        frame = scores.prioritisation
        self.manifest: Manifest = scores.manifest
        self._columns = {c: (frame[c].astype(str) if c == "as_of" else frame[c]).to_numpy() for c in COLUMNS}
        ids = self._columns["person_id"]
        self._index = dict(zip(ids.tolist(), range(len(ids))))
        if len(self._index) != len(ids):
            raise ScoresError("prioritisation.parquet has a person_id more than once")
        self.local_authorities = frozenset(self._columns["local_authority"].tolist())
        self._lists = self._rank_order()

    @classmethod
    def load(cls, folder: Path) -> ScoreStore:
        return cls(read_scores(folder, list(COLUMNS)))

    def _rank_order(self) -> dict[str, np.ndarray]:
        """Row positions of each local authority's listed people by rank, then risk (high first), then pseudonym."""
        c = self._columns
        order = np.lexsort((c["person_id"], -c["risk"], c["rank"], c["local_authority"]))
        order = order[c["listed"][order]]
        authorities = c["local_authority"][order]
        bounds = np.flatnonzero(authorities[1:] != authorities[:-1]) + 1
        return {
            str(part[0]): rows
            for part, rows in zip(np.split(authorities, bounds), np.split(order, bounds))
            if len(rows)
        }

    def __len__(self) -> int:
        return len(self._index)

    @property
    def as_of(self) -> str:
        return self.manifest.as_of.isoformat()

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
