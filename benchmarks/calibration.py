"""The synthetic world against the published figures it is calibrated to: one Markdown table.

    python benchmarks/calibration.py [PEOPLE] [SEED] [WORLD_DIR]

Generates a world of PEOPLE (200,000) with SEED (4242) into a temporary folder, or measures WORLD_DIR if
given (e.g. the full-Wales world), and prints each figure of `simulation.calibration.TARGETS` with its
published value, the band the world must fall in, the world's value and whether it is in the band; then
the published figures the world does not reach, and the bound on recorded histories.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from riskloop.simulation.calibration import MAX_RECORDED_OFFENDING_A_YEAR, NOT_CALIBRATED, TARGETS, measure
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import simulate, write_world


def _value(key: str, value: float) -> str:
    return f"{value:.1f}" if key.endswith("_1000") else f"{value:.1%}"


def table(figures: dict[str, float]) -> str:
    lines = ["| figure | published | world | band | in band | source |", "|---|---|---|---|---|---|"]
    for t in (*TARGETS, *NOT_CALIBRATED):
        value = figures[t.key]
        ok = "yes" if t.low <= value <= t.high else "**no**"
        if t in NOT_CALIBRATED:
            ok += " (not calibrated)"
        band = f"{_value(t.key, t.low)}-{_value(t.key, t.high)}"
        lines.append(f"| {t.what} | {t.published} | **{_value(t.key, value)}** | {band} | {ok} | {t.source} |")
    worst = figures["max_offending_per_year"]
    lines.append(
        f"| most recorded offending involvements of one person in one year | at most a few dozen (reasoned) "
        f"| **{worst:.0f}** | ≤ {MAX_RECORDED_OFFENDING_A_YEAR} | {'yes' if worst <= MAX_RECORDED_OFFENDING_A_YEAR else '**no**'}"
        f" | simulation.calibration.MAX_RECORDED_OFFENDING_A_YEAR |"
    )
    return "\n".join(lines)


def main() -> None:
    people = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 4242
    started = time.perf_counter()
    if len(sys.argv) > 3:
        where = f"the world in {sys.argv[3]}"
        figures = measure(Path(sys.argv[3]))
    else:
        where = f"a world of {people:,} people, seed {seed}"
        with tempfile.TemporaryDirectory() as tmp:
            write_world(simulate(WorldConfig(people=people, seed=seed)), Path(tmp))
            figures = measure(Path(tmp))
    print(f"calibration of {where} ({time.perf_counter() - started:.0f} s):\n")
    print(table(figures))


if __name__ == "__main__":
    main()
