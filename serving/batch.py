"""Batch scoring into prioritisation lists: what a community safety team receives.

`prioritise` is pure (a scored cohort in, the prioritisation frame out); `score_to_lists` is the
edge that validates the data set, scores it with a registered model, and writes the output folder
atomically: `prioritisation.parquet` (everyone scored), `lists/<local authority>.csv` (the listed,
ready for a case meeting) and `manifest.json` (counts that reconcile, the contract, file hashes).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from riskloop.experiments.registry import LoadedModel
from riskloop.features.catalogue import FeatureSpec
from riskloop.features.io import atomic_folder, sha256_file
from riskloop.features.validate import QUARANTINE_DIR, ValidationReport
from riskloop.models.contract import riskloop_version
from riskloop.pipelines.score import ScoredCohort, load_for_scoring, score_cohort
from riskloop.serving.capacity import Capacity, select
from riskloop.serving.tiers import prevention_tier

Unit = Literal["local_authority", "area"]
REASONS = ("reason_1", "reason_2", "reason_3")
LIST_COLUMNS = ("rank", "person_id", "area_id", "risk", "band", "band_label", "prevention_tier", *REASONS,
                "review_decision", "review_note")
ADVISORY = ("# ADVISORY prioritisation list for a case meeting: scores are advice, a practitioner decides; "
            "record the decision and why in review_decision and review_note.")


class ScoringError(ValueError):
    """Batch scoring cannot go ahead; the message says why."""


@dataclass(frozen=True)
class ScoreOutcome:
    out_dir: Path
    manifest: dict


def unit_column(per: Unit) -> str:
    return "local_authority" if per == "local_authority" else "area_id"


def prioritise(cohort: ScoredCohort, loaded: LoadedModel, catalogue: list[FeatureSpec], capacity: Capacity,
               per: Unit, seed: int, scored_at: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(prioritisation frame: everyone scored, ranked within their unit, reasons for the listed only;
    per-unit cohort, places and listed counts)."""
    frame = cohort.frame
    units = frame[unit_column(per)].astype(str)
    rank, listed, sizes, places = select(capacity, units, frame["risk"].to_numpy(), frame["score"].to_numpy(),
                                         frame["person_id"], seed)
    out = list_rows(frame, units, rank, listed, loaded, catalogue, cohort, scored_at)
    out = out.sort_values(["unit", "rank"], kind="stable").reset_index(drop=True)
    counts = pd.DataFrame({"cohort": sizes, "places": places, "listed": out.groupby("unit")["listed"].sum()})
    return out, counts


def list_rows(frame: pd.DataFrame, units: pd.Series, rank: np.ndarray, listed: np.ndarray, loaded: LoadedModel,
              catalogue: list[FeatureSpec], cohort: ScoredCohort, scored_at: str) -> pd.DataFrame:
    """The prioritisation rows of scored, ranked people (row by row: any slice of a cohort gives its rows);
    reasons for the listed only. `cohort` gives the contract, as-of and data fingerprint."""
    contract = cohort.contract
    out = pd.DataFrame({
        "person_id": frame["person_id"].astype(str), "area_id": frame["area_id"].astype(str),
        "local_authority": frame["local_authority"].astype(str), "unit": units, "rank": rank, "listed": listed,
        "risk": frame["risk"].to_numpy(), "band": frame["band"].to_numpy(), "band_label": frame["band_label"].astype(str),
        "prevention_tier": prevention_tier(frame, catalogue, contract.snapshot),
    })
    reasons = loaded.scorer.reasons(frame.loc[listed], 3) if listed.any() else pd.DataFrame(columns=REASONS)
    for column in REASONS:
        out[column] = ""
        out.loc[listed, column] = reasons[column].to_numpy()
    return out.assign(model_name=loaded.name or contract.registered_model, model_version=loaded.version or "",
                      run_id=loaded.run_id or "", data_fingerprint=cohort.data_fingerprint,
                      as_of=pd.array([cohort.as_of] * len(out), dtype="date32[pyarrow]"), scored_at=scored_at)


def _file_name(unit: str) -> str:
    return re.sub(r"[^A-Za-z0-9 _.-]", "_", unit).strip() or "_"


def write_lists(frame: pd.DataFrame, folder: Path, per: Unit) -> list[tuple[Path, int]]:
    """lists/<local authority>.csv (and lists/<local authority>/<area>.csv per area): the listed, by rank.
    Returns each file with its number of people."""
    written = []
    listed = frame[frame["listed"]].assign(review_decision="", review_note="")
    groups = [(Path(_file_name(la)), rows) for la, rows in listed.groupby("local_authority", sort=True)]
    if per == "area":
        groups += [(Path(_file_name(la)) / _file_name(area), rows)
                   for (la, area), rows in listed.groupby(["local_authority", "area_id"], sort=True)]
    for name, rows in groups:
        path = folder / "lists" / name.with_suffix(".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        ordered = rows.sort_values(["risk", "unit", "rank"], ascending=[False, True, True], kind="stable")
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(ADVISORY + "\n")
            ordered[list(LIST_COLUMNS)].to_csv(handle, index=False, lineterminator="\n", float_format="%.6f")
        written.append((path, len(ordered)))
    return written


def score_to_lists(loaded: LoadedModel, data_dir: Path, as_of: date, out_dir: Path, capacity: Capacity,
                   per: Unit = "local_authority", seed: int = 0,
                   progress: Callable[[int, int], None] = lambda done, total: None) -> ScoreOutcome:
    """Validate, score, rank and write the output folder atomically; return its manifest."""
    started = time.perf_counter()
    prepared, report, coverage_end = load_for_scoring(loaded.contract, data_dir, as_of)
    cohort = score_cohort(loaded.scorer, prepared, as_of, progress=progress)
    if cohort.frame.empty:
        raise ScoringError(f"no one is in the cohort at {as_of}: no valid incident in the "
                           f"{loaded.contract.snapshot.lookback_days} days before it")
    scored_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    frame, counts = prioritise(cohort, loaded, prepared.catalogue(loaded.contract.snapshot), capacity, per, seed,
                               scored_at)
    with atomic_folder(out_dir) as tmp:
        frame.to_parquet(tmp / "prioritisation.parquet", index=False, compression="zstd")
        files = [(tmp / "prioritisation.parquet", len(frame)), *write_lists(frame, tmp, per)]
        manifest = write_manifest(
            tmp, files, loaded, as_of, scored_at, source=Path(data_dir).name, fingerprint=prepared.fingerprint,
            coverage_end=coverage_end, counts=reconciled_counts(report, len(cohort.frame), len(frame),
                                                                int(frame["listed"].sum()), counts),
            capacity=capacity, per=per, seed=seed, started=started)
    return ScoreOutcome(Path(out_dir), manifest)


def write_manifest(folder: Path, files: list[tuple[Path, int]], loaded: LoadedModel, as_of: date, scored_at: str,
                   source: str, fingerprint: str, coverage_end: date, counts: dict, capacity: Capacity, per: Unit,
                   seed: int, started: float, engine: str = "local") -> dict:
    """Write `manifest.json` into the output folder being assembled; return it."""
    manifest = {
        "riskloop_version": riskloop_version(), "scored_at": scored_at, "as_of": as_of.isoformat(),
        "model": {"name": loaded.name, "version": loaded.version, "run_id": loaded.run_id, "uri": loaded.uri},
        "contract": json.loads(loaded.contract.to_json()),
        "data": {"source": source, "fingerprint": fingerprint, "coverage_end": coverage_end.isoformat(),
                 "quarantine": f"{QUARANTINE_DIR}/ in the data set folder"},
        "counts": counts,
        "capacity": {**capacity.describe(), "per": per, "tie_break_seed": seed},
        "files": [{"path": p.relative_to(folder).as_posix(), "sha256": sha256_file(p), "rows": rows} for p, rows in files],
        "engine": engine,
        "runtime_seconds": round(time.perf_counter() - started, 2),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return manifest


def reconciled_counts(report: ValidationReport, cohort: int, scored: int, listed: int, units: pd.DataFrame) -> dict:
    """The manifest's counts: rows read, valid and quarantined per table (by rule), the cohort, scored and listed
    people, each unit's cohort, places and listed (`units`), and whether they all reconcile."""
    tables = {t.table: {"read": t.read, "valid": t.valid, "quarantined": t.quarantined, "rules": t.reasons}
              for t in report.tables.values()}
    return {
        "tables": tables, "cohort": cohort, "scored": scored, "listed": listed,
        "units": {unit: {k: int(v) for k, v in row.items()} for unit, row in units.iterrows()},
        "reconciles": bool(all(t["read"] == t["valid"] + t["quarantined"] for t in tables.values())
                           and cohort == scored == int(units["cohort"].sum())
                           and listed == int(units["listed"].sum())
                           and (units["listed"] == units[["cohort", "places"]].min(axis=1)).all()),
    }
