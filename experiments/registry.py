"""The model registry: loading a registered riskloop model with its contract, and promotion through
the gates (performance against the champion, fairness, calibration per group), recomputed from each
version's verified evidence (`riskloop.models.evidence`)."""

from __future__ import annotations

import getpass
import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from riskloop.artifacts.training import EVIDENCE
from riskloop.experiments.governance import PromotionAttempt, record_attempt
from riskloop.experiments.pyfunc import RiskModel
from riskloop.experiments.store import configure_tracking
from riskloop.models.contract import ContractError, ModelContract
from riskloop.models.evidence import EvidenceError, GateEvidence, decide, parse_evidence, summary
from riskloop.models.scorer import RiskScorer

EVIDENCE_DIGEST = "gate_evidence_sha256"  # the run parameter (immutable) and version tag holding it
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


@dataclass(frozen=True)
class VerifiedEvidence:
    content: GateEvidence
    sha256: str


def verified_evidence(client: MlflowClient, version) -> VerifiedEvidence:
    """The gate's evidence of a registered version, checked: logged by its run, unmodified (its sha256 is the
    run's immutable parameter and the version's tag), and about this very version. An `EvidenceError` in
    one line otherwise."""
    run_id = version.run_id
    if not run_id:
        raise EvidenceError("no gate evidence: the version has no training run (registered outside `riskloop train`)")
    recorded = client.get_run(run_id).data.params.get(EVIDENCE_DIGEST)
    if recorded is None:
        raise EvidenceError(
            f"no gate evidence: run {run_id} logged none (trained outside `riskloop train`, or before riskloop 0.6)"
        )
    if version.tags.get(EVIDENCE_DIGEST) != recorded:
        raise EvidenceError(f"the version's {EVIDENCE_DIGEST} tag does not match its run's (the tag was edited)")
    try:
        with tempfile.TemporaryDirectory() as folder:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=EVIDENCE, dst_path=folder)
            raw = Path(local).read_bytes()
    except (MlflowException, OSError) as exc:
        raise EvidenceError(f"the evidence of run {run_id} cannot be read: {str(exc).splitlines()[0]}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != recorded:
        raise EvidenceError(f"the evidence's sha256 {digest[:12]}... is not the recorded {recorded[:12]}... (modified)")
    try:
        content = parse_evidence(raw)
    except EvidenceError as exc:
        raise EvidenceError(f"the evidence cannot be read: {exc}") from None
    identity = content.model
    if (identity.registered_model, identity.version, identity.run_id) != (version.name, str(version.version), run_id):
        raise EvidenceError(
            f"the evidence is of another model ({identity.registered_model} v{identity.version}, run {identity.run_id})"
        )
    return VerifiedEvidence(content, digest)


def model_evidence(loaded: LoadedModel) -> VerifiedEvidence:
    """The verified gate evidence of a loaded registered version; an `EvidenceError` in one line otherwise."""
    if loaded.name is None or loaded.version is None:
        raise EvidenceError(f"'{loaded.uri}' is not a registered model version, so it has no gate evidence")
    client = MlflowClient()
    return verified_evidence(client, client.get_model_version(loaded.name, loaded.version))


def _evidence(client: MlflowClient, version, role: str, reasons: list[str]) -> VerifiedEvidence | None:
    try:
        return verified_evidence(client, version)
    except EvidenceError as exc:
        reasons.append(f"evidence: {role} v{version.version}: {exc}")
        return None


@dataclass(frozen=True)
class Promotion:
    version: str
    forced: bool
    evidence: str  # one paragraph: what the gate judged and how it came out (or why it could not)


def promote(registered_model: str, force: bool = False, reason: str | None = None, by: str | None = None) -> Promotion:
    """Move the `champion` alias to the current challenger if the gates, recomputed from the verified
    evidence of both versions, pass. `force` needs a `reason`, logged to the version's tags. Every attempt
    (refused, promoted, forced) is recorded in `<model>-governance`. A refusal raises `PromotionRefused`."""
    configure_tracking()
    if force and not reason:
        raise ValueError("--force needs --reason: say why the gates are overridden")
    client = MlflowClient()
    _resolve(client, f"models:/{registered_model}@challenger")
    challenger = client.get_model_version_by_alias(registered_model, "challenger")
    try:
        champion = client.get_model_version_by_alias(registered_model, "champion")
    except MlflowException:
        champion = None
    compared = champion is not None and champion.version != challenger.version
    reasons: list[str] = []
    new = _evidence(client, challenger, "challenger", reasons)
    old = _evidence(client, champion, "champion", reasons) if compared else None
    if new is not None:
        reasons += decide(new.content, old.content if old else None)
    record_attempt(
        registered_model,
        PromotionAttempt(
            challenger=str(challenger.version),
            champion=str(champion.version) if champion is not None else None,
            decision="forced" if reasons and force else "refused" if reasons else "promoted",
            reasons=tuple(reasons),
            by=by or getpass.getuser(),
            forced_reason=reason if force else None,
            challenger_evidence=new.sha256 if new else None,
            champion_evidence=old.sha256 if old else None,
        ),
    )
    if reasons and not force:
        raise PromotionRefused(reasons)
    if force:
        client.set_model_version_tag(registered_model, challenger.version, "promotion_forced_reason", str(reason))
        client.set_model_version_tag(
            registered_model, challenger.version, "promotion_overrode", "; ".join(reasons) or "none"
        )
    client.set_registered_model_alias(registered_model, "champion", challenger.version)
    return Promotion(str(challenger.version), bool(reasons), summary(new.content) if new else "no verified evidence")
