"""Packaging: one `riskloop` namespace that a plain wheel install provides on its own."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


#: What a checkout may hold beside the sources: environments, build outputs, caches and runs.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "mlruns", "riskloop-*"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources: a build writes `build/` and `*.egg-info` beside them, where
    another test process reading riskloop's own metadata could find them half written."""
    sources = shutil.copytree(REPO, tmp_path_factory.mktemp("sources") / "riskloop", ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(sources)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("riskloop-*.whl"))


def test_wheel_holds_one_namespace_with_templates_and_configs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("riskloop-")}
    assert top == {"riskloop"}
    for expected in (
        "riskloop/features/snapshot.py",
        "riskloop/models/fairness.py",
        "riskloop/pipelines/score.py",
        "riskloop/experiments/escalation.yaml",
        "riskloop/reports/templates/base.html",
    ):
        assert expected in names


def test_wheel_imports_in_a_fresh_process_without_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import riskloop.features.snapshot as s, riskloop.pipelines.score, riskloop.reports.render as r;"
        "print(s.__file__); print(r.render('base.html', title='t'))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[0].startswith(str(site))
    assert "<title>t" in result.stdout
    missing = subprocess.run([sys.executable, "-I", "-c", "import features"], cwd=tmp_path, capture_output=True)
    assert missing.returncode != 0, "no generic top-level package may be importable"
