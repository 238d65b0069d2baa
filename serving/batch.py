"""Batch scoring into prioritisation lists: what a community safety team receives.

`prioritise` is pure (a scored cohort in, the prioritisation frame out); `score_to_lists` is the
edge that scores a validated data set with a registered model and writes the scores folder through
`riskloop.artifacts.scores` (prioritisation, lists, manifest), whole or not at all.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from riskloop.artifacts.dataset import QUARANTINE_DIR
from riskloop.artifacts.scores import REASONS, Counts, DataRef, Manifest, ModelRef, Unit, write_scores
from riskloop.experiments.registry import LoadedModel
from riskloop.features.catalogue import FeatureSpec
from riskloop.features.snapshot import first_record, looks_before
from riskloop.features.validate import Dataset
from riskloop.models.contract import riskloop_version
from riskloop.models.group_calibration import unknown_values
from riskloop.models.scorer import RiskScorer
from riskloop.pipelines.score import ScoredCohort, prepare_for_scoring, require_data_set_model, score_cohort
from riskloop.serving.capacity import Capacity, select
from riskloop.serving.tiers import prevention_tier


class ScoringError(ValueError):
    """Batch scoring cannot go ahead; the message says why."""


@dataclass(frozen=True)
class ScoreOutcome:
    out_dir: Path
    manifest: Manifest
    warnings: tuple[str, ...] = ()


def short_history_warning(first: date | None, as_of: date, lookback_days: int) -> tuple[str, ...]:
    """A warning when the cohort's lookback reaches before the data's first record (`first`: the day of its first
    valid incident; the data-start rule)."""
    if first is None or not looks_before(first, [as_of], lookback_days):
        return ()
    return (
        f"the cohort at {as_of} looks back {lookback_days:,} days, to before the data's first record ({first}): "
        f"its features see a shorter past (counts are lower bounds), so scores rank people by the extract's age as "
        f"well as their history; score on or after {first + timedelta(days=lookback_days)} for full histories",
    )


def uncalibrated_groups_warning(
    scorer: RiskScorer, frame: pd.DataFrame, people: np.ndarray | None = None
) -> tuple[str, ...]:
    """A warning naming each value of a column the risk is calibrated within that the model's calibration
    window never held (sex 'U' where it held F and M): those people's risk is the pooled calibration's. A row of
    `frame` is a person, or `people[i]` of them (Spark counts each combination of values)."""
    within = scorer.within
    if within is None:
        return ()
    unknown = unknown_values(frame, within.columns, within.levels, people)
    if not unknown:
        return ()
    named = ", ".join(f"{column} '{value}' ({rows:,})" for column, value, rows in unknown)
    return (
        f"people with a value the model's calibration within {' x '.join(within.columns)} never saw: {named}; "
        "they are scored and listed with the pooled calibrated risk, not corrected within that group",
    )


def unit_column(per: Unit) -> str:
    return "local_authority" if per == "local_authority" else "area_id"


def ranked(
    frame: pd.DataFrame, capacity: Capacity, per: Unit, seed: int
) -> tuple[pd.Series, tuple[np.ndarray, np.ndarray, pd.Series, pd.Series]]:
    """(each row's unit, `select`'s rank, listed, cohort sizes and places) of a scored cohort."""
    units = frame[unit_column(per)].astype(str)
    return units, select(capacity, units, frame["risk"].to_numpy(), frame["score"].to_numpy(), frame["person_id"], seed)


def prioritise(
    cohort: ScoredCohort,
    loaded: LoadedModel,
    catalogue: list[FeatureSpec],
    capacity: Capacity,
    per: Unit,
    seed: int,
    scored_at: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(prioritisation frame: everyone scored, ranked within their unit, reasons for the listed only;
    per-unit cohort, places and listed counts)."""
    frame = cohort.frame
    units, (rank, listed, sizes, places) = ranked(frame, capacity, per, seed)
    out = list_rows(frame, units, rank, listed, loaded, catalogue, cohort, scored_at)
    out = out.sort_values(["unit", "rank"], kind="stable").reset_index(drop=True)
    counts = pd.DataFrame({"cohort": sizes, "places": places, "listed": out.groupby("unit")["listed"].sum()})
    return out, counts


def list_rows(
    frame: pd.DataFrame,
    units: pd.Series,
    rank: np.ndarray,
    listed: np.ndarray,
    loaded: LoadedModel,
    catalogue: list[FeatureSpec],
    cohort: ScoredCohort,
    scored_at: str,
) -> pd.DataFrame:
    """The prioritisation rows of scored, ranked people (row by row: any slice of a cohort gives its rows);
    reasons for the listed only. `cohort` gives the contract, as-of and data fingerprint."""
    contract = cohort.contract
    out = pd.DataFrame(
        {
            "person_id": frame["person_id"].astype(str),
            "area_id": frame["area_id"].astype(str),
            "local_authority": frame["local_authority"].astype(str),
            "unit": units,
            "rank": rank,
            "listed": listed,
            "risk": frame["risk"].to_numpy(),
            "band": frame["band"].to_numpy(),
            "band_label": frame["band_label"].astype(str),
            "prevention_tier": prevention_tier(frame, catalogue, contract.data_set_snapshot),
        }
    )
    reasons = listed_reasons(loaded.scorer, frame, units, listed)
    for column in REASONS:
        out[column] = ""
        out.loc[listed, column] = reasons[column].to_numpy()
    return out.assign(
        model_name=loaded.name or contract.registered_model,
        model_version=loaded.version or "",
        run_id=loaded.run_id or "",
        data_fingerprint=cohort.data_fingerprint,
        as_of=pd.array([cohort.as_of] * len(out), dtype="date32[pyarrow]"),
        scored_at=scored_at,
    )


def listed_reasons(scorer: RiskScorer, frame: pd.DataFrame, units: pd.Series, listed: np.ndarray) -> pd.DataFrame:
    """The listed rows' top three reasons, in their order, explained unit by unit as the Spark engine explains
    them (a call per unit): how a model's SHAP values are computed depends on how many rows a call holds
    (`models.families.gbm.TABLE_ROWS`; the two ways agree to about 1e-15), so both engines make the same calls
    and write the same sentences."""
    chosen = frame.loc[listed]
    if chosen.empty:
        return pd.DataFrame(columns=REASONS)
    by_unit = chosen.groupby(units.to_numpy()[listed], sort=False)
    return pd.concat([scorer.reasons(rows, 3) for _, rows in by_unit]).reindex(chosen.index)


def shadow_rows(cohort: ScoredCohort, capacity: Capacity, per: Unit, seed: int) -> pd.DataFrame:
    """A shadow model's cohort as it would have ranked and listed it (`SHADOW_COLUMNS`), with the same places."""
    frame = cohort.frame
    units, (rank, listed, _, _) = ranked(frame, capacity, per, seed)
    return pd.DataFrame(
        {
            "person_id": frame["person_id"].astype(str).to_numpy(),
            "unit": units.to_numpy(),
            "risk": frame["risk"].to_numpy(),
            "band": frame["band"].to_numpy(),
            "rank": rank,
            "would_list": listed,
        }
    )


def score_to_lists(
    loaded: LoadedModel,
    dataset: Dataset,
    as_of: date,
    out_dir: Path,
    capacity: Capacity,
    per: Unit = "local_authority",
    seed: int = 0,
    progress: Callable[[int, int], None] = lambda done, total: None,
    shadow: LoadedModel | None = None,
) -> ScoreOutcome:
    """Score the cohort at `as_of`, rank it, fill each unit's places and write the scores folder atomically;
    with a `shadow` model, its scores of the same cohort too (`shadow.parquet`: never listed, never served).
    The data set's tables are let go once prepared: a caller that hands it over (`score_to_lists(loaded,
    read_dataset(folder), ...)`) keeps them out of the memory the cohort's features need (on full Wales the
    peak falls from 3.4 to under 3 GiB, docs/validation.md)."""
    started = time.perf_counter()
    prepared = prepare_for_scoring(loaded.contract, dataset, as_of)
    report, end, source = dataset.report, dataset.end, Path(dataset.source).name
    del dataset
    pa.default_memory_pool().release_unused()  # else Arrow's allocator keeps the tables' pages for itself
    snapshot = loaded.contract.data_set_snapshot  # prepare_for_scoring refused a model without one
    cohort = score_cohort(loaded.scorer, prepared, as_of, progress=progress)
    if cohort.frame.empty:
        raise ScoringError(
            f"no one is in the cohort at {as_of}: no valid incident in the {snapshot.lookback_days} days before it"
        )
    uncalibrated = uncalibrated_groups_warning(loaded.scorer, cohort.frame)
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    frame, counts = prioritise(cohort, loaded, prepared.catalogue(snapshot), capacity, per, seed, scored_at)
    draft = manifest(
        loaded,
        as_of,
        scored_at,
        source,
        prepared.fingerprint,
        end,
        Counts.of(report, len(cohort.frame), len(frame), counts),
        capacity,
        per,
        seed,
        started,
    )

    shadowed = None
    if shadow is not None:
        require_data_set_model(shadow.contract)  # the prepared data set does not depend on the model
        shadow_cohort = score_cohort(shadow.scorer, prepared, as_of)
        shadowed = shadow_rows(shadow_cohort, capacity, per, seed)
        draft = dataclasses.replace(draft, shadow=ModelRef(shadow.name, shadow.version, shadow.run_id, shadow.uri))

    def write_prioritisation(path: Path) -> int:
        frame.to_parquet(path, index=False, compression="zstd")
        return len(frame)

    written = write_scores(out_dir, draft, per, write_prioritisation, frame[frame["listed"]], shadowed)
    warnings = short_history_warning(first_record(prepared), as_of, snapshot.lookback_days) + uncalibrated
    return ScoreOutcome(Path(out_dir), written, warnings)


def manifest(
    loaded: LoadedModel,
    as_of: date,
    scored_at: str,
    source: str,
    fingerprint: str,
    coverage_end: date,
    counts: Counts,
    capacity: Capacity,
    per: Unit,
    seed: int,
    started: float,
    engine: str = "local",
) -> Manifest:
    """The manifest of a scoring run (its files are added as they are written)."""
    return Manifest(
        riskloop_version=riskloop_version(),
        scored_at=scored_at,
        as_of=as_of,
        model=ModelRef(loaded.name, loaded.version, loaded.run_id, loaded.uri),
        contract=loaded.contract,
        data=DataRef(source, fingerprint, coverage_end, f"{QUARANTINE_DIR}/ in the data set folder"),
        counts=counts,
        capacity={**capacity.describe(), "per": per, "tie_break_seed": seed},
        engine=engine,
        runtime_seconds=round(time.perf_counter() - started, 2),
    )
