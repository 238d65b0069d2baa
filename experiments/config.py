"""Experiment configs: YAML validated into typed, frozen objects with one-line errors.

An unknown key, a wrong type or a missing file is a `ConfigError` naming it
(`escalation.yaml: models.lightgbm.num_leaves: expected a list of int, got 'many'`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import yaml

from riskloop.features.splits import as_of_schedule
from riskloop.features.snapshot import SNAPSHOT_PROTECTED
from riskloop.models.contract import Bands
from riskloop.models.estimators import HYPERPARAMETERS, check_hyperparameters
from riskloop.models.fairness import AuditConfig


class ConfigError(Exception):
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

    path: Path
    id_column: str
    date_column: str
    label_column: str
    feature_columns: tuple[str, ...]
    categorical_columns: tuple[str, ...] = ()
    protected_columns: tuple[str, ...] = ()
    test_fraction: float = 0.3


@dataclass(frozen=True)
class ModelGrid:
    """Hyper-parameter lists per model family; a family left out is not trained."""

    logistic: dict[str, list[float]] | None = None
    lightgbm: dict[str, list[float]] | None = None
    prior_harm: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class Selection:
    """Best mean `metric` among the model groups within `auc_tolerance` of the best mean ROC AUC."""

    metric: Literal["precision_at_k", "average_precision", "roc_auc", "recall_at_k"] = "precision_at_k"
    auc_tolerance: float = 0.01


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    data: Path | None = None
    table: TableSource | None = None
    label: Literal["escalation", "repeat_victimisation"] = "escalation"
    horizon_days: int = 365
    harm_threshold: float = 6.0
    schedule: Schedule | None = None
    protected: tuple[str, ...] = ("sex", "ethnicity", "age_band", "deprivation_quintile", "disability")
    features_exclude: tuple[str, ...] = ()
    protected_as_features: tuple[str, ...] = ()
    proxy_features: tuple[str, ...] = ("age", "area_deprivation_decile")  # features known to stand in for protected ones
    capacity: float = 0.05
    models: ModelGrid = field(default_factory=ModelGrid)
    calibration: tuple[Literal["isotonic", "sigmoid"], ...] = ("isotonic", "sigmoid")
    selection: Selection = field(default_factory=Selection)
    bands: Bands = field(default_factory=Bands)
    fairness: AuditConfig = field(default_factory=AuditConfig)
    seed: int = 42
    threads: int | None = None           # LightGBM threads; None: all cores
    source_file: Path | None = None

    @property
    def registered_model(self) -> str:
        return f"riskloop-{self.name}"


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, where: str, base: Path):
    """Return `value` as type `tp` or raise ConfigError naming `where`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), where, base)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where, base)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is not Ellipsis:
            if len(value) != 2:
                raise ConfigError(f"{where}: expected two values, got {value!r}")
            return tuple(_coerce(v, a, f"{where}[{i}]", base) for i, (v, a) in enumerate(zip(value, args)))
        items = [_coerce(v, args[0], f"{where}[{i}]", base) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], _child(where, str(k)), base) for k, v in value.items()}
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return (base / value).resolve()
    if tp is date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{where}: expected a date (YYYY-MM-DD), got {value!r}") from None
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _child(where: str, key: str) -> str:
    """'file.yaml' + 'models' -> 'file.yaml: models'; 'file.yaml: models' + 'lightgbm' -> '...models.lightgbm'."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def _build(cls, mapping: dict, where: str, base: Path):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source_file"}
    unknown = sorted(set(mapping) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(names))})")
    missing = [f.name for f in dataclasses.fields(cls) if f.name in names and f.name not in mapping
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing key '{missing[0]}'")
    values = {k: _coerce(v, hints[k], _child(where, k), base) for k, v in mapping.items()}
    return cls(**values)


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate an experiment config; paths in it are relative to the config file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    config = _build(ExperimentConfig, raw, path.name, path.parent.resolve())
    if (config.data is None) == (config.table is None):
        raise ConfigError(f"{path.name}: give exactly one of 'data' (a riskloop data set) or 'table'")
    if config.table is not None and not config.table.path.exists():
        raise ConfigError(f"{path.name}: table.path: file not found: {config.table.path}")
    if config.data is not None and config.schedule is None:
        raise ConfigError(f"{path.name}: 'schedule' is required with 'data'")
    problem = _problem(config)
    if problem:
        raise ConfigError(f"{path.name}: {problem}")
    return dataclasses.replace(config, source_file=path.resolve())


def _problem(config: ExperimentConfig) -> str | None:
    """The first value that parses but makes no sense, as 'key: why', or None. Checked before any work."""
    s, f, b = config.schedule, config.fairness, config.bands
    checks = [
        (not config.name.strip(), "name: must not be empty"),
        (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.name.strip() or "x"),
         f"name: '{config.name}' may hold only letters, digits, '_', '.' and '-' (it names the registered model)"),
        (config.horizon_days < 1, f"horizon_days: must be at least 1, got {config.horizon_days}"),
        (not math.isfinite(config.harm_threshold) or config.harm_threshold < 0,
         f"harm_threshold: must be a finite number >= 0, got {config.harm_threshold}"),
        (not 0 < config.capacity < 1, f"capacity: expected a share of the cohort between 0 and 1, got {config.capacity}"),
        (not config.calibration, "calibration: name at least one method (isotonic, sigmoid)"),
        (not 0 <= config.selection.auc_tolerance <= 1,
         f"selection.auc_tolerance: must be between 0 and 1, got {config.selection.auc_tolerance}"),
        (not 1 <= b.medium_from < b.high_from <= 20,
         f"bands: need 1 <= medium_from < high_from <= 20, got medium_from {b.medium_from}, high_from {b.high_from}"),
        (not 0 < f.band[0] < 1 < f.band[1], f"fairness.band: need low < 1 < high, got {list(f.band)}"),
        (f.min_group_size < 1, f"fairness.min_group_size: must be at least 1, got {f.min_group_size}"),
        (f.min_events < 1, f"fairness.min_events: must be at least 1, got {f.min_events}"),
        (f.disclosure_threshold < 0,
         f"fairness.disclosure_threshold: must be at least 0, got {f.disclosure_threshold}"),
        (f.bootstrap < 100, f"fairness.bootstrap: must be at least 100 resamples, got {f.bootstrap}"),
        (not 0 < f.calibration_tolerance < 1,
         f"fairness.calibration_tolerance: must be between 0 and 1, got {f.calibration_tolerance}"),
        (config.threads is not None and config.threads < 1, f"threads: must be at least 1, got {config.threads}"),
        (all(getattr(config.models, m) is None for m in HYPERPARAMETERS), "models: name at least one model family"),
    ]
    if s is not None:
        checks += [(s.every_months < 1, f"schedule.every_months: must be at least 1, got {s.every_months}"),
                   (s.start >= s.end, f"schedule: start {s.start} is not before end {s.end}"),
                   (s.n_test < 1, f"schedule.n_test: must be at least 1, got {s.n_test}")]
    problem = next((why for failed, why in checks if failed), None)
    if problem:
        return problem
    for family in HYPERPARAMETERS:
        grid = getattr(config.models, family)
        why = check_hyperparameters(family, grid) if grid is not None else None
        if why:
            return f"models.{family}.{why}"
    if config.table is not None:
        t = config.table
        both = [c for c in t.feature_columns if c in t.protected_columns and c not in config.protected_as_features]
        if both:
            return (f"table.feature_columns: '{both[0]}' is also a protected column; list it under "
                    "protected_as_features to use it as a model feature (every run then says so), or drop it")
        stray = [c for c in config.protected_as_features if c not in t.protected_columns]
        if stray:
            return f"protected_as_features: '{stray[0]}' is not one of table.protected_columns"
    if config.data is not None:
        unknown = [c for c in config.protected if c not in SNAPSHOT_PROTECTED]
        if unknown:
            return (f"protected: '{unknown[0]}' is not a protected column riskloop data sets provide "
                    f"({', '.join(SNAPSHOT_PROTECTED)})")
    return None


def with_data(config: ExperimentConfig, data: Path) -> ExperimentConfig:
    """The config pointed at another riskloop data set (the CLI's --data)."""
    return dataclasses.replace(config, data=Path(data).resolve(), table=None)
