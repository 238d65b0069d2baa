"""Runs the scoring API under uvicorn, with an access log that never prints a pseudonym."""

from __future__ import annotations

import copy
import gc
import json
import logging
import re
import signal
import tempfile
from pathlib import Path

import uvicorn

from riskloop.serving.api import create_app
from riskloop.serving.settings import ServeSettings

PERSON_PATH = re.compile(r"/people/[^?\s\"]*")


def redact(path: str) -> str:
    return PERSON_PATH.sub("/people/<redacted>", path)


class RedactPeople(logging.Filter):
    """Replaces the pseudonym in uvicorn access-log lines: args are (client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 2 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], redact(record.args[2]), *record.args[3:])
        return True


def log_config() -> dict:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact_people": {"()": RedactPeople}}
    config["handlers"]["access"]["filters"] = ["redact_people"]
    return config


def serve(settings: ServeSettings) -> None:
    """Build the app (ServeError, ScoresError, ModelError, ... if it must not start) and serve until interrupted;
    SIGHUP reopens the audit log (after a rotation)."""
    app = create_app(settings)
    signal.signal(signal.SIGHUP, lambda *_: app.state.audit_log.rotate())
    gc.collect()
    gc.freeze()  # startup's ~300k objects (libraries, model, index) leave the collector: no ~200 ms full-GC pauses
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=log_config(),
        proxy_headers=settings.trusted_proxy is not None,  # else any client could name its address
        forwarded_allow_ips=settings.trusted_proxy,
    )


def export_openapi(path: Path) -> None:
    """Write the API's OpenAPI schema (it depends on no data, token or model)."""
    with tempfile.TemporaryDirectory() as scratch:
        schema = create_app(ServeSettings(insecure_local=True, audit_log=Path(scratch) / "audit.jsonl")).openapi()
    path.write_text(json.dumps(schema, indent=2) + "\n")


def wait_until_healthy(base_url: str, process, timeout_s: float) -> bool:
    """Poll GET /health of a server started as `process` until it answers 200 (True), the process ends or
    `timeout_s` passes (False)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return False
