"""Safe outputs: written whole or not at all; the next write removes what a killed one left
(temporary files and folders); every output file has mode 0644 and every folder 0755, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from riskloop.features.io import atomic_folder, write_text_atomic

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
    with atomic_folder(tmp_path / "out") as folder:
        (folder / "contract.json").write_text("{}")
    assert not stale_folder.exists() and (tmp_path / "out" / "contract.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["snap.parquet", "out", live_file.name, other_target.name])


def test_a_folder_moved_aside_by_a_killed_run_is_put_back(tmp_path):
    (tmp_path / ".out.previous").mkdir()
    (tmp_path / ".out.previous" / "contract.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "out") as folder:
            assert (tmp_path / "out" / "contract.json").exists()  # restored before the new one is written
            (folder / "contract.json").write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "out" / "contract.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_outputs_have_one_mode_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        write_text_atomic("x", tmp_path / "one.txt")
        with atomic_folder(tmp_path / "folder") as folder:
            (folder / "plain.csv").write_text("a\n")
            write_text_atomic("{}", folder / "atomic.json")
            (folder / "sub").mkdir()
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "one.txt", *tmp_path.rglob("*")]}
    assert modes == {"one.txt": 0o644, "folder": 0o755, "plain.csv": 0o644, "atomic.json": 0o644, "sub": 0o755}
