"""The score pipeline: a model's contract + a validated data set + an as-of date -> the scored cohort.

The seam that batch scoring, audits, explanations and the learning loop reuse: the snapshot is
rebuilt exactly as the model's training snapshots were (its contract's snapshot settings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshot, check_coverage
from riskloop.features.validate import Dataset
from riskloop.models.contract import ContractError, ModelContract
from riskloop.models.scorer import RiskScorer

CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class ScoredCohort:
    """Everyone in the cohort at `as_of`: ids, features, protected columns, label (NaN where its
    horizon is still open), the model's uncalibrated `score`, calibrated `risk`, `band` and `band_label`."""

    frame: pd.DataFrame
    as_of: date
    contract: ModelContract
    data_fingerprint: str


def require_data_set_model(contract: ModelContract) -> SnapshotConfig:
    """Refuse, before any data is read, a model that cannot score a riskloop data set; its snapshot settings."""
    return contract.data_set_snapshot


def prepare_for_scoring(contract: ModelContract, dataset: Dataset, as_of: date) -> PreparedData:
    """The prepared arrays of a validated data set that a model is to score at `as_of`: refused in one line
    if the model cannot score a data set, if the data has no valid rows or if it does not cover `as_of`."""
    require_data_set_model(contract)
    dataset.require_rows("areas", "people", "incidents")
    check_coverage(dataset, [as_of])
    return PreparedData.from_dataset(dataset, scoring_programmes(contract, dataset.interventions["programme"].unique()))


def scoring_programmes(contract: ModelContract, found: Iterable[str]) -> tuple[str, ...]:
    """The programmes a cohort's features are built for: the data set's and the model's own. A programme the
    model knows with no rows in the data (none started in this extract) gives zero counts, not a refusal."""
    return tuple(sorted({str(p) for p in found} | set(contract.programmes)))


def missing_features_error(missing: list[str]) -> ContractError:
    """The one-line refusal of a data set that cannot give these features of the model."""
    return ContractError(
        f"the data set cannot give {len(missing)} of the model's features ({', '.join(missing[:3])}"
        f"{', ...' if len(missing) > 3 else ''}): it lacks what they are built from (household features need "
        "people.household_id; a programme's features need the programme in interventions, or a model trained "
        "by a riskloop that records its programmes)"
    )


def cohort_snapshot(contract: ModelContract, prepared: PreparedData, as_of: date) -> pd.DataFrame:
    """The snapshot at `as_of` built as the model's training snapshots were."""
    snapshot = build_snapshot(prepared, as_of, require_data_set_model(contract))
    missing = [f for f in contract.features if f not in snapshot.columns]
    if missing:
        raise missing_features_error(missing)
    return snapshot


def _feature_columns(frame: pd.DataFrame, features: list[str]) -> slice | list[str]:
    """A column slice when the features are a contiguous run of the frame's columns in order (a snapshot
    holds them so), which pandas gives as a view; otherwise the names (a copy per chunk)."""
    positions = frame.columns.get_indexer(features)
    first = int(positions[0]) if len(positions) else -1
    if first >= 0 and (positions == np.arange(first, first + len(features))).all():
        return slice(first, first + len(features))
    return features


def score_frame(
    scorer: RiskScorer,
    frame: pd.DataFrame,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> pd.DataFrame:
    """Uncalibrated `score`, calibrated `risk`, `band` and `band_label` for every row, predicted in
    chunks so that the copies a model makes of its input stay bounded; in one piece where the features are
    a view of the frame's float block that the model reads where it lies (`RiskScorer.reads_in_place`: a
    snapshot's LightGBM model, which a chunk would make copy its rows). A model calibrated within protected
    groups reads them from the frame (a snapshot carries the protected columns) and refuses it, before any
    work, if it lacks them."""
    scorer.require_groups(frame)
    score = np.empty(len(frame))
    columns = _feature_columns(frame, scorer.features)
    if isinstance(columns, slice) and scorer.reads_in_place and (frame.dtypes.iloc[columns] == np.float64).all():
        chunk_rows = max(len(frame), 1)
    for start in range(0, len(frame), chunk_rows):
        rows = slice(start, start + chunk_rows)
        chunk = frame.iloc[rows, columns] if isinstance(columns, slice) else frame.iloc[rows][columns]
        score[rows] = scorer.raw_score(chunk)
        progress(min(start + chunk_rows, len(frame)), len(frame))
    band, label = scorer.bands(score)
    return pd.DataFrame(
        {"score": score, "risk": scorer.probability(score, frame), "band": band, "band_label": label}, index=frame.index
    )


def score_cohort(
    scorer: RiskScorer,
    prepared: PreparedData,
    as_of: date,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> ScoredCohort:
    snapshot = cohort_snapshot(scorer.contract, prepared, as_of)
    scores = score_frame(scorer, snapshot, progress=progress)
    for column in scores.columns:  # added in place: the snapshot is not copied
        snapshot[column] = scores[column].to_numpy()
    return ScoredCohort(snapshot, as_of, scorer.contract, prepared.fingerprint)
