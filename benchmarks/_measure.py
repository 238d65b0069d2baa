"""Shared timing helpers for the benchmark scripts: wall time and peak resident memory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, in GiB: the kernel's VmHWM (Linux, KiB).

    Not `getrusage(...).ru_maxrss`: after fork and exec it carries over the parent's peak, so a child
    started by a big benchmark process would report its parent's memory as its own.
    """
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM")).split()[1]) / 2**20


def run_isolated(code: str) -> tuple[float, float, str]:
    """Run Python `code` in a fresh interpreter; return (wall seconds, peak RSS GiB, its stdout).

    A fresh process per measurement keeps one size's peak memory from hiding another's.
    """
    wrapper = (
        f"import sys, time\nsys.path.insert(0, {HERE!r})\nfrom _measure import peak_rss_gib\n"
        f"t0 = time.perf_counter()\n{code}\n"
        "print('__wall', time.perf_counter() - t0)\nprint('__rss', peak_rss_gib())\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    wall = float(next(line for line in lines if line.startswith("__wall")).split()[1])
    rss = float(next(line for line in lines if line.startswith("__rss")).split()[1])
    return wall, rss, "\n".join(line for line in lines if not line.startswith("__"))


def bare_matrix(X):
    """The float matrix bare LightGBM reads: categorical columns become their codes (missing -> NaN)."""
    import numpy as np
    import pandas as pd

    columns = {
        c: X[c].cat.codes.replace(-1, np.nan).astype(float) if isinstance(X[c].dtype, pd.CategoricalDtype) else X[c]
        for c in X.columns
    }
    return pd.DataFrame(columns, index=X.index).to_numpy(dtype=np.float64)


def now() -> float:
    return time.perf_counter()


def scorer_for(calibrated, features: list[str], reference_scores, catalogue=None, protected=()):
    """A RiskScorer with a contract describing a benchmark's hand-fitted model (default snapshot settings)."""
    from datetime import date

    from riskloop.features.snapshot import SnapshotConfig
    from riskloop.models.contract import Bands, ModelContract, riskloop_version
    from riskloop.models.explain import ReasonTemplates
    from riskloop.models.fairness import AuditConfig
    from riskloop.models.scorer import RiskScorer, ventile_cuts

    contract = ModelContract(
        name="bench",
        registered_model="riskloop-bench",
        model_group="lightgbm",
        snapshot=SnapshotConfig(),
        features=tuple(features),
        categorical=(),
        protected=tuple(protected),
        protected_as_features=(),
        audit=AuditConfig(),
        capacity=0.05,
        band_cuts=ventile_cuts(reference_scores),
        bands=Bands(),
        training_window=(date(2022, 1, 1), date(2022, 1, 1)),
        calibration_window=(date(2023, 1, 1), date(2023, 1, 1)),
        test_window=(date(2024, 1, 1), date(2024, 1, 1)),
        data_fingerprint="bench",
        config_hash="bench",
        riskloop_version=riskloop_version(),
    )
    return RiskScorer(calibrated, contract, ReasonTemplates.build(features, catalogue, list(protected)))


def _at_most(rows, n: int):
    """A seeded sample of `n` of `rows`, or all of them when there are fewer."""
    return rows.sample(n=min(n, len(rows)), random_state=0)


def bench_model(world: Path, model_file: Path):
    """Fit the benchmarks' LightGBM on full-Wales snapshots (300 k rows of 2022, calibrated on 100 k of 2023;
    all of them on a smaller world), pickle it as a LoadedModel to `model_file`, and return the fitted pipeline (set-up, never timed)."""
    import pickle
    from datetime import date

    from riskloop.artifacts.dataset import read_dataset
    from riskloop.experiments.registry import LoadedModel
    from riskloop.features.snapshot import PreparedData, SnapshotConfig, build_snapshots
    from riskloop.models.calibration import calibrate
    from riskloop.models.estimators import ModelSpec, fit_model

    prepared = PreparedData.from_dataset(read_dataset(world))
    frame, meta = build_snapshots(prepared, [date(2022, 1, 1), date(2023, 1, 1)], SnapshotConfig())
    features = list(meta.features)
    fit = _at_most(frame[frame["as_of"] == "2022-01-01"], 300_000)
    val = _at_most(frame[frame["as_of"] == "2023-01-01"], 100_000)
    spec = ModelSpec(
        "lightgbm", (("learning_rate", 0.05), ("min_child_samples", 50), ("n_estimators", 600), ("num_leaves", 15))
    )
    model = fit_model(spec, fit[features], fit["label"].to_numpy(), val[features], val["label"].to_numpy(), [], 42, 2)
    scores = model.predict_proba(val[features])[:, 1]
    calibrated, _ = calibrate(model, scores, val["label"].to_numpy(), ("isotonic", "sigmoid"), 42)
    scorer = scorer_for(calibrated, features, scores, prepared.catalogue(SnapshotConfig()), meta.protected)
    Path(model_file).write_bytes(
        pickle.dumps(LoadedModel("models:/riskloop-bench@champion", "riskloop-bench", "1", "bench", scorer))
    )
    return model
