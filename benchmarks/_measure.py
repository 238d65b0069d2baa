"""Shared timing helpers for the benchmark scripts: wall time and peak resident memory."""

from __future__ import annotations

import resource
import subprocess
import sys
import time


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, in GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_isolated(code: str) -> tuple[float, float, str]:
    """Run Python `code` in a fresh interpreter; return (wall seconds, peak RSS GiB, its stdout).

    A fresh process per measurement keeps one size's peak memory from hiding another's.
    """
    wrapper = (f"import time, resource\nt0 = time.perf_counter()\n{code}\n"
               "print('__wall', time.perf_counter() - t0)\n"
               "print('__rss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)\n")
    result = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    wall = float(next(l for l in lines if l.startswith("__wall")).split()[1])
    rss = float(next(l for l in lines if l.startswith("__rss")).split()[1])
    return wall, rss, "\n".join(l for l in lines if not l.startswith("__"))


def now() -> float:
    return time.perf_counter()
