"""The audit log on its own: owner-only, chained, continued across restarts and rotations, verified,
and failing closed (no start, no line, no data) when it cannot be written."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskloop.cli import app as cli
from riskloop.serving.audit_log import (
    GENESIS,
    AuditEntry,
    AuditError,
    AuditLog,
    chain_head,
    head_path,
    line_hash,
    verify,
)


def entry(name: str = "cardiff", pseudonym: str = "pz-1") -> AuditEntry:
    return AuditEntry(
        method="GET", client="127.0.0.1", endpoint="/people/{pseudonym}", token=name, pseudonyms=[pseudonym]
    )


def logged(path: Path, requests: int) -> AuditLog:
    log = AuditLog.open(path, {"pid": 1})
    for i in range(requests):
        log.write(entry(pseudonym=f"pz-{i}"), 200)
    return log


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lines_are_chained_and_owner_only(tmp_path):
    path = tmp_path / "logs" / "audit.jsonl"
    logged(path, 3).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_bytes().splitlines()
    got = records(path)
    assert [r["event"] for r in got] == ["start", "request", "request", "request", "stop"]
    assert [r["seq"] for r in got] == [1, 2, 3, 4, 5]
    assert got[0]["prev"] == GENESIS
    assert [r["prev"] for r in got[1:]] == [line_hash(line) for line in lines[:-1]]
    assert got[2]["pseudonyms"] == ["pz-1"] and got[2]["status"] == 200 and got[2]["client"] == "127.0.0.1"
    verdict = verify([path])
    assert verdict.intact and (verdict.lines, verdict.first_seq, verdict.last_seq) == (5, 1, 5)
    assert verdict.head == line_hash(lines[-1])


def test_a_restart_continues_the_chain_and_narrows_a_wide_mode(tmp_path):
    path = tmp_path / "audit.jsonl"
    logged(path, 2).close()
    os.chmod(path, 0o644)
    logged(path, 1).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r["seq"] for r in records(path)] == list(range(1, 8))
    assert verify([path]).intact


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda lines: lines.__setitem__(2, lines[2].replace(b'"status": 200', b'"status": 403')), "line 3 (seq 3)"),
        (lambda lines: lines.pop(3), "seq 5 follows seq 3 (seq 4 to 4 missing)"),
        (lambda lines: lines.insert(2, lines[2]), "seq 3 follows seq 3 (out of order)"),
        (lambda lines: lines.__setitem__(0, b"{not json"), "line 1: not an audit record"),
    ],
)
def test_verify_names_the_first_edited_or_missing_line(tmp_path, tamper, named):
    path = tmp_path / "audit.jsonl"
    logged(path, 4).close()
    lines = path.read_bytes().splitlines()
    tamper(lines)
    path.write_bytes(b"\n".join(lines) + b"\n")
    verdict = verify([path])
    assert not verdict.intact and named in verdict.problem


def test_a_rotated_log_is_reopened_and_the_chain_runs_across_the_files(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = logged(path, 2)
    path.rename(tmp_path / "audit.jsonl.1")  # logrotate's default: rename, then the writer reopens
    log.write(entry(pseudonym="pz-after-mv"), 200)
    replaced = tmp_path / "replacement"  # sed -i: a new file (another inode) replaces the log
    replaced.write_text(path.read_text())
    replaced.replace(path)
    log.write(entry(pseudonym="pz-after-replace"), 200)
    log.close()
    assert "pz-after-mv" in path.read_text() and "pz-after-replace" in path.read_text()
    assert [r["seq"] for r in records(tmp_path / "audit.jsonl.1")] == [1, 2, 3]
    assert [r["seq"] for r in records(path)] == [4, 5, 6]
    assert verify([tmp_path / "audit.jsonl.1", path]).intact
    assert not verify([path, tmp_path / "audit.jsonl.1"]).intact
    alone = verify([path])
    assert not alone.intact and "line 1 is seq 4, not the chain's start" in alone.problem
    earlier = verify([tmp_path / "audit.jsonl.1"])
    assert verify([path], after=earlier.head).intact  # the earlier file archived away, its head noted
    assert not verify([path], after=GENESIS).intact


def test_a_log_rotated_while_the_server_was_stopped_continues_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    logged(path, 2).close()
    path.rename(tmp_path / "audit.jsonl.1")
    logged(path, 1).close()
    assert [r["seq"] for r in records(path)] == [5, 6, 7]  # from the head, not a new chain at seq 1
    assert verify([tmp_path / "audit.jsonl.1", path]).intact
    assert chain_head(path) == (7, line_hash(path.read_bytes().splitlines()[-1]))
    assert stat.S_IMODE(head_path(path).stat().st_mode) == 0o600


@pytest.mark.parametrize("tamper", ["cut-tail", "edit-last"])
def test_a_log_cut_or_edited_at_its_end_refuses_to_open_and_fails_verify(tmp_path, tamper):
    path = tmp_path / "audit.jsonl"
    logged(path, 3).close()
    lines = path.read_bytes().splitlines(keepends=True)
    if tamper == "cut-tail":
        path.write_bytes(b"".join(lines[:-2]))
    else:
        path.write_bytes(b"".join(lines[:-1]) + lines[-1].replace(b'"event": "stop"', b'"event": "stoq"'))
    problem = "lines were cut" if tamper == "cut-tail" else "it was edited"
    with pytest.raises(AuditError, match=problem):
        AuditLog.open(path, {"pid": 1})
    verdict = verify([path], head=chain_head(path))
    assert not verdict.intact and ("were cut" in verdict.problem or "was edited" in verdict.problem)
    assert verify([path]).intact  # without the head file, a cut tail cannot be seen: that is what it is for


def test_a_second_server_on_the_same_log_refuses_to_start(tmp_path):
    path = tmp_path / "audit.jsonl"
    first = logged(path, 1)
    with pytest.raises(AuditError, match="another server is writing it"):
        AuditLog.open(path, {"pid": 2})
    first.rotate()  # a SIGHUP reopens the log within the server that holds the lock
    first.write(entry(), 200)
    first.close()
    logged(path, 1).close()  # the lock goes with the server
    assert verify([path]).intact and len(records(path)) == 7


def test_sighup_reopens_a_log_truncated_in_place(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = logged(path, 1)
    os.truncate(path, 0)  # copytruncate keeps the inode
    log.rotate()
    log.write(entry(), 200)
    assert [r["seq"] for r in records(path)] == [3]


@pytest.mark.parametrize("where", ["under-a-file", "dev-full", "dev-null", "torn", "not-a-record"])
def test_a_log_that_cannot_be_written_or_continued_refuses_to_open(tmp_path, where):
    path = {
        "under-a-file": tmp_path / "file" / "audit.jsonl",
        "dev-full": Path("/dev/full"),
        "dev-null": Path("/dev/null"),
        "torn": tmp_path / "audit.jsonl",
        "not-a-record": tmp_path / "audit.jsonl",
    }[where]
    (tmp_path / "file").write_text("a file, not a folder")
    if where == "torn":
        logged(path, 1).close()
        path.write_bytes(path.read_bytes() + b'{"seq": 4, "prev": "ab')
    if where == "not-a-record":
        path.write_text("hello\n")
    device_mode = path.stat().st_mode if where.startswith("dev") else None
    with pytest.raises(AuditError, match=f"cannot write the audit log {path}"):
        AuditLog.open(path, {"pid": 1})
    if device_mode is not None:
        assert path.stat().st_mode == device_mode  # not made owner-only: a device is refused untouched


def test_a_line_that_cannot_be_written_raises(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = logged(path, 1)
    path.unlink()
    path.mkdir()  # the path now names a folder: the reopen fails
    with pytest.raises(AuditError):
        log.write(entry(), 200)
    assert log.seq == 2  # the failed line is not counted: the chain stays whole


def test_cli_verify_needs_the_chain_from_its_start_or_after_a_noted_head(tmp_path):
    path = tmp_path / "audit.jsonl"
    logged(path, 3).close()
    lines = path.read_bytes().splitlines(keepends=True)
    runner = CliRunner()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[2:]))
    broken = runner.invoke(cli, ["audit-log", "verify", str(cut)])
    assert broken.exit_code == 1 and "line 1 is seq 3, not the chain's start" in broken.output
    after = runner.invoke(cli, ["audit-log", "verify", str(cut), "--after", line_hash(lines[1])])
    assert after.exit_code == 0 and "intact: 3 lines, seq 3..5 (after" in after.stdout
    path.write_bytes(b"".join(lines[:-1]))  # the last line cut: only the head file can tell
    tail_cut = runner.invoke(cli, ["audit-log", "verify", str(path)])
    assert tail_cut.exit_code == 1 and "ends at seq 4 but its head file names seq 5" in tail_cut.output


def test_cli_verify_reports_intact_or_the_broken_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    logged(path, 3).close()
    runner = CliRunner()
    intact = runner.invoke(cli, ["audit-log", "verify", str(path)])
    assert intact.exit_code == 0 and "intact: 5 lines, seq 1..5" in intact.stdout
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("pz-0", "pz-9")
    path.write_text("\n".join(lines) + "\n")
    broken = runner.invoke(cli, ["audit-log", "verify", str(path)])
    assert broken.exit_code == 1 and "line 2 (seq 2) was edited" in broken.output


def test_a_short_write_leaves_no_torn_fragment(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    log = logged(path, 1)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:10]))  # the disk fills mid-line
    with pytest.raises(AuditError, match="short write"):
        log.write(entry(), 200)
    monkeypatch.setattr(os, "write", real_write)
    log.write(entry(), 200)
    log.close()
    assert verify([path]).intact and [r["seq"] for r in records(path)] == [1, 2, 3, 4]
