"""The append-only audit log: one JSON line per request, flushed as it is written.

It records who asked for what (token name, endpoint, pseudonyms, rows scored, model version,
status), never request bodies, Authorization headers or tokens.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO


@dataclass
class AuditEntry:
    """What one request touched; the handlers fill it in as they learn it."""

    method: str
    endpoint: str = "unmatched"
    token: str | None = None
    pseudonyms: list[str] = field(default_factory=list)
    local_authority: str | None = None
    rows: int = 0
    model_version: str | None = None


class AuditLog:
    """Opened (append mode) at the first line, so an app that serves nothing leaves no file."""

    def __init__(self, path: Path):
        self.path = path
        self._file: TextIO | None = None

    def write(self, entry: AuditEntry, status: int) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **asdict(entry), "status": status}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
