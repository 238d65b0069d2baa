"""Ingest from a real database: a throwaway PostgreSQL cluster on a unix socket, loaded with the extracts,
gives the same contract tables as the files do."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from riskloop.jobs.ingest import IngestJob, ingest
from tests.ingest_extracts import COUNCIL, EXAMPLE, KEY, TABLES, write_extracts

pytestmark = pytest.mark.slow


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres(*command: str) -> list[str]:
    """Run as the `postgres` user when root (the server refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server in a temporary folder, listening only on a unix socket there; its URL. The folder
    is outside pytest's (root's 0700) temporary tree, owned by `postgres` when the tests run as root."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine: .ci/run installs Debian's postgresql")
    root = Path(tempfile.mkdtemp(prefix="riskloop-postgres-"))
    data, socket = root / "data", root / "socket"
    socket.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(socket, "postgres")
    run = {"check": True, "capture_output": True}
    subprocess.run(_as_postgres(str(binaries / "initdb"), "-D", str(data), "-U", "riskloop", "-A", "trust"), **run)
    options = f"-k {socket} -c listen_addresses='' -F"
    subprocess.run(
        _as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"),
        **run,
    )
    try:
        yield f"postgresql+psycopg2://riskloop@/postgres?host={socket}"
    finally:
        subprocess.run(_as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"), **run)
        shutil.rmtree(root, ignore_errors=True)


def _database_mapping() -> str:
    """The worked example with every extract read from the database (tables, and one query)."""
    text = EXAMPLE.read_text()
    for name in ("police_occurrences", "police_nominals", "provider_cases", "lsoa_lookup", "harm_weights"):
        text = text.replace(f"{{file: {name}.csv}}", f"{{database: {{url_env: PARTNERSHIP_DB, table: {name}}}}}")
    text = text.replace("table: harm_weights", "table: public.harm_weights")  # schema-qualified
    query = 'select * from council_asb order by "CaseRef"'
    return text.replace(
        "{file: council_asb.xlsx, sheet: cases}", f"{{database: {{url_env: PARTNERSHIP_DB, query: '{query}'}}}}"
    )


def test_a_database_gives_the_same_contract_as_the_files(postgres, tmp_path, monkeypatch):
    import sqlalchemy

    monkeypatch.setenv("RISKLOOP_PSEUDONYM_KEY", KEY)
    monkeypatch.setenv("PARTNERSHIP_DB", postgres)
    engine = sqlalchemy.create_engine(postgres)
    for name, frame in {**TABLES, "council_asb": COUNCIL}.items():
        frame.replace("", None).to_sql(name, engine, index=False, if_exists="replace")
    engine.dispose()
    from_files = ingest(IngestJob(write_extracts(tmp_path / "files"), tmp_path / "out_files"))
    mapping = tmp_path / "db" / "mapping.yaml"
    mapping.parent.mkdir()
    mapping.write_text(_database_mapping())
    from_db = ingest(IngestJob(mapping, tmp_path / "out_db"))
    assert from_db.counts == from_files.counts and from_files.counts["incidents"] > 0
    for table in from_files.counts:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "out_db" / f"{table}.parquet"),
            pd.read_parquet(tmp_path / "out_files" / f"{table}.parquet"),
        )
    assert [f.reconciles for f in from_db.summary.feeds] == [True] * len(from_db.summary.feeds)
