"""Threads fit the CPUs this process may use (riskloop/__init__.py): checked in fresh interpreters, since the
settings must be in place before LightGBM, OpenMP and BLAS load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

# What LightGBM resolves the models' default n_jobs=-1 to, and how long its OpenMP threads will spin waiting.
PROBE = (
    "import os, riskloop, lightgbm; "
    "print(lightgbm.LGBMClassifier(n_jobs=-1)._process_n_jobs(-1), os.environ.get('GOMP_SPINCOUNT', '-'))"
)


def probe(env: dict[str, str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "LOKY_MAX_CPU_COUNT", "OMP_NUM_THREADS", "RISKLOOP_THREADS"}
    }
    return subprocess.run([*prefix, sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True)


def test_defaults_are_the_usable_cpus_and_threads_that_soon_sleep():
    done = probe({})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(os.sched_getaffinity(0))), "10000"]


def test_an_environment_variable_caps_the_threads_and_a_set_spin_count_is_kept():
    done = probe({"RISKLOOP_THREADS": "1", "GOMP_SPINCOUNT": "300000"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "300000"]


def test_a_wait_policy_the_user_chose_is_not_overridden_by_a_spin_count():
    done = probe({"OMP_WAIT_POLICY": "PASSIVE"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "-"


def test_a_bad_thread_count_is_one_clear_error():
    done = probe({"RISKLOOP_THREADS": "all"})
    assert done.returncode != 0
    assert "RISKLOOP_THREADS must be a whole number of at least 1, got 'all'" in done.stderr


@pytest.mark.skipif(shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2, reason="needs taskset, 2 CPUs")
def test_the_affinity_mask_not_the_host_count():
    done = probe({}, ("taskset", "-c", str(min(os.sched_getaffinity(0)))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "1"
