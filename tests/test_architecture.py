"""The arrows of docs/architecture.md, checked on every import in the tree (function-level ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
LAYERS = ("features", "models", "artifacts", "pipelines", "experiments", "reports", "serving", "learning",
          "studies", "simulation")
ABOVE_MODELS = ("riskloop.artifacts", "riskloop.pipelines", "riskloop.experiments", "riskloop.reports",
                "riskloop.serving", "riskloop.learning", "riskloop.studies", "riskloop.jobs", "riskloop.cli")

#: folder (or file) -> module prefixes it must never import. MLflow is only ever imported by experiments/.
FORBIDDEN = {
    "features": (*ABOVE_MODELS, "riskloop.models", "mlflow", "jinja2", "matplotlib"),
    "models": (*ABOVE_MODELS, "mlflow", "jinja2", "markupsafe", "matplotlib"),
    "artifacts": (*ABOVE_MODELS[1:], "mlflow", "jinja2", "matplotlib"),
    # pipelines take objects and return objects: no artifact, no file, no MLflow
    "pipelines": ("riskloop.artifacts", "riskloop.experiments.tracking", "riskloop.experiments.registry",
                  "riskloop.experiments.pyfunc", "riskloop.experiments.store", "riskloop.experiments.served",
                  *ABOVE_MODELS[3:], "mlflow", "jinja2", "matplotlib"),
    "reports": ("riskloop.experiments", *ABOVE_MODELS[4:], "mlflow"),
    "experiments": (*ABOVE_MODELS[4:],),
    "serving": ("riskloop.experiments.tracking", *ABOVE_MODELS[5:], "mlflow"),
    "learning": (*ABOVE_MODELS[6:], "mlflow"),
    "studies": ("riskloop.jobs", "riskloop.cli", "mlflow"),
    "riskloop/jobs": ("riskloop.cli", "mlflow"),
    "riskloop/cli": ("mlflow",),
}
#: the world is a leaf: it imports itself and the data contract only (the contract's tables, vocabularies,
#: atomic writes and the data set folder it writes)
SIMULATION_MAY_IMPORT = ("riskloop.simulation", "riskloop.features.io", "riskloop.features.vocabulary",
                         "riskloop.features.schema", "riskloop.artifacts.dataset")
#: only these may import the synthetic world (and its truth)
SIMULATION_IMPORTERS = ("riskloop/jobs/synthetic.py", "riskloop/jobs/data.py", "riskloop/cli/learn.py", "studies/",
                        "tests/", "benchmarks/", "simulation/")


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
    return found


def python_files() -> list[tuple[str, Path]]:
    """(path relative to the repository, file) for every Python file of the tree."""
    folders = [*LAYERS, "riskloop", "tests", "benchmarks"]
    return sorted((p.relative_to(REPO).as_posix(), p) for folder in folders for p in (REPO / folder).rglob("*.py"))


def violations(files: list[tuple[str, Path]]) -> list[str]:
    out = []
    for where, path in files:
        layer = "/".join(where.split("/")[:2]) if where.startswith("riskloop/") else where.split("/")[0]
        for line, module in imports(path):
            forbidden = FORBIDDEN.get(layer, ())
            if layer == "simulation" and module.startswith("riskloop.") and not module.startswith(SIMULATION_MAY_IMPORT):
                out.append(f"{where}:{line} (simulation, a leaf) imports {module}")
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{where}:{line} ({layer}) imports {module}")
            if module.startswith("riskloop.simulation") and not where.startswith(SIMULATION_IMPORTERS):
                out.append(f"{where}:{line} imports the synthetic world ({module})")
            if module.split(".")[0] in LAYERS:
                out.append(f"{where}:{line} imports the generic top-level name '{module}' (use riskloop.{module})")
    return out


def test_every_import_follows_the_arrows():
    assert violations(python_files()) == []


@pytest.mark.parametrize("where, code", [
    ("features/x.py", "from riskloop.models.metrics import top_k"), ("models/x.py", "import mlflow.pyfunc"),
    ("models/x.py", "def f():\n    from jinja2 import Environment"),
    ("pipelines/x.py", "from riskloop.experiments.tracking import log_training"),
    ("serving/x.py", "from riskloop.simulation.truth import escalation_probability"),
    ("experiments/x.py", "from features.snapshot import build_snapshot"),
    ("simulation/x.py", "from riskloop.pipelines.train import train"),
    ("simulation/x.py", "from riskloop.features.snapshot import PreparedData"),
    ("pipelines/x.py", "from riskloop.artifacts.scores import write_scores"),
    ("learning/x.py", "import mlflow"),
    ("studies/x.py", "from riskloop.jobs.learn import learn"),
    ("artifacts/x.py", "from riskloop.pipelines.score import score_cohort"),
    ("riskloop/jobs/x.py", "from riskloop.cli import app"),
    ("riskloop/cli/x.py", "from mlflow.tracking import MlflowClient"),
])
def test_the_guard_catches_a_wrong_arrow(tmp_path, where, code):
    """The guard itself works: a planted import of each forbidden kind is reported."""
    planted = tmp_path / "planted.py"
    planted.write_text(code + "\n")
    assert len(violations([(where, planted)])) == 1
