"""Folder safety: a folder replaced whole trades places with its previous version in one step, so a run killed at
any moment leaves the one or the other, whole; anything in it that its writer did not write, at any depth, is
refused in one line before any work and left as it was; the quarantine beside a data set is such a folder; a
file's `--out` that is a folder is refused in one line before any work."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskloop.artifacts.dataset import write_quarantine
from riskloop.artifacts.scores import SCORES_WRITES, UnitCounts, write_scores
from riskloop.cli import app
from riskloop.features import io
from riskloop.features.io import (
    DataError,
    Writes,
    atomic_folder,
    check_replaceable,
    write_csv_atomic,
    write_text_atomic,
)
from tests.conftest import hand_manifest, hand_tables, write_tables

runner = CliRunner()
OLD = {"a.txt": "old", "sub/b.txt": "old"}
NEW = {"a.txt": "new", "sub/b.txt": "new"}


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative, with `/`) and its bytes as text."""
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes().decode(errors="surrogateescape") for p in files}


def exchange_works(folder: Path) -> bool:
    """Whether two folders here can trade places in one step (Linux, a file system with RENAME_EXCHANGE)."""
    (folder / "x").mkdir()
    (folder / "y").mkdir()
    try:
        return io.exchange(folder / "x", folder / "y")
    finally:
        (folder / "x").rmdir()
        (folder / "y").rmdir()


def write(target: Path, text: str) -> None:
    with atomic_folder(target, ("*.txt", "sub/*.txt"), "a test") as folder:
        (folder / "sub").mkdir()
        for name in ("a.txt", "sub/b.txt"):
            (folder / name).write_text(text)


# --- the swap: one step where the system can, two renames where it cannot ---


def test_two_folders_trade_places_in_one_step(tmp_path):
    if not exchange_works(tmp_path):
        pytest.skip("this system cannot exchange two names in one step")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_text("new")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "f").write_text("old")
    assert io.exchange(tmp_path / "new", tmp_path / "old")
    assert (tmp_path / "old" / "f").read_text() == "new" and (tmp_path / "new" / "f").read_text() == "old"
    with pytest.raises(FileNotFoundError):  # a real failure is raised, not taken for "cannot exchange"
        io.exchange(tmp_path / "absent", tmp_path / "old")


def test_a_previous_output_is_swapped_out_without_being_moved_aside(tmp_path, monkeypatch):
    """With the exchange there is no moment without the folder: no rename moves the previous one aside."""
    if not exchange_works(tmp_path):
        pytest.skip("this system cannot exchange two names in one step")
    out = tmp_path / "out"
    write(out, "old")

    def no_rename(*args: object) -> None:
        raise AssertionError(f"renamed {args}: the folder was missing for a moment")

    monkeypatch.setattr(os, "replace", no_rename)
    write(out, "new")
    monkeypatch.undo()
    assert tree(out) == NEW and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS])
def test_where_the_file_system_cannot_exchange_two_renames_replace_the_folder(tmp_path, monkeypatch, code):
    def cannot(*args: object) -> int:
        ctypes.set_errno(code)
        return -1

    monkeypatch.setattr(io, "_renameat2", lambda: cannot)
    out = tmp_path / "out"
    write(out, "old")
    write(out, "new")
    assert tree(out) == NEW and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    monkeypatch.setattr(io, "_renameat2", lambda: None)  # off Linux, or a C library without renameat2
    write(out, "newer")
    assert set(tree(out).values()) == {"newer"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_swap_that_fails_for_another_reason_keeps_the_previous_folder(tmp_path, monkeypatch):
    def fails(*args: object) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    out = tmp_path / "out"
    write(out, "old")
    monkeypatch.setattr(io, "_renameat2", lambda: fails)
    with pytest.raises(OSError, match="Input/output error"):
        write(out, "new")
    assert tree(out) == OLD and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


CHILD = """
import os, signal, sys
from pathlib import Path
from riskloop.features import io

out, mode, when, at = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
renames = []


def counted(real):
    def rename(*args):
        renames.append(args)
        if when == "before" and len(renames) == at:
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args)
        if when == "after" and len(renames) == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return rename


os.replace = counted(os.replace)
if hasattr(io, "exchange"):
    io.exchange = (lambda first, second: False) if mode == "fallback" else counted(io.exchange)
with io.atomic_folder(out, ("*.txt", "sub/*.txt"), "a test") as folder:
    (folder / "sub").mkdir()
    for name in ("a.txt", "sub/b.txt"):
        (folder / name).write_text("new")
"""


@pytest.mark.parametrize(
    ("mode", "when", "at", "left"),
    [
        ("exchange", "before", 1, OLD),
        ("exchange", "after", 1, NEW),  # the previous folder not yet removed, under the temporary name
        ("fallback", "before", 1, OLD),
        ("fallback", "after", 1, None),  # between the two renames: no folder, the previous one aside
        ("fallback", "after", 2, NEW),
    ],
)
def test_a_writer_killed_at_any_rename_leaves_a_whole_folder(tmp_path, mode, when, at, left):
    """A process killed (SIGKILL) just before or just after each rename of `atomic_folder`: with the exchange,
    the previous folder or the new one is in place, whole; with the fallback's two renames, the next write puts
    the previous folder back. Either way the next write leaves nothing beside it."""
    if mode == "exchange" and not exchange_works(tmp_path):
        pytest.skip("this system cannot exchange two names in one step")
    out = tmp_path / "data" / "out"
    write(out, "old")
    (tmp_path / "child.py").write_text(CHILD)
    child = subprocess.run(
        [sys.executable, str(tmp_path / "child.py"), str(out), mode, when, str(at)], capture_output=True, text=True
    )
    assert child.returncode == -9, child.stderr[-2000:]  # killed where asked
    if left is None:
        assert not out.exists() and tree(out.parent / ".out.previous") == OLD
        io.recover_folder(out)  # what the next write does first
        left = OLD
    assert tree(out) == left
    write(out, "next")
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


# --- what the writer did not write, at any depth ---

PATTERNS = ("manifest.json", "lists/*.csv", "lists/*/*.csv")


def test_a_file_the_writer_did_not_write_is_refused_at_any_depth_and_kept(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out, PATTERNS, "a test") as folder:
        (folder / "lists" / "Cardiff").mkdir(parents=True)
        for name in ("manifest.json", "lists/Cardiff.csv", "lists/Cardiff/W01.csv"):
            (folder / name).write_text("mine")
    (out / "lists" / "Cardiff" / ".DS_Store").write_text("a file browser's")  # not a user's file
    (out / "lists" / ".Cardiff.csv.999999999.k3j2h1g0.tmp").write_text("a killed write's")  # riskloop's own
    for path, named in [
        ("lists/Cardiff-team-notes.txt", "lists/Cardiff-team-notes.txt"),
        ("lists/Cardiff/notes.txt", "lists/Cardiff/notes.txt"),
        ("lists/returned/2025/Cardiff.csv", "lists/returned/2025"),  # deeper than any pattern: the folder named
        ("notes/Cardiff.csv", "notes"),
    ]:
        made = [p for p in reversed((out / path).parents) if not p.exists()]
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text("precious")
        before = tree(out)
        ran = []
        with pytest.raises(DataError) as refused:
            with atomic_folder(out, PATTERNS, "a test") as folder:
                ran.append(True)
        assert str(refused.value) == (
            f"{out} holds {named!r}, which a test does not write: it replaces the folder whole, so give a new or "
            "empty folder, or a previous output of a test"
        )
        assert not ran and tree(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
        (out / path).unlink()
        for folder in reversed(made):
            folder.rmdir()
    with atomic_folder(out, PATTERNS, "a test") as folder:  # its own output, with a file browser's file
        (folder / "manifest.json").write_text("new")
    assert tree(out) == {"manifest.json": "new"}


def test_a_star_never_crosses_a_slash(tmp_path):
    (tmp_path / "out" / "lists" / "Cardiff").mkdir(parents=True)
    (tmp_path / "out" / "lists" / "Cardiff" / "W01.csv").write_text("mine")
    with pytest.raises(DataError, match="holds 'lists/Cardiff', which"):
        check_replaceable(tmp_path / "out", ("lists/*.csv", "*.csv"), "a test")
    check_replaceable(tmp_path / "out", ("lists/*/*.csv",), "a test")


def test_a_record_of_what_was_written_decides_instead_of_the_wildcards(tmp_path):
    """A user's file that matches a pattern (`lists/notes.csv`) is told apart by the writer's record; without a
    record, the patterns decide."""
    out = tmp_path / "out"
    (out / "lists").mkdir(parents=True)
    for name in ("manifest.json", "lists/Cardiff.csv", "lists/notes.csv"):
        (out / name).write_text("x")
    recorded = Writes(PATTERNS, lambda folder: {"lists/Cardiff.csv"})
    with pytest.raises(DataError, match="holds 'lists/notes.csv', which a test does not write"):
        check_replaceable(out, recorded, "a test")
    (out / "lists" / "notes.csv").unlink()
    check_replaceable(out, recorded, "a test")  # manifest.json: a pattern without a wildcard, the writer's anyway
    (out / "lists" / "notes.csv").write_text("x")
    check_replaceable(out, Writes(PATTERNS, lambda folder: None), "a test")


def scores_folder(out: Path) -> None:
    """A scores folder written by `write_scores`: one listed person in Cardiff, one in Swansea."""
    frame = pd.DataFrame(
        {
            "person_id": ["p1", "p2"],
            "area_id": ["W01", "W02"],
            "local_authority": ["Cardiff", "Swansea"],
            "unit": ["Cardiff", "Swansea"],
            "rank": [1, 1],
            "risk": [0.5, 0.4],
            "band": [3, 3],
            "band_label": ["high", "high"],
            "prevention_tier": ["tertiary", "tertiary"],
            "reason_1": ["r", "r"],
            "reason_2": ["", ""],
            "reason_3": ["", ""],
        }
    )

    def prioritisation(path: Path) -> int:
        frame.to_parquet(path, index=False)
        return len(frame)

    units = {"Cardiff": UnitCounts(1, 1, 1), "Swansea": UnitCounts(1, 1, 1)}
    write_scores(out, hand_manifest(date(2025, 7, 1), units), "local_authority", prioritisation, frame)


def test_a_rerun_of_score_refuses_what_a_team_put_in_its_lists(tmp_path):
    """The tester's case: notes and a returned list inside `lists/` were deleted by the next `riskloop score`.
    The scores folder's manifest says which lists it wrote: anything else there is refused, even a CSV."""
    out = tmp_path / "scores"
    scores_folder(out)
    scores_folder(out)  # its own previous output: replaced
    assert sorted(tree(out)) == ["lists/Cardiff.csv", "lists/Swansea.csv", "manifest.json", "prioritisation.parquet"]
    for path, named in [
        ("lists/Cardiff-team-notes.txt", "lists/Cardiff-team-notes.txt"),
        ("lists/returned/Cardiff-2025-06.csv", "lists/returned"),  # a folder no list was written in
        ("lists/notes.csv", "lists/notes.csv"),  # a CSV, as a list is: not in the manifest
    ]:
        (out / path).parent.mkdir(exist_ok=True)
        (out / path).write_text("precious")
        before = tree(out)
        with pytest.raises(DataError, match=f"holds '{named}', which riskloop score does not write"):
            check_replaceable(out, SCORES_WRITES, "riskloop score")  # as the job does, before its work
        with pytest.raises(DataError, match=f"holds '{named}', which riskloop score does not write"):
            scores_folder(out)
        assert tree(out) == before
        (out / path).unlink()
    (out / "lists" / "returned").rmdir()
    (out / "manifest.json").unlink()  # no record: the patterns decide
    (out / "lists" / "Cardiff-team-notes.txt").write_text("precious")
    with pytest.raises(DataError, match="holds 'lists/Cardiff-team-notes.txt', which riskloop score"):
        check_replaceable(out, SCORES_WRITES, "riskloop score")


# --- the quarantine beside a data set ---


def quarantine(run: str) -> dict[str, pd.DataFrame]:
    """Each table's rejected rows, marked with the run that rejected them."""
    return {t: pd.DataFrame({"row": [2, 3], "x": ["a", "b"], "reason": [run, run]}) for t in ("people", "incidents")}


def test_the_quarantine_is_written_whole_with_the_same_files(tmp_path):
    written = write_quarantine(tmp_path, {**quarantine("one"), "areas": quarantine("one")["people"].iloc[:0]})
    folder = tmp_path / "_quarantine"
    assert written == [folder / "people.csv", folder / "incidents.csv"]
    write_csv_atomic(quarantine("one")["people"], tmp_path / "expected.csv")  # the bytes it always wrote
    assert (folder / "people.csv").read_bytes() == (tmp_path / "expected.csv").read_bytes()
    (folder / "people").mkdir()  # a Spark run's quarantine of the same data set: riskloop's, so replaced
    (folder / "people" / "part-00000-1a2b.csv").write_text("spark")
    (folder / "people" / "._SUCCESS.crc").write_text("spark")
    assert write_quarantine(tmp_path, {"people": quarantine("two")["people"]}) == [folder / "people.csv"]
    assert sorted(tree(folder)) == ["people.csv"] and set(pd.read_csv(folder / "people.csv")["reason"]) == {"two"}
    assert write_quarantine(tmp_path, {}) == [] and tree(folder) == {}  # every row valid now: none left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_quarantine", "expected.csv"]
    assert write_quarantine(tmp_path / "clean", {}) == [] and not (tmp_path / "clean").exists()  # none: none made


def test_a_quarantine_holding_a_users_file_is_refused_and_kept(tmp_path):
    write_quarantine(tmp_path, quarantine("one"))
    (tmp_path / "_quarantine" / "incidents-checked.txt").write_text("mine")
    before = tree(tmp_path)
    with pytest.raises(DataError) as refused:
        write_quarantine(tmp_path, quarantine("two"))
    assert str(refused.value) == (
        f"{tmp_path / '_quarantine'} holds 'incidents-checked.txt', which riskloop's validation does not write: it "
        f"replaces the folder whole, so move it out of {tmp_path / '_quarantine'}"
    )
    assert tree(tmp_path) == before


QUARANTINE_CHILD = """
import os, signal, sys
from pathlib import Path
import pandas as pd
from riskloop.artifacts import dataset
from riskloop.features import io

folder, at = Path(sys.argv[1]), sys.argv[2]
real_write, real_exchange, files = dataset.write_csv_atomic, getattr(io, "exchange", None), []


def write(rows, target):
    real_write(rows, target)
    files.append(target)
    if at == "written" and len(files) == 2:
        os.kill(os.getpid(), signal.SIGKILL)


def exchange(first, second):
    done = real_exchange(first, second)
    os.kill(os.getpid(), signal.SIGKILL)


dataset.write_csv_atomic = write
if real_exchange is not None:
    io.exchange = exchange
tables = ("people", "incidents", "interventions")
dataset.write_quarantine(folder, {t: pd.DataFrame({"row": [2], "reason": ["two"]}) for t in tables})
"""


@pytest.mark.parametrize("at", ["written", "swapped"])
def test_a_validation_killed_while_writing_its_quarantine_leaves_one_runs_files(tmp_path, at):
    """The tester's case: killed midway, `_quarantine/` held people.csv from the new run and the other tables'
    from the previous one. Now it holds one run's files: the previous run's, or, once swapped in, the new one's."""
    tables = ("people", "incidents", "interventions")
    if at == "swapped" and not exchange_works(tmp_path):
        pytest.skip("this system cannot exchange two names in one step")
    write_quarantine(tmp_path, {t: pd.DataFrame({"row": [2], "reason": ["one"]}) for t in tables})
    (tmp_path / "child.py").write_text(QUARANTINE_CHILD)
    child = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path), at], capture_output=True)
    assert child.returncode == -9, child.stderr[-2000:]
    runs = {pd.read_csv(tmp_path / "_quarantine" / f"{t}.csv")["reason"].iloc[0] for t in tables}
    assert runs == ({"one"} if at == "written" else {"two"})
    write_quarantine(tmp_path, {})  # the next run removes what the killed one left beside the data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_quarantine", "child.py"]


def test_an_ingest_folder_with_a_killed_validations_leftover_is_still_its_own(tmp_path):
    """What a killed write of a declared path leaves beside it is riskloop's, not a user's file."""
    (tmp_path / "out" / f"._quarantine.{2**22 + 7}.a1b2c3d4.tmp").mkdir(parents=True)
    (tmp_path / "out" / "._quarantine.previous").mkdir()
    check_replaceable(tmp_path / "out", ("_quarantine/*.csv",), "a test")
    (tmp_path / "out" / "._private.previous").mkdir()
    with pytest.raises(DataError, match=r"holds '._private.previous', which a test does not write"):
        check_replaceable(tmp_path / "out", ("_quarantine/*.csv", "*.parquet"), "a test")


# --- a file's --out that is a folder ---


def test_features_out_that_is_a_folder_is_refused_in_one_line_before_any_work(tmp_path):
    tables = hand_tables()
    tables["incidents"].loc[3, "harm"] = "-1"  # a row to quarantine: validating the data set writes `_quarantine/`
    data = write_tables(tmp_path / "data", tables)
    (tmp_path / "snapdir").mkdir()
    (tmp_path / "afile").write_text("x")
    features = ["features", "--data", str(data), "--as-of", "2023-06-01"]
    for options, message in [
        (
            ["--out", str(tmp_path / "snapdir")],
            f"--out {tmp_path / 'snapdir'} is a folder: give the snapshot Parquet file to write (a new file or a "
            f"previous one), e.g. {tmp_path / 'snapdir' / 'snapshots.parquet'}",
        ),
        (["--out", str(tmp_path / "afile" / "s.parquet")], f"{tmp_path / 'afile'} is a file, not a folder"),
        (
            ["--out", str(tmp_path / "s.parquet"), "--catalogue", str(tmp_path / "snapdir")],
            f"--catalogue {tmp_path / 'snapdir'} is a folder: give the feature catalogue (CSV) to write",
        ),
    ]:
        refused = runner.invoke(app, [*features, *options])
        assert refused.exit_code == 2 and message in refused.output and refused.output.count("\n") == 1, refused.output
    assert not (data / "_quarantine").exists()  # before any work: the data set not even validated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "data", "snapdir"] and not any(
        (tmp_path / "snapdir").iterdir()
    )


def test_a_file_written_where_a_folder_is_is_refused_in_one_line(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(DataError, match="taken is a folder: give the name of a file to write"):
        write_text_atomic("x", tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
