"""Safe outputs: a `riskloop train` killed at any moment leaves its output folder whole or absent; the
next run removes what the killed one left (temporary files and folders, RUNNING runs); every output
file has mode 0644 and every folder 0755, whatever the umask."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from riskloop.experiments.orphans import ORPHANED_TAG, mark_orphaned_runs, process_tags
from riskloop.experiments.store import experiment_id
from riskloop.features.io import atomic_folder, write_text_atomic
from tests.conftest import make_world

FAST = """name: fast
data: world
schedule: {start: 2022-01-01, end: 2024-07-01, every_months: 6, n_test: 1}
models: {logistic: {C: [0.1]}, prior_harm: {}}
fairness: {bootstrap: 100}
threads: 2
"""


def _ended() -> int:
    """The id of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead, live = _ended(), os.getpid()
    stale_file = tmp_path / f".snap.parquet.{dead}.k3j2h1g0.tmp"
    legacy_file = tmp_path / ".snap.parquet.a8d7f6e5.tmp"  # named before the writer's pid was in the name
    live_file = tmp_path / f".snap.parquet.{live}.q1w2e3r4.tmp"
    other_target = tmp_path / f".snap.parquet.bak.{dead}.z9x8c7v6.tmp"
    stale_folder = tmp_path / f".out.{dead}.m4n5b6v7.tmp"
    for path in (stale_file, legacy_file, live_file, other_target):
        path.write_text("half")
    stale_folder.mkdir()
    (stale_folder / "model_card.html").write_text("half")
    write_text_atomic("whole", tmp_path / "snap.parquet")
    assert not stale_file.exists() and not legacy_file.exists()
    assert live_file.exists() and other_target.exists()
    with atomic_folder(tmp_path / "out", ("*",), "a test") as folder:
        (folder / "contract.json").write_text("{}")
    assert not stale_folder.exists() and (tmp_path / "out" / "contract.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["snap.parquet", "out", live_file.name, other_target.name]
    )


def test_a_folder_moved_aside_by_a_killed_run_is_put_back(tmp_path):
    (tmp_path / ".out.previous").mkdir()
    (tmp_path / ".out.previous" / "contract.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "out", ("*",), "a test") as folder:
            assert (tmp_path / "out" / "contract.json").exists()  # restored before the new one is written
            (folder / "contract.json").write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "out" / "contract.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_output_folder_holding_what_its_writer_does_not_write_is_refused_and_kept(tmp_path):
    """A folder is replaced whole, so one holding anything else (a user's file, the input data) is refused
    before the block runs, and stays as it was; a file where the folder would go is refused too."""
    from riskloop.features.io import DataError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "important.txt").write_text("precious")
    (mine / "manifest.json").write_text("{}")
    ran = []
    with pytest.raises(DataError, match=r"holds 'important.txt', which a test does not write: it replaces the"):
        with atomic_folder(mine, ("manifest.json", "lists"), "a test"):
            ran.append(True)
    assert not ran and sorted(p.name for p in mine.iterdir()) == ["important.txt", "manifest.json"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="afile is a file: give a folder"):
        with atomic_folder(tmp_path / "afile", ("*",), "a test"):
            ran.append(True)
    with pytest.raises(DataError, match="afile is a file: give a folder"):  # a folder that would go inside a file
        with atomic_folder(tmp_path / "afile" / "out", ("*",), "a test"):
            ran.append(True)
    assert not ran and (tmp_path / "afile").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "mine"]  # no folder moved aside, no temporary
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(DataError, match="link is a symbolic link"):
        with atomic_folder(tmp_path / "link", ("*",), "a test"):
            ran.append(True)
    with pytest.MonkeyPatch.context() as patch:  # the folder one is in, or one holding it, cannot be renamed away
        patch.chdir(tmp_path)
        for here in (Path("."), Path("..")):
            with pytest.raises(DataError, match="is the folder you are in, or holds it"):
                with atomic_folder(here, ("*",), "a test"):
                    ran.append(True)
    assert not ran and (mine / "important.txt").read_text() == "precious"
    previous = tmp_path / "previous"
    with atomic_folder(previous, ("la-*.html", "lists"), "a test") as folder:
        (folder / "la-cardiff.html").write_text("old")
        (folder / "lists").mkdir()
    (previous / ".DS_Store").write_text("a file browser's")  # not a user's file: no reason to refuse
    with atomic_folder(previous, ("la-*.html", "lists"), "a test") as folder:  # its own previous output: replaced
        (folder / "la-swansea.html").write_text("new")
    assert sorted(p.name for p in previous.iterdir()) == ["la-swansea.html"]


def test_outputs_have_one_mode_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        write_text_atomic("x", tmp_path / "one.txt")
        with atomic_folder(tmp_path / "folder", ("*",), "a test") as folder:
            (folder / "plain.csv").write_text("a\n")
            write_text_atomic("{}", folder / "atomic.json")
            (folder / "sub").mkdir()
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "one.txt", *tmp_path.rglob("*")]}
    assert modes == {"one.txt": 0o644, "folder": 0o755, "plain.csv": 0o644, "atomic.json": 0o644, "sub": 0o755}


def test_only_runs_whose_process_is_gone_are_marked_killed(mlflow_store):
    client = MlflowClient()
    experiment = experiment_id("orphans")
    now_ms = int(time.time() * 1000)
    here, elsewhere = socket.gethostname(), "another-host"

    def run(tags: dict[str, str], started_ms: int = now_ms) -> str:
        return client.create_run(experiment, start_time=started_ms, tags=tags).info.run_id

    dead = run({"riskloop.pid": str(_ended()), "riskloop.host": here})
    child_of_dead = run({"mlflow.parentRunId": dead})
    alive = run(process_tags())
    other_host_now = run({"riskloop.pid": "1", "riskloop.host": elsewhere})
    other_host_old = run({"riskloop.pid": "1", "riskloop.host": elsewhere}, now_ms - 2 * 86_400_000)
    untagged_now = run({})
    finished = run({"riskloop.pid": str(_ended()), "riskloop.host": here})
    client.set_terminated(finished, "FINISHED")
    assert sorted(mark_orphaned_runs(experiment)) == sorted([dead, child_of_dead, other_host_old])
    for run_id in (dead, child_of_dead, other_host_old):
        info = client.get_run(run_id)
        assert info.info.status == "KILLED" and info.info.end_time is not None
        assert info.data.tags[ORPHANED_TAG].startswith(
            "process ended without finishing; marked killed by the next run at "
        )
    for run_id in (alive, other_host_now, untagged_now):
        assert client.get_run(run_id).info.status == "RUNNING"
    assert client.get_run(finished).info.status == "FINISHED"


def _whole_or_absent(out: Path, whole: list[str]) -> None:
    if not out.exists():
        return
    files = sorted(p.name for p in out.iterdir())
    assert files == whole, files
    assert all((out / name).stat().st_size > 0 for name in files)


@pytest.mark.slow
def test_a_killed_train_leaves_a_whole_folder_or_none_and_the_next_run_cleans_up(tmp_path):
    make_world(tmp_path / "world", 4000, seed=3)
    (tmp_path / "fast.yaml").write_text(FAST)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "riskloop.cli", "train", "--config", "fast.yaml", "--out", "out"],
            cwd=tmp_path,
            env={**os.environ, "MLFLOW_TRACKING_URI": uri},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    first = start()
    assert first.wait() == 0, first.stdout.read()[-3000:]
    whole = sorted(p.name for p in out.iterdir())
    assert "model_card.html" in whole and "contract.json" in whole

    def written(name: str, folders: tuple[str, ...] = ("out", ".out*")):
        """Whether the running process has written `name`, in the output folder or one beside it."""

        def check() -> bool:
            try:
                return any(p.stat().st_mtime > started for f in folders for p in tmp_path.glob(f"{f}/{name}"))
            except FileNotFoundError:  # renamed or removed while looking
                return False

        return check

    points = {
        "metrics written": written("metrics.json"),
        "split metrics written": written("split_metrics.csv"),
        "output folder in place": written("contract.json", ("out",)),
        "model card written, model being logged": written("model_card.html"),
    }
    killed = 0
    for reached in points.values():
        started = time.time()
        process = start()
        while process.poll() is None and not reached():
            time.sleep(0.002)
        killed += process.poll() is None
        process.kill()
        process.wait()
        _whole_or_absent(out, whole)
    assert killed >= 3
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("fast").experiment_id
    assert client.search_runs([experiment], "attributes.status = 'RUNNING'")  # the last kill left one behind
    orphans = [r.info.run_id for r in client.search_runs([experiment], "attributes.status != 'FINISHED'")]

    last = start()
    output = last.communicate()[0]
    assert last.returncode == 0, output[-3000:]
    assert "challenger alias moved from v" in output
    _whole_or_absent(out, whole)
    assert out.exists()
    assert not client.search_runs([experiment], "attributes.status = 'RUNNING'")
    for run_id in orphans:
        run = client.get_run(run_id)
        assert run.info.status == "KILLED" and ORPHANED_TAG in run.data.tags
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.name == ".out.previous"]
    version = client.get_model_version_by_alias("riskloop-fast", "challenger")
    assert (out / "contract.json").exists() and client.get_run(version.run_id).info.status == "FINISHED"
