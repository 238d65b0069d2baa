"""Declaration files a person writes (an experiment config, an ingest mapping): YAML whose top level is a
mapping, validated by pydantic into typed objects. What they share: reading the file with a one-line error,
file paths in them relative to the file (the validation context's `base`), and an error's key path as text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, ValidationInfo


def read_declaration(path: Path, error: type[ValueError], what: str) -> tuple[str, dict[str, Any]]:
    """The file's text and its top-level mapping; `error` with one line if it is absent, not YAML, or not a
    mapping (`what` names the file's kind: "config", "mapping")."""
    if not path.exists():
        raise error(f"{path}: {what} file not found")
    try:
        text = path.read_text()
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return text, raw


def _beside_file(path: Path, info: ValidationInfo) -> Path:
    """A path in a declaration is relative to the declaration file's folder (the validation context's `base`)."""
    if info.context is None:
        raise RuntimeError("paths are relative to the declaration file: validate with context={'base': folder}")
    return (info.context["base"] / path).resolve()


#: A file path in a declaration, resolved beside the declaration file.
BesideFile = Annotated[Path, AfterValidator(_beside_file)]


def key_path(loc: Sequence[int | str]) -> str:
    """('models', 'lightgbm', 'num_leaves') -> 'models.lightgbm.num_leaves'; a list index as [i]."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in loc).lstrip(".")
