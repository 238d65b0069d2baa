"""Typed settings of the scoring API (`riskloop serve`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TOKENS_ENV = "RISKLOOP_TOKENS"
DEFAULT_TOKENS = Path("riskloop-tokens.jsonl")
DEFAULT_AUDIT_LOG = Path("riskloop-audit.jsonl")


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
    failed_auth_rate: float = 1.0  # failed authentications per second per client address (IPv6: per /64)
    failed_auth_burst: int = 20
    # POST /invocations scored at once: the checks and pandas hold Python's GIL, so a second thread only
    # slows both (measured: valid p99 under attack 98.7 ms with 2, 44.3 ms with 1); LightGBM's own
    # threads work within a request
    scoring_slots: int = 1
    scoring_queue: int = 8  # POST /invocations waiting for a slot, each holding its body; more get 503
    trusted_proxy: str | None = None  # the reverse proxy whose X-Forwarded-For names the client
