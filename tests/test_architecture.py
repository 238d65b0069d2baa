"""The arrows of docs/architecture.md, checked on every import in the tree (function-level ones too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
LAYERS = (
    "features",
    "models",
    "artifacts",
    "pipelines",
    "experiments",
    "reports",
    "serving",
    "spark",
    "learning",
    "studies",
    "simulation",
    "ingest",
)
ABOVE_MODELS = (
    "riskloop.artifacts",
    "riskloop.pipelines",
    "riskloop.experiments",
    "riskloop.reports",
    "riskloop.serving",
    "riskloop.learning",
    "riskloop.studies",
    "riskloop.jobs",
    "riskloop.cli",
)

#: folder (or file) -> module prefixes it must never import. MLflow is only ever imported by experiments/.
FORBIDDEN = {
    "features": (*ABOVE_MODELS, "riskloop.models", "riskloop.spark", "mlflow", "jinja2", "matplotlib"),
    "models": (*ABOVE_MODELS, "riskloop.spark", "mlflow", "jinja2", "markupsafe", "matplotlib"),
    "artifacts": (*ABOVE_MODELS[1:], "riskloop.spark", "mlflow", "jinja2", "matplotlib"),
    # pipelines take objects and return objects: no artifact, no file, no MLflow
    "pipelines": (
        "riskloop.artifacts",
        "riskloop.experiments.tracking",
        "riskloop.experiments.registry",
        "riskloop.experiments.pyfunc",
        "riskloop.experiments.store",
        "riskloop.experiments.served",
        *ABOVE_MODELS[3:],
        "riskloop.spark",
        "mlflow",
        "jinja2",
        "matplotlib",
    ),
    "reports": ("riskloop.experiments", *ABOVE_MODELS[4:], "riskloop.spark", "mlflow"),
    "experiments": (*ABOVE_MODELS[4:], "riskloop.spark"),
    "serving": ("riskloop.experiments.tracking", *ABOVE_MODELS[5:], "riskloop.spark", "mlflow"),
    "spark": (
        "riskloop.learning",
        "riskloop.studies",
        "riskloop.jobs",
        "riskloop.cli",
        "riskloop.reports",
        "riskloop.experiments.tracking",
        "riskloop.experiments.store",
        "riskloop.experiments.pyfunc",
        "riskloop.experiments.config",
        "riskloop.experiments.orphans",
        "riskloop.experiments.served",
        "mlflow",
    ),
    "learning": (*ABOVE_MODELS[6:], "mlflow"),
    "studies": ("riskloop.jobs", "riskloop.cli", "mlflow"),
    # ingest reads agency extracts into the contract: the data contract, artifacts and models' types only
    "ingest": (*ABOVE_MODELS[1:], "riskloop.spark", "riskloop.simulation", "mlflow", "jinja2", "matplotlib"),
    "riskloop/jobs": ("riskloop.cli", "mlflow"),
    "riskloop/cli": ("mlflow",),
}
#: the world is a leaf: it imports itself and the data contract only (the contract's tables, vocabularies,
#: atomic writes and the data set folder it writes)
SIMULATION_MAY_IMPORT = (
    "riskloop.simulation",
    "riskloop.features.io",
    "riskloop.features.vocabulary",
    "riskloop.features.schema",
    "riskloop.artifacts.dataset",
)
#: only these may import the synthetic world (and its truth)
SIMULATION_IMPORTERS = (
    "riskloop/jobs/synthetic.py",
    "riskloop/jobs/data.py",
    "riskloop/cli/learn.py",
    "studies/",
    "tests/",
    "benchmarks/",
    "simulation/",
)


def imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, names imported from it) of every import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module, tuple(alias.name for alias in node.names)))
    return found


def python_files() -> list[tuple[str, Path]]:
    """(path relative to the repository, file) for every Python file of the tree."""
    folders = [*LAYERS, "riskloop", "tests", "benchmarks"]
    return sorted((p.relative_to(REPO).as_posix(), p) for folder in folders for p in (REPO / folder).rglob("*.py"))


def violations(files: list[tuple[str, Path]]) -> list[str]:
    out = []
    for where, path in files:
        layer = "/".join(where.split("/")[:2]) if where.startswith("riskloop/") else where.split("/")[0]
        for line, module, names in imports(path):
            forbidden = FORBIDDEN.get(layer, ())
            if (
                layer == "simulation"
                and module.startswith("riskloop.")
                and not module.startswith(SIMULATION_MAY_IMPORT)
            ):
                out.append(f"{where}:{line} (simulation, a leaf) imports {module}")
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{where}:{line} ({layer}) imports {module}")
            private = [name for name in names if name.startswith("_") and not name.startswith("__")]
            if private and module.startswith("riskloop.") and layer != "tests":
                out.append(f"{where}:{line} imports private {module}.{private[0]} (make it public where it lives)")
            if module.startswith("riskloop.simulation") and not where.startswith(SIMULATION_IMPORTERS):
                out.append(f"{where}:{line} imports the synthetic world ({module})")
            if module.split(".")[0] in LAYERS:
                out.append(f"{where}:{line} imports the generic top-level name '{module}' (use riskloop.{module})")
    return out


def test_every_import_follows_the_arrows():
    assert violations(python_files()) == []


@pytest.mark.parametrize(
    "where, code",
    [
        ("features/x.py", "from riskloop.models.metrics import top_k"),
        ("models/x.py", "import mlflow.pyfunc"),
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
        ("spark/x.py", "from riskloop.learning.effects import att"),
        ("spark/x.py", "def f():\n    from riskloop.experiments.tracking import log_training"),
        ("spark/x.py", "from riskloop.simulation.truth import escalation_probability"),
        ("spark/x.py", "from riskloop.serving.batch import _counts, list_rows"),
    ],
)
def test_the_guard_catches_a_wrong_arrow(tmp_path, where, code):
    """The guard itself works: a planted import of each forbidden kind is reported."""
    planted = tmp_path / "planted.py"
    planted.write_text(code + "\n")
    assert len(violations([(where, planted)])) == 1


def test_the_snapshot_path_on_spark_imports_nothing_from_serving():
    """`riskloop features --engine spark` (its imports as the CLI makes them) loads no serving module."""
    code = (
        "import sys\nfrom riskloop.spark import spark_session, spark_snapshots\n"
        "print([m for m in sys.modules if m.startswith('riskloop.serving')])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
