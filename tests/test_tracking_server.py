"""riskloop against a real MLflow tracking server over HTTP (SQLite backend, local artifact root)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

DATA = Path(__file__).parent / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tracking_server(tmp_path):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_train_registers_through_a_tracking_server(tracking_server, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_server}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "riskloop.cli",
            "train",
            "--config",
            str(DATA / "screening.yaml"),
            "--out",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to a local store
    client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    version = client.get_model_version_by_alias("riskloop-screening-test", "challenger")
    assert version.tags["data_fingerprint"]
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_server)
    mlflow.set_registry_uri(tracking_server)
    try:
        model = mlflow.pyfunc.load_model("models:/riskloop-screening-test@challenger")
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    scored = model.predict(pd.DataFrame({"age": [30.0], "priors": [0.0], "charge_degree": ["M"]}))
    assert 0 < scored["risk"].iloc[0] < 1
