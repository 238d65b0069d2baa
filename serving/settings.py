"""Typed settings of the scoring API (`riskloop serve`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TOKENS_ENV = "RISKLOOP_TOKENS"
DEFAULT_TOKENS = Path("riskloop-tokens.jsonl")
DEFAULT_AUDIT_LOG = Path("riskloop-audit.jsonl")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the host's count)."""
    return len(os.sched_getaffinity(0))


def default_tokens_path() -> Path:
    """`$RISKLOOP_TOKENS`, else `riskloop-tokens.jsonl` in the working directory."""
    return Path(os.environ.get(TOKENS_ENV) or DEFAULT_TOKENS)


@dataclass(frozen=True)
class ServeSettings:
    scores: Path | None = None  # a `riskloop score` output folder
    model_uri: str | None = None  # the pyfunc behind POST /invocations
    tokens: Path = DEFAULT_TOKENS
    audit_log: Path = DEFAULT_AUDIT_LOG
    insecure_local: bool = False  # no auth, loopback only
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1 << 20
    max_rows: int = 1000
    rate: float = 20.0  # requests per second per token
    burst: int = 40
    failed_auth_rate: float = 1.0  # failed authentications per second per client address
    failed_auth_burst: int = 20
    scoring_slots: int = field(default_factory=usable_cpus)  # POST /invocations scored at once
    trusted_proxy: str | None = None  # the reverse proxy whose X-Forwarded-For names the client
