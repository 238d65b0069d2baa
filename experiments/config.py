"""Experiment configs: YAML validated into typed, frozen dataclasses by pydantic, with one-line errors.

An unknown key, a wrong type or a missing file is a `ConfigError` naming it
(`escalation.yaml: models.lightgbm.num_leaves: input should be a valid list, got 'many'`). The `models:`
block has one key per model family of the registry (`riskloop.models.families.FAMILIES`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, make_dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from riskloop.artifacts.declared import BesideFile, key_path, read_declaration
from riskloop.features.snapshot import SNAPSHOT_PROTECTED
from riskloop.features.splits import as_of_schedule
from riskloop.models.contract import Bands, config_hash
from riskloop.models.fairness import AuditConfig
from riskloop.models.families import FAMILIES

#: The smallest sample of people per as-of date a config may train on: fewer leave too few outcomes to measure.
MIN_PEOPLE_PER_AS_OF = 1_000


class ConfigError(ValueError):
    """An experiment config that cannot be used, with the key or file at fault."""


@dataclass(frozen=True)
class Schedule:
    start: date
    end: date
    every_months: int = 6
    n_test: int = 3

    def dates(self) -> list[date]:
        return as_of_schedule(self.start, self.end, self.every_months)


@dataclass(frozen=True)
class TableSource:
    """A person-level table someone else made: one row per person and as-of date."""

    path: BesideFile
    id_column: str
    date_column: str
    label_column: str
    feature_columns: tuple[str, ...]
    categorical_columns: tuple[str, ...] = ()
    protected_columns: tuple[str, ...] = ()
    test_fraction: float = 0.3


def _grids(grid) -> dict[str, dict[str, list[float]]]:
    """The families named, with their hyper-parameter lists, in registry order."""
    return {name: lists for name in FAMILIES if (lists := getattr(grid, name)) is not None}


if TYPE_CHECKING:

    class ModelGrid:
        """What mypy sees of the dataclass made below from the registry (one optional field per family)."""

        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

        def __init__(self, **grids: dict[str, list[float]] | None) -> None: ...
        def __getattr__(self, family: str) -> dict[str, list[float]] | None: ...
        def grids(self) -> dict[str, dict[str, list[float]]]: ...
else:
    #: Hyper-parameter lists per model family of the registry; a family left out (None) is not trained.
    ModelGrid = make_dataclass(
        "ModelGrid",
        [(name, dict[str, list[float]] | None, None) for name in FAMILIES],
        frozen=True,
        namespace={"grids": _grids, "__module__": __name__},
    )


@dataclass(frozen=True)
class Selection:
    """Best mean `metric` among the model groups within `auc_tolerance` of the best mean ROC AUC."""

    metric: Literal["precision_at_k", "average_precision", "roc_auc", "recall_at_k"] = "precision_at_k"
    auc_tolerance: float = 0.01


@dataclass(frozen=True)
class ExperimentConfig:
    __pydantic_config__ = ConfigDict(extra="forbid")  # and so every block inside: an unknown key is an error

    name: str
    data: BesideFile | None = None
    table: TableSource | None = None
    label: Literal["escalation", "repeat_victimisation"] = "escalation"
    horizon_days: int = 365
    harm_threshold: float = 6.0
    # the incidents features and labels are built from: all, or those reported (not found by attention)
    incidents: Literal["all", "reported"] = "all"
    schedule: Schedule | None = None
    protected: tuple[str, ...] = ("sex", "ethnicity", "age_band", "deprivation_quintile", "disability")
    features_exclude: tuple[str, ...] = ()
    protected_as_features: tuple[str, ...] = ()
    # protected columns the risk is calibrated within at scoring (never features; required to score)
    calibrate_within: tuple[str, ...] = ()
    proxy_features: tuple[str, ...] = (
        "age",
        "area_deprivation_decile",
    )  # features known to stand in for protected ones
    capacity: float = 0.05
    models: ModelGrid = field(default_factory=ModelGrid)
    calibration: tuple[Literal["isotonic", "sigmoid"], ...] = ("isotonic", "sigmoid")
    selection: Selection = field(default_factory=Selection)
    bands: Bands = field(default_factory=Bands)
    fairness: AuditConfig = field(default_factory=AuditConfig)
    seed: int = 42
    # at most this many people of each as-of date's cohort train and measure the model: a uniform random sample
    # (the same people at every date they are in the cohort), said in every report; null: the whole cohort
    max_people_per_as_of: int | None = 30_000
    threads: int | None = None  # LightGBM threads; None: all cores
    source_file: Path | None = None  # the YAML file it was read from (set by load_config)
    source_hash: str | None = None  # the short SHA-256 of that file's text: which config made a model

    @property
    def registered_model(self) -> str:
        return f"riskloop-{self.name}"

    @property
    def data_schedule(self) -> Schedule:
        """The as-of schedule of a config on a riskloop data set (load_config requires one with `data`)."""
        if self.schedule is None:
            raise ConfigError(f"{self.name}: 'schedule' is required with 'data'")
        return self.schedule

    @property
    def table_source(self) -> TableSource:
        """The person-level table of a config with `table` (not a riskloop data set)."""
        if self.table is None:
            raise ConfigError(f"{self.name}: this config reads a riskloop data set ('data'), not a 'table'")
        return self.table


_ADAPTER = TypeAdapter(ExperimentConfig)


def _message(error: ErrorDetails) -> str:
    """One pydantic error as 'key.path: why'; an unknown or missing key is named as such."""
    *parents, key = error["loc"]
    if error["type"] in ("unexpected_keyword_argument", "missing") and isinstance(key, str):
        what = f"{'missing' if error['type'] == 'missing' else 'unknown'} key '{key}'"
        return f"{key_path(parents)}: {what}" if parents else what
    return f"{key_path(error['loc'])}: {error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate an experiment config; paths in it are relative to the config file."""
    path = Path(path)
    text, raw = read_declaration(path, ConfigError, "config")
    for internal in ("source_file", "source_hash"):
        if internal in raw:
            raise ConfigError(f"{path.name}: unknown key '{internal}'")
    try:
        config = _ADAPTER.validate_python(raw, context={"base": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(f"{path.name}: {_message(exc.errors()[0])}") from None
    if (config.data is None) == (config.table is None):
        raise ConfigError(f"{path.name}: give exactly one of 'data' (a riskloop data set) or 'table'")
    if config.table is not None and not config.table.path.exists():
        raise ConfigError(f"{path.name}: table.path: file not found: {config.table.path}")
    if config.data is not None and config.schedule is None:
        raise ConfigError(f"{path.name}: 'schedule' is required with 'data'")
    problem = _problem(config)
    if problem:
        raise ConfigError(f"{path.name}: {problem}")
    return dataclasses.replace(config, source_file=path.resolve(), source_hash=config_hash(text))


def _problem(config: ExperimentConfig) -> str | None:
    """The first value that parses but makes no sense, as 'key: why', or None. Checked before any work."""
    s, f, b = config.schedule, config.fairness, config.bands
    checks = [
        (not config.name.strip(), "name: must not be empty"),
        (
            not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.name.strip() or "x"),
            f"name: '{config.name}' may hold only letters, digits, '_', '.' and '-' (it names the registered model)",
        ),
        (config.horizon_days < 1, f"horizon_days: must be at least 1, got {config.horizon_days}"),
        (
            not math.isfinite(config.harm_threshold) or config.harm_threshold < 0,
            f"harm_threshold: must be a finite number >= 0, got {config.harm_threshold}",
        ),
        (
            not 0 < config.capacity < 1,
            f"capacity: expected a share of the cohort between 0 and 1, got {config.capacity}",
        ),
        (not config.calibration, "calibration: name at least one method (isotonic, sigmoid)"),
        (
            not 0 <= config.selection.auc_tolerance <= 1,
            f"selection.auc_tolerance: must be between 0 and 1, got {config.selection.auc_tolerance}",
        ),
        (
            not 1 <= b.medium_from < b.high_from <= 20,
            f"bands: need 1 <= medium_from < high_from <= 20, got medium_from {b.medium_from}, high_from {b.high_from}",
        ),
        (not 0 < f.band[0] < 1 < f.band[1], f"fairness.band: need low < 1 < high, got {list(f.band)}"),
        (f.min_group_size < 1, f"fairness.min_group_size: must be at least 1, got {f.min_group_size}"),
        (f.min_events < 1, f"fairness.min_events: must be at least 1, got {f.min_events}"),
        (
            f.disclosure_threshold < 0,
            f"fairness.disclosure_threshold: must be at least 0, got {f.disclosure_threshold}",
        ),
        (f.bootstrap < 100, f"fairness.bootstrap: must be at least 100 resamples, got {f.bootstrap}"),
        (
            not 0 < f.calibration_tolerance < 1,
            f"fairness.calibration_tolerance: must be between 0 and 1, got {f.calibration_tolerance}",
        ),
        (config.threads is not None and config.threads < 1, f"threads: must be at least 1, got {config.threads}"),
        (
            config.max_people_per_as_of is not None and config.max_people_per_as_of < MIN_PEOPLE_PER_AS_OF,
            f"max_people_per_as_of: must be at least {MIN_PEOPLE_PER_AS_OF:,} (or null: the whole cohort), "
            f"got {config.max_people_per_as_of}",
        ),
        (not config.models.grids(), "models: name at least one model family"),
    ]
    if s is not None:
        checks += [
            (s.every_months < 1, f"schedule.every_months: must be at least 1, got {s.every_months}"),
            (s.start >= s.end, f"schedule: start {s.start} is not before end {s.end}"),
            (s.n_test < 1, f"schedule.n_test: must be at least 1, got {s.n_test}"),
        ]
    problem = next((why for failed, why in checks if failed), None)
    if problem:
        return problem
    for family, grid in config.models.grids().items():
        why = FAMILIES[family].check(grid)
        if why:
            return f"models.{family}.{why}"
    if config.table is not None:
        t = config.table
        if config.incidents != "all":
            return "incidents: 'reported' filters a data set's incidents; a person-level table (table:) has none"
        both = [c for c in t.feature_columns if c in t.protected_columns and c not in config.protected_as_features]
        if both:
            return (
                f"table.feature_columns: '{both[0]}' is also a protected column; list it under "
                "protected_as_features to use it as a model feature (every run then says so), or drop it"
            )
        stray = [c for c in config.protected_as_features if c not in t.protected_columns]
        if stray:
            return f"protected_as_features: '{stray[0]}' is not one of table.protected_columns"
    if config.data is not None:
        unknown = [c for c in config.protected if c not in SNAPSHOT_PROTECTED]
        if unknown:
            return (
                f"protected: '{unknown[0]}' is not a protected column riskloop data sets provide "
                f"({', '.join(SNAPSHOT_PROTECTED)})"
            )
    return _within_problem(config)


def _within_problem(config: ExperimentConfig) -> str | None:
    """`calibrate_within` names protected columns of the config, each once, none of them a model feature."""
    declared, key = (
        (config.table.protected_columns, "table.protected_columns") if config.table else (config.protected, "protected")
    )
    within = config.calibrate_within
    unknown = [c for c in within if c not in declared]
    if unknown:
        return f"calibrate_within: '{unknown[0]}' is not one of {key} ({', '.join(declared) or 'none'})"
    twice = [c for i, c in enumerate(within) if c in within[:i]]
    if twice:
        return f"calibrate_within: '{twice[0]}' is named twice"
    feature = [c for c in within if c in config.protected_as_features]
    if feature:
        return (
            f"calibrate_within: '{feature[0]}' is also in protected_as_features; calibrating within a column is "
            "for a model that does not see it"
        )
    return None


def with_data(config: ExperimentConfig, data: Path) -> ExperimentConfig:
    """The config pointed at another riskloop data set (the CLI's --data)."""
    return dataclasses.replace(config, data=Path(data).resolve(), table=None)
