"""The append-only audit log: one JSON line per request, chained, written before the response leaves.

It records who asked for what (token name, client address, endpoint, pseudonyms, rows scored, model
version, status), never request bodies, Authorization headers or tokens. Each line carries `seq` (1, 2,
...) and `prev`, the sha256 of the line before it (64 zeros before the first), so an edited, inserted or
deleted line breaks the chain where it happened (`verify`). The file is created owner-only (0600) and
reopened when rotated away (renamed, or replaced by `sed -i`): the chain continues across files.

The chain's head (the last line's seq and hash) is also kept in `<log>.head`, rewritten after every
line and locked while a server writes: a log rotated away while the server was stopped continues from
the head (not a new chain that hides what came before), a log whose tail was cut refuses to open, and a
second server on the same log refuses to start (two writers would fork the chain).

Fails closed: `AuditLog.open` writes the server's start line or raises AuditError (the server does not
start), and a line that cannot be written raises AuditError (the request gets 503, not data).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

GENESIS = "0" * 64
#: The most of a log's last line read to continue its chain (a line is a few hundred bytes to ~40 KB).
TAIL_BYTES = 1 << 20
#: The head file's fixed size: each rewrite replaces the whole record in one write at offset 0.
HEAD_BYTES = 128


class AuditError(OSError):
    """The audit log cannot be written (or continued), in one line."""


@dataclass
class AuditEntry:
    """What one request touched; the handlers fill it in as they learn it."""

    method: str
    client: str | None = None
    endpoint: str = "unmatched"
    token: str | None = None
    pseudonyms: list[str] = field(default_factory=list)
    local_authority: str | None = None
    rows: int = 0
    model_version: str | None = None


def line_hash(line: bytes) -> str:
    """The sha256 of one line without its newline: the next line's `prev`."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _last_line(fd: int) -> bytes | None:
    """The file's last line (None if empty); AuditError if it does not end in a newline (a torn write)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    start = max(0, size - TAIL_BYTES)
    tail = os.pread(fd, size - start, start)
    if not tail.endswith(b"\n"):
        raise AuditError("its last line is incomplete")
    lines = tail[:-1].rsplit(b"\n", 1)
    if len(lines) == 1 and start > 0:
        raise AuditError(f"its last line is longer than {TAIL_BYTES:,} bytes")
    return lines[-1]


def _chain_state(last: bytes | None) -> tuple[int, str] | None:
    """(seq, hash) of the line a new line follows; None for an empty log."""
    if last is None:
        return None
    try:
        seq = json.loads(last)["seq"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditError("its last line is not an audit record") from exc
    if not isinstance(seq, int):
        raise AuditError("its last line has no sequence number")
    return seq, line_hash(last)


def head_path(path: Path) -> Path:
    """Where the chain's head of the log `path` is kept."""
    return path.with_name(path.name + ".head")


def chain_head(path: Path) -> tuple[int, str] | None:
    """The (seq, hash) the head file of the log `path` holds; None if it has none."""
    head = head_path(path)
    try:
        fd = os.open(head, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return _read_head(fd, head)
    finally:
        os.close(fd)


def _read_head(fd: int, where: Path) -> tuple[int, str] | None:
    raw = os.pread(fd, HEAD_BYTES, 0)
    if not raw:
        return None
    try:
        head = json.loads(raw)
        seq, digest = head["seq"], head["hash"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"its head file {where} is not a chain head") from exc
    if not isinstance(seq, int) or not isinstance(digest, str):
        raise AuditError(f"its head file {where} is not a chain head")
    return seq, digest


def _continued(logged: tuple[int, str] | None, head: tuple[int, str] | None, where: Path) -> tuple[int, str]:
    """Where the chain goes on: the log's last line, or the head if the log was rotated away (is empty).
    AuditError if the log ends before the head (lines were cut) or its last line is not the head's."""
    if logged is None:
        return head or (0, GENESIS)
    if head is not None:
        aside = f"restore it, or move the log and {where} aside to start a new chain"
        if logged[0] < head[0]:
            raise AuditError(f"it ends at seq {logged[0]} but the chain reached seq {head[0]}: lines were cut; {aside}")
        if logged[0] == head[0] and logged[1] != head[1]:
            raise AuditError(f"its last line (seq {logged[0]}) is not the one {where} names: it was edited; {aside}")
    return logged  # at or past the head (a crash can come between a line and its head)


class AuditLog:
    """The open log: `write` appends one chained line (flushed by the OS write), `close` ends it."""

    def __init__(self, path: Path, fd: int, head_fd: int, seq: int, prev: str):
        self.path, self._fd, self._head_fd, self.seq, self.prev = path, fd, head_fd, seq, prev
        self._reopen = False

    @classmethod
    def open(cls, path: Path, started: dict[str, object]) -> AuditLog:
        """Open (or create, 0600) `path` and its head file, lock the head, continue the chain and write a
        `start` line with `started`; AuditError naming the path if any of it fails."""
        head = head_path(path)
        fds: list[int] = []
        try:
            fds.append(_open(head, append=False))
            try:
                fcntl.flock(fds[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise AuditError(f"another server is writing it ({head} is locked)") from exc
            fds.append(_open(path))
            seq, prev = _continued(_chain_state(_last_line(fds[1])), _read_head(fds[0], head), head)
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise AuditError(f"cannot write the audit log {path}: {_reason(exc)}") from exc
        log = cls(path, fds[1], fds[0], seq, prev)
        log.write_event("start", started)
        return log

    def rotate(self) -> None:
        """Reopen the path at the next line (SIGHUP after a log rotation)."""
        self._reopen = True

    def write(self, entry: AuditEntry, status: int) -> None:
        """One request's line; AuditError if it is not written."""
        self._append({"event": "request", **asdict(entry), "status": status})

    def write_event(self, event: str, details: dict[str, object]) -> None:
        self._append({"event": event, **details})

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.write_event("stop", {})
            except AuditError:
                pass  # nothing is served after stop; the chain ends at the last line written
            os.close(self._fd)
            os.close(self._head_fd)  # and with it the lock
            self._fd = -1

    def _append(self, fields: dict[str, object]) -> None:
        record = {"seq": self.seq + 1, "prev": self.prev, "time": datetime.now(UTC).isoformat(timespec="milliseconds")}
        line = json.dumps({**record, **fields}, ensure_ascii=False).encode()
        try:
            if self._fd < 0:
                raise AuditError("the audit log is closed")
            if self._reopen or self._rotated():
                self._switch()
            written = os.write(self._fd, line + b"\n")
            if written != len(line) + 1:  # cut the torn fragment (the file's end, in append mode) away
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
                raise OSError(f"short write ({written} of {len(line) + 1} bytes)")
            self.seq, self.prev = self.seq + 1, line_hash(line)  # the line is written: the chain goes on from it
            head = json.dumps({"seq": self.seq, "hash": self.prev}).encode().ljust(HEAD_BYTES - 1) + b"\n"
            os.pwrite(self._head_fd, head, 0)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {_reason(exc)}") from exc

    def _rotated(self) -> bool:
        """True if the path no longer names the open file (renamed, deleted or replaced)."""
        try:
            now, mine = os.stat(self.path), os.fstat(self._fd)
        except FileNotFoundError:
            return True
        return (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev)

    def _switch(self) -> None:
        fd = _open(self.path)
        os.close(self._fd)
        self._fd, self._reopen = fd, False


def _open(path: Path, append: bool = True) -> int:
    """A read-write (append) descriptor on the regular file `path` (created 0600; made 0600 if it was wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else 0), 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # /dev/null would keep nothing, /dev/full nothing but errors
            raise AuditError("it is not a regular file")
        os.fchmod(fd, 0o600)  # a log made by hand or by an earlier version keeps no group or world access
    except OSError:
        os.close(fd)
        raise
    return fd


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)  # an AuditError has no strerror: its message


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: lines read, the sequence range, the chain's head, and the first problem."""

    lines: int
    first_seq: int | None
    last_seq: int | None
    head: str
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(paths: Iterable[Path], after: str | None = None, head: tuple[int, str] | None = None) -> Verdict:
    """Check the chain across `paths` (a log and its rotations, oldest first): each line parses, its `seq`
    is one more than the line before's and its `prev` is that line's hash. The first line starts the chain
    (seq 1 after 64 zeros) or, with `after`, follows the line whose hash is `after` (the head `verify`
    printed for earlier files no longer kept): a log with its first lines cut is broken. With `head` (the
    live log's `chain_head`), a log whose last lines were cut is broken too."""
    count, first, seq, prev, before_where = 0, None, None, GENESIS, ""

    def broken(problem: str) -> Verdict:
        return Verdict(count, first, seq, prev, problem)

    for path in paths:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                where = f"{path} line {number}"
                if not raw.endswith(b"\n"):
                    return broken(f"{where}: incomplete (no newline)")
                try:
                    record = json.loads(raw)
                    this, linked = record["seq"], record["prev"]
                except (ValueError, KeyError, TypeError):
                    return broken(f"{where}: not an audit record")
                if not isinstance(this, int) or not isinstance(linked, str):
                    return broken(f"{where}: not an audit record")
                if seq is None:
                    first = this
                    if after is not None and linked != after:
                        return broken(f"{where} (seq {this}) does not follow the line whose hash is {after}")
                    if after is None and (this, linked) != (1, GENESIS):
                        return broken(
                            f"{where} is seq {this}, not the chain's start: the lines before it are missing "
                            f"(give the earlier files first, or --after the head printed when they were verified)"
                        )
                elif this != seq + 1:
                    gap = f"seq {seq + 1} to {this - 1} missing" if this > seq + 1 else "out of order"
                    return broken(f"{where}: seq {this} follows seq {seq} ({gap})")
                elif linked != prev:
                    return broken(
                        f"{before_where} (seq {seq}) was edited, or a line was inserted after it: "
                        f"the next line's prev is not its hash"
                    )
                count, seq, prev, before_where = count + 1, this, line_hash(raw), where
    end = seq or 0
    if head is not None and end < head[0]:
        return broken(f"the log ends at seq {end} but its head file names seq {head[0]}: its last lines were cut")
    if head is not None and end == head[0] and prev != head[1]:
        return broken(f"{before_where} (seq {end}) is not the line its head file names: it was edited")
    return Verdict(count, first, seq, prev, None)
