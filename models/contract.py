"""The model contract: everything downstream needs to use a trained model, typed and frozen.

Training writes it with the model (inside the pickled scorer); scoring, audits, explanations, serving
and the learning loop read it and nothing else. Its JSON form (the training run's `contract.json`, a
list's manifest) has one reader and writer, a pydantic `TypeAdapter` over the dataclass: every field is
required except `scored_as_untreated` and `calibrated_within`, and an incomplete contract is refused with the field named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import PackageNotFoundError, version

from pydantic import TypeAdapter, ValidationError

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

    name: str  # the experiment config's name
    registered_model: str
    model_group: str
    snapshot: SnapshotConfig | None
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    protected: tuple[str, ...]
    protected_as_features: tuple[str, ...]
    audit: AuditConfig
    capacity: float  # share of the cohort a partnership can work with
    band_cuts: tuple[float, ...]  # 19 cut points between ventiles of the uncalibrated model score
    bands: Bands
    training_window: tuple[date, date]  # first and last as-of date of the rows the model was fitted on
    calibration_window: tuple[date, date]  # the rows that early-stopped it, calibrated it and cut its bands
    test_window: tuple[date, date]  # the rows it never saw, on which its reported metrics and audit are
    data_fingerprint: str
    config_hash: str
    riskloop_version: str
    scored_as_untreated: tuple[str, ...] = ()  # features set to 0 (no programme) when scoring: the risk untreated
    # protected columns the risk is calibrated within (required at scoring, never features); () when pooled
    calibrated_within: tuple[str, ...] = ()
    # fitted again on every closed label after its figures were measured (a learning cycle's challenger): the
    # test window is then among the rows it learned from, and the model is judged by a backtest or in shadow
    refit: bool = False
    # the programmes of the data set its features were built from, each with its intervention features; () from a
    # riskloop before they were recorded (its scoring then builds only the programmes the data holds)
    programmes: tuple[str, ...] = ()

    @property
    def data_set_snapshot(self) -> SnapshotConfig:
        """The snapshot settings of a model trained on a riskloop data set; a ContractError for a model trained
        on a person-level table (it has none)."""
        if self.snapshot is None:
            raise ContractError(
                f"model '{self.registered_model}' was trained on a person-level table: it scores "
                "rows of that table, not a riskloop data set"
            )
        return self.snapshot

    def labels_closed_by(self) -> date:
        """The first as-of date whose audit is out of time: every label the model learned from had closed."""
        return self.calibration_window[1] + timedelta(days=self.snapshot.horizon_days if self.snapshot else 0)

    def to_json(self) -> str:
        return json.dumps(CONTRACT_ADAPTER.dump_python(self, mode="json"), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        """Parse a contract; every field is required but `scored_as_untreated`, `calibrated_within` and
        `snapshot.incidents` (contracts written before they existed load with none, and with every incident).
        The error names the field."""
        try:
            payload = json.loads(text)
            _require_every_field(cls, payload, "contract")
            return CONTRACT_ADAPTER.validate_python(payload)
        except ValidationError as exc:
            raise ContractError(f"the model contract does not parse: {validation_message(exc)}") from exc
        except ValueError as exc:
            raise ContractError(f"the model contract does not parse: {exc}") from exc


#: Fields an older contract may lack; every other field, nested ones too, must be written out (a default
#: would state a setting the model was never trained with). `incidents` reads as "all" when absent.
OPTIONAL_FIELDS = {"scored_as_untreated", "calibrated_within", "refit", "incidents", "programmes"}


def _require_every_field(cls: type, payload: object, where: str) -> None:
    if not isinstance(payload, dict):
        raise ValueError(f"{where}: expected an object")
    for f in dataclasses.fields(cls):
        if f.name not in payload and f.name not in OPTIONAL_FIELDS:
            raise ValueError(f"{where}: missing '{f.name}'")
        nested = _NESTED.get(f.name) if cls is ModelContract else None
        if nested is not None and payload.get(f.name) is not None:
            _require_every_field(nested, payload[f.name], f"{where}.{f.name}")


_NESTED: dict[str, type] = {"snapshot": SnapshotConfig, "audit": AuditConfig, "bands": Bands}


def validation_message(exc: ValidationError) -> str:
    """A pydantic error in one line per problem: 'field.path: what is wrong'."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'contract'}: {e['msg']}" for e in exc.errors())


CONTRACT_ADAPTER: TypeAdapter[ModelContract] = TypeAdapter(ModelContract)
