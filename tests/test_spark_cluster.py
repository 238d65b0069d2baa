"""On a real cluster manager: a Spark standalone master and one worker on loopback, started from the pyspark
install, run `riskloop score --engine spark` and `riskloop features --engine spark` as a partnership would
(`--spark-master spark://...`) on the 20k world whose incidents and households cross the partitions, and give
what the local engine gives: byte-identical lists, the same prioritisation rows and manifest counts, features to
1e-9. The test stops what it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

pyspark = pytest.importorskip("pyspark")

from conftest import own_store  # noqa: E402

from riskloop.artifacts.scores import MANIFEST_ADAPTER, read_scores  # noqa: E402
from riskloop.artifacts.snapshots import read_snapshots  # noqa: E402
from riskloop.experiments.tracking import log_training  # noqa: E402

pytestmark = pytest.mark.slow
AS_OF = "2025-07-01"
STARTUP_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(folder: Path, name: str, args: list[str], ready: str, env: dict[str, str]) -> subprocess.Popen:
    """`spark-class` with `args` in its own process group, once its log says `ready`."""
    log = folder / f"{name}.log"
    process = subprocess.Popen(
        [str(Path(pyspark.__file__).parent / "bin" / "spark-class"), *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while ready not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"the Spark {name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master (no REST server, web UIs on free ports) and one worker with 2 cores and 2 GB."""
    folder = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(folder)}
    (folder / "spark.conf").write_text("spark.master.rest.enabled false\n")
    port = _free_port()
    master = _start(
        folder,
        "master",
        ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", "0"]
        + ["--properties-file", str(folder / "spark.conf")],
        "I have been elected leader",
        env,
    )
    url = f"spark://127.0.0.1:{port}"
    try:
        worker = _start(
            folder,
            "worker",
            ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "2", "--memory", "2g"]
            + ["--webui-port", "0", "--work-dir", str(folder / "work")],
            "Successfully registered with master",
            env,
        )
    except BaseException:
        _stop(master)
        raise
    yield url, folder
    _stop(worker)
    _stop(master)
    assert master.poll() is not None and worker.poll() is not None


@pytest.fixture(scope="module")
def champion(escalation_run, tmp_path_factory) -> tuple[str, Path]:
    """The session's escalation model registered in an MLflow store of the test's own (what `--model` names)."""
    config, data, result = escalation_run
    store = tmp_path_factory.mktemp("cluster-store")
    with own_store(store):
        outcome = log_training(config, data, result, store / "out")
    return f"models:/{outcome.registered_model}/{outcome.model_version}", store


def _riskloop(args: list[str], store: Path, cwd: Path) -> str:
    """The installed CLI in a process of its own, as a partnership runs it: the executors run this interpreter
    (PYSPARK_PYTHON, as on a cluster whose nodes have riskloop installed) and the driver binds to loopback."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "riskloop.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"riskloop {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_standalone_cluster_scores_and_builds_features_as_the_local_engine(
    cluster, champion, crossing_world, tmp_path
):
    url, folder = cluster
    model, store = champion
    on_cluster = ["--engine", "spark", "--spark-master", url]
    score = ["score", "--model", model, "--data", str(crossing_world), "--as-of", AS_OF]
    _riskloop([*score, "--out", str(tmp_path / "local")], store, tmp_path)
    _riskloop([*score, "--out", str(tmp_path / "cluster"), *on_cluster], store, tmp_path)
    features = ["features", "--data", str(crossing_world), "--as-of", "2024-01-01", "--as-of", AS_OF]
    _riskloop([*features, "--out", str(tmp_path / "local.parquet")], store, tmp_path)
    _riskloop([*features, "--out", str(tmp_path / "cluster.parquet"), *on_cluster], store, tmp_path)

    # both jobs ran on the worker's executors (not in a local[*] driver): two applications launched there
    assert len(set(re.findall(r"Asked to launch executor (app-[\d-]+)/", (folder / "worker.log").read_text()))) == 2

    lists = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local" / "lists").rglob("*.csv"))
    assert lists == sorted(p.relative_to(tmp_path / "cluster") for p in (tmp_path / "cluster" / "lists").rglob("*.csv"))
    for path in lists:
        assert (tmp_path / "cluster" / path).read_bytes() == (tmp_path / "local" / path).read_bytes(), path
    want, got = (
        pq.read_table(tmp_path / f / "prioritisation.parquet").drop_columns("scored_at").replace_schema_metadata()
        for f in ("local", "cluster")
    )
    assert want.num_rows > 1000 and got.cast(want.schema).equals(want)  # the same rows, in the same order
    local, remote = (read_scores(tmp_path / f).manifest for f in ("local", "cluster"))
    assert remote.counts == local.counts and remote.counts.reconciles and remote.data == local.data
    assert (local.engine, remote.engine) == ("local", "spark")
    assert MANIFEST_ADAPTER.dump_python(remote).keys() == MANIFEST_ADAPTER.dump_python(local).keys()

    (want, want_meta), (got, got_meta) = (read_snapshots(tmp_path / f"{f}.parquet") for f in ("local", "cluster"))
    assert got_meta == want_meta and list(got.columns) == list(want.columns) and len(want) > 1000
    for column in ("person_id", "area_id", "local_authority", *want_meta.protected):
        assert got[column].astype(str).tolist() == want[column].astype(str).tolist(), column
    assert (got["as_of"].to_numpy() == want["as_of"].to_numpy()).all()
    features = list(want_meta.features)
    np.testing.assert_allclose(got[features].to_numpy(), want[features].to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(got["label"].to_numpy(), want["label"].to_numpy())
