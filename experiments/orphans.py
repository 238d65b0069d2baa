"""MLflow runs left RUNNING by a process that died (kill -9, power loss): found and marked KILLED.

Every run riskloop starts is tagged with its process id and host. The next training run of the same
experiment marks a RUNNING run KILLED, with a `riskloop.orphaned` tag saying why, when
- it was started on this host and its process is gone; or
- it was started on another host, or carries no process tags, and began more than a day ago (its
  process cannot be checked from here; no riskloop run lasts a day).
A child run is judged by its parent's process.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from mlflow.tracking import MlflowClient

from riskloop.features.io import process_alive

PID_TAG = "riskloop.pid"
HOST_TAG = "riskloop.host"
ORPHANED_TAG = "riskloop.orphaned"
UNCHECKABLE_AFTER = timedelta(days=1)


def process_tags() -> dict[str, str]:
    """The tags that let a later run tell whether this process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _gone(tags: dict[str, str], started: datetime, now: datetime) -> bool:
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) == socket.gethostname() and pid.isdigit():
        return not process_alive(int(pid))
    return now - started > UNCHECKABLE_AFTER


def mark_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark the experiment's orphaned RUNNING runs KILLED; return their run ids."""
    client = MlflowClient()
    running = {
        r.info.run_id: r
        for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=10_000)
    }
    now = datetime.now(UTC)
    marked = []
    for run_id, run in running.items():
        owner = running.get(run.data.tags.get("mlflow.parentRunId"), run)
        started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
        if _gone(owner.data.tags, started, now):
            client.set_tag(
                run_id,
                ORPHANED_TAG,
                "process ended without finishing; marked killed by the next run "
                f"at {now.isoformat(timespec='seconds')}",
            )
            client.set_terminated(run_id, "KILLED")
            marked.append(run_id)
    return marked
