"""Type-check the riskloop package with mypy. riskloop installs its top-level folders under one namespace
(`riskloop.features` is `features/`, pyproject's package-dir), which mypy cannot map from the source tree,
so this lays the package out as it installs (a temporary tree of links) and checks that."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
with tempfile.TemporaryDirectory(prefix="riskloop-typecheck-") as tmp:
    root = Path(tmp) / "riskloop"
    root.mkdir()
    for entry in (REPO / "riskloop").iterdir():
        if entry.name != "__pycache__":
            (root / entry.name).symlink_to(entry)
    for package, folder in setuptools["package-dir"].items():
        if package != "riskloop":
            (root / package.removeprefix("riskloop.")).symlink_to(REPO / folder)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(REPO / ".mypy_cache"),
            "-p",
            "riskloop",
        ],
        env={**os.environ, "MYPYPATH": tmp},
        cwd=tmp,
    )
sys.exit(done.returncode)
