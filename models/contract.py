"""The model contract: everything downstream needs to use a trained model, typed and frozen.

Training writes it with the model (inside the scorer and as `contract.json` beside it); scoring,
audits, explanations, serving and the learning loop read it and nothing else, with no defaults: a
model without a complete contract is refused. See docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import PackageNotFoundError, version

from riskloop.features.snapshot import SnapshotConfig
from riskloop.models.fairness import AuditConfig


class ContractError(ValueError):
    """A model without a usable contract, or a contract that does not parse."""


def riskloop_version() -> str:
    try:
        return version("riskloop")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def config_hash(text: str) -> str:
    """Short SHA-256 of an experiment config's text: which config made a model."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Bands:
    """Risk bands: ventiles 1-20 of a reference population's risk; labels from these ventiles up."""

    medium_from: int = 13
    high_from: int = 18
    labels: tuple[str, str, str] = ("low", "medium", "high")


@dataclass(frozen=True)
class ModelContract:
    """What a trained model needs at scoring time and what it promises.

    `snapshot` is None for a model trained on someone else's person-level table: such a model
    scores rows of that table's shape, not a riskloop data set.
    """

    name: str                              # the experiment config's name
    registered_model: str
    model_group: str
    snapshot: SnapshotConfig | None
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    protected: tuple[str, ...]
    protected_as_features: tuple[str, ...]
    audit: AuditConfig
    capacity: float                        # share of the cohort a partnership can work with
    band_cuts: tuple[float, ...]           # 19 cut points between ventiles of the uncalibrated model score
    bands: Bands
    training_window: tuple[date, date]     # first and last as-of date of the rows the model was fitted on
    calibration_window: tuple[date, date]  # the rows that early-stopped it, calibrated it and cut its bands
    test_window: tuple[date, date]         # the rows it never saw, on which its reported metrics and audit are
    data_fingerprint: str
    config_hash: str
    riskloop_version: str
    scored_as_untreated: tuple[str, ...] = ()  # features set to 0 (no programme) when scoring: the risk untreated

    def labels_closed_by(self) -> date:
        """The first as-of date whose audit is out of time: every label the model learned from had closed."""
        return self.calibration_window[1] + timedelta(days=self.snapshot.horizon_days if self.snapshot else 0)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelContract":
        try:
            payload = json.loads(text)
            if isinstance(payload, dict):
                payload.setdefault("scored_as_untreated", [])   # written before the field existed
            return _build(cls, payload, "contract")
        except (TypeError, ValueError, KeyError) as exc:
            raise ContractError(f"the model contract does not parse: {exc}") from exc


def _build(cls, payload: dict, where: str):
    """Rebuild a (nested) frozen dataclass from JSON, every field required."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    missing = sorted(set(fields) - set(payload))
    if missing:
        raise KeyError(f"{where}: missing '{missing[0]}'")
    hints = {name: f.type for name, f in fields.items()}
    return cls(**{name: _value(payload[name], hints[name], f"{where}.{name}") for name in fields})


_NESTED = {"SnapshotConfig | None": SnapshotConfig, "AuditConfig": AuditConfig, "Bands": Bands}


def _value(raw, hint: str, where: str):
    if hint in _NESTED:
        return None if raw is None else _build(_NESTED[hint], raw, where)
    if hint == "tuple[date, date]":
        return tuple(date.fromisoformat(v) for v in raw)
    if hint.startswith("tuple["):
        return tuple(tuple(v) if isinstance(v, list) else v for v in raw)
    return raw
