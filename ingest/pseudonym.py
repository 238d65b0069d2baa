"""Pseudonyms at the edge: a contract person_id is a keyed hash of the person's stable cluster key.

`person_id = "p" + HMAC-SHA256(key, cluster_key).hexdigest()[:24]`, with the partnership's secret key, so the
same person gets the same pseudonym every month and nobody without the key can recompute it from a name or an
agency id. The key is read from an environment variable or a key file; it is never logged, echoed in an error,
or written anywhere by riskloop.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pandas as pd

KEY_ENV = "RISKLOOP_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32
PSEUDONYM_HEX = 24


class PseudonymKeyError(ValueError):
    """The partnership key is absent or too short (the message never contains the key)."""


def load_key(env: str = KEY_ENV, file: Path | None = None) -> bytes:
    """The partnership key: the key file's contents (trailing newline dropped) if given, else the variable."""
    if file is not None:
        try:
            key = file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise PseudonymKeyError(f"pseudonym key file {file} cannot be read ({exc.strerror})") from None
        where = f"key file {file}"
    else:
        key = os.environ.get(env, "").encode()
        where = f"environment variable {env}"
        if not key:
            raise PseudonymKeyError(f"no pseudonym key: set {env} or give a key file")
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"pseudonym key in {where} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def pseudonymise(cluster_keys: pd.Series, key: bytes) -> pd.Series:
    """The pseudonym of each cluster key (same index; a missing key stays missing)."""

    def one(value: object) -> object:
        if not isinstance(value, str):
            return pd.NA
        return "p" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]

    return cluster_keys.map(one).astype("string").rename("person_id")
