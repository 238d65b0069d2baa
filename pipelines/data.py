"""Model-ready data for an experiment: one frame plus split masks, from a riskloop data set
(as-of snapshots) or from a person-level table someone else made. The train pipeline's input; the
caller reads the data (`riskloop.artifacts.dataset`, `features.io.read_raw_table`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from riskloop.experiments.config import ConfigError, ExperimentConfig
from riskloop.features.catalogue import FeatureSpec
from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshots, first_record, short_history
from riskloop.features.splits import temporal_splits
from riskloop.models.group_calibration import notice


@dataclass
class SplitMasks:
    name: str
    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray


@dataclass
class ModelData:
    frame: pd.DataFrame  # ids, `as_of`, features, `label`, protected columns
    features: list[str]
    categorical: list[str]
    protected: list[str]
    group_column: str | None  # areas for per-area precision@k and lists
    splits: list[SplitMasks]  # temporal validation
    final: SplitMasks  # the registered model's fit, calibration and unseen test rows
    source: str
    fingerprint: str
    snapshot: SnapshotConfig | None  # how the snapshots were built (None for tables)
    catalogue: list[FeatureSpec] | None = None  # the data set's feature catalogue (None for tables)
    warnings: list[str] = field(default_factory=list)
    rejected: pd.DataFrame | None = None
    scored_as_untreated: tuple[str, ...] = ()  # features scored as 0 (no programme): treatment-aware retraining
    programmes: tuple[str, ...] = ()  # the data set's programmes, each with its intervention features (none for tables)

    def rows(self, keep: np.ndarray) -> ModelData:
        """The data of the rows in the boolean mask `keep` only, their splits with them."""

        def masks(m: SplitMasks) -> SplitMasks:
            return dataclasses.replace(
                m, **{k: getattr(m, k)[keep] for k in ("fit", "validation", "test") if getattr(m, k) is not None}
            )

        splits = [masks(m) for m in self.splits]
        position = [i for i, m in enumerate(self.splits) if m is self.final]
        return dataclasses.replace(
            self,
            frame=self.frame[keep].reset_index(drop=True),
            splits=splits,
            final=splits[position[0]] if position else masks(self.final),
        )

    def window(self, mask: np.ndarray) -> tuple[date, date]:
        """First and last as-of date of the rows in `mask`."""
        as_of = self.frame.loc[mask, "as_of"]
        return as_of.min().date(), as_of.max().date()


def _model_features(
    names: list[str], config: ExperimentConfig, protected_available: list[str]
) -> tuple[list[str], list[str]]:
    unknown = [c for c in config.features_exclude if c not in names]
    if unknown:
        raise ConfigError(f"features_exclude: '{unknown[0]}' is not a feature")
    features = [c for c in names if c not in config.features_exclude]
    warnings = []
    for column in config.protected_as_features:
        if column not in protected_available:
            raise ConfigError(f"protected_as_features: '{column}' is not a protected column of this data")
        features.append(column)
        warnings.append(f"PROTECTED CHARACTERISTIC USED AS A MODEL FEATURE: '{column}' (protected_as_features)")
    return features, warnings


def within_warnings(config: ExperimentConfig) -> list[str]:
    """The loud notice of a config that calibrates within protected columns (none when it does not)."""
    return [notice(config.calibrate_within)] if config.calibrate_within else []


#: How the note of a sampled training begins (`PeopleSample.note`).
SAMPLED = "SAMPLED"


@dataclass
class PeopleSample:
    """Each as-of date's labelled rows, at most `limit` of them (None: all): the people whose keyed hash of the
    pseudonymised id is smallest, a uniform random sample that prefers the same people at every date. Counts
    the rows it saw and kept, for the note every report carries."""

    limit: int | None
    seed: int
    seen: int = 0
    kept: int = 0

    def __call__(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        labelled = snapshot[snapshot["label"].notna()]
        self.seen += len(labelled)
        if self.limit is not None and len(labelled) > self.limit:
            key = f"{self.seed % 10**16:016d}"
            rank = pd.util.hash_pandas_object(labelled["person_id"], index=False, hash_key=key).to_numpy()
            labelled = labelled.iloc[np.sort(np.argpartition(rank, self.limit)[: self.limit])]
        self.kept += len(labelled)
        return labelled.reset_index(drop=True)

    def note(self) -> list[str]:
        """What was sampled, in words (nothing when every row was kept)."""
        if self.kept == self.seen:
            return []
        return [
            f"{SAMPLED}: the model trained and was measured on a uniform random sample of at most {self.limit:,} people "
            f"per as-of date (max_people_per_as_of): {self.kept:,} of {self.seen:,} labelled rows "
            f"({self.kept / self.seen:.0%}). It scores everyone; its metrics and fairness audit are measured on the "
            "sampled people."
        ]


def from_dataset(config: ExperimentConfig, prepared: PreparedData) -> ModelData:
    """Snapshots of the prepared data set for the config's as-of schedule, with timechop splits and the
    final refit slices."""
    end = np.datetime64(prepared.end_day, "D").astype(object)
    snapshot_config = SnapshotConfig(
        label=config.label,
        horizon_days=config.horizon_days,
        harm_threshold=config.harm_threshold,
        protected=config.protected,
        incidents=config.incidents,
    )
    schedule = config.data_schedule
    dates = schedule.dates()
    sample = PeopleSample(config.max_people_per_as_of, config.seed)
    frame, meta = build_snapshots(prepared, dates, snapshot_config, select=sample)
    labelled = sorted(frame["as_of"].dt.date.unique())
    masks = split_masks(frame, config, end)
    final = masks[-1]  # the registered model is the latest split's: its test window stays unseen
    features, warnings = _model_features(list(meta.features), config, list(meta.protected))
    warnings += within_warnings(config) + sample.note()
    short, first = short_history(prepared, labelled, snapshot_config.lookback_days), first_record(prepared)
    if short and first is not None:
        warnings.append(
            f"{len(short)} of {len(labelled)} as-of dates ({short[0]} .. {short[-1]}) look back "
            f"{snapshot_config.lookback_days:,} days, to before the data's first record ({first}): their features "
            f"see a shorter past (lower bounds). Start the schedule on or after "
            f"{first + timedelta(days=snapshot_config.lookback_days)} for full histories."
        )
    categorical = [c for c in features if c in meta.protected]
    return ModelData(
        frame,
        features,
        categorical,
        list(meta.protected),
        "local_authority",
        masks,
        final,
        str(config.data),
        prepared.fingerprint,
        snapshot_config,
        prepared.catalogue(snapshot_config),
        warnings,
        programmes=prepared.programmes,
    )


def split_masks(frame: pd.DataFrame, config: ExperimentConfig, end: date) -> list[SplitMasks]:
    """The timechop splits of the labelled as-of dates of `frame` (labels up to `end`), the last `n_test` of them
    (oldest first)."""
    labelled = sorted(frame["as_of"].dt.date.unique())
    splits = temporal_splits(labelled, config.horizon_days, config.data_schedule.n_test)
    if not splits:
        dates = config.data_schedule.dates()
        raise ConfigError(
            f"schedule: no feasible temporal split in {dates[0]} .. {dates[-1]} with a {config.horizon_days}-day "
            f"horizon and labels up to {end}"
        )
    as_of = frame["as_of"].dt.date.to_numpy()
    return [
        SplitMasks(s.name, np.isin(as_of, np.array(s.fit, dtype=object)), as_of == s.validation, as_of == s.test)
        for s in splits
    ]


def cut_to_schedule(data: ModelData, config: ExperimentConfig) -> ModelData:
    """`data` as `from_dataset` gives it for `config`, the same config with a schedule that ends earlier (a
    learning cycle's backtest): its rows up to that end, split again, the snapshots not built again. A snapshot
    is the same whatever the schedule's end (its labels are closed by then, its people sampled per date), so a
    split of the same name holds the same rows in both. Its warnings are `data`'s."""
    keep = data.frame["as_of"].dt.date.isin(set(config.data_schedule.dates())).to_numpy()
    cut = data.rows(keep)
    masks = split_masks(cut.frame, config, config.data_schedule.end)
    return dataclasses.replace(cut, splits=masks, final=masks[-1])


def _date_cut(dates: pd.Series, share: float) -> pd.Timestamp:
    """The date at which `share` of the rows (in date order) lie before it."""
    ordered = dates.sort_values(kind="stable").to_numpy()
    return pd.Timestamp(ordered[min(len(ordered) - 1, int(share * len(ordered)))])


def rejected_rows(table: pd.DataFrame, checks: list[tuple[pd.Series, str]]) -> tuple[pd.Series, pd.DataFrame]:
    """(mask of rows failing any check, those rows with their 1-based `row` number and `reason`s)."""
    problems = pd.Series("", index=table.index)
    for failed, reason in checks:
        problems[failed] += reason + "; "
    bad = problems != ""
    return bad, table[bad].assign(row=np.flatnonzero(bad) + 1, reason=problems[bad].str.rstrip("; "))


def from_table(config: ExperimentConfig, raw: pd.DataFrame, fingerprint: str) -> ModelData:
    """A person-level table (`raw`, as read, with the fingerprint of its file): the latest `test_fraction`
    by date is the test set; temporal validation (three rolling splits) runs inside the training part."""
    t = config.table_source
    needed = [t.id_column, t.date_column, t.label_column, *t.feature_columns, *t.protected_columns]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise ConfigError(f"table: column '{missing[0]}' not found in {t.path.name}")
    date = pd.to_datetime(raw[t.date_column], errors="coerce", format="mixed")
    label = pd.to_numeric(raw[t.label_column], errors="coerce")
    bad, rejected = rejected_rows(
        raw,
        [
            (date.isna(), f"{t.date_column}: not a valid date"),
            (~label.isin([0, 1]), f"{t.label_column}: not 0 or 1"),
            (raw[t.id_column].isna(), f"{t.id_column}: missing"),
        ],
    )
    features = list(dict.fromkeys([*t.feature_columns, *config.protected_as_features]))
    categorical = [c for c in features if c in t.categorical_columns or c in config.protected_as_features]
    audit_only = [c for c in t.protected_columns if c not in features]
    frame = pd.DataFrame(
        {
            "person_id": raw[t.id_column].astype("string"),
            "as_of": date.astype("datetime64[s]"),
            **{
                c: raw[c].astype("string") if c in categorical else pd.to_numeric(raw[c], errors="coerce").astype(float)
                for c in features
            },
            "label": label,
            **{c: raw[c].astype("string") for c in audit_only},
        }
    )[~bad].reset_index(drop=True)
    test_cut = _date_cut(frame["as_of"], 1 - t.test_fraction)
    train_part = frame["as_of"] < test_cut
    if train_part.sum() < 50 or (~train_part).sum() < 20:
        raise ConfigError(
            f"table: too few rows for a temporal split ({train_part.sum()} train, {(~train_part).sum()} test)"
        )
    train_dates = frame.loc[train_part, "as_of"]
    splits = []
    for q in (0.55, 0.7, 0.85):
        lo, mid, hi = (_date_cut(train_dates, x) for x in (q - 0.15, q, min(q + 0.15, 0.999)))
        splits.append(
            SplitMasks(
                f"train-{mid.date()}",
                (frame["as_of"] < lo).to_numpy(),
                ((frame["as_of"] >= lo) & (frame["as_of"] < mid)).to_numpy(),
                ((frame["as_of"] >= mid) & (frame["as_of"] < hi) & train_part).to_numpy(),
            )
        )
    val_cut = _date_cut(train_dates, 0.85)
    final = SplitMasks(
        "final",
        (frame["as_of"] < val_cut).to_numpy(),
        ((frame["as_of"] >= val_cut) & train_part).to_numpy(),
        (~train_part).to_numpy(),
    )
    warnings = [
        f"PROTECTED CHARACTERISTIC USED AS A MODEL FEATURE: '{c}' (protected_as_features)"
        for c in config.protected_as_features
    ] + within_warnings(config)
    return ModelData(
        frame,
        features,
        categorical,
        list(t.protected_columns),
        None,
        splits,
        final,
        str(t.path),
        fingerprint,
        None,
        None,
        warnings,
        rejected if len(rejected) else None,
    )
