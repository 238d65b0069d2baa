"""How well a linkage found the world's people: pairwise precision and recall against `_truth/records.csv`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class PairwiseAccuracy:
    """Over pairs of records: linked and the same person (true), linked (predicted), the same person (real)."""

    true_pairs: int
    predicted_pairs: int
    real_pairs: int

    @property
    def precision(self) -> float:
        return self.true_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_pairs / self.real_pairs if self.real_pairs else 1.0


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_accuracy(clusters: pd.DataFrame, truth: pd.DataFrame) -> PairwiseAccuracy:
    """`clusters` (source, source_id, cluster_key) against `truth` (source, source_id, person_id): every truth
    record must be clustered."""
    joined = truth.astype({"source": str, "source_id": str}).merge(
        clusters.astype({"source": str, "source_id": str}), on=["source", "source_id"], how="left"
    )
    if joined["cluster_key"].isna().any():
        missing = joined.loc[joined["cluster_key"].isna(), ["source", "source_id"]].iloc[0].tolist()
        raise ValueError(f"{joined['cluster_key'].isna().sum()} truth records have no cluster (e.g. {missing})")
    return PairwiseAccuracy(
        true_pairs=_pairs(joined.groupby(["cluster_key", "person_id"]).size()),
        predicted_pairs=_pairs(joined.groupby("cluster_key").size()),
        real_pairs=_pairs(joined.groupby("person_id").size()),
    )


def read_truth_records(extracts: Path) -> pd.DataFrame:
    return pd.read_csv(Path(extracts) / "_truth" / "records.csv", dtype=str)
