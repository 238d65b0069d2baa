"""The model registry: loading a registered riskloop model with its contract, and promotion through
the gates (performance against the champion, fairness, calibration per group)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from riskloop.experiments.pyfunc import RiskModel
from riskloop.experiments.store import configure_tracking
from riskloop.models.contract import ContractError, ModelContract
from riskloop.models.scorer import RiskScorer

PROMOTION_METRICS = ("roc_auc", "average_precision")
_REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelNotFound(ValueError):
    """A model URI that names no model, version or alias; the message says what exists."""


@dataclass(frozen=True)
class LoadedModel:
    """A riskloop model as downstream code uses it: the scorer, its contract, where it came from."""

    uri: str
    name: str | None  # registered model name (None for a runs:/ URI)
    version: str | None
    run_id: str | None
    scorer: RiskScorer

    @property
    def contract(self) -> ModelContract:
        return self.scorer.contract


def _resolve(client: MlflowClient, uri: str) -> tuple[str | None, str | None, str | None]:
    """(name, version, run id) of a models:/ URI; a missing model or alias is one clear line."""
    match = _REGISTERED.match(uri)
    if not match:
        return None, None, None
    name = match["name"]
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise ModelNotFound(f"no registered model '{name}' (registered: {', '.join(known) or 'none'})") from None
    try:
        mv = (
            client.get_model_version_by_alias(name, match["alias"])
            if match["alias"]
            else client.get_model_version(name, match["version"])
        )
    except MlflowException:
        aliases = ", ".join(f"@{a} (v{v})" for a, v in sorted(registered.aliases.items())) or "none"
        raise ModelNotFound(f"'{uri}': no such alias or version; {name} has aliases {aliases}") from None
    return name, str(mv.version), mv.run_id


def load_model(uri: str) -> LoadedModel:
    """Load a riskloop model (e.g. models:/riskloop-escalation@champion); refuse one without a contract.
    A URI that names nothing raises `ModelNotFound`, one line saying what exists."""
    configure_tracking()
    name, version, run_id = _resolve(MlflowClient(), uri)
    try:
        python_model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except MlflowException as exc:
        raise ModelNotFound(
            f"'{uri}': {exc.message.splitlines()[0]} (a model URI is models:/NAME@ALIAS, "
            "models:/NAME/VERSION or runs:/RUN_ID/model)"
        ) from None
    if not isinstance(python_model, RiskModel) or not isinstance(
        getattr(python_model.scorer, "contract", None), ModelContract
    ):
        raise ContractError(
            f"'{uri}' is not a riskloop model with a model contract; retrain it with `riskloop train` to use it here"
        )
    return LoadedModel(uri, name, version, run_id, python_model.scorer)


class PromotionRefused(Exception):
    """The challenger may not become champion; `reasons` says why."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def ranking_regressions(challenger, champion) -> list[str]:
    """Groups the challenger ranks worse than the champion did, by more than the challenger's AUC tolerance."""
    new, old = (json.loads(v.tags.get("group_auc", "{}")) for v in (challenger, champion))
    tolerance = float(challenger.tags.get("auc_tolerance", "0"))
    return [
        f"fairness: ROC AUC within {group}: challenger v{challenger.version} {new[group]:.3f} < champion "
        f"v{champion.version} {old[group]:.3f} by more than {tolerance}"
        for group in sorted(set(new) & set(old))
        if new[group] < old[group] - tolerance
    ]


def promote(registered_model: str, force: bool = False, reason: str | None = None) -> str:
    """Move the `champion` alias to the current challenger if it passes the gates.

    `force` needs a `reason`, which is logged to the version's tags. Returns the promoted version.
    """
    configure_tracking()
    client = MlflowClient()
    _resolve(client, f"models:/{registered_model}@challenger")
    challenger = client.get_model_version_by_alias(registered_model, "challenger")
    try:
        champion = client.get_model_version_by_alias(registered_model, "champion")
    except MlflowException:
        champion = None
    reasons = [f"fairness: {r}" for r in challenger.tags.get("fairness_reasons", "none").split("\n") if r != "none"]
    if champion is not None and champion.version != challenger.version:
        for m in PROMOTION_METRICS:
            new, old = float(challenger.tags[f"latest_{m}"]), float(champion.tags[f"latest_{m}"])
            if new < old:
                reasons.append(
                    f"{m} on the latest split: challenger v{challenger.version} {new:.4f} "
                    f"< champion v{champion.version} {old:.4f}"
                )
        reasons += ranking_regressions(challenger, champion)
    if reasons and not force:
        raise PromotionRefused(reasons)
    if force:
        if not reason:
            raise ValueError("--force needs --reason: say why the gates are overridden")
        client.set_model_version_tag(registered_model, challenger.version, "promotion_forced_reason", reason)
        client.set_model_version_tag(
            registered_model, challenger.version, "promotion_overrode", "; ".join(reasons) or "none"
        )
    client.set_registered_model_alias(registered_model, "champion", challenger.version)
    return str(challenger.version)
