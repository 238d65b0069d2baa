"""riskloop command line.

Threads. LightGBM, OpenMP and BLAS use the CPUs this process may use, not the host's count: LightGBM's
`n_jobs=-1` counts them as joblib does (the affinity mask and a cgroup CPU quota). `RISKLOOP_THREADS=N`
caps them all (set here, before any of those libraries load, as LOKY_MAX_CPU_COUNT and OMP_NUM_THREADS,
where those are not set already); a config's `threads` or a command's `--threads` still wins for
LightGBM. OpenMP threads spin only briefly before they sleep while they wait (GOMP_SPINCOUNT=10000 unless
it or OMP_WAIT_POLICY is set; libgomp's default spins 30 times longer): spinning threads take the cores another process needs, and
sleeping at once (OMP_WAIT_POLICY=PASSIVE) costs a run alone (docs/validation.md, "Threads on a shared machine").
"""

import os

if "OMP_WAIT_POLICY" not in os.environ:  # libgomp lets a spin count override a wait policy the user chose
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
#: what RISKLOOP_THREADS sets, where it is not set already (the Spark engine's workers get the same)
CAPPED_BY_THREADS = ("LOKY_MAX_CPU_COUNT", "OMP_NUM_THREADS")
_threads = os.environ.get("RISKLOOP_THREADS", "").strip()
if _threads:
    if not _threads.isdigit() or int(_threads) < 1:
        raise ValueError(f"RISKLOOP_THREADS must be a whole number of at least 1, got {_threads!r}")
    for _name in CAPPED_BY_THREADS:
        os.environ.setdefault(_name, _threads)
